/* net_apply: apply+verify and revert time of the network faults net-loss
 * (nftables backend on kernels without sch_netem) and net-bandwidth (htb),
 * from a client over loopback tcp against a real agent, side by side in
 * the same run with the exec path other tools use: the real `tc` and
 * `nft` binaries run with posix_spawn, one process per command.
 *
 *   net_apply --netns NAME --agent PATH --ifname IF --dst ADDR [--state-parent DIR]
 *             [--port N] [--count N] [--tc PATH] [--nft PATH] [--agent-b PATH]
 *
 * MUST run inside a network namespace made for it (bench/net_apply.sh
 * makes two, joined by a veth pair, and runs this in the first): it
 * refuses to run anywhere but in the namespace --netns names (checked
 * against /run/netns/NAME), so the host's interfaces are never touched. It starts its own agent
 * (state directory under --state-parent, default /dev/shm) listening on 127.0.0.1:--port in that
 * namespace.
 *
 * One iteration times, in this order, each as APPLY (or the apply
 * commands) then REVERT (or the delete command):
 *   fl-loss    APPLY net-loss percent=10 dst=ADDR backend=nftables
 *              (the agent's verify, a read-back of its chains, is inside
 *              the APPLY round trip) / REVERT
 *   exec-loss  nft add table inet flbench; nft add chain inet flbench out
 *              { type filter hook output priority 0; }; nft add rule inet
 *              flbench out ip daddr ADDR numgen random mod 100 < 10 drop
 *              (3 processes) / nft delete table inet flbench
 *   exec-loss1 the same three commands in ONE `nft -f FILE` (reference)
 *   fl-bw      APPLY net-bandwidth rate=1mbit interface=IF (htb root,
 *              class and, the whole interface being targeted, u32
 *              filters on the htb for the exemptions; verify reads all of
 *              it back) / REVERT
 *   exec-bw    tc qdisc add dev IF root tbf rate 1mbit burst 32kbit
 *              latency 400ms / tc qdisc del dev IF root (no exemptions)
 *   exec-bwx   the cap with faultline's exemptions (ssh, port 27310), run
 *              as ChaosBlade runs tc with --exclude-port (bench_common.h)
 *   floor      /bin/true / /bin/true: what one posix_spawn+wait costs here
 *   agent-b    with --agent-b PATH: fl-loss and fl-bw again against a second
 *              agent binary (port+1, own state dir), in the same iterations,
 *              to compare two builds under the same load
 * 20 warm-up iterations, then --count timed ones (default 1000). Before
 * timing, one untimed round checks with nft/tc that each apply really
 * installed something and each revert removed it. Prints min/p50/p90/p99/
 * max/mean in microseconds, the exec/faultline ratios, and how much of
 * faultline's figure is the two round trips (2 x the HELLO p50). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "bench_common.h"

#define DEFAULT_COUNT 1000
#define MAX_COUNT     100000
#define WARMUP        20

static const char *tc_bin = "tc", *nft_bin = "nft";

static const char *fs_name(const char *path)
{
        struct statfs sf;
        if (statfs(path, &sf) < 0)
                return "?";
        switch ((unsigned long)sf.f_type) {
        case 0x01021994UL:
                return "tmpfs";
        case 0xEF53UL:
                return "ext4";
        case 0x58465342UL:
                return "xfs";
        case 0x9123683EUL:
                return "btrfs";
        default:
                return "other";
        }
}

/* APPLY kind with params "k=v" under lease; the fault id to ret_id. */
static int fl_apply(struct fl_conn *c, const char *kind, const char *const kv[], size_t n_kv,
                    char ret_id[FL_ID_LEN], char *ret_backend, size_t backend_size)
{
        struct fl_param params[8];
        if (n_kv > 8)
                return -E2BIG;
        for (size_t i = 0; i < n_kv; i++) {
                const char *eq = strchr(kv[i], '=');
                snprintf(params[i].key, sizeof(params[i].key), "%.*s", (int)(eq - kv[i]), kv[i]);
                snprintf(params[i].value, sizeof(params[i].value), "%s", eq + 1);
        }
        struct fl_request req = {
            .type = FL_MSG_APPLY,
            .duration_ms = 60000,
            .n_params = n_kv,
            .params = params,
            .lease_ttl_ms = 30000,
        };
        snprintf(req.kind, sizeof(req.kind), "%s", kind);
        snprintf(req.lease, sizeof(req.lease), "bench-net-apply");
        snprintf(req.requester, sizeof(req.requester), "bench");
        struct fl_reply rep;
        int rv = fl_conn_call(c, &req, &rep, 10000);
        if (rv < 0)
                return rv;
        if (rep.status != FL_ST_OK || rep.n_faults != 1) {
                fprintf(stderr, "net_apply: apply %s: %s: %s\n", kind, fl_status_name(rep.status),
                        rep.msg);
                fl_reply_free(&rep);
                return -EIO;
        }
        snprintf(ret_id, FL_ID_LEN, "%s", rep.faults[0].id);
        if (ret_backend)
                snprintf(ret_backend, backend_size, "%s", rep.faults[0].backend);
        fl_reply_free(&rep);
        return 0;
}

/* A bench scenario: apply/revert functions and their samples. */
enum {
        S_FL_LOSS,
        S_EXEC_LOSS,
        S_EXEC_LOSS1,
        S_FL_BW,
        S_EXEC_BW,
        S_EXEC_BWX,
        S_EXEC_TRUE,
        S_FLB_LOSS, /* the same two faults on --agent-b, when given */
        S_FLB_BW,
        S_N
};
static const char *const s_name[S_N] = {
    "fl net-loss (nftables)",
    "exec nft x3 (loss)",
    "exec nft -f (1 batch)",
    "fl net-bandwidth (htb)",
    "exec tc tbf (no exemptions)",
    "exec tc htb+class+4 filters, ChaosBlade-style (same exemptions)",
    "exec /bin/true (spawn floor)",
    "agent-b net-loss",
    "agent-b net-bandwidth"};
static bool have_b;
static bool active(int s)
{
        return have_b || (s != S_FLB_LOSS && s != S_FLB_BW);
}
static bool is_fl(int s)
{
        return s == S_FL_LOSS || s == S_FL_BW || s == S_FLB_LOSS || s == S_FLB_BW;
}

struct ctx {
        struct fl_conn *conn, *conn_b;
        const char *ifname, *dst, *nft_file;
        char id[FL_ID_LEN];
};

static int do_apply(struct ctx *x, int s)
{
        char rule_dst[96];
        snprintf(rule_dst, sizeof(rule_dst), "%s", x->dst);
        switch (s) {
        case S_FL_LOSS:
        case S_FLB_LOSS: {
                char d[80];
                snprintf(d, sizeof(d), "dst=%s", x->dst);
                const char *kv[] = {"percent=10", d, "backend=nftables"};
                return fl_apply(s == S_FL_LOSS ? x->conn : x->conn_b, "net-loss", kv, 3, x->id,
                                NULL, 0);
        }
        case S_EXEC_LOSS:
                return bench_exec_loss_apply("net_apply", nft_bin, rule_dst);
        case S_EXEC_LOSS1: {
                const char *const a[] = {nft_bin, "-f", x->nft_file, NULL};
                const char *const *const cmds[] = {a};
                return bench_spawn_all("net_apply", cmds, 1);
        }
        case S_FL_BW:
        case S_FLB_BW: {
                char i[64];
                snprintf(i, sizeof(i), "interface=%s", x->ifname);
                const char *kv[] = {"rate=1mbit", i};
                return fl_apply(s == S_FL_BW ? x->conn : x->conn_b, "net-bandwidth", kv, 2, x->id,
                                NULL, 0);
        }
        case S_EXEC_BW:
                return bench_exec_bw_apply("net_apply", tc_bin, x->ifname);
        case S_EXEC_BWX: /* the agent's default control port, as net_apply.sh runs it */
                return bench_exec_bw_exempt_apply("net_apply", tc_bin, x->ifname, 27310);
        case S_EXEC_TRUE:
                return bench_exec_true("net_apply");
        }
        return -EINVAL;
}

static int do_revert(struct ctx *x, int s)
{
        switch (s) {
        case S_FL_LOSS:
        case S_FL_BW:
                return bench_revert(x->conn, x->id);
        case S_FLB_LOSS:
        case S_FLB_BW:
                return bench_revert(x->conn_b, x->id);
        case S_EXEC_LOSS:
        case S_EXEC_LOSS1:
                return bench_exec_loss_revert("net_apply", nft_bin);
        case S_EXEC_BW:
                return bench_exec_bw_revert("net_apply", tc_bin, x->ifname);
        case S_EXEC_BWX:
                return bench_exec_bw_exempt_revert("net_apply", tc_bin, x->ifname);
        case S_EXEC_TRUE:
                return do_apply(x, S_EXEC_TRUE);
        }
        return -EINVAL;
}

/* One untimed round: each apply must leave its mark, each revert remove it. */
static int sanity(struct ctx *x, const char *scratch)
{
        const char *const nft_list[] = {nft_bin, "list", "ruleset", NULL};
        const char *const tc_show[] = {tc_bin, "qdisc", "show", "dev", x->ifname, NULL};
        static const struct {
                int s;
                bool tc;
                const char *mark;
        } checks[] = {
            {S_FL_LOSS, false, "numgen random mod 10000 < 1000 drop"},
            {S_EXEC_LOSS, false, "numgen random mod 100 < 10 drop"},
            {S_EXEC_LOSS1, false, "numgen random mod 100 < 10 drop"},
            {S_FL_BW, true, "qdisc htb fa17: root"},
            {S_EXEC_BW, true, "qdisc tbf"},
            {S_EXEC_BWX, true, "qdisc htb 1: root"},
            {S_FLB_LOSS, false, "numgen random mod 10000 < 1000 drop"},
            {S_FLB_BW, true, "qdisc htb fa17: root"},
        };
        for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
                int s = checks[i].s;
                if (!active(s))
                        continue;
                const char *const *list = checks[i].tc ? tc_show : nft_list;
                int rv = do_apply(x, s);
                if (rv < 0)
                        return rv;
                int has = bench_output_has(list, checks[i].mark, scratch);
                if ((rv = do_revert(x, s)) < 0)
                        return rv;
                int left = bench_output_has(list, checks[i].mark, scratch);
                if (has != 1 || left != 0) {
                        fprintf(stderr,
                                "net_apply: sanity %s: mark \"%s\" %s after apply, %s "
                                "after revert\n",
                                s_name[s], checks[i].mark, has == 1 ? "present" : "ABSENT",
                                left == 0 ? "gone" : "STILL THERE");
                        return -EIO;
                }
        }
        /* The agent may leave an empty `inet faultline` table? Report it. */
        int table = bench_output_has(nft_list, "table inet faultline", scratch);
        if (table != 0)
                fprintf(stderr, "net_apply: note: `table inet faultline` present after revert\n");
        printf("sanity: every apply installed its rule/qdisc, every revert removed it\n");
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {{"agent", required_argument, NULL, 'a'},
                                             {"ifname", required_argument, NULL, 'i'},
                                             {"dst", required_argument, NULL, 'd'},
                                             {"state-parent", required_argument, NULL, 's'},
                                             {"port", required_argument, NULL, 'p'},
                                             {"count", required_argument, NULL, 'n'},
                                             {"tc", required_argument, NULL, 't'},
                                             {"nft", required_argument, NULL, 'f'},
                                             {"netns", required_argument, NULL, 'N'},
                                             {"agent-b", required_argument, NULL, 'B'},
                                             {0}};
        const char *agent = NULL, *parent = "/dev/shm", *ifname = NULL, *dst = NULL, *netns = NULL,
                   *agent_b = NULL;
        int port = 27310, c;
        long count = DEFAULT_COUNT;
        while ((c = getopt_long(argc, argv, "a:i:d:s:p:n:t:f:N:B:", opts, NULL)) != -1) {
                switch (c) {
                case 'a':
                        agent = optarg;
                        break;
                case 'i':
                        ifname = optarg;
                        break;
                case 'd':
                        dst = optarg;
                        break;
                case 's':
                        parent = optarg;
                        break;
                case 'p':
                        port = atoi(optarg);
                        break;
                case 'n':
                        count = atol(optarg);
                        break;
                case 't':
                        tc_bin = optarg;
                        break;
                case 'f':
                        nft_bin = optarg;
                        break;
                case 'N':
                        netns = optarg;
                        break;
                case 'B':
                        agent_b = optarg;
                        break;
                default:
                        return 2;
                }
        }
        if (!agent || !ifname || !dst || strlen(ifname) > 15 || strlen(dst) > 45 ||
            strspn(dst, "0123456789.") != strlen(dst) || count < 1 || count > MAX_COUNT ||
            port < 1024 || port > 65535) {
                fprintf(stderr, "usage: net_apply --netns NAME --agent PATH --ifname IF --dst IPV4 "
                                "[--state-parent DIR] [--port 1024-65535] [--count 1-100000] "
                                "[--tc PATH] [--nft PATH] [--agent-b PATH]\n");
                return 2;
        }
        if (!bench_in_netns(netns)) {
                fprintf(stderr, "net_apply: not running inside the network namespace --netns "
                                "names (/run/netns/NAME); refusing, so the host's interfaces "
                                "are never touched. Use bench/net_apply.sh (it makes one)\n");
                return 2;
        }
        bench_init();

        size_t n = (size_t)count;
        uint64_t *ap[S_N], *rv_[S_N], *sum[S_N], *hello = calloc(n, sizeof(uint64_t));
        for (int s = 0; s < S_N; s++) {
                ap[s] = calloc(n, sizeof(uint64_t));
                rv_[s] = calloc(n, sizeof(uint64_t));
                sum[s] = calloc(n, sizeof(uint64_t));
                if (!ap[s] || !rv_[s] || !sum[s])
                        return 4;
        }
        if (!hello)
                return 4;

        char state[512], logdir[512], logpath[600], scratch[600], nftfile[600], url[64];
        char state_b[512], logpath_b[600], url_b[64];
        have_b = agent_b != NULL;
        int rv;
        if ((rv = bench_mkdtemp(parent, "netstate", state, sizeof(state))) < 0 ||
            (rv = bench_mkdtemp("/dev/shm", "netlog", logdir, sizeof(logdir))) < 0) {
                fprintf(stderr, "net_apply: mkdtemp under %s: %s\n", parent, strerror(-rv));
                return 4;
        }
        snprintf(logpath, sizeof(logpath), "%s/agent.log", logdir);
        snprintf(scratch, sizeof(scratch), "%s/out.txt", logdir);
        snprintf(nftfile, sizeof(nftfile), "%s/loss.nft", logdir);
        snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
        snprintf(logpath_b, sizeof(logpath_b), "%s/agent-b.log", logdir);
        snprintf(url_b, sizeof(url_b), "tcp://127.0.0.1:%d", port + 1);
        if (have_b && (rv = bench_mkdtemp(parent, "netstate-b", state_b, sizeof(state_b))) < 0) {
                fprintf(stderr, "net_apply: mkdtemp under %s: %s\n", parent, strerror(-rv));
                return 4;
        }
        FILE *nf = fopen(nftfile, "we");
        if (!nf)
                return 4;
        fprintf(nf,
                "add table inet flbench\n"
                "add chain inet flbench out { type filter hook output priority 0; }\n"
                "add rule inet flbench out ip daddr %s numgen random mod 100 < 10 drop\n",
                dst);
        fclose(nf);

        pid_t agent_pid = 0;
        struct ctx x = {.ifname = ifname, .dst = dst, .nft_file = nftfile};
        if ((rv = bench_spawn_agent(agent, url, state, logpath, &agent_pid)) < 0 ||
            (rv = fl_conn_open(url, &x.conn)) < 0) {
                fprintf(stderr, "net_apply: setup: %s\n", strerror(-rv));
                return 4;
        }
        pid_t agent_b_pid = 0;
        if (have_b &&
            ((rv = bench_spawn_agent(agent_b, url_b, state_b, logpath_b, &agent_b_pid)) < 0 ||
             (rv = fl_conn_open(url_b, &x.conn_b)) < 0)) {
                fprintf(stderr, "net_apply: setup of agent-b: %s\n", strerror(-rv));
                fl_conn_close(x.conn);
                return 4;
        }
        int status = 0;
        if (bench_wait_agent(x.conn, 10000) < 0 ||
            (have_b && bench_wait_agent(x.conn_b, 10000) < 0)) {
                fprintf(stderr, "net_apply: agent on %s%s%s did not answer (logs: %s)\n", url,
                        have_b ? " or " : "", have_b ? url_b : "", logdir);
                status = 4;
                goto out;
        }
        if ((rv = sanity(&x, scratch)) < 0) {
                fprintf(stderr, "net_apply: sanity round failed: %s (agent log %s)\n",
                        strerror(-rv), logpath);
                status = 4;
                goto out;
        }
        for (int i = 0; i < WARMUP && !bench_stop_requested; i++)
                for (int s = 0; s < S_N; s++)
                        if (active(s) &&
                            ((rv = do_apply(&x, s)) < 0 || (rv = do_revert(&x, s)) < 0)) {
                                fprintf(stderr, "net_apply: warm-up %s: %s\n", s_name[s],
                                        strerror(-rv));
                                status = 4;
                                goto out;
                        }
        for (size_t i = 0; i < n && !bench_stop_requested; i++) {
                struct fl_request req = {.type = FL_MSG_HELLO};
                struct fl_reply rep;
                uint64_t t0 = bench_now_ns();
                rv = fl_conn_call(x.conn, &req, &rep, 5000);
                hello[i] = bench_now_ns() - t0;
                if (rv < 0 || rep.status != FL_ST_OK) {
                        if (rv == 0)
                                fl_reply_free(&rep);
                        fprintf(stderr, "net_apply: hello failed\n");
                        status = 4;
                        goto out;
                }
                fl_reply_free(&rep);
        }
        /* Side by side: every iteration runs every scenario once. */
        for (size_t i = 0; i < n && !bench_stop_requested; i++) {
                for (int s = 0; s < S_N; s++) {
                        if (!active(s))
                                continue;
                        uint64_t t0 = bench_now_ns();
                        rv = do_apply(&x, s);
                        uint64_t t1 = bench_now_ns();
                        if (rv == 0)
                                rv = do_revert(&x, s);
                        uint64_t t2 = bench_now_ns();
                        if (rv < 0) {
                                fprintf(stderr, "net_apply: iteration %zu %s: %s (agent log %s)\n",
                                        i, s_name[s], strerror(-rv), logpath);
                                status = 4;
                                goto out;
                        }
                        ap[s][i] = t1 - t0;
                        rv_[s][i] = t2 - t1;
                        sum[s][i] = t2 - t0;
                }
        }
        if (bench_stop_requested) {
                status = 3;
                goto out;
        }

        printf("net_apply: netns-local agent %s, state dir %s (%s), interface %s, dst %s, %zu "
               "iterations (+%d warm-up), times in us\n",
               url, state, fs_name(state), ifname, dst, n, WARMUP);
        if (have_b)
                printf("agent-b: %s on %s, state dir %s\n", agent_b, url_b, state_b);
        struct bench_stats st, sa[S_N], sr[S_N], ss[S_N];
        bench_stats_compute(hello, n, &st);
        bench_stats_print("hello round trip", &st);
        for (int s = 0; s < S_N; s++) {
                char label[64];
                if (!active(s))
                        continue;
                bench_stats_compute(ap[s], n, &sa[s]);
                bench_stats_compute(rv_[s], n, &sr[s]);
                bench_stats_compute(sum[s], n, &ss[s]);
                printf("-- %s\n", s_name[s]);
                snprintf(label, sizeof(label), "  apply%s", is_fl(s) ? "+verify" : "");
                bench_stats_print(label, &sa[s]);
                bench_stats_print("  revert", &sr[s]);
                bench_stats_print("  apply+revert", &ss[s]);
        }
        printf("ratio exec/faultline (apply+revert): loss nft x3 p50 %.1fx p99 %.1fx; "
               "loss nft -f p50 %.1fx p99 %.1fx; bandwidth tc p50 %.1fx p99 %.1fx\n",
               ss[S_EXEC_LOSS].p50_us / ss[S_FL_LOSS].p50_us,
               ss[S_EXEC_LOSS].p99_us / ss[S_FL_LOSS].p99_us,
               ss[S_EXEC_LOSS1].p50_us / ss[S_FL_LOSS].p50_us,
               ss[S_EXEC_LOSS1].p99_us / ss[S_FL_LOSS].p99_us,
               ss[S_EXEC_BW].p50_us / ss[S_FL_BW].p50_us,
               ss[S_EXEC_BW].p99_us / ss[S_FL_BW].p99_us);
        printf("ratio exec/faultline (apply+revert): bandwidth with the same exemptions "
               "(ChaosBlade-style tc sequence) p50 %.1fx p99 %.1fx\n",
               ss[S_EXEC_BWX].p50_us / ss[S_FL_BW].p50_us,
               ss[S_EXEC_BWX].p99_us / ss[S_FL_BW].p99_us);
        /* An apply+revert is two round trips (APPLY, REVERT); a HELLO is
         * one through the same client, transport and agent loop, doing
         * nothing. What is left is the agent's own work (journal, fault
         * hooks): bench/net_backend times the hooks alone. */
        printf("transport: 2 x HELLO p50 = %.0f us = %.0f%% of fl net-loss apply+revert p50 "
               "(%.0f us left), %.0f%% of fl net-bandwidth's (%.0f us left)\n",
               2 * st.p50_us, 100 * 2 * st.p50_us / ss[S_FL_LOSS].p50_us,
               ss[S_FL_LOSS].p50_us - 2 * st.p50_us, 100 * 2 * st.p50_us / ss[S_FL_BW].p50_us,
               ss[S_FL_BW].p50_us - 2 * st.p50_us);
        if (have_b)
                printf("ratio exec/agent-b (apply+revert): loss nft x3 p50 %.1fx p99 %.1fx; "
                       "loss nft -f p50 %.1fx p99 %.1fx; bandwidth tc p50 %.1fx p99 %.1fx\n",
                       ss[S_EXEC_LOSS].p50_us / ss[S_FLB_LOSS].p50_us,
                       ss[S_EXEC_LOSS].p99_us / ss[S_FLB_LOSS].p99_us,
                       ss[S_EXEC_LOSS1].p50_us / ss[S_FLB_LOSS].p50_us,
                       ss[S_EXEC_LOSS1].p99_us / ss[S_FLB_LOSS].p99_us,
                       ss[S_EXEC_BW].p50_us / ss[S_FLB_BW].p50_us,
                       ss[S_EXEC_BW].p99_us / ss[S_FLB_BW].p99_us);
out:
        fl_conn_close(x.conn);
        fl_conn_close(x.conn_b);
        bench_cleanup();
        /* Leave nothing behind even when an iteration failed half-way
         * (the namespace goes away anyway when run from net_apply.sh). */
        {
                const char *const a[] = {nft_bin, "delete", "table", "inet", "flbench", NULL};
                const char *const b[] = {tc_bin, "qdisc", "del", "dev", ifname, "root", NULL};
                bench_spawn_wait(a, NULL);
                bench_spawn_wait(b, NULL);
        }
        free(hello);
        for (int s = 0; s < S_N; s++) {
                free(ap[s]);
                free(rv_[s]);
                free(sum[s]);
        }
        return status;
}
