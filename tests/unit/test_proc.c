/* Unit tests for agent/proc.c (procfs, pidfd, selectors, picking),
 * agent/protect.c and agent/registry.c. No privileges needed: the only
 * processes signalled are this test's own children. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "fl_util.h"
#include "proc.h"

/* --- children ----------------------------------------------------------- */

#define MAX_CHILDREN 16
static pid_t children[MAX_CHILDREN];

static void reap(pid_t pid)
{
        if (pid <= 0)
                return;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        for (size_t i = 0; i < MAX_CHILDREN; i++)
                if (children[i] == pid)
                        children[i] = 0;
}

static void reap_all(void)
{
        for (size_t i = 0; i < MAX_CHILDREN; i++)
                reap(children[i]);
}

static void track(pid_t pid)
{
        for (size_t i = 0; i < MAX_CHILDREN; i++)
                if (!children[i]) {
                        children[i] = pid;
                        return;
                }
        reap(pid);
        fail_msg("too many children");
}

/* A child that renames itself (comm) and then sleeps in pause(). Returns
 * only once the name is set, so a scan right after sees it. */
static pid_t spawn_named(const char *name)
{
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid_t parent = getpid();
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(p[0]);
                /* Never outlive the test, whatever happens to it. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(1);
                prctl(PR_SET_NAME, name);
                if (write(p[1], "x", 1) != 1)
                        _exit(1);
                close(p[1]);
                for (;;)
                        pause();
        }
        close(p[1]);
        char c;
        ssize_t n = read(p[0], &c, 1);
        close(p[0]);
        track(pid);
        assert_int_equal(n, 1);
        return pid;
}

/* A child exec'ing /bin/sleep with a chosen argv[0], so its cmdline is
 * "<argv0> 60" while its comm stays "sleep". */
static pid_t spawn_exec(const char *argv0)
{
        pid_t parent = getpid();
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(1);
                execl("/bin/sleep", argv0, "60", (char *)NULL);
                _exit(127);
        }
        track(pid);
        char buf[256];
        for (int i = 0; i < 200; i++) {
                if (agent_proc_read_cmdline(pid, buf, sizeof buf) > 0 &&
                    strncmp(buf, argv0, strlen(argv0)) == 0)
                        return pid;
                struct timespec ts = {.tv_nsec = 10 * 1000000L};
                nanosleep(&ts, NULL);
        }
        fail_msg("child %d never exec'd", (int)pid);
        return -1;
}

static char wait_state(pid_t pid, uint64_t start, const char *want)
{
        char st = '?';
        for (int i = 0; i < 100; i++) {
                if (agent_proc_state(pid, start, &st) == 0 && strchr(want, st))
                        return st;
                struct timespec ts = {.tv_nsec = 10 * 1000000L};
                nanosleep(&ts, NULL);
        }
        return st;
}

/* --- stat parsing ---------------------------------------------------------- */

static void test_parse_stat_table(void **state)
{
        /* 52 fields as the kernel prints them; start time is field 22. */
        static const char tail[] =
            " S 1 100 100 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 100 1 "
            "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        static const struct {
                const char *head;
                const char *tail;
                int ret;
                const char *comm;
                uint64_t start;
                unsigned flags;
        } cases[] = {
            {"42 (sleep)", tail, 0, "sleep", 987654, 4194560},
            {"42 (a b c)", tail, 0, "a b c", 987654, 4194560},
            {"42 (x) S (y))", tail, 0, "x) S (y)", 987654, 4194560},
            {"42 ())", tail, 0, ")", 987654, 4194560},
            {"42 ()", tail, 0, "", 987654, 4194560},
            {"42 (kworker/u8:2-events_unbound)", tail, 0, "kworker/u8:2-ev", 987654, 4194560},
            {"42 sleep)", tail, -EINVAL, NULL, 0, 0},
            {"42 (sleep", tail, -EINVAL, NULL, 0, 0},
            {"(sleep)", tail, -EINVAL, NULL, 0, 0},
            {"0 (sleep)", tail, -EINVAL, NULL, 0, 0},
            {"x (sleep)", tail, -EINVAL, NULL, 0, 0},
            {"42 (sleep)", " S 1 100", -EINVAL, NULL, 0, 0},
            {"42 (sleep)", " SS 1 100 100 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 1", -EINVAL,
             NULL, 0, 0},
            {"42 (sleep)", " S 1 100 100 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 -5 1", -EINVAL, NULL,
             0, 0},
            {"42 (sleep)", " S 1 100 100 0 -1 x 1 0 0 0 0 0 0 0 20 0 1 0 5 1", -EINVAL, NULL, 0, 0},
            {"42 (sleep)", " S 1 100 100 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 5", 0, "sleep", 5,
             4194560},
            {"42 (sleep)", "", -EINVAL, NULL, 0, 0},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char buf[512];
                snprintf(buf, sizeof buf, "%s%s", cases[i].head, cases[i].tail);
                struct agent_proc_stat st = {.pid = -7};
                int r = agent_proc_parse_stat(buf, &st);
                if (r != cases[i].ret)
                        fail_msg("case %zu '%s': got %d want %d", i, buf, r, cases[i].ret);
                if (r == 0) {
                        assert_int_equal(st.pid, 42);
                        assert_string_equal(st.comm, cases[i].comm);
                        assert_int_equal(st.state, 'S');
                        assert_int_equal(st.flags, cases[i].flags);
                        assert_int_equal(st.start, cases[i].start);
                } else {
                        assert_int_equal(st.pid, -7); /* untouched on failure */
                }
        }
}

static void test_read_self(void **state)
{
        struct agent_proc_stat st;
        assert_int_equal(agent_proc_read_stat(getpid(), &st), 0);
        assert_int_equal(st.pid, getpid());
        assert_int_equal(st.state, 'R');
        assert_true(st.start > 0);
        assert_false(st.flags & AGENT_PROC_PF_KTHREAD);

        char comm[32] = "";
        FILE *fp = fopen("/proc/self/comm", "re");
        assert_non_null(fp);
        assert_non_null(fgets(comm, sizeof comm, fp));
        fclose(fp);
        comm[strcspn(comm, "\n")] = '\0';
        assert_string_equal(st.comm, comm);

        char cmd[4096];
        int n = agent_proc_read_cmdline(getpid(), cmd, sizeof cmd);
        assert_true(n > 0);
        assert_int_equal((size_t)n, strlen(cmd));
        assert_non_null(strstr(cmd, "test_proc"));

        /* Truncation keeps the buffer terminated. */
        assert_int_equal(agent_proc_read_cmdline(getpid(), cmd, 4), 3);
        assert_int_equal(strlen(cmd), 3);

        assert_int_equal(agent_proc_read_stat(0, &st), -ESRCH);
        assert_int_equal(agent_proc_read_stat(INT_MAX, &st), -ESRCH);
        assert_int_equal(agent_proc_read_cmdline(INT_MAX, cmd, sizeof cmd), -ESRCH);
}

static void test_cmdline_joined(void **state)
{
        char argv0[64], buf[256];
        snprintf(argv0, sizeof argv0, "flp-cmd-%d", (int)getpid());
        pid_t pid = spawn_exec(argv0);
        assert_true(agent_proc_read_cmdline(pid, buf, sizeof buf) > 0);
        char want[96];
        snprintf(want, sizeof want, "%s 60", argv0);
        assert_string_equal(buf, want);
        reap(pid);
}

/* --- selectors ------------------------------------------------------------ */

static void test_selector_table(void **state)
{
        static const struct {
                const char *key, *value;
                int ret;
                enum agent_proc_sel_kind kind;
        } cases[] = {
            {"pid", "1234", 0, AGENT_PROC_SEL_PID},
            {"pid", "0", -EINVAL, 0},
            {"pid", "-5", -EINVAL, 0},
            {"pid", "12x", -EINVAL, 0},
            {"pid", "", -EINVAL, 0},
            {"pid", "99999999999", -EINVAL, 0},
            {"name", "nginx", 0, AGENT_PROC_SEL_NAME},
            {"name", "exactly15bytes!", 0, AGENT_PROC_SEL_NAME},
            {"name", "sixteen-bytes-xx", -EINVAL, 0},
            {"name", "", -EINVAL, 0},
            {"cmdline", "^nginx: worker", 0, AGENT_PROC_SEL_CMDLINE},
            {"cmdline", "(a|b)+ --x", 0, AGENT_PROC_SEL_CMDLINE},
            {"cmdline", "(", -EINVAL, 0},
            {"cmdline", "[a", -EINVAL, 0},
            {"cmdline", "", -EINVAL, 0},
            {"comm", "x", -EINVAL, 0},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                struct agent_proc_selector sel;
                char err[FL_MSG_LEN] = "";
                int r =
                    agent_proc_selector_init(&sel, cases[i].key, cases[i].value, err, sizeof err);
                if (r != cases[i].ret)
                        fail_msg("case %zu %s=%s: got %d want %d", i, cases[i].key, cases[i].value,
                                 r, cases[i].ret);
                if (r == 0) {
                        assert_int_equal(sel.kind, cases[i].kind);
                        agent_proc_selector_done(&sel);
                        agent_proc_selector_done(&sel); /* twice is fine */
                } else {
                        assert_true(err[0] != '\0');
                        assert_null(strchr(err, '\n'));
                }
        }
}

static void test_scan_by_name_and_cmdline(void **state)
{
        char name[16], longer[24], prefix[16], re[96], argv0[64], argv0b[64];
        snprintf(name, sizeof name, "flp%d", (int)getpid() % 1000000);
        snprintf(longer, sizeof longer, "%sx", name);
        snprintf(prefix, sizeof prefix, "%.*s", (int)strlen(name) - 1, name);
        pid_t a = spawn_named(name);
        pid_t b = spawn_named(longer);
        pid_t c = spawn_named(prefix);

        struct agent_proc_selector sel;
        char err[FL_MSG_LEN];
        assert_int_equal(agent_proc_selector_init(&sel, "name", name, err, sizeof err), 0);
        struct agent_proc_stat *m = NULL;
        assert_int_equal(agent_proc_scan(&sel, &m), 1);
        assert_int_equal(m[0].pid, a);
        assert_string_equal(m[0].comm, name);
        free(m);

        /* A stopped process still matches; a zombie does not. */
        kill(a, SIGSTOP);
        assert_int_equal(agent_proc_scan(&sel, &m), 1);
        free(m);
        kill(a, SIGKILL);
        struct agent_proc_stat st;
        for (int i = 0; i < 100; i++) {
                if (agent_proc_read_stat(a, &st) == 0 && st.state == 'Z')
                        break;
                struct timespec ts = {.tv_nsec = 10 * 1000000L};
                nanosleep(&ts, NULL);
        }
        assert_int_equal(st.state, 'Z');
        assert_int_equal(agent_proc_scan(&sel, &m), 0);
        assert_null(m);
        agent_proc_selector_done(&sel);
        reap(a);

        /* pid selector. */
        char pidbuf[16];
        snprintf(pidbuf, sizeof pidbuf, "%d", (int)b);
        assert_int_equal(agent_proc_selector_init(&sel, "pid", pidbuf, err, sizeof err), 0);
        assert_int_equal(agent_proc_scan(&sel, &m), 1);
        assert_int_equal(m[0].pid, b);
        free(m);
        agent_proc_selector_done(&sel);

        /* cmdline regex over the space-joined argv. */
        snprintf(argv0, sizeof argv0, "flp-re-%d", (int)getpid());
        snprintf(argv0b, sizeof argv0b, "flp-re-%dz", (int)getpid());
        pid_t d = spawn_exec(argv0);
        pid_t e = spawn_exec(argv0b);
        snprintf(re, sizeof re, "^flp-re-%d 60$", (int)getpid());
        assert_int_equal(agent_proc_selector_init(&sel, "cmdline", re, err, sizeof err), 0);
        assert_int_equal(agent_proc_scan(&sel, &m), 1);
        assert_int_equal(m[0].pid, d);
        free(m);
        agent_proc_selector_done(&sel);

        snprintf(re, sizeof re, "^flp-re-%d", (int)getpid());
        assert_int_equal(agent_proc_selector_init(&sel, "cmdline", re, err, sizeof err), 0);
        assert_int_equal(agent_proc_scan(&sel, &m), 2);
        assert_true(m[0].pid < m[1].pid); /* sorted */
        assert_true((m[0].pid == d && m[1].pid == e) || (m[0].pid == e && m[1].pid == d));
        free(m);
        agent_proc_selector_done(&sel);

        reap(b);
        reap(c);
        reap(d);
        reap(e);
}

/* Kernel threads are never candidates, even by explicit pid. */
static void test_scan_skips_kernel_threads(void **state)
{
        pid_t kt = 0;
        for (pid_t p = 2; p < 200 && !kt; p++) {
                struct agent_proc_stat st;
                if (agent_proc_read_stat(p, &st) == 0 && (st.flags & AGENT_PROC_PF_KTHREAD))
                        kt = p;
        }
        if (!kt)
                skip(); /* a pid namespace without kernel threads in view */

        char pidbuf[16], err[FL_MSG_LEN];
        snprintf(pidbuf, sizeof pidbuf, "%d", (int)kt);
        struct agent_proc_selector sel;
        struct agent_proc_stat *m = NULL;
        assert_int_equal(agent_proc_selector_init(&sel, "pid", pidbuf, err, sizeof err), 0);
        assert_int_equal(agent_proc_scan(&sel, &m), 0);
        agent_proc_selector_done(&sel);

        assert_int_equal(agent_proc_selector_init(&sel, "cmdline", ".", err, sizeof err), 0);
        int n = agent_proc_scan(&sel, &m);
        assert_true(n > 0);
        for (int i = 0; i < n; i++)
                assert_false(m[i].flags & AGENT_PROC_PF_KTHREAD);
        free(m);
        agent_proc_selector_done(&sel);
}

/* --- pidfd ------------------------------------------------------------------ */

static void test_pidfd_start_time_check(void **state)
{
        char name[16];
        snprintf(name, sizeof name, "flq%d", (int)getpid() % 1000000);
        pid_t pid = spawn_named(name);
        struct agent_proc_stat st;
        assert_int_equal(agent_proc_read_stat(pid, &st), 0);

        /* Wrong start time: the pid "was recycled". */
        assert_int_equal(agent_proc_pidfd_open(pid, st.start + 1), -ESRCH);
        assert_int_equal(agent_proc_pidfd_open(INT_MAX, st.start), -ESRCH);
        assert_int_equal(agent_proc_pidfd_open(0, 0), -ESRCH);

        int fd = agent_proc_pidfd_open(pid, st.start);
        assert_true(fd >= 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);

        /* Still alive: the wait times out, after roughly the timeout. */
        uint64_t t0 = fl_now_mono_ms();
        assert_int_equal(agent_proc_pidfd_wait_exit(fd, 50), -ETIMEDOUT);
        uint64_t dt = fl_now_mono_ms() - t0;
        assert_true(dt >= 45 && dt < 1000);

        char s;
        assert_int_equal(agent_proc_pidfd_signal(fd, SIGSTOP), 0);
        assert_int_equal(wait_state(pid, st.start, "Tt"), 'T');
        assert_int_equal(agent_proc_pidfd_signal(fd, SIGCONT), 0);
        assert_int_equal(wait_state(pid, st.start, "S"), 'S');
        assert_int_equal(agent_proc_state(pid, st.start + 1, &s), -ESRCH);

        assert_int_equal(agent_proc_pidfd_signal(fd, SIGKILL), 0);
        assert_int_equal(agent_proc_pidfd_wait_exit(fd, 2000), 0);
        /* An unreaped zombie still has a pid; once reaped it is gone. */
        reap(pid);
        assert_int_equal(agent_proc_pidfd_signal(fd, 0), -ESRCH);
        assert_int_equal(agent_proc_state(pid, st.start, &s), -ESRCH);
        assert_int_equal(agent_proc_pidfd_open(pid, st.start), -ESRCH);
        close(fd);
}

/* --- picking ---------------------------------------------------------------- */

static void test_pick_count_table(void **state)
{
        static const struct {
                size_t n;
                uint64_t count;
                uint32_t bp;
                size_t want;
        } cases[] = {
            {10, 3, 0, 3},    {2, 5, 0, 2},    {10, 0, 2500, 3},   {3, 0, 100, 1},
            {7, 0, 10000, 7}, {0, 1, 0, 0},    {0, 0, 5000, 0},    {1, 0, 1, 1},
            {4, 0, 5000, 2},  {5, 0, 5000, 3}, {100, 0, 1250, 13}, {4096, UINT64_MAX, 0, 4096},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                size_t k = agent_proc_pick_count(cases[i].n, cases[i].count, cases[i].bp);
                if (k != cases[i].want)
                        fail_msg("case %zu: got %zu want %zu", i, k, cases[i].want);
        }
}

static void test_pick_deterministic(void **state)
{
        size_t a[50], b[50];
        agent_proc_pick(50, 7, 42, a);
        agent_proc_pick(50, 7, 42, b);
        assert_memory_equal(a, b, 7 * sizeof a[0]);
        for (size_t i = 0; i < 7; i++) {
                assert_true(a[i] < 50);
                if (i)
                        assert_true(a[i - 1] < a[i]); /* ascending, distinct */
        }

        /* Different seeds give different picks (not always, but among a
         * handful of seeds certainly). */
        bool differs = false;
        for (uint64_t s = 1; s < 10 && !differs; s++) {
                agent_proc_pick(50, 7, s, b);
                differs = memcmp(a, b, 7 * sizeof a[0]) != 0;
        }
        assert_true(differs);

        /* k == n picks everything. */
        agent_proc_pick(5, 5, 9, a);
        for (size_t i = 0; i < 5; i++)
                assert_int_equal(a[i], i);

        /* Every index is reachable: 1 out of 4, over many seeds. */
        unsigned seen = 0;
        for (uint64_t s = 0; s < 200; s++) {
                agent_proc_pick(4, 1, s, a);
                seen |= 1u << a[0];
        }
        assert_int_equal(seen, 0xf);
}

/* --- undo targets --------------------------------------------------------- */

static void test_targets_load_table(void **state)
{
        static const struct {
                const char *json;
                int ret;
        } cases[] = {
            {"{}", 0},
            {"{\"targets\":[]}", 0},
            {"{\"targets\":[{\"pid\":5,\"start\":7,\"comm\":\"x\",\"state\":\"S\"}]}", 1},
            {"{\"targets\":[{\"pid\":5,\"start\":7},{\"pid\":6,\"start\":8}]}", 2},
            {"{\"targets\":{}}", -EINVAL},
            {"{\"targets\":[1]}", -EINVAL},
            {"{\"targets\":[{\"pid\":0,\"start\":7}]}", -EINVAL},
            {"{\"targets\":[{\"pid\":-3,\"start\":7}]}", -EINVAL},
            {"{\"targets\":[{\"pid\":\"5\",\"start\":7}]}", -EINVAL},
            {"{\"targets\":[{\"pid\":5}]}", -EINVAL},
            {"{\"targets\":[{\"pid\":5,\"start\":-1}]}", -EINVAL},
            {"{\"targets\":[{\"pid\":5,\"start\":1,\"comm\":3}]}", -EINVAL},
            {"{\"targets\":[{\"pid\":5,\"start\":1,\"state\":\"SS\"}]}", -EINVAL},
            {"{\"targets\":[{\"pid\":9999999999,\"start\":1}]}", -EINVAL},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                json_t *j = json_loads(cases[i].json, 0, NULL);
                assert_non_null(j);
                struct agent_proc_target *t = (void *)1;
                char err[FL_MSG_LEN] = "";
                int r = agent_proc_targets_load(j, &t, err, sizeof err);
                if (r != cases[i].ret)
                        fail_msg("case %zu %s: got %d want %d", i, cases[i].json, r, cases[i].ret);
                if (r > 0) {
                        assert_int_equal(t[0].pid, 5);
                        assert_int_equal(t[0].start, 7);
                } else {
                        assert_null(t);
                }
                if (r < 0)
                        assert_true(err[0] != '\0');
                free(t);
                json_decref(j);
        }
        struct agent_proc_target *t;
        char err[8];
        assert_int_equal(agent_proc_targets_load(NULL, &t, err, sizeof err), 0);
}

/* --- the shared spec: whole-group selectors -------------------------------- */

static void test_spec_whole_group_table(void **state)
{
        static const struct {
                const char *params[3][2];
                int rc;
                bool all;
                uint64_t count;
        } cases[] = {
            {{{"cgroup", "/x"}}, 0, true, 0},
            {{{"unit", "web"}}, 0, true, 0},
            {{{"cgroup", "/x"}, {"count", "3"}}, 0, false, 3},
            {{{"cgroup", "/x"}, {"percent", "50"}}, 0, false, 0},
            {{{"unit", "web"}, {"signal", "TERM"}}, 0, true, 0},
            {{{"name", "nginx"}}, 0, false, 1},
            {{{"cmdline", "x"}}, 0, false, 1},
            {{{"pid", "42"}}, 0, false, 1},
            {{{"cgroup", "/"}}, -EINVAL, false, 0},
            {{{"cgroup", "/x"}, {"count", "0"}}, -EINVAL, false, 0},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                struct agent_fault f = {.ops = &agent_fault_process_kill};
                for (size_t k = 0; k < 3 && cases[i].params[k][0]; k++)
                        assert_int_equal(fl_params_add(&f.params, &f.n_params,
                                                       cases[i].params[k][0],
                                                       cases[i].params[k][1]),
                                         0);
                struct agent_proc_spec spec;
                char err[256] = "";
                int rc = agent_proc_spec_parse(&spec, &f, err, sizeof err);
                if (rc != cases[i].rc)
                        fail_msg("case %zu: rc %d, want %d (%s)", i, rc, cases[i].rc, err);
                if (rc == 0) {
                        assert_int_equal(spec.all, cases[i].all);
                        assert_int_equal(spec.count, cases[i].count);
                        agent_proc_spec_done(&spec);
                }
                free(f.params);
        }
}

/* --- protect.c / registry.c ------------------------------------------------ */

static void test_protect(void **state)
{
        assert_true(agent_pid_is_protected(1));
        assert_true(agent_pid_is_protected(0));
        assert_true(agent_pid_is_protected(-1));
        pid_t p = 123456;
        while (agent_pid_is_protected(p))
                p++;
        assert_false(agent_pid_is_protected(p));
        agent_protect_pid(p);
        agent_protect_pid(p); /* twice is fine */
        assert_true(agent_pid_is_protected(p));
        assert_false(agent_pid_is_protected(p + 1));
        agent_protect_pid(getpid());
        assert_true(agent_pid_is_protected(getpid()));

        /* Names: exact comm, never an empty or over-long one. */
        assert_false(agent_name_is_protected("fltestprot"));
        agent_protect_name("fltestprot");
        agent_protect_name("");
        agent_protect_name(NULL);
        agent_protect_name("0123456789abcdefg"); /* 17 bytes: can never be a comm */
        assert_true(agent_name_is_protected("fltestprot"));
        assert_false(agent_name_is_protected("fltestpro"));
        assert_false(agent_name_is_protected("fltestprotx"));
        assert_false(agent_name_is_protected(""));
        assert_false(agent_name_is_protected(NULL));
        assert_false(agent_name_is_protected("0123456789abcdefg"));
        struct agent_proc_stat st = {.pid = p + 1};
        snprintf(st.comm, sizeof st.comm, "fltestprot");
        assert_true(agent_proc_is_protected(&st));
        snprintf(st.comm, sizeof st.comm, "other");
        assert_false(agent_proc_is_protected(&st));
}

static void test_registry(void **state)
{
        /* Other fault families register too; these three must be there. */
        assert_true(agent_fault_registry_len >= 3);
        static const char *const kinds[] = {"process-kill", "process-pause", "disk-fill"};
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
                const struct fault_ops *o = agent_fault_lookup(kinds[i]);
                assert_non_null(o);
                assert_string_equal(o->kind, kinds[i]);
        }
        assert_null(agent_fault_lookup("process-kil"));
        assert_null(agent_fault_lookup(""));
        assert_null(agent_fault_lookup(NULL));

        for (size_t i = 0; i < agent_fault_registry_len; i++) {
                const struct fault_ops *o = agent_fault_registry[i];
                assert_non_null(o->kind);
                assert_true(strlen(o->kind) < FL_KIND_LEN);
                assert_non_null(o->help);
                assert_non_null(o->keys);
                assert_non_null(o->keys[0]);
                for (size_t k = 0; o->keys[k]; k++)
                        assert_true(strlen(o->keys[k]) < FL_KEY_LEN);
                assert_non_null(o->supported);
                assert_non_null(o->validate);
                assert_non_null(o->prepare);
                assert_non_null(o->apply);
                assert_non_null(o->verify);
                assert_non_null(o->revert);
                assert_ptr_equal(agent_fault_lookup(o->kind), o);
                for (size_t j = 0; j < i; j++)
                        assert_string_not_equal(agent_fault_registry[j]->kind, o->kind);
        }
}

static int teardown(void **state)
{
        reap_all();
        return 0;
}

int main(void)
{
        atexit(reap_all);
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_parse_stat_table),
            cmocka_unit_test(test_read_self),
            cmocka_unit_test_teardown(test_cmdline_joined, teardown),
            cmocka_unit_test(test_selector_table),
            cmocka_unit_test_teardown(test_scan_by_name_and_cmdline, teardown),
            cmocka_unit_test(test_scan_skips_kernel_threads),
            cmocka_unit_test_teardown(test_pidfd_start_time_check, teardown),
            cmocka_unit_test(test_pick_count_table),
            cmocka_unit_test(test_pick_deterministic),
            cmocka_unit_test(test_targets_load_table),
            cmocka_unit_test(test_spec_whole_group_table),
            cmocka_unit_test(test_protect),
            cmocka_unit_test(test_registry),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
