/* See bench_common.h. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_common.h"

extern char **environ;

volatile int bench_stop_requested;

static pid_t children[BENCH_MAX_CHILDREN];
static size_t n_children;
static char dirs[BENCH_MAX_DIRS][512];
static size_t n_dirs;
static pid_t owner_pid;

static void on_signal(int sig)
{
        bench_stop_requested = sig;
}

void bench_init(void)
{
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        owner_pid = getpid();
        atexit(bench_cleanup);
}

uint64_t bench_now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(int ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

/* Wait for pid up to timeout_ms. 1 reaped, 0 still running. */
static int reap_within(pid_t pid, int timeout_ms, int *ret_status)
{
        for (int waited = 0;; waited += 5) {
                int st = 0;
                pid_t r = waitpid(pid, &st, WNOHANG);
                if (r == pid || (r < 0 && errno == ECHILD)) {
                        if (ret_status)
                                *ret_status = st;
                        return 1;
                }
                if (waited >= timeout_ms)
                        return 0;
                sleep_ms(5);
        }
}

static void forget_child(pid_t pid)
{
        for (size_t i = 0; i < n_children; i++)
                if (children[i] == pid) {
                        children[i] = children[--n_children];
                        return;
                }
}

void bench_stop_child(pid_t pid)
{
        if (pid <= 0)
                return;
        kill(pid, SIGTERM);
        if (!reap_within(pid, 5000, NULL)) {
                kill(pid, SIGKILL);
                reap_within(pid, 2000, NULL);
        }
        forget_child(pid);
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb;
        (void)flag;
        (void)ftw;
        remove(path);
        return 0;
}

void bench_cleanup(void)
{
        if (getpid() != owner_pid)
                return;
        /* Agents first (SIGTERM makes them revert, i.e. SIGCONT the
         * targets), then the targets; all signals go out before any wait. */
        for (size_t i = 0; i < n_children; i++)
                kill(children[i], SIGTERM);
        for (size_t i = 0; i < n_children; i++) {
                if (!reap_within(children[i], 5000, NULL)) {
                        kill(children[i], SIGKILL);
                        reap_within(children[i], 2000, NULL);
                }
        }
        n_children = 0;
        for (size_t i = n_dirs; i-- > 0;)
                nftw(dirs[i], rm_one, 16, FTW_DEPTH | FTW_PHYS);
        n_dirs = 0;
}

int bench_mkdtemp(const char *parent, const char *tag, char *ret, size_t size)
{
        if (n_dirs == BENCH_MAX_DIRS)
                return -ENOSPC;
        int n = snprintf(ret, size, "%s/fl-bench-%s-XXXXXX", parent, tag);
        if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(dirs[0]))
                return -ENAMETOOLONG;
        if (!mkdtemp(ret))
                return -errno;
        chmod(ret, 0700);
        snprintf(dirs[n_dirs++], sizeof(dirs[0]), "%s", ret);
        return 0;
}

static int spawn(const char *const argv[], const char *out_path, bool record, pid_t *ret_pid)
{
        if (record && n_children == BENCH_MAX_CHILDREN)
                return -ENOSPC;
        int out = open(out_path ? out_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                       0600);
        if (out < 0)
                return -errno;
        pid_t pid = fork();
        if (pid < 0) {
                int e = errno;
                close(out);
                return -e;
        }
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != owner_pid)
                        _exit(127);
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                signal(SIGINT, SIG_DFL);
                signal(SIGTERM, SIG_DFL);
                signal(SIGPIPE, SIG_DFL);
                dup2(out, STDOUT_FILENO);
                dup2(out, STDERR_FILENO);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        close(out);
        if (record)
                children[n_children++] = pid;
        *ret_pid = pid;
        return 0;
}

int bench_spawn_agent(const char *agent, const char *url, const char *state_dir,
                      const char *log_path, pid_t *ret_pid)
{
        const char *argv[] = {agent,         "--foreground", "--listen", url,
                              "--state-dir", state_dir,      NULL};
        return spawn(argv, log_path, true, ret_pid);
}

int bench_spawn_sleep(pid_t *ret_pid)
{
        const char *argv[] = {"/bin/sleep", "3600", NULL};
        return spawn(argv, NULL, true, ret_pid);
}

int bench_run(const char *const argv[], const char *out_path, int timeout_ms)
{
        pid_t pid = 0;
        int rv = spawn(argv, out_path, false, &pid);
        if (rv < 0)
                return rv;
        int st = 0;
        if (!reap_within(pid, timeout_ms, &st)) {
                kill(pid, SIGKILL);
                reap_within(pid, 2000, NULL);
                return -ETIMEDOUT;
        }
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int bench_wait_agent(struct fl_conn *c, int timeout_ms)
{
        uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
        while (bench_now_ns() < deadline && !bench_stop_requested) {
                struct fl_request req = {.type = FL_MSG_HELLO};
                struct fl_reply rep;
                int rv = fl_conn_call(c, &req, &rep, 200);
                bool ok = rv == 0 && rep.status == FL_ST_OK;
                if (rv == 0)
                        fl_reply_free(&rep);
                if (ok)
                        return 0;
                sleep_ms(20);
        }
        return -ETIMEDOUT;
}

int bench_apply_pause(struct fl_conn *c, pid_t pid, const char *lease, uint64_t duration_ms,
                      uint64_t ttl_ms, char ret_id[FL_ID_LEN])
{
        char pidstr[24];
        snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
        struct fl_param param;
        snprintf(param.key, sizeof(param.key), "pid");
        snprintf(param.value, sizeof(param.value), "%s", pidstr);
        struct fl_request req = {
            .type = FL_MSG_APPLY,
            .duration_ms = duration_ms,
            .n_params = 1,
            .params = &param,
            .lease_ttl_ms = ttl_ms,
        };
        snprintf(req.kind, sizeof(req.kind), "process-pause");
        snprintf(req.lease, sizeof(req.lease), "%s", lease);
        snprintf(req.requester, sizeof(req.requester), "bench");
        struct fl_reply rep;
        int rv = fl_conn_call(c, &req, &rep, 5000);
        if (rv < 0)
                return rv;
        if (rep.status != FL_ST_OK || rep.n_faults != 1) {
                fprintf(stderr, "bench: apply on %s: %s: %s\n", fl_conn_url(c),
                        fl_status_name(rep.status), rep.msg);
                fl_reply_free(&rep);
                return -EIO;
        }
        snprintf(ret_id, FL_ID_LEN, "%s", rep.faults[0].id);
        fl_reply_free(&rep);
        return 0;
}

int bench_revert(struct fl_conn *c, const char *fault_id)
{
        struct fl_request req = {.type = FL_MSG_REVERT};
        snprintf(req.fault_id, sizeof(req.fault_id), "%s", fault_id);
        struct fl_reply rep;
        int rv = fl_conn_call(c, &req, &rep, 5000);
        if (rv < 0)
                return rv;
        if (rep.status != FL_ST_OK) {
                fprintf(stderr, "bench: revert %s on %s: %s: %s\n", fault_id, fl_conn_url(c),
                        fl_status_name(rep.status), rep.msg);
                rv = -EIO;
        }
        fl_reply_free(&rep);
        return rv;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static double rank_us(const uint64_t *sorted, size_t n, double q)
{
        /* Nearest rank: the smallest sample with at least q of them <= it. */
        size_t k = (size_t)(q * (double)n + 0.999999);
        if (k < 1)
                k = 1;
        if (k > n)
                k = n;
        return (double)sorted[k - 1] / 1000.0;
}

void bench_stats_compute(uint64_t *ns, size_t n, struct bench_stats *ret)
{
        memset(ret, 0, sizeof(*ret));
        ret->n = n;
        if (n == 0)
                return;
        qsort(ns, n, sizeof(*ns), cmp_u64);
        double sum = 0;
        for (size_t i = 0; i < n; i++)
                sum += (double)ns[i];
        ret->min_us = (double)ns[0] / 1000.0;
        ret->p50_us = rank_us(ns, n, 0.50);
        ret->p90_us = rank_us(ns, n, 0.90);
        ret->p99_us = rank_us(ns, n, 0.99);
        ret->max_us = (double)ns[n - 1] / 1000.0;
        ret->mean_us = sum / (double)n / 1000.0;
}

void bench_stats_print(const char *label, const struct bench_stats *s)
{
        printf("%-28s n=%-5zu min=%9.1f  p50=%9.1f  p90=%9.1f  p99=%9.1f  max=%9.1f  "
               "mean=%9.1f us\n",
               label, s->n, s->min_us, s->p50_us, s->p90_us, s->p99_us, s->max_us, s->mean_us);
}

int bench_spawn_wait(const char *const argv[], const char *out_path)
{
        posix_spawn_file_actions_t fa;
        static int devnull = -1;
        if (!out_path && devnull < 0 && (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
                return -errno;
        posix_spawn_file_actions_init(&fa);
        if (out_path) {
                posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path,
                                                 O_WRONLY | O_CREAT | O_TRUNC, 0600);
                posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
        } else {
                posix_spawn_file_actions_adddup2(&fa, devnull, STDOUT_FILENO);
                posix_spawn_file_actions_adddup2(&fa, devnull, STDERR_FILENO);
        }
        pid_t pid;
        int rv = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rv != 0)
                return -rv;
        int st = 0;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int bench_spawn_all(const char *tag, const char *const *const cmds[], size_t n)
{
        for (size_t i = 0; i < n; i++) {
                int rv = bench_spawn_wait(cmds[i], NULL);
                if (rv != 0) {
                        fprintf(stderr, "%s: `", tag);
                        for (size_t k = 0; cmds[i][k] && k < 6; k++)
                                fprintf(stderr, "%s%s", k ? " " : "", cmds[i][k]);
                        fprintf(stderr, " ...` failed: %s %d\n", rv < 0 ? "errno" : "status",
                                rv < 0 ? -rv : rv);
                        return -EIO;
                }
        }
        return 0;
}

int bench_output_has(const char *const argv[], const char *needle, const char *scratch)
{
        int rv = bench_spawn_wait(argv, scratch);
        if (rv < 0)
                return rv;
        FILE *f = fopen(scratch, "re");
        if (!f)
                return -errno;
        char line[1024];
        int found = 0;
        while (!found && fgets(line, sizeof(line), f))
                found = strstr(line, needle) != NULL;
        fclose(f);
        return found;
}

bool bench_in_netns(const char *name)
{
        char path[300];
        struct stat self, ns;
        if (!name || !*name || strchr(name, '/') || strlen(name) > 200)
                return false;
        snprintf(path, sizeof(path), "/run/netns/%s", name);
        if (stat("/proc/self/ns/net", &self) < 0 || stat(path, &ns) < 0)
                return false;
        return self.st_ino == ns.st_ino && self.st_dev == ns.st_dev;
}

int bench_exec_loss_apply(const char *tag, const char *nft, const char *dst)
{
        const char *const a1[] = {nft, "add", "table", "inet", "flbench", NULL};
        const char *const a2[] = {nft,
                                  "add",
                                  "chain",
                                  "inet",
                                  "flbench",
                                  "out",
                                  "{ type filter hook output priority 0; }",
                                  NULL};
        const char *const a3[] = {nft,   "add",   "rule", "inet",   "flbench", "out",
                                  "ip",  "daddr", dst,    "numgen", "random",  "mod",
                                  "100", "<",     "10",   "drop",   NULL};
        const char *const *const cmds[] = {a1, a2, a3};
        return bench_spawn_all(tag, cmds, 3);
}

int bench_exec_loss_revert(const char *tag, const char *nft)
{
        const char *const a[] = {nft, "delete", "table", "inet", "flbench", NULL};
        const char *const *const cmds[] = {a};
        return bench_spawn_all(tag, cmds, 1);
}

int bench_exec_bw_apply(const char *tag, const char *tc, const char *ifname)
{
        const char *const a[] = {tc,     "qdisc", "add",   "dev",    ifname,    "root",  "tbf",
                                 "rate", "1mbit", "burst", "32kbit", "latency", "400ms", NULL};
        const char *const *const cmds[] = {a};
        return bench_spawn_all(tag, cmds, 1);
}

int bench_exec_bw_revert(const char *tag, const char *tc, const char *ifname)
{
        const char *const a[] = {tc, "qdisc", "del", "dev", ifname, "root", NULL};
        const char *const *const cmds[] = {a};
        return bench_spawn_all(tag, cmds, 1);
}

/* One `/bin/sh -c script` per command, as ChaosBlade's local channel runs them. */
static int sh_all(const char *tag, const char *const scripts[], size_t n)
{
        for (size_t i = 0; i < n; i++) {
                const char *const a[] = {"/bin/sh", "-c", scripts[i], NULL};
                const char *const *const cmds[] = {a};
                int rv = bench_spawn_all(tag, cmds, 1);
                if (rv < 0) {
                        fprintf(stderr, "%s: script: %s\n", tag, scripts[i]);
                        return rv;
                }
        }
        return 0;
}

int bench_exec_bw_exempt_apply(const char *tag, const char *tc, const char *ifname,
                               unsigned control_port)
{
        char root[256], rest[2048];
        snprintf(root, sizeof(root), "%s qdisc add dev %s root handle 1: htb default 1", tc,
                 ifname);
        int len = snprintf(rest, sizeof(rest),
                           "%s class add dev %s parent 1: classid 1:1 htb rate 1mbit burst 32kbit",
                           tc, ifname);
        const unsigned ports[2] = {22, control_port};
        for (int i = 0; i < 2; i++)
                for (int d = 0; d < 2; d++)
                        len += snprintf(rest + len, sizeof(rest) - (size_t)len,
                                        " && %s filter add dev %s parent 1: prio 4 protocol ip u32 "
                                        "match ip %s %u 0xffff flowid 1:",
                                        tc, ifname, d ? "sport" : "dport", ports[i]);
        const char *const scripts[] = {root, rest};
        return sh_all(tag, scripts, 2);
}

int bench_exec_bw_exempt_revert(const char *tag, const char *tc, const char *ifname)
{
        char show[256], del[256], root[256];
        snprintf(show, sizeof(show), "%s filter show dev %s parent 1: prio 4", tc, ifname);
        snprintf(del, sizeof(del), "%s filter del dev %s parent 1: prio 4", tc, ifname);
        snprintf(root, sizeof(root), "%s qdisc del dev %s root", tc, ifname);
        const char *const scripts[] = {show, del, root};
        return sh_all(tag, scripts, 3);
}

int bench_exec_true(const char *tag)
{
        const char *const a[] = {"/bin/true", NULL};
        const char *const *const cmds[] = {a};
        return bench_spawn_all(tag, cmds, 1);
}
