/* kill_tree: kill a 100-process tree in a cgroup until every process is
 * reaped, N rounds, three ways interleaved in the same run (issue 5,
 * bench/kill_tree.sh):
 *
 *   faultline  APPLY process-kill cgroup=REL signal=KILL to a running agent
 *              (cgroup.kill on v2, pidfds on v1); the ack comes after the
 *              agent's verify() saw every process exit
 *   loop       /bin/sh -c 'for p in $(cat DIR/cgroup.procs); do /bin/kill -9 $p; done'
 *              — one kill(1) exec per process, as chaos tools do
 *   single     one /bin/kill -9 PID1 ... PID100 exec (pids read from
 *              DIR/cgroup.procs inside the timed window)
 *   syscall    the floor: this program reads DIR/cgroup.procs and kill(2)s
 *              each pid itself — no exec, no agent, no pid-reuse safety
 *
 * The tree: this program (a child subreaper, outside the cgroup) forks a
 * root that joins DIR and forks PROCS-1 sleepers (each execs /bin/sleep). Killing the root
 * reparents the sleepers to this program, so it reaps all PROCS itself and
 * timestamps the last reap: "reaped" is the time from the start of the
 * kill to the last of the PROCS processes reaped; "ack" the time to the
 * agent's reply (faultline) or to the exit of the kill command (others).
 *
 *   kill_tree --dir DIR --rel REL --url URL [--procs 100] [--runs 200]
 *             [--methods faultline,loop,single,syscall]
 *
 * Prints one line per round and method ("method=... run=... ack_us=...
 * reaped_us=...") and then a summary table (p50/p99/max). Sleepers carry
 * no PDEATHSIG (it would kill them with the root and falsify the figure);
 * bench/kill_tree.sh empties the cgroup on any exit. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"
#include "fl_transport.h"
#include "fl_wire.h"

extern char **environ;

#define MAX_PROCS   1000
#define MAX_RUNS    2000
#define ROUND_MS    10000 /* a round that has not reaped everything by then fails */
#define SETTLE_MS   20    /* between building a tree and killing it */
#define KILL_DUR_MS 10000 /* the fault's duration (reverted right after the ack) */

enum method { M_FAULTLINE, M_LOOP, M_SINGLE, M_SYSCALL, M_N };
static const char *const method_names[M_N] = {"faultline", "loop", "single", "syscall"};

/* --- the reaper ---------------------------------------------------------- */

struct reaper {
        const pid_t *tree; /* the PROCS pids of this round */
        int n_tree;
        int extra; /* other children to reap (the kill command) */
        uint64_t last_tree_ns, extra_ns;
        int reaped_tree, reaped_extra;
        int err;
};

static bool in_tree(const struct reaper *r, pid_t pid)
{
        for (int i = 0; i < r->n_tree; i++)
                if (r->tree[i] == pid)
                        return true;
        return false;
}

/* Reap every child (and orphan handed to us as subreaper) until the whole
 * tree and the expected extra children are gone. */
static void *reaper_main(void *arg)
{
        struct reaper *r = arg;
        while (r->reaped_tree < r->n_tree || r->reaped_extra < r->extra) {
                siginfo_t si = {0};
                if (waitid(P_ALL, 0, &si, WEXITED) < 0) {
                        if (errno == EINTR)
                                continue;
                        r->err = errno;
                        return NULL;
                }
                uint64_t t = bench_now_ns();
                if (in_tree(r, si.si_pid)) {
                        r->reaped_tree++;
                        r->last_tree_ns = t;
                } else {
                        r->reaped_extra++;
                        r->extra_ns = t;
                }
        }
        return NULL;
}

/* --- the tree -------------------------------------------------------------- */

static int write_file(const char *path, const char *text)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = write(fd, text, strlen(text));
        int e = n < 0 ? -errno : 0;
        close(fd);
        return e;
}

/* pids in DIR/cgroup.procs, at most max. */
static int read_procs(const char *dir, pid_t *out, int max)
{
        char path[4200];
        snprintf(path, sizeof path, "%s/cgroup.procs", dir);
        FILE *f = fopen(path, "re");
        if (!f)
                return -errno;
        int n = 0;
        long v;
        while (n < max && fscanf(f, "%ld", &v) == 1)
                out[n++] = (pid_t)v;
        fclose(f);
        return n;
}

/* Fork the root: it joins dir, forks procs-1 sleepers and reports. The
 * sleepers never reap anything; the root never reaps its children either
 * (they are reaped by us after it dies). */
static int build_tree(const char *dir, int procs, pid_t *ret_root)
{
        /* Only async-signal-safe calls after fork(): nng has threads. */
        char path[4200];
        snprintf(path, sizeof path, "%s/cgroup.procs", dir);
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid_t root = fork();
        if (root < 0) {
                close(p[0]);
                close(p[1]);
                return -errno;
        }
        if (root == 0) {
                close(p[0]);
                if (write_file(path, "0") < 0)
                        _exit(3);
                signal(SIGINT, SIG_IGN); /* the bench's Ctrl-C is handled above */
                for (int i = 1; i < procs; i++) {
                        pid_t c = fork();
                        if (c < 0)
                                _exit(4);
                        if (c == 0) {
                                /* A real program, as in a service's tree:
                                 * its small address space is what the
                                 * kernel tears down at exit. */
                                static char *const sleep_argv[] = {(char *)"sleep", (char *)"3600",
                                                                   NULL};
                                execv("/bin/sleep", sleep_argv);
                                _exit(6);
                        }
                }
                char ok = 'k';
                if (write(p[1], &ok, 1) != 1)
                        _exit(5);
                close(p[1]);
                for (;;)
                        pause();
        }
        close(p[1]);
        char c;
        ssize_t n;
        do
                n = read(p[0], &c, 1);
        while (n < 0 && errno == EINTR);
        close(p[0]);
        *ret_root = root;
        return n == 1 ? 0 : -ECHILD;
}

/* --- the kill methods --------------------------------------------------- */

static int spawn_argv(char *const argv[])
{
        pid_t pid;
        int r = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
        return r ? -r : 0;
}

static int kill_faultline(struct fl_conn *conn, const char *rel, char ret_id[FL_ID_LEN])
{
        struct fl_param params[2];
        snprintf(params[0].key, sizeof params[0].key, "cgroup");
        snprintf(params[0].value, sizeof params[0].value, "%s", rel);
        snprintf(params[1].key, sizeof params[1].key, "signal");
        snprintf(params[1].value, sizeof params[1].value, "KILL");
        struct fl_request req = {
            .type = FL_MSG_APPLY,
            .duration_ms = KILL_DUR_MS,
            .n_params = 2,
            .params = params,
            .lease_ttl_ms = 30000,
        };
        snprintf(req.kind, sizeof req.kind, "process-kill");
        snprintf(req.lease, sizeof req.lease, "bench-kill-tree-%d", (int)getpid());
        snprintf(req.requester, sizeof req.requester, "bench");
        struct fl_reply rep;
        int rv = fl_conn_call(conn, &req, &rep, 30000);
        if (rv < 0) {
                fprintf(stderr, "kill_tree: apply: %s\n", strerror(-rv));
                return rv;
        }
        if (rep.status != FL_ST_OK || rep.n_faults != 1) {
                fprintf(stderr, "kill_tree: apply: %s: %s\n", fl_status_name(rep.status), rep.msg);
                fl_reply_free(&rep);
                return -EIO;
        }
        snprintf(ret_id, FL_ID_LEN, "%s", rep.faults[0].id);
        static bool told;
        if (!told && rep.faults[0].backend[0]) {
                printf("# faultline backend: %s\n", rep.faults[0].backend);
                told = true;
        }
        fl_reply_free(&rep);
        return 0;
}

struct sample {
        uint64_t ack_ns, reaped_ns;
};

static int one_round(enum method m, int run, const char *dir, const char *rel, int procs,
                     struct fl_conn *conn, struct sample *ret)
{
        pid_t root = -1;
        int r = build_tree(dir, procs, &root);
        if (r < 0) {
                fprintf(stderr, "kill_tree: building the tree: %s\n", strerror(-r));
                return r;
        }
        pid_t tree[MAX_PROCS];
        int n = 0;
        for (int i = 0; i < 200 && n != procs; i++) {
                n = read_procs(dir, tree, MAX_PROCS);
                if (n != procs) {
                        struct timespec ts = {0, 5000000L};
                        nanosleep(&ts, NULL);
                }
        }
        if (n != procs) {
                fprintf(stderr, "kill_tree: %s holds %d processes, want %d\n", dir, n, procs);
                kill(root, SIGKILL);
                return -EIO;
        }
        struct timespec settle = {0, SETTLE_MS * 1000000L};
        nanosleep(&settle, NULL);

        struct reaper rp = {
            .tree = tree, .n_tree = procs, .extra = m == M_LOOP || m == M_SINGLE ? 1 : 0};
        pthread_t th;
        if ((r = pthread_create(&th, NULL, reaper_main, &rp)) != 0)
                return -r;

        char id[FL_ID_LEN] = "";
        char cmd[4400];
        uint64_t t0 = bench_now_ns(), t_ack = 0;
        switch (m) {
        case M_FAULTLINE:
                r = kill_faultline(conn, rel, id);
                t_ack = bench_now_ns();
                break;
        case M_LOOP: {
                snprintf(cmd, sizeof cmd,
                         "for p in $(cat %s/cgroup.procs); do /bin/kill -9 $p; done", dir);
                static char sh[] = "/bin/sh", dash_c[] = "-c";
                char *argv[] = {sh, dash_c, cmd, NULL};
                r = spawn_argv(argv);
                break;
        }
        case M_SINGLE: {
                static char pidtxt[MAX_PROCS][16], killbin[] = "/bin/kill", nine[] = "-9";
                char *argv[MAX_PROCS + 3];
                pid_t now[MAX_PROCS];
                int k = read_procs(dir, now, MAX_PROCS);
                argv[0] = killbin;
                argv[1] = nine;
                for (int i = 0; i < k; i++) {
                        snprintf(pidtxt[i], sizeof pidtxt[i], "%d", (int)now[i]);
                        argv[2 + i] = pidtxt[i];
                }
                argv[2 + (k > 0 ? k : 0)] = NULL;
                r = k > 0 ? spawn_argv(argv) : -EIO;
                break;
        }
        case M_SYSCALL: {
                pid_t now[MAX_PROCS];
                int k = read_procs(dir, now, MAX_PROCS);
                for (int i = 0; i < k; i++)
                        kill(now[i], SIGKILL);
                t_ack = bench_now_ns();
                r = k > 0 ? 0 : -EIO;
                break;
        }
        default:
                r = -EINVAL;
        }
        if (r < 0) {
                /* Nothing will end the tree now: do it, so the reaper ends. */
                for (int i = 0; i < procs; i++)
                        kill(tree[i], SIGKILL);
                rp.extra = 0;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += ROUND_MS / 1000;
        int jr = pthread_timedjoin_np(th, NULL, &until);
        if (jr != 0) {
                fprintf(stderr, "kill_tree: %s run %d: only %d of %d reaped after %d ms\n",
                        method_names[m], run, rp.reaped_tree, procs, ROUND_MS);
                for (int i = 0; i < procs; i++)
                        kill(tree[i], SIGKILL);
                pthread_join(th, NULL);
                return -ETIMEDOUT;
        }
        if (rp.err) {
                fprintf(stderr, "kill_tree: waitid: %s\n", strerror(rp.err));
                return -rp.err;
        }
        if (r < 0)
                return r;
        if (m == M_LOOP || m == M_SINGLE)
                t_ack = rp.extra_ns;
        ret->ack_ns = t_ack - t0;
        ret->reaped_ns = rp.last_tree_ns - t0;
        printf("method=%s run=%d ack_us=%.1f reaped_us=%.1f\n", method_names[m], run,
               ret->ack_ns / 1e3, ret->reaped_ns / 1e3);
        fflush(stdout);
        if (id[0]) {
                /* A kill has nothing to undo: this only frees the slot. */
                int rv = bench_revert(conn, id);
                if (rv < 0)
                        fprintf(stderr, "kill_tree: revert %s: %s\n", id, strerror(-rv));
        }
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                             {"rel", required_argument, NULL, 'r'},
                                             {"url", required_argument, NULL, 'u'},
                                             {"procs", required_argument, NULL, 'p'},
                                             {"runs", required_argument, NULL, 'n'},
                                             {"methods", required_argument, NULL, 'm'},
                                             {0}};
        const char *dir = NULL, *rel = NULL, *url = NULL,
                   *methods = "faultline,loop,single,syscall";
        int procs = 100, runs = 200, c;
        while ((c = getopt_long(argc, argv, "d:r:u:p:n:m:", opts, NULL)) != -1) {
                switch (c) {
                case 'd':
                        dir = optarg;
                        break;
                case 'r':
                        rel = optarg;
                        break;
                case 'u':
                        url = optarg;
                        break;
                case 'p':
                        procs = atoi(optarg);
                        break;
                case 'n':
                        runs = atoi(optarg);
                        break;
                case 'm':
                        methods = optarg;
                        break;
                default:
                        return 2;
                }
        }
        bool use[M_N] = {false};
        for (int m = 0; m < M_N; m++) {
                const char *p = strstr(methods, method_names[m]);
                size_t l = strlen(method_names[m]);
                use[m] = p && (p == methods || p[-1] == ',') && (p[l] == '\0' || p[l] == ',');
        }
        if (!dir || !rel || (use[M_FAULTLINE] && !url) || procs < 2 || procs > MAX_PROCS ||
            runs < 1 || runs > MAX_RUNS) {
                fprintf(stderr,
                        "usage: kill_tree --dir CGDIR --rel /REL --url URL [--procs "
                        "2..1000] [--runs 1..2000] [--methods faultline,loop,single,syscall]\n");
                return 2;
        }

        bench_init();
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
                perror("PR_SET_CHILD_SUBREAPER");
                return 4;
        }
        struct fl_conn *conn = NULL;
        if (use[M_FAULTLINE]) {
                int rv = fl_conn_open(url, &conn);
                if (rv < 0 || bench_wait_agent(conn, 5000) < 0) {
                        fprintf(stderr, "kill_tree: agent on %s does not answer\n", url);
                        return 4;
                }
        }

        static struct sample s[M_N][MAX_RUNS];
        int got[M_N] = {0}, status = 0;
        for (int run = 1; run <= runs && status == 0 && !bench_stop_requested; run++) {
                /* Rotate the order so no method always runs first. */
                for (int k = 0; k < M_N && status == 0; k++) {
                        enum method m = (enum method)((run + k) % M_N);
                        if (!use[m])
                                continue;
                        if (one_round(m, run, dir, rel, procs, conn, &s[m][got[m]]) < 0)
                                status = 4;
                        else
                                got[m]++;
                }
        }
        if (conn)
                fl_conn_close(conn);

        printf("| method | rounds | ack p50 | ack p99 | reaped p50 | reaped p99 | reaped max |\n");
        printf("|---|---|---|---|---|---|---|\n");
        for (int m = 0; m < M_N; m++) {
                if (!got[m])
                        continue;
                static uint64_t a[MAX_RUNS], b[MAX_RUNS];
                for (int i = 0; i < got[m]; i++) {
                        a[i] = s[m][i].ack_ns;
                        b[i] = s[m][i].reaped_ns;
                }
                struct bench_stats sa, sb;
                bench_stats_compute(a, (size_t)got[m], &sa);
                bench_stats_compute(b, (size_t)got[m], &sb);
                printf("| %s | %d | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %.2f ms |\n",
                       method_names[m], got[m], sa.p50_us / 1e3, sa.p99_us / 1e3, sb.p50_us / 1e3,
                       sb.p99_us / 1e3, sb.max_us / 1e3);
        }
        return status;
}
