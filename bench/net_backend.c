/* net_backend: the agent's network-fault backends timed in-process, side
 * by side with the exec path other tools use. The like-for-like half of
 * docs/BENCHMARKS.md "Network faults", figure 1: bench/net_apply times
 * the same faults through a client and the agent (RPC and journal
 * included); `tc` and `nft` have no RPC, so here faultline has none
 * either.
 *
 *   net_backend --netns NAME --ifname IF --dst ADDR [--count N]
 *               [--control-port N] [--tc PATH] [--nft PATH] [--only LIST]
 *
 * MUST run inside a network namespace made for it (bench/net_backend.sh
 * makes two, joined by a veth pair, and runs this in the first): it
 * refuses to run anywhere but in the namespace --netns names, so the
 * host's interfaces are never touched.
 *
 * The faults are driven through the fault registry exactly as the agent's
 * APPLY/REVERT handlers drive them (agent/core.c), minus the journal:
 * validate (untimed), then timed "apply" = prepare + apply + verify, and
 * timed "revert"; a fresh fault (new id, new undo record) every time.
 * The exemption policy is the agent's default one: the control port
 * (--control-port, default 27310) and ssh (22).
 *
 * One iteration runs, in this order, an apply and then a revert of each:
 *   fl-loss    net-loss percent=10 dst=ADDR backend=nftables
 *   exec-loss  nft add table inet flbench; nft add chain inet flbench out
 *              { type filter hook output priority 0; }; nft add rule inet
 *              flbench out ip daddr ADDR numgen random mod 100 < 10 drop
 *              (3 processes) / nft delete table inet flbench
 *   fl-bw      net-bandwidth rate=1mbit interface=IF
 *   exec-bw    tc qdisc add dev IF root tbf rate 1mbit burst 32kbit
 *              latency 400ms / tc qdisc del dev IF root (chaosd's
 *              whole-interface cap: ssh and the control port shaped too)
 *   exec-bwx   the same cap with faultline's exemptions (ssh, the control
 *              port), run as ChaosBlade runs tc with --exclude-port (each
 *              step via sh -c, && chains): htb root + capped default
 *              class + 4 u32 filters (ChaosBlade's prio root needs
 *              sch_prio, which this kernel lacks; bench_common.h) /
 *              filter show, filter del, qdisc del
 *   floor      /bin/true / /bin/true: one posix_spawn+wait
 * One untimed round first checks with nft/tc that every apply installed
 * its rule or qdisc and every revert removed it; 20 warm-up iterations,
 * then --count timed ones (default 1000). Microseconds, nearest-rank
 * percentiles, and the exec/faultline ratios of apply+revert. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "fault.h"
#include "faults/net.h"
#include "fl_util.h"

#define DEFAULT_COUNT 1000
#define MAX_COUNT     100000
#define WARMUP        20
#define MAX_KV        4

static const char *tc_bin = "tc", *nft_bin = "nft";

enum { S_FL_LOSS, S_EXEC_LOSS, S_FL_BW, S_EXEC_BW, S_EXEC_BWX, S_EXEC_TRUE, S_N };
static const char *const s_name[S_N] = {
    "fl net-loss (nftables)",
    "exec nft x3 (loss)",
    "fl net-bandwidth (htb)",
    "exec tc tbf (no exemptions)",
    "exec tc htb+class+4 filters, ChaosBlade-style (same exemptions)",
    "exec /bin/true (spawn floor)"};
/* --only: scenarios to run (default all), by these short names. */
static const char *const s_short[S_N] = {"fl-loss", "exec-loss", "fl-bw",
                                         "exec-bw", "exec-bwx",  "floor"};
static bool s_on[S_N] = {true, true, true, true, true, true};

static int parse_only(const char *list)
{
        for (int s = 0; s < S_N; s++)
                s_on[s] = false;
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", list);
        char *save = NULL;
        for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int s = 0;
                while (s < S_N && strcmp(t, s_short[s]) != 0)
                        s++;
                if (s == S_N)
                        return -EINVAL;
                s_on[s] = true;
        }
        return 0;
}

static bool is_fl(int s)
{
        return s == S_FL_LOSS || s == S_FL_BW;
}

struct ctx {
        const char *ifname, *dst;
        unsigned control_port;     /* exempted, by faultline and by exec-bwx */
        unsigned long seq;         /* fault ids */
        struct agent_fault f;      /* the fault between apply and revert */
        struct fl_param p[MAX_KV]; /* its params */
        uint64_t hook_ns[3];       /* last fault_apply: prepare, apply, verify */
};

/* validate() a new fault of kind with params kv: like agent/core.c's
 * APPLY up to prepare. */
static int fault_new(struct ctx *x, const char *kind, const char *const kv[], size_t n)
{
        char err[FL_MSG_LEN] = "";
        memset(&x->f, 0, sizeof(x->f));
        x->f.ops = agent_fault_lookup(kind);
        if (!x->f.ops || n > MAX_KV)
                return -EINVAL;
        snprintf(x->f.id, sizeof(x->f.id), "f-bench%lu", x->seq++);
        for (size_t i = 0; i < n; i++) {
                const char *eq = strchr(kv[i], '=');
                snprintf(x->p[i].key, sizeof(x->p[i].key), "%.*s", (int)(eq - kv[i]), kv[i]);
                snprintf(x->p[i].value, sizeof(x->p[i].value), "%s", eq + 1);
        }
        x->f.params = x->p;
        x->f.n_params = n;
        x->f.duration_ms = 60000;
        int rv = x->f.ops->validate(&x->f, err, sizeof(err));
        if (rv < 0)
                fprintf(stderr, "net_backend: %s validate: %s\n", kind, err);
        else if (!(x->f.undo = json_object()))
                rv = -ENOMEM;
        return rv;
}

static void fault_free(struct ctx *x)
{
        if (x->f.ops && x->f.ops->destroy)
                x->f.ops->destroy(&x->f);
        json_decref(x->f.undo);
        memset(&x->f, 0, sizeof(x->f));
}

/* The timed part of an APPLY: prepare, apply, verify (a failed apply or
 * verify is reverted, as the agent does). */
static int fault_apply(struct ctx *x)
{
        char err[FL_MSG_LEN] = "", rerr[FL_MSG_LEN];
        const char *step = "prepare";
        uint64_t t0 = bench_now_ns(), t1, t2;
        int rv = x->f.ops->prepare(&x->f, err, sizeof(err));
        t1 = t2 = bench_now_ns();
        if (rv == 0) {
                step = "apply";
                rv = x->f.ops->apply(&x->f, err, sizeof(err));
                t2 = bench_now_ns();
        }
        if (rv == 0 && x->f.ops->verify) {
                step = "verify";
                rv = x->f.ops->verify(&x->f, err, sizeof(err));
        }
        x->hook_ns[0] = t1 - t0;
        x->hook_ns[1] = t2 - t1;
        x->hook_ns[2] = bench_now_ns() - t2;
        if (rv < 0) {
                fprintf(stderr, "net_backend: %s %s: %s\n", x->f.ops->kind, step, err);
                if (strcmp(step, "prepare") != 0)
                        x->f.ops->revert(&x->f, rerr, sizeof(rerr));
        }
        return rv;
}

static int fault_revert(struct ctx *x)
{
        char err[FL_MSG_LEN] = "";
        int rv = x->f.ops->revert(&x->f, err, sizeof(err));
        if (rv < 0)
                fprintf(stderr, "net_backend: %s revert: %s\n", x->f.ops->kind, err);
        return rv;
}

/* Untimed: a fresh, validated fault for scenario s. */
static int setup(struct ctx *x, int s)
{
        char kv1[96];
        if (s == S_FL_LOSS) {
                snprintf(kv1, sizeof(kv1), "dst=%s", x->dst);
                const char *const kv[] = {"percent=10", kv1, "backend=nftables"};
                return fault_new(x, "net-loss", kv, 3);
        }
        if (s == S_FL_BW) {
                snprintf(kv1, sizeof(kv1), "interface=%s", x->ifname);
                const char *const kv[] = {"rate=1mbit", kv1};
                return fault_new(x, "net-bandwidth", kv, 2);
        }
        return 0;
}

static int do_apply(struct ctx *x, int s)
{
        switch (s) {
        case S_FL_LOSS:
        case S_FL_BW:
                return fault_apply(x);
        case S_EXEC_LOSS:
                return bench_exec_loss_apply("net_backend", nft_bin, x->dst);
        case S_EXEC_BW:
                return bench_exec_bw_apply("net_backend", tc_bin, x->ifname);
        case S_EXEC_BWX:
                return bench_exec_bw_exempt_apply("net_backend", tc_bin, x->ifname,
                                                  x->control_port);
        case S_EXEC_TRUE:
                return bench_exec_true("net_backend");
        }
        return -EINVAL;
}

static int do_revert(struct ctx *x, int s)
{
        switch (s) {
        case S_FL_LOSS:
        case S_FL_BW:
                return fault_revert(x);
        case S_EXEC_LOSS:
                return bench_exec_loss_revert("net_backend", nft_bin);
        case S_EXEC_BW:
                return bench_exec_bw_revert("net_backend", tc_bin, x->ifname);
        case S_EXEC_BWX:
                return bench_exec_bw_exempt_revert("net_backend", tc_bin, x->ifname);
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
        const char *const tc_filters[] = {tc_bin, "filter", "show", "dev", x->ifname, NULL};
        static const struct {
                int s;
                int list; /* 0 nft ruleset, 1 tc qdiscs, 2 tc filters */
                const char *mark;
        } checks[] = {
            {S_FL_LOSS, 0, "numgen random mod 10000 < 1000 drop"},
            {S_EXEC_LOSS, 0, "numgen random mod 100 < 10 drop"},
            {S_FL_BW, 1, "qdisc htb fa17: root"},
            {S_FL_BW, 2, "flowid fa17:1"},
            {S_EXEC_BW, 1, "qdisc tbf"},
            {S_EXEC_BWX, 1, "qdisc htb 1: root"},
            {S_EXEC_BWX, 2, "match 00000016/0000ffff at 20"},
        };
        const char *const *lists[] = {nft_list, tc_show, tc_filters};
        for (size_t i = 0; i < FL_ARRAY_SIZE(checks); i++) {
                int s = checks[i].s, rv;
                if (!s_on[s])
                        continue;
                const char *const *list = lists[checks[i].list];
                if ((rv = setup(x, s)) < 0 || (rv = do_apply(x, s)) < 0)
                        return rv;
                int has = bench_output_has(list, checks[i].mark, scratch);
                rv = do_revert(x, s);
                if (is_fl(s))
                        fault_free(x);
                if (rv < 0)
                        return rv;
                int left = bench_output_has(list, checks[i].mark, scratch);
                if (has != 1 || left != 0) {
                        fprintf(stderr,
                                "net_backend: sanity %s: mark \"%s\" %s after apply, %s after "
                                "revert\n",
                                s_name[s], checks[i].mark, has == 1 ? "present" : "ABSENT",
                                left == 0 ? "gone" : "STILL THERE");
                        return -EIO;
                }
        }
        printf("sanity: every apply installed its rule/qdisc, every revert removed it\n");
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {{"ifname", required_argument, NULL, 'i'},
                                             {"dst", required_argument, NULL, 'd'},
                                             {"count", required_argument, NULL, 'n'},
                                             {"control-port", required_argument, NULL, 'p'},
                                             {"tc", required_argument, NULL, 't'},
                                             {"nft", required_argument, NULL, 'f'},
                                             {"netns", required_argument, NULL, 'N'},
                                             {"only", required_argument, NULL, 'o'},
                                             {0}};
        const char *ifname = NULL, *dst = NULL, *netns = NULL;
        long count = DEFAULT_COUNT, port = 27310;
        int c;
        while ((c = getopt_long(argc, argv, "i:d:n:p:t:f:N:o:", opts, NULL)) != -1) {
                switch (c) {
                case 'o':
                        if (parse_only(optarg) < 0) {
                                fprintf(stderr,
                                        "net_backend: --only %s: expected a comma-separated list "
                                        "of fl-loss, exec-loss, fl-bw, exec-bw, exec-bwx, floor\n",
                                        optarg);
                                return 2;
                        }
                        break;
                case 'i':
                        ifname = optarg;
                        break;
                case 'd':
                        dst = optarg;
                        break;
                case 'n':
                        count = atol(optarg);
                        break;
                case 'p':
                        port = atol(optarg);
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
                default:
                        return 2;
                }
        }
        if (!ifname || !dst || strlen(ifname) > 15 || strlen(dst) > 45 ||
            strspn(dst, "0123456789.") != strlen(dst) || count < 1 || count > MAX_COUNT ||
            port < 1 || port > 65535) {
                fprintf(stderr, "usage: net_backend --netns NAME --ifname IF --dst IPV4 "
                                "[--count 1-100000] [--control-port N] [--tc PATH] [--nft PATH] "
                                "[--only fl-loss,exec-loss,fl-bw,exec-bw,exec-bwx,floor]\n");
                return 2;
        }
        if (!bench_in_netns(netns)) {
                fprintf(stderr, "net_backend: not running inside the network namespace --netns "
                                "names (/run/netns/NAME); refusing, so the host's interfaces "
                                "are never touched. Use bench/net_backend.sh (it makes one)\n");
                return 2;
        }
        bench_init();
        struct agent_net_policy np = {.control_port = (uint16_t)port, .ports = {22}, .n_ports = 1};
        agent_net_policy_set(&np);
        static const char *const kinds[] = {"net-loss", "net-bandwidth"};
        for (size_t i = 0; i < FL_ARRAY_SIZE(kinds); i++) {
                const struct fault_ops *ops = agent_fault_lookup(kinds[i]);
                const char *why = ops && ops->supported ? ops->supported() : NULL;
                if (!ops || why) {
                        fprintf(stderr, "net_backend: %s unsupported here: %s\n", kinds[i],
                                why ? why : "unknown kind");
                        return 3;
                }
        }

        size_t n = (size_t)count;
        uint64_t *ap[S_N], *rv_[S_N], *sum[S_N], *hook[S_N][3] = {{NULL}};
        for (int s = 0; s < S_N; s++) {
                ap[s] = calloc(n, sizeof(uint64_t));
                rv_[s] = calloc(n, sizeof(uint64_t));
                sum[s] = calloc(n, sizeof(uint64_t));
                if (!ap[s] || !rv_[s] || !sum[s])
                        return 4;
                for (int k = 0; k < 3 && is_fl(s); k++)
                        if (!(hook[s][k] = calloc(n, sizeof(uint64_t))))
                                return 4;
        }
        char logdir[512], scratch[600];
        int rv = bench_mkdtemp("/dev/shm", "netbackend", logdir, sizeof(logdir));
        if (rv < 0) {
                fprintf(stderr, "net_backend: mkdtemp: %s\n", strerror(-rv));
                return 4;
        }
        snprintf(scratch, sizeof(scratch), "%s/out.txt", logdir);
        struct ctx x = {.ifname = ifname, .dst = dst, .control_port = (unsigned)port};
        int status = 0;
        if ((rv = sanity(&x, scratch)) < 0) {
                fprintf(stderr, "net_backend: sanity round failed: %s\n", strerror(-rv));
                status = 4;
                goto out;
        }
        /* Side by side: every iteration runs every scenario once. */
        for (size_t i = 0; i < n + WARMUP && !bench_stop_requested; i++) {
                for (int s = 0; s < S_N; s++) {
                        if (!s_on[s])
                                continue;
                        if ((rv = setup(&x, s)) < 0) {
                                status = 4;
                                goto out;
                        }
                        uint64_t t0 = bench_now_ns();
                        rv = do_apply(&x, s);
                        uint64_t t1 = bench_now_ns();
                        if (rv == 0)
                                rv = do_revert(&x, s);
                        uint64_t t2 = bench_now_ns();
                        if (is_fl(s))
                                fault_free(&x);
                        if (rv < 0) {
                                fprintf(stderr, "net_backend: iteration %zu %s: %s\n", i, s_name[s],
                                        strerror(-rv));
                                status = 4;
                                goto out;
                        }
                        if (i < WARMUP)
                                continue;
                        ap[s][i - WARMUP] = t1 - t0;
                        rv_[s][i - WARMUP] = t2 - t1;
                        sum[s][i - WARMUP] = t2 - t0;
                        for (int k = 0; k < 3 && is_fl(s); k++)
                                hook[s][k][i - WARMUP] = x.hook_ns[k];
                }
        }
        if (bench_stop_requested) {
                status = 3;
                goto out;
        }

        printf("net_backend: in-process fault hooks vs exec, interface %s, dst %s, %zu "
               "iterations (+%d warm-up), times in us\n",
               ifname, dst, n, WARMUP);
        struct bench_stats sa[S_N], sr[S_N], ss[S_N];
        for (int s = 0; s < S_N; s++) {
                if (!s_on[s])
                        continue;
                bench_stats_compute(ap[s], n, &sa[s]);
                bench_stats_compute(rv_[s], n, &sr[s]);
                bench_stats_compute(sum[s], n, &ss[s]);
                printf("-- %s\n", s_name[s]);
                bench_stats_print(is_fl(s) ? "  prepare+apply+verify" : "  apply", &sa[s]);
                static const char *const hook_name[3] = {
                    "    of which prepare", "    of which apply", "    of which verify"};
                for (int k = 0; k < 3 && is_fl(s); k++) {
                        struct bench_stats hs;
                        bench_stats_compute(hook[s][k], n, &hs);
                        bench_stats_print(hook_name[k], &hs);
                }
                bench_stats_print("  revert", &sr[s]);
                bench_stats_print("  apply+revert", &ss[s]);
        }
        static const struct {
                int exec, fl;
                const char *what;
        } ratios[] = {{S_EXEC_LOSS, S_FL_LOSS, "loss vs nft x3"},
                      {S_EXEC_BW, S_FL_BW, "bandwidth vs tc tbf (no exemptions)"},
                      {S_EXEC_BWX, S_FL_BW,
                       "bandwidth vs the same exemptions (ChaosBlade-style tc sequence)"}};
        for (size_t i = 0; i < FL_ARRAY_SIZE(ratios); i++) {
                int e = ratios[i].exec, f = ratios[i].fl;
                if (s_on[e] && s_on[f])
                        printf("ratio exec/faultline (apply+revert): %s p50 %.1fx p99 %.1fx\n",
                               ratios[i].what, ss[e].p50_us / ss[f].p50_us,
                               ss[e].p99_us / ss[f].p99_us);
        }
out:
        /* Leave nothing behind even when an iteration failed half-way
         * (the namespace goes away anyway when run from net_backend.sh). */
        if (x.f.ops) {
                char err[FL_MSG_LEN];
                x.f.ops->revert(&x.f, err, sizeof(err));
                fault_free(&x);
        }
        {
                const char *const a[] = {nft_bin, "delete", "table", "inet", "flbench", NULL};
                const char *const b[] = {tc_bin, "qdisc", "del", "dev", ifname, "root", NULL};
                bench_spawn_wait(a, NULL);
                bench_spawn_wait(b, NULL);
        }
        bench_cleanup();
        for (int s = 0; s < S_N; s++) {
                free(ap[s]);
                free(rv_[s]);
                free(sum[s]);
                for (int k = 0; k < 3; k++)
                        free(hook[s][k]);
        }
        return status;
}
