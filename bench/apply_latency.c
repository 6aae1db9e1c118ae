/* apply_latency: how long a process-pause APPLY takes from the request
 * leaving the client until the agent's acknowledgement is back, over
 * loopback tcp; the matching REVERT; a bare HELLO round trip for
 * comparison; and the cost of the journal's durable write on the state
 * directory's filesystem (what the agent does before every apply).
 *
 *   apply_latency --agent PATH [--state-parent DIR] [--port N] [--count N]
 *
 * Starts its own agent with a fresh state directory under --state-parent
 * (default /dev/shm), one /bin/sleep target, and stops/removes both at
 * the end. Each iteration: APPLY process-pause pid=<sleep> 60s (timed),
 * REVERT it (timed). Prints min/p50/p90/p99/max/mean in microseconds. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "bench_common.h"

#define DEFAULT_COUNT 1000
#define MAX_COUNT     100000
#define WARMUP        20

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

/* The journal's commit, reproduced: write a temp file, fsync it, rename
 * it over the entry, fsync the directory. And its removal: unlink, fsync
 * the directory. Timed separately, count times each. */
static int fs_commit_bench(const char *dir, size_t count, uint64_t *commit_ns, uint64_t *remove_ns)
{
        char tmp[600], path[600], blob[700];
        snprintf(tmp, sizeof(tmp), "%s/entry.json.tmp", dir);
        snprintf(path, sizeof(path), "%s/entry.json", dir);
        memset(blob, 'x', sizeof(blob)); /* about the size of a journal entry */
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        int rv = 0;
        for (size_t i = 0; i < count && !bench_stop_requested; i++) {
                uint64_t t0 = bench_now_ns();
                int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd < 0 || write(fd, blob, sizeof(blob)) != (ssize_t)sizeof(blob) ||
                    fsync(fd) < 0 || close(fd) < 0 || rename(tmp, path) < 0 || fsync(dfd) < 0) {
                        rv = -errno;
                        break;
                }
                uint64_t t1 = bench_now_ns();
                if (unlink(path) < 0 || fsync(dfd) < 0) {
                        rv = -errno;
                        break;
                }
                commit_ns[i] = t1 - t0;
                remove_ns[i] = bench_now_ns() - t1;
        }
        close(dfd);
        return rv;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {{"agent", required_argument, NULL, 'a'},
                                             {"state-parent", required_argument, NULL, 's'},
                                             {"port", required_argument, NULL, 'p'},
                                             {"count", required_argument, NULL, 'n'},
                                             {0}};
        const char *agent = NULL, *parent = "/dev/shm";
        int port = 27300, c;
        long count = DEFAULT_COUNT;
        while ((c = getopt_long(argc, argv, "a:s:p:n:", opts, NULL)) != -1) {
                switch (c) {
                case 'a':
                        agent = optarg;
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
                default:
                        return 2;
                }
        }
        if (!agent || count < 1 || count > MAX_COUNT || port < 1024 || port > 65535) {
                fprintf(stderr, "usage: apply_latency --agent PATH [--state-parent DIR] "
                                "[--port 1024-65535] [--count 1-100000]\n");
                return 2;
        }
        bench_init();

        size_t n = (size_t)count;
        uint64_t *hello = calloc(n, sizeof(*hello)), *apply = calloc(n, sizeof(*apply)),
                 *revert = calloc(n, sizeof(*revert)), *commit = calloc(n, sizeof(*commit)),
                 *remove_ = calloc(n, sizeof(*remove_));
        if (!hello || !apply || !revert || !commit || !remove_)
                return 4;

        char state[512], logdir[512], logpath[600], url[64];
        int rv;
        if ((rv = bench_mkdtemp(parent, "state", state, sizeof(state))) < 0 ||
            (rv = bench_mkdtemp("/dev/shm", "log", logdir, sizeof(logdir))) < 0) {
                fprintf(stderr, "apply_latency: mkdtemp under %s: %s\n", parent, strerror(-rv));
                return 4;
        }
        snprintf(logpath, sizeof(logpath), "%s/agent.log", logdir);
        snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);

        pid_t agent_pid = 0, target = 0;
        struct fl_conn *conn = NULL;
        if ((rv = bench_spawn_agent(agent, url, state, logpath, &agent_pid)) < 0 ||
            (rv = bench_spawn_sleep(&target)) < 0 || (rv = fl_conn_open(url, &conn)) < 0) {
                fprintf(stderr, "apply_latency: setup: %s\n", strerror(-rv));
                return 4;
        }
        if (bench_wait_agent(conn, 5000) < 0) {
                fprintf(stderr, "apply_latency: agent on %s did not answer (log: %s)\n", url,
                        logpath);
                fl_conn_close(conn);
                return 4;
        }

        const char *lease = "bench-apply-latency";
        char id[FL_ID_LEN];
        int status = 0;
        for (int i = 0; i < WARMUP && !bench_stop_requested; i++) {
                if ((rv = bench_apply_pause(conn, target, lease, 60000, 30000, id)) < 0 ||
                    (rv = bench_revert(conn, id)) < 0) {
                        fprintf(stderr, "apply_latency: warm-up: %s\n", strerror(-rv));
                        status = 4;
                        goto out;
                }
        }

        for (size_t i = 0; i < n && !bench_stop_requested; i++) {
                struct fl_request req = {.type = FL_MSG_HELLO};
                struct fl_reply rep;
                uint64_t t0 = bench_now_ns();
                rv = fl_conn_call(conn, &req, &rep, 5000);
                hello[i] = bench_now_ns() - t0;
                if (rv < 0 || rep.status != FL_ST_OK) {
                        fprintf(stderr, "apply_latency: hello: %s\n", strerror(rv < 0 ? -rv : EIO));
                        if (rv == 0)
                                fl_reply_free(&rep);
                        status = 4;
                        goto out;
                }
                fl_reply_free(&rep);
        }

        size_t slow_apply = 0;
        for (size_t i = 0; i < n && !bench_stop_requested; i++) {
                uint64_t t0 = bench_now_ns();
                rv = bench_apply_pause(conn, target, lease, 60000, 30000, id);
                uint64_t t1 = bench_now_ns();
                if (rv == 0)
                        rv = bench_revert(conn, id);
                uint64_t t2 = bench_now_ns();
                if (rv < 0) {
                        fprintf(stderr, "apply_latency: iteration %zu: %s\n", i, strerror(-rv));
                        status = 4;
                        goto out;
                }
                apply[i] = t1 - t0;
                revert[i] = t2 - t1;
                slow_apply += apply[i] >= 5000000u;
        }

        if ((rv = fs_commit_bench(state, n, commit, remove_)) < 0) {
                fprintf(stderr, "apply_latency: fs commit bench: %s\n", strerror(-rv));
                status = 4;
                goto out;
        }
        if (bench_stop_requested) {
                status = 3;
                goto out;
        }

        struct bench_stats s;
        printf("apply_latency: state dir %s (%s), agent %s, target pid %d, %zu iterations\n", state,
               fs_name(state), url, (int)target, n);
        bench_stats_compute(hello, n, &s);
        bench_stats_print("hello round trip", &s);
        bench_stats_compute(apply, n, &s);
        bench_stats_print("apply process-pause", &s);
        bench_stats_compute(revert, n, &s);
        bench_stats_print("revert process-pause", &s);
        bench_stats_compute(commit, n, &s);
        bench_stats_print("fs: write+fsync+rename+fsync", &s);
        bench_stats_compute(remove_, n, &s);
        bench_stats_print("fs: unlink+fsync(dir)", &s);
        printf("applies >= 5 ms: %zu of %zu\n", slow_apply, n);
out:
        fl_conn_close(conn);
        bench_cleanup();
        free(hello);
        free(apply);
        free(revert);
        free(commit);
        free(remove_);
        return status;
}
