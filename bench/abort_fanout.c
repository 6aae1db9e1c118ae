/* abort_fanout: time from an ABORT broadcast until every one of N agents
 * has reverted its fault and acknowledged, over loopback tcp.
 *
 *   abort_fanout --agent PATH --agents N [--rounds R] [--state-parent DIR]
 *                [--base-port P] [--cli PATH] [--cli-runs K]
 *
 * Starts N agents (ports P..P+N-1, one state directory each under
 * --state-parent, default /dev/shm) and N /bin/sleep targets. Each round
 * applies one process-pause on every agent (agent i pauses target i), then
 * times fl_conn_call_many(ABORT) to all of them and checks that every
 * agent answered ok with exactly one fault reverted. With --cli, also
 * times the real "faultline -i INVENTORY abort" K times (faults applied
 * before each run) as wall time of the whole process. Everything the bench
 * started is stopped and removed at the end, also on failure. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"

#define MAX_AGENTS   120
#define MAX_ROUNDS   10000
#define MAX_CLI_RUNS 100
#define BENCH_LEASE  "bench-abort-fanout"

struct fleet {
        size_t n;
        pid_t agent[MAX_AGENTS];
        pid_t target[MAX_AGENTS];
        struct fl_conn *conn[MAX_AGENTS];
        char url[MAX_AGENTS][64];
};

/* One process-pause on every agent. 0 or -errno. */
static int apply_all(struct fleet *f)
{
        for (size_t i = 0; i < f->n; i++) {
                char id[FL_ID_LEN];
                int rv = bench_apply_pause(f->conn[i], f->target[i], BENCH_LEASE, 60000, 30000, id);
                if (rv < 0) {
                        fprintf(stderr, "abort_fanout: apply on %s: %s\n", f->url[i],
                                strerror(-rv));
                        return rv;
                }
        }
        return 0;
}

/* Broadcast ABORT, check every answer. Returns elapsed ns, or 0 when an
 * agent did not confirm exactly one revert. */
static uint64_t abort_all(struct fleet *f, struct fl_reply *replies, int *rcs)
{
        struct fl_request req = {.type = FL_MSG_ABORT};
        snprintf(req.requester, sizeof(req.requester), "bench");
        uint64_t t0 = bench_now_ns();
        fl_conn_call_many(f->conn, f->n, &req, replies, rcs, 5000);
        uint64_t dt = bench_now_ns() - t0;
        bool ok = true;
        for (size_t i = 0; i < f->n; i++) {
                if (rcs[i] < 0) {
                        fprintf(stderr, "abort_fanout: abort on %s: %s\n", f->url[i],
                                strerror(-rcs[i]));
                        ok = false;
                        continue;
                }
                if (replies[i].status != FL_ST_OK || replies[i].count != 1) {
                        fprintf(stderr, "abort_fanout: abort on %s: %s, %u reverted: %s\n",
                                f->url[i], fl_status_name(replies[i].status), replies[i].count,
                                replies[i].msg);
                        ok = false;
                }
                fl_reply_free(&replies[i]);
        }
        return ok ? (dt ? dt : 1) : 0;
}

static int write_inventory(const struct fleet *f, const char *path)
{
        FILE *fp = fopen(path, "w");
        if (!fp)
                return -errno;
        fprintf(fp, "agents:\n");
        for (size_t i = 0; i < f->n; i++)
                fprintf(fp, "  - name: bench-%03zu\n    address: %s\n", i, f->url[i]);
        return fclose(fp) == 0 ? 0 : -errno;
}

static void print_last_line(const char *path)
{
        FILE *fp = fopen(path, "r");
        if (!fp)
                return;
        char line[512], last[512] = "";
        while (fgets(line, sizeof(line), fp))
                snprintf(last, sizeof(last), "%s", line);
        fclose(fp);
        printf("  cli said: %s", last[0] ? last : "(nothing)\n");
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {{"agent", required_argument, NULL, 'a'},
                                             {"agents", required_argument, NULL, 'n'},
                                             {"rounds", required_argument, NULL, 'r'},
                                             {"state-parent", required_argument, NULL, 's'},
                                             {"base-port", required_argument, NULL, 'p'},
                                             {"cli", required_argument, NULL, 'c'},
                                             {"cli-runs", required_argument, NULL, 'k'},
                                             {0}};
        const char *agent = NULL, *parent = "/dev/shm", *cli = NULL;
        long n_agents = 20, rounds = 100, cli_runs = 5;
        int base_port = 27400, c;
        while ((c = getopt_long(argc, argv, "a:n:r:s:p:c:k:", opts, NULL)) != -1) {
                switch (c) {
                case 'a':
                        agent = optarg;
                        break;
                case 'n':
                        n_agents = atol(optarg);
                        break;
                case 'r':
                        rounds = atol(optarg);
                        break;
                case 's':
                        parent = optarg;
                        break;
                case 'p':
                        base_port = atoi(optarg);
                        break;
                case 'c':
                        cli = optarg;
                        break;
                case 'k':
                        cli_runs = atol(optarg);
                        break;
                default:
                        return 2;
                }
        }
        if (!agent || n_agents < 1 || n_agents > MAX_AGENTS || rounds < 1 || rounds > MAX_ROUNDS ||
            cli_runs < 1 || cli_runs > MAX_CLI_RUNS || base_port < 1024 ||
            base_port + n_agents > 65535) {
                fprintf(stderr,
                        "usage: abort_fanout --agent PATH --agents 1-%d [--rounds 1-%d] "
                        "[--state-parent DIR] [--base-port P] [--cli PATH] "
                        "[--cli-runs 1-%d]\n",
                        MAX_AGENTS, MAX_ROUNDS, MAX_CLI_RUNS);
                return 2;
        }
        bench_init();

        static struct fleet f;
        f.n = (size_t)n_agents;
        uint64_t *lat = calloc((size_t)rounds, sizeof(*lat));
        uint64_t *cli_ns = calloc((size_t)cli_runs, sizeof(*cli_ns));
        struct fl_reply *replies = calloc(f.n, sizeof(*replies));
        int *rcs = calloc(f.n, sizeof(*rcs));
        if (!lat || !cli_ns || !replies || !rcs)
                return 4;

        int status = 0, rv;
        char logdir[512];
        if ((rv = bench_mkdtemp("/dev/shm", "log", logdir, sizeof(logdir))) < 0) {
                fprintf(stderr, "abort_fanout: mkdtemp: %s\n", strerror(-rv));
                return 4;
        }
        for (size_t i = 0; i < f.n; i++) {
                char state[512], logpath[600];
                snprintf(f.url[i], sizeof(f.url[i]), "tcp://127.0.0.1:%d", base_port + (int)i);
                snprintf(logpath, sizeof(logpath), "%s/agent-%03zu.log", logdir, i);
                if ((rv = bench_mkdtemp(parent, "state", state, sizeof(state))) < 0 ||
                    (rv = bench_spawn_agent(agent, f.url[i], state, logpath, &f.agent[i])) < 0 ||
                    (rv = bench_spawn_sleep(&f.target[i])) < 0 ||
                    (rv = fl_conn_open(f.url[i], &f.conn[i])) < 0) {
                        fprintf(stderr, "abort_fanout: setup of agent %zu: %s\n", i, strerror(-rv));
                        status = 4;
                        goto out;
                }
        }
        for (size_t i = 0; i < f.n; i++) {
                if (bench_wait_agent(f.conn[i], 10000) < 0) {
                        fprintf(stderr, "abort_fanout: agent %s did not answer (logs in %s)\n",
                                f.url[i], logdir);
                        status = 4;
                        goto out;
                }
        }

        /* Warm-up: a few untimed rounds. */
        for (int w = 0; w < 3 && !bench_stop_requested; w++) {
                if (apply_all(&f) < 0 || abort_all(&f, replies, rcs) == 0) {
                        status = 4;
                        goto out;
                }
        }
        size_t done = 0;
        for (; done < (size_t)rounds && !bench_stop_requested; done++) {
                if (apply_all(&f) < 0 || (lat[done] = abort_all(&f, replies, rcs)) == 0) {
                        fprintf(stderr, "abort_fanout: round %zu failed\n", done);
                        status = 4;
                        goto out;
                }
        }
        if (bench_stop_requested) {
                status = 3;
                goto out;
        }

        struct bench_stats s;
        char label[64];
        printf("abort_fanout: %zu agents on 127.0.0.1:%d-%d, state dirs under %s, %zu rounds\n",
               f.n, base_port, base_port + (int)f.n - 1, parent, done);
        snprintf(label, sizeof(label), "abort x%zu (call_many)", f.n);
        bench_stats_compute(lat, done, &s);
        bench_stats_print(label, &s);

        if (cli) {
                char inv[600], out[600];
                snprintf(inv, sizeof(inv), "%s/inventory.yaml", logdir);
                snprintf(out, sizeof(out), "%s/cli.out", logdir);
                if ((rv = write_inventory(&f, inv)) < 0) {
                        fprintf(stderr, "abort_fanout: inventory: %s\n", strerror(-rv));
                        status = 4;
                        goto out;
                }
                const char *cargv[] = {cli, "-i", inv, "-q", "abort", NULL};
                for (long k = 0; k < cli_runs && !bench_stop_requested; k++) {
                        if (apply_all(&f) < 0) {
                                status = 4;
                                goto out;
                        }
                        unlink(out);
                        uint64_t t0 = bench_now_ns();
                        rv = bench_run(cargv, out, 30000);
                        cli_ns[k] = bench_now_ns() - t0;
                        if (rv != 0) {
                                fprintf(stderr, "abort_fanout: %s -i %s abort: exit %d\n", cli, inv,
                                        rv);
                                status = 4;
                                goto out;
                        }
                        if (k == 0)
                                print_last_line(out);
                }
                snprintf(label, sizeof(label), "cli abort x%zu (wall)", f.n);
                bench_stats_compute(cli_ns, (size_t)cli_runs, &s);
                bench_stats_print(label, &s);
        }
out:
        for (size_t i = 0; i < f.n; i++)
                fl_conn_close(f.conn[i]);
        bench_cleanup();
        free(lat);
        free(cli_ns);
        free(replies);
        free(rcs);
        return status;
}
