/* Unit tests for the fault implementations: process-kill, process-pause,
 * disk-fill.
 *
 * Part 1: validate() against tables of good and bad parameters, asserting
 * the exact -errno and a one-line reason.
 * Part 2: real effects on real processes this test forks (no privileges:
 * they are our children).
 * Part 3 (root only; otherwise exit 77 after parts 1 and 2, saying why):
 * disk-fill on a 64 MiB ext4 image loop-mounted in a private mount
 * namespace, so the mount cannot outlive the test even if it dies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "fl_util.h"
#include "proc.h"

/* --- fault scaffolding ------------------------------------------------------ */

#define MAX_TEST_PARAMS 8

struct tfault {
        struct agent_fault f;
        char err[FL_MSG_LEN];
};

/* Build a fault of kind from "key=value" strings (NULL-terminated). */
static void tf_init(struct tfault *t, const char *kind, const char *const *kv)
{
        memset(t, 0, sizeof *t);
        t->f.ops = agent_fault_lookup(kind);
        assert_non_null(t->f.ops);
        snprintf(t->f.id, sizeof t->f.id, "t%d-%ld", (int)getpid(), (long)random());
        size_t n = 0;
        while (kv[n])
                n++;
        t->f.params = calloc(n ? n : 1, sizeof *t->f.params);
        assert_non_null(t->f.params);
        for (size_t i = 0; i < n; i++) {
                const char *eq = strchr(kv[i], '=');
                assert_non_null(eq);
                snprintf(t->f.params[i].key, sizeof t->f.params[i].key, "%.*s", (int)(eq - kv[i]),
                         kv[i]);
                snprintf(t->f.params[i].value, sizeof t->f.params[i].value, "%s", eq + 1);
        }
        t->f.n_params = n;
}

static void tf_free(struct tfault *t)
{
        if (t->f.ops && t->f.ops->destroy)
                t->f.ops->destroy(&t->f);
        json_decref(t->f.undo);
        free(t->f.params);
        memset(t, 0, sizeof *t);
}

#define TF_CALL(t, hook) ((t)->err[0] = '\0', (t)->f.ops->hook(&(t)->f, (t)->err, sizeof(t)->err))

/* --- part 1: validate tables ----------------------------------------------- */

struct vcase {
        const char *kind;
        const char *kv[MAX_TEST_PARAMS];
        int ret;
};

static const struct vcase validate_cases[] = {
    /* process-kill: good */
    {"process-kill", {"name=nginx"}, 0},
    {"process-kill", {"pid=1234"}, 0},
    {"process-kill", {"cmdline=^nginx: worker"}, 0},
    {"process-kill", {"name=x", "signal=TERM"}, 0},
    {"process-kill", {"name=x", "signal=SIGUSR1"}, 0},
    {"process-kill", {"name=x", "signal=15"}, 0},
    {"process-kill", {"name=x", "count=3", "seed=42"}, 0},
    {"process-kill", {"name=x", "percent=50"}, 0},
    {"process-kill", {"name=x", "percent=12.5%"}, 0},
    {"process-kill", {"signal=HUP", "cmdline=a|b", "percent=100"}, 0},
    /* process-kill: selectors */
    {"process-kill", {NULL}, -EINVAL},
    {"process-kill", {"count=1"}, -EINVAL},
    {"process-kill", {"signal=KILL"}, -EINVAL},
    {"process-kill", {"name=x", "pid=1"}, -EINVAL},
    {"process-kill", {"name=x", "cmdline=y"}, -EINVAL},
    {"process-kill", {"pid=2", "cmdline=y"}, -EINVAL},
    {"process-kill", {"name=x", "name=y"}, -EINVAL},
    {"process-kill", {"name="}, -EINVAL},
    {"process-kill", {"name=sixteen-bytes-xx"}, -EINVAL},
    {"process-kill", {"pid=0"}, -EINVAL},
    {"process-kill", {"pid=-1"}, -EINVAL},
    {"process-kill", {"pid=abc"}, -EINVAL},
    {"process-kill", {"pid=12 "}, -EINVAL},
    {"process-kill", {"cmdline="}, -EINVAL},
    {"process-kill", {"cmdline=("}, -EINVAL},
    {"process-kill", {"cmdline=[a"}, -EINVAL},
    {"process-kill", {"cmdline=a{2,1}"}, -EINVAL},
    /* process-kill: unknown keys */
    {"process-kill", {"name=x", "bogus=1"}, -EINVAL},
    {"process-kill", {"name=x", "path=/tmp"}, -EINVAL},
    {"process-kill", {"name=x", "Signal=KILL"}, -EINVAL},
    /* process-kill: signal */
    {"process-kill", {"name=x", "signal=FOO"}, -EINVAL},
    {"process-kill", {"name=x", "signal="}, -EINVAL},
    {"process-kill", {"name=x", "signal=0"}, -EINVAL},
    {"process-kill", {"name=x", "signal=65"}, -EINVAL},
    {"process-kill", {"name=x", "signal=-9"}, -EINVAL},
    {"process-kill", {"name=x", "signal=STOP"}, -EINVAL},
    {"process-kill", {"name=x", "signal=SIGTSTP"}, -EINVAL},
    {"process-kill", {"name=x", "signal=KILL", "signal=TERM"}, -EINVAL},
    /* process-kill: count / percent / seed */
    {"process-kill", {"name=x", "count=0"}, -EINVAL},
    {"process-kill", {"name=x", "count=-1"}, -EINVAL},
    {"process-kill", {"name=x", "count=1.5"}, -EINVAL},
    {"process-kill", {"name=x", "count=abc"}, -EINVAL},
    {"process-kill", {"name=x", "count="}, -EINVAL},
    {"process-kill", {"name=x", "percent=150"}, -EINVAL},
    {"process-kill", {"name=x", "percent=0"}, -EINVAL},
    {"process-kill", {"name=x", "percent=-5"}, -EINVAL},
    {"process-kill", {"name=x", "percent=abc"}, -EINVAL},
    {"process-kill", {"name=x", "count=1", "percent=50"}, -EINVAL},
    {"process-kill", {"name=x", "seed=abc"}, -EINVAL},
    {"process-kill", {"name=x", "seed=-1"}, -EINVAL},

    /* process-pause */
    {"process-pause", {"name=nginx"}, 0},
    {"process-pause", {"pid=99", "count=2"}, 0},
    {"process-pause", {"cmdline=worker", "percent=25", "seed=7"}, 0},
    {"process-pause", {NULL}, -EINVAL},
    {"process-pause", {"name=x", "signal=KILL"}, -EINVAL},
    {"process-pause", {"name=x", "pid=3"}, -EINVAL},
    {"process-pause", {"name=x", "count=0"}, -EINVAL},
    {"process-pause", {"name=x", "percent=150"}, -EINVAL},
    {"process-pause", {"cmdline=("}, -EINVAL},
    {"process-pause", {"pid=x"}, -EINVAL},
    {"process-pause", {"name=x", "count=2", "count=3"}, -EINVAL},

    /* disk-fill */
    {"disk-fill", {"path=/var/tmp", "bytes=1G"}, 0},
    {"disk-fill", {"path=/var/tmp/", "percent=90"}, 0},
    {"disk-fill", {"path=/", "bytes=4096"}, 0},
    {"disk-fill", {"path=/nonexistent/yet", "percent=50%"}, 0}, /* checked in prepare */
    {"disk-fill", {NULL}, -EINVAL},
    {"disk-fill", {"bytes=1M"}, -EINVAL},
    {"disk-fill", {"path=/tmp"}, -EINVAL},
    {"disk-fill", {"path=tmp", "bytes=1M"}, -EINVAL},
    {"disk-fill", {"path=./tmp", "bytes=1M"}, -EINVAL},
    {"disk-fill", {"path=", "bytes=1M"}, -EINVAL},
    {"disk-fill", {"path=/tmp", "bytes=1M", "percent=50"}, -EINVAL},
    {"disk-fill", {"path=/tmp", "bytes=0"}, -EINVAL},
    {"disk-fill", {"path=/tmp", "bytes=-1"}, -EINVAL},
    {"disk-fill", {"path=/tmp", "bytes=abc"}, -EINVAL},
    {"disk-fill", {"path=/tmp", "bytes=10Q"}, -EINVAL},
    {"disk-fill", {"path=/tmp", "percent=150"}, -EINVAL},
    {"disk-fill", {"path=/tmp", "percent=0"}, -EINVAL},
    {"disk-fill", {"path=/tmp", "percent=x"}, -EINVAL},
    {"disk-fill", {"path=/tmp", "bytes=1M", "size=2"}, -EINVAL},
    {"disk-fill", {"path=/tmp", "path=/var", "bytes=1M"}, -EINVAL},
    {"disk-fill", {"path=/tmp", "bytes=1M", "signal=KILL"}, -EINVAL},
};

static void test_validate_table(void **state)
{
        for (size_t i = 0; i < sizeof validate_cases / sizeof validate_cases[0]; i++) {
                const struct vcase *c = &validate_cases[i];
                struct tfault t;
                tf_init(&t, c->kind, c->kv);
                int r = TF_CALL(&t, validate);
                if (r != c->ret)
                        fail_msg("case %zu (%s %s %s): got %d want %d, err '%s'", i, c->kind,
                                 c->kv[0] ? c->kv[0] : "", c->kv[1] ? c->kv[1] : "", r, c->ret,
                                 t.err);
                if (r == 0) {
                        assert_non_null(t.f.priv);
                } else {
                        /* A reason, on one line, and nothing held. */
                        if (!t.err[0])
                                fail_msg("case %zu: no reason", i);
                        assert_null(strchr(t.err, '\n'));
                        assert_null(t.f.priv);
                }
                tf_free(&t);
        }
}

/* validate() twice (as after a crash recovery) replaces, not leaks. */
static void test_validate_twice_and_destroy(void **state)
{
        static const char *const kv[] = {"cmdline=^a(b|c)", NULL};
        struct tfault t;
        tf_init(&t, "process-pause", kv);
        assert_int_equal(TF_CALL(&t, validate), 0);
        assert_int_equal(TF_CALL(&t, validate), 0);
        t.f.ops->destroy(&t.f);
        assert_null(t.f.priv);
        t.f.ops->destroy(&t.f); /* NULL priv is fine */
        tf_free(&t);
}

static void test_reason_texts(void **state)
{
        static const struct {
                const char *kind;
                const char *kv[4];
                const char *needle;
        } cases[] = {
            {"process-kill", {"name=x", "bogus=1"}, "bogus"},
            {"process-kill", {"name=x", "pid=3"}, "exactly one"},
            {"process-kill", {"count=2"}, "pid=, name= or cmdline="},
            {"process-kill", {"name=x", "signal=FOO"}, "FOO"},
            {"process-kill", {"cmdline=("}, "regular expression"},
            {"process-kill", {"name=x", "percent=150"}, "150"},
            {"disk-fill", {"path=tmp", "bytes=1"}, "absolute"},
            {"disk-fill", {"path=/tmp", "bytes=1", "percent=5"}, "exactly one"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                struct tfault t;
                tf_init(&t, cases[i].kind, cases[i].kv);
                assert_int_equal(TF_CALL(&t, validate), -EINVAL);
                if (!strstr(t.err, cases[i].needle))
                        fail_msg("case %zu: '%s' lacks '%s'", i, t.err, cases[i].needle);
                tf_free(&t);
        }
}

/* --- children ------------------------------------------------------------- */

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

static pid_t spawn_named(const char *name)
{
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid_t parent = getpid();
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(p[0]);
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

static void sleep_ms(long ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

/* Alive = not yet exited (a stopped child counts as alive). */
static bool alive(pid_t pid)
{
        siginfo_t si = {0};
        return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == 0;
}

/* Reap and return the signal that killed pid, or -1. */
static int reaped_by(pid_t pid)
{
        int status;
        pid_t r = waitpid(pid, &status, 0);
        for (size_t i = 0; i < MAX_CHILDREN; i++)
                if (children[i] == pid)
                        children[i] = 0;
        if (r != pid || !WIFSIGNALED(status))
                return -1;
        return WTERMSIG(status);
}

static char state_of(pid_t pid)
{
        struct agent_proc_stat st;
        return agent_proc_read_stat(pid, &st) == 0 ? st.state : '?';
}

static char wait_state(pid_t pid, const char *want)
{
        char s = '?';
        for (int i = 0; i < 100; i++) {
                s = state_of(pid);
                if (strchr(want, s))
                        return s;
                sleep_ms(10);
        }
        return s;
}

static uint64_t start_of(pid_t pid)
{
        struct agent_proc_stat st;
        assert_int_equal(agent_proc_read_stat(pid, &st), 0);
        return st.start;
}

static size_t undo_targets(const struct tfault *t, pid_t *ret, size_t max)
{
        json_t *arr = json_object_get(t->f.undo, "targets");
        size_t n = json_array_size(arr);
        for (size_t i = 0; i < n && i < max; i++)
                ret[i] = (pid_t)json_integer_value(json_object_get(json_array_get(arr, i), "pid"));
        return n;
}

static int children_teardown(void **state)
{
        reap_all();
        return 0;
}

/* --- part 2a: process faults --------------------------------------------- */

static void test_kill_exact_name(void **state)
{
        char name[16], longer[24], prefix[16], sel[32];
        snprintf(name, sizeof name, "flk%d", (int)getpid() % 1000000);
        snprintf(longer, sizeof longer, "%sx", name);
        snprintf(prefix, sizeof prefix, "%.*s", (int)strlen(name) - 1, name);
        pid_t target = spawn_named(name);
        pid_t sup = spawn_named(longer);
        pid_t pre = spawn_named(prefix);

        snprintf(sel, sizeof sel, "name=%s", name);
        const char *const kv[] = {sel, "signal=KILL", NULL};
        struct tfault t;
        tf_init(&t, "process-kill", kv);
        assert_int_equal(TF_CALL(&t, validate), 0);
        assert_int_equal(TF_CALL(&t, prepare), 0);
        pid_t got[4];
        assert_int_equal(undo_targets(&t, got, 4), 1);
        assert_int_equal(got[0], target);
        char want[64];
        snprintf(want, sizeof want, "%s pids=%d", sel, (int)target);
        assert_string_equal(t.f.target, want);
        assert_string_equal(t.f.backend, "pidfd");
        /* Nothing happened yet. */
        assert_true(alive(target));

        assert_int_equal(TF_CALL(&t, apply), 0);
        assert_int_equal(TF_CALL(&t, verify), 0);
        assert_int_equal(reaped_by(target), SIGKILL);
        assert_true(alive(sup));
        assert_true(alive(pre));
        assert_int_equal(TF_CALL(&t, revert), 0);
        assert_int_equal(TF_CALL(&t, revert), 0);
        tf_free(&t);
}

static void test_kill_cmdline_term(void **state)
{
        char a0[48], b0[48], re[80];
        snprintf(a0, sizeof a0, "flkc-%d", (int)getpid());
        snprintf(b0, sizeof b0, "flkc-%d-other", (int)getpid());
        pid_t a = spawn_exec(a0);
        pid_t b = spawn_exec(b0);
        snprintf(re, sizeof re, "cmdline=^flkc-%d 60$", (int)getpid());
        const char *const kv[] = {re, "signal=TERM", NULL};
        struct tfault t;
        tf_init(&t, "process-kill", kv);
        assert_int_equal(TF_CALL(&t, validate), 0);
        assert_int_equal(TF_CALL(&t, prepare), 0);
        assert_int_equal(TF_CALL(&t, apply), 0);
        assert_int_equal(TF_CALL(&t, verify), 0);
        assert_int_equal(reaped_by(a), SIGTERM);
        assert_true(alive(b));
        tf_free(&t);
}

/* TERM that the target ignores: apply succeeds, verify reports it. */
static void test_kill_verify_reports_survivor(void **state)
{
        char name[16], sel[32];
        snprintf(name, sizeof name, "flt%d", (int)getpid() % 1000000);
        /* A child that ignores TERM before renaming itself. */
        int p[2];
        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        pid_t parent = getpid();
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(1);
                signal(SIGTERM, SIG_IGN);
                prctl(PR_SET_NAME, name);
                if (write(p[1], "x", 1) != 1)
                        _exit(1);
                for (;;)
                        pause();
        }
        close(p[1]);
        char c;
        assert_int_equal(read(p[0], &c, 1), 1);
        close(p[0]);
        track(pid);

        snprintf(sel, sizeof sel, "name=%s", name);
        const char *const kv[] = {sel, "signal=TERM", NULL};
        struct tfault t;
        tf_init(&t, "process-kill", kv);
        assert_int_equal(TF_CALL(&t, validate), 0);
        assert_int_equal(TF_CALL(&t, prepare), 0);
        assert_int_equal(TF_CALL(&t, apply), 0);
        uint64_t t0 = fl_now_mono_ms();
        assert_int_equal(TF_CALL(&t, verify), -ETIMEDOUT);
        assert_true(fl_now_mono_ms() - t0 < 3000);
        assert_non_null(strstr(t.err, "still running"));
        assert_true(alive(pid));
        tf_free(&t);

        /* CONT does not end a process: verify only checks delivery. */
        const char *const kv2[] = {sel, "signal=CONT", NULL};
        tf_init(&t, "process-kill", kv2);
        assert_int_equal(TF_CALL(&t, validate), 0);
        assert_int_equal(TF_CALL(&t, prepare), 0);
        assert_int_equal(TF_CALL(&t, apply), 0);
        assert_int_equal(TF_CALL(&t, verify), 0);
        assert_true(alive(pid));
        tf_free(&t);
        reap(pid);
}

static void test_kill_percent_seeded(void **state)
{
        char name[16], sel[32];
        snprintf(name, sizeof name, "flm%d", (int)getpid() % 1000000);
        pid_t kids[4];
        for (int i = 0; i < 4; i++)
                kids[i] = spawn_named(name);
        snprintf(sel, sizeof sel, "name=%s", name);

        /* Same seed, same picks. */
        const char *const kv[] = {sel, "percent=50", "seed=7", NULL};
        struct tfault t1, t2;
        tf_init(&t1, "process-kill", kv);
        tf_init(&t2, "process-kill", kv);
        assert_int_equal(TF_CALL(&t1, validate), 0);
        assert_int_equal(TF_CALL(&t2, validate), 0);
        assert_int_equal(TF_CALL(&t1, prepare), 0);
        assert_int_equal(TF_CALL(&t2, prepare), 0);
        pid_t p1[4], p2[4];
        assert_int_equal(undo_targets(&t1, p1, 4), 2);
        assert_int_equal(undo_targets(&t2, p2, 4), 2);
        assert_memory_equal(p1, p2, sizeof p1[0] * 2);
        assert_string_equal(json_string_value(json_object_get(t1.f.undo, "seed")), "7");
        tf_free(&t2);

        assert_int_equal(TF_CALL(&t1, apply), 0);
        assert_int_equal(TF_CALL(&t1, verify), 0);
        int dead = 0;
        for (int i = 0; i < 4; i++) {
                bool picked = kids[i] == p1[0] || kids[i] == p1[1];
                if (picked) {
                        assert_int_equal(reaped_by(kids[i]), SIGKILL);
                        dead++;
                } else {
                        assert_true(alive(kids[i]));
                }
        }
        assert_int_equal(dead, 2);
        tf_free(&t1);

        /* count larger than the matches hits what there is. */
        const char *const kv3[] = {sel, "count=10", NULL};
        tf_init(&t1, "process-kill", kv3);
        assert_int_equal(TF_CALL(&t1, validate), 0);
        assert_int_equal(TF_CALL(&t1, prepare), 0);
        assert_int_equal(undo_targets(&t1, p1, 4), 2);
        tf_free(&t1);
        reap_all();
}

static void test_pause_and_revert(void **state)
{
        char name[16], sel[32];
        snprintf(name, sizeof name, "flp%d", (int)getpid() % 1000000);
        pid_t pid = spawn_named(name);
        snprintf(sel, sizeof sel, "name=%s", name);
        const char *const kv[] = {sel, NULL};
        struct tfault t;
        tf_init(&t, "process-pause", kv);
        assert_int_equal(TF_CALL(&t, validate), 0);
        assert_int_equal(TF_CALL(&t, prepare), 0);
        assert_int_equal(wait_state(pid, "S"), 'S');
        assert_int_equal(TF_CALL(&t, apply), 0);
        assert_int_equal(TF_CALL(&t, verify), 0);
        assert_int_equal(state_of(pid), 'T');

        assert_int_equal(TF_CALL(&t, revert), 0);
        assert_int_equal(wait_state(pid, "S"), 'S');
        assert_int_equal(TF_CALL(&t, revert), 0);
        assert_int_equal(wait_state(pid, "S"), 'S');

        /* Revert after a "crash": a fresh fault with only params + undo. */
        assert_int_equal(TF_CALL(&t, apply), 0);
        assert_int_equal(wait_state(pid, "T"), 'T');
        struct tfault r;
        tf_init(&r, "process-pause", kv);
        r.f.undo = json_deep_copy(t.f.undo);
        assert_int_equal(TF_CALL(&r, validate), 0);
        assert_int_equal(TF_CALL(&r, revert), 0);
        assert_int_equal(wait_state(pid, "S"), 'S');
        tf_free(&r);
        tf_free(&t);

        /* A process someone else had stopped stays stopped after revert. */
        kill(pid, SIGSTOP);
        assert_int_equal(wait_state(pid, "T"), 'T');
        tf_init(&t, "process-pause", kv);
        assert_int_equal(TF_CALL(&t, validate), 0);
        assert_int_equal(TF_CALL(&t, prepare), 0);
        assert_int_equal(TF_CALL(&t, apply), 0);
        assert_int_equal(TF_CALL(&t, verify), 0);
        assert_int_equal(TF_CALL(&t, revert), 0);
        sleep_ms(50);
        assert_int_equal(state_of(pid), 'T');
        tf_free(&t);

        /* A target that died while paused does not fail revert. */
        kill(pid, SIGCONT);
        tf_init(&t, "process-pause", kv);
        assert_int_equal(TF_CALL(&t, validate), 0);
        assert_int_equal(TF_CALL(&t, prepare), 0);
        assert_int_equal(TF_CALL(&t, apply), 0);
        reap(pid);
        assert_int_equal(TF_CALL(&t, revert), 0);
        tf_free(&t);
}

/* An undo entry whose start time no longer matches (the pid was recycled)
 * is never signalled: not by apply, not by revert. */
static void test_recycled_pid_untouched(void **state)
{
        char name[16], sel[32], undo[128];
        snprintf(name, sizeof name, "flr%d", (int)getpid() % 1000000);
        pid_t pid = spawn_named(name);
        uint64_t start = start_of(pid);
        snprintf(sel, sizeof sel, "pid=%d", (int)pid);
        snprintf(undo, sizeof undo, "{\"targets\":[{\"pid\":%d,\"start\":%llu,\"comm\":\"%s\"}]}",
                 (int)pid, (unsigned long long)start + 1, name);

        const char *const kv[] = {sel, NULL};
        struct tfault t;
        tf_init(&t, "process-kill", kv);
        assert_int_equal(TF_CALL(&t, validate), 0);
        t.f.undo = json_loads(undo, 0, NULL);
        assert_non_null(t.f.undo);
        assert_int_equal(TF_CALL(&t, apply), -ESRCH);
        assert_true(t.err[0]);
        sleep_ms(50);
        assert_true(alive(pid));
        assert_int_equal(wait_state(pid, "S"), 'S');
        tf_free(&t);

        tf_init(&t, "process-pause", kv);
        assert_int_equal(TF_CALL(&t, validate), 0);
        t.f.undo = json_loads(undo, 0, NULL);
        assert_int_equal(TF_CALL(&t, apply), -ESRCH);
        sleep_ms(50);
        assert_int_equal(wait_state(pid, "S"), 'S');
        /* Stopped by us "by hand": revert with the stale entry leaves it. */
        kill(pid, SIGSTOP);
        assert_int_equal(wait_state(pid, "T"), 'T');
        json_decref(t.f.undo);
        t.f.undo = json_loads(undo, 0, NULL);
        assert_int_equal(TF_CALL(&t, revert), 0);
        sleep_ms(50);
        assert_int_equal(state_of(pid), 'T');
        tf_free(&t);
        reap(pid);
}

static void test_protected_refused(void **state)
{
        char self[32], comm[32], nomatch[32];
        snprintf(self, sizeof self, "pid=%d", (int)getpid());
        struct agent_proc_stat st;
        assert_int_equal(agent_proc_read_stat(getpid(), &st), 0);
        snprintf(comm, sizeof comm, "name=%s", st.comm);
        snprintf(nomatch, sizeof nomatch, "name=flnone%d", (int)getpid() % 1000000);

        static char want_self[64];
        snprintf(want_self, sizeof want_self, "refused: pid %d is protected", (int)getpid());
        const struct {
                const char *kind;
                const char *sel;
                int ret;
                const char *reason;
        } cases[] = {
            {"process-kill", "pid=1", -EPERM, "refused: pid 1 is protected"},
            {"process-pause", "pid=1", -EPERM, "refused: pid 1 is protected"},
            {"process-kill", self, -EPERM, want_self},
            {"process-pause", self, -EPERM, want_self},
            {"process-kill", comm, -EPERM, want_self},
            {"process-kill", nomatch, -ENOENT, NULL},
            {"process-pause", nomatch, -ENOENT, NULL},
            {"process-kill", "pid=2147483647", -ENOENT, NULL},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                const char *const kv[] = {cases[i].sel, NULL};
                struct tfault t;
                tf_init(&t, cases[i].kind, kv);
                assert_int_equal(TF_CALL(&t, validate), 0);
                int r = TF_CALL(&t, prepare);
                if (r != cases[i].ret)
                        fail_msg("case %zu %s: got %d want %d (%s)", i, cases[i].sel, r,
                                 cases[i].ret, t.err);
                if (cases[i].reason)
                        assert_string_equal(t.err, cases[i].reason);
                else
                        assert_non_null(strstr(t.err, "no process matches"));
                tf_free(&t);
        }
        /* Still here: our own pid was never signalled either. */
        assert_true(kill(1, 0) == 0 || errno == EPERM);
}

static void test_kernel_thread_refused(void **state)
{
        pid_t kt = 0;
        for (pid_t p = 2; p < 200 && !kt; p++) {
                struct agent_proc_stat st;
                if (agent_proc_read_stat(p, &st) == 0 && (st.flags & AGENT_PROC_PF_KTHREAD))
                        kt = p;
        }
        if (!kt)
                skip();
        char sel[32];
        snprintf(sel, sizeof sel, "pid=%d", (int)kt);
        const char *const kv[] = {sel, NULL};
        struct tfault t;
        tf_init(&t, "process-kill", kv);
        assert_int_equal(TF_CALL(&t, validate), 0);
        assert_int_equal(TF_CALL(&t, prepare), -EPERM);
        assert_non_null(strstr(t.err, "kernel thread"));
        tf_free(&t);
}

/* --- part 2b: disk-fill on a loop-mounted ext4 ------------------------------ */

/* Two filesystems: ext4 (fallocate works) and ext3 (the ext4 driver
 * refuses fallocate on non-extent files), for the write fallback. */
struct testfs {
        const char *mkfs;
        char img[96];
        char mnt[96];
        bool mounted;
};
static char fs_dir[64]; /* mkdtemp'd, holds the images and mount points */
static struct testfs fs4 = {.mkfs = "/usr/sbin/mkfs.ext4"};
static struct testfs fs3 = {.mkfs = "/usr/sbin/mkfs.ext3"};
static const char *fs_skip; /* why the disk tests cannot run, or NULL */

static int run(const char *const argv[])
{
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (devnull >= 0)
                        dup2(devnull, STDOUT_FILENO);
                execv(argv[0], (char *const *)argv);
                _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid)
                return -ECHILD;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static void testfs_cleanup(struct testfs *fs)
{
        if (fs->mounted) {
                if (umount2(fs->mnt, 0) < 0)
                        umount2(fs->mnt, MNT_DETACH);
                fs->mounted = false;
        }
        if (fs->mnt[0])
                rmdir(fs->mnt);
        if (fs->img[0])
                unlink(fs->img);
        fs->mnt[0] = fs->img[0] = '\0';
}

static void fs_cleanup(void)
{
        testfs_cleanup(&fs4);
        testfs_cleanup(&fs3);
        if (fs_dir[0]) {
                rmdir(fs_dir);
                fs_dir[0] = '\0';
        }
}

static const char *testfs_make(struct testfs *fs, const char *name)
{
        snprintf(fs->img, sizeof fs->img, "%s/%s.img", fs_dir, name);
        snprintf(fs->mnt, sizeof fs->mnt, "%s/%s", fs_dir, name);
        int fd = open(fs->img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return "cannot create an image file";
        int r = ftruncate(fd, 64 << 20);
        close(fd);
        if (r < 0 || mkdir(fs->mnt, 0700) < 0)
                return "cannot size the 64 MiB image or make its mount point";

        const char *const mkfs[] = {fs->mkfs, "-q", "-F", fs->img, NULL};
        const char *const mnt[] = {"/usr/bin/mount", "-o", "loop", fs->img, fs->mnt, NULL};
        if (access(mkfs[0], X_OK) < 0 || access(mnt[0], X_OK) < 0)
                return "mkfs.ext4/mkfs.ext3 or mount not installed";
        if (run(mkfs) != 0)
                return "mkfs failed";
        if (run(mnt) != 0)
                return "loop mount failed (no loop devices?)";
        fs->mounted = true;
        return NULL;
}

static int fs_setup(void **state)
{
        /* A private mount namespace: if this process dies without cleaning
         * up, the mounts go with the namespace and the loop devices (which
         * mount -o loop sets to autoclear) detach themselves. */
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                fs_skip = "cannot make a private mount namespace";
                return 0;
        }
        snprintf(fs_dir, sizeof fs_dir, "/tmp/fl-test-faults-XXXXXX");
        if (!mkdtemp(fs_dir)) {
                fs_dir[0] = '\0';
                fs_skip = "mkdtemp failed";
                return 0;
        }
        fs_skip = testfs_make(&fs4, "ext4");
        if (!fs_skip)
                fs_skip = testfs_make(&fs3, "ext3");
        return 0;
}

static int fs_teardown(void **state)
{
        fs_cleanup();
        return 0;
}

#define REQUIRE_FS()                                                                               \
        do {                                                                                       \
                if (fs_skip) {                                                                     \
                        print_message("disk-fill test skipped: %s\n", fs_skip);                    \
                        skip();                                                                    \
                }                                                                                  \
        } while (0)

/* Used percent in basis points, by the definition disk-fill uses. */
static long used_bp(const char *dir)
{
        struct statvfs v;
        assert_int_equal(statvfs(dir, &v), 0);
        return (long)((double)(v.f_blocks - v.f_bfree) * 10000.0 / (double)v.f_blocks);
}

static uint64_t free_blocks(const char *dir)
{
        struct statvfs v;
        assert_int_equal(statvfs(dir, &v), 0);
        return v.f_bfree;
}

static void test_fill_percent(void **state)
{
        REQUIRE_FS();
        char path[128];
        snprintf(path, sizeof path, "path=%s", fs4.mnt);
        uint64_t free0 = free_blocks(fs4.mnt);
        long before = used_bp(fs4.mnt);
        assert_true(before < 6000);

        const char *const kv[] = {path, "percent=60", NULL};
        struct tfault t;
        tf_init(&t, "disk-fill", kv);
        assert_int_equal(TF_CALL(&t, validate), 0);
        assert_int_equal(TF_CALL(&t, prepare), 0);
        const char *ballast = json_string_value(json_object_get(t.f.undo, "path"));
        assert_non_null(ballast);
        assert_true(strncmp(ballast, fs4.mnt, strlen(fs4.mnt)) == 0);
        assert_non_null(strstr(ballast, "/.faultline-ballast-"));
        assert_non_null(strstr(ballast, t.f.id));
        assert_int_equal(access(ballast, F_OK), -1); /* prepare changes nothing */
        assert_int_equal(used_bp(fs4.mnt), before);

        assert_int_equal(TF_CALL(&t, apply), 0);
        assert_string_equal(t.f.backend, "fallocate");
        assert_int_equal(TF_CALL(&t, verify), 0);
        long after = used_bp(fs4.mnt);
        if (after < 5900 || after > 6100)
                fail_msg("used %ld bp after percent=60", after);
        struct stat st;
        assert_int_equal(stat(ballast, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        /* A second fill below what is now used is refused, changing nothing. */
        const char *const kv2[] = {path, "percent=30", NULL};
        struct tfault t2;
        tf_init(&t2, "disk-fill", kv2);
        assert_int_equal(TF_CALL(&t2, validate), 0);
        assert_int_equal(TF_CALL(&t2, prepare), -EINVAL);
        assert_non_null(strstr(t2.err, "already"));
        tf_free(&t2);

        assert_int_equal(TF_CALL(&t, revert), 0);
        assert_int_equal(access(ballast, F_OK), -1);
        uint64_t free1 = free_blocks(fs4.mnt);
        /* Space comes back, give or take a few metadata blocks. */
        assert_true(free1 + 8 >= free0 && free1 <= free0 + 8);
        assert_int_equal(TF_CALL(&t, revert), 0);
        tf_free(&t);
}

static void test_fill_bytes_exact(void **state)
{
        REQUIRE_FS();
        char path[128];
        snprintf(path, sizeof path, "path=%s/", fs4.mnt); /* trailing slash is fine */
        uint64_t free0 = free_blocks(fs4.mnt);
        const char *const kv[] = {path, "bytes=10M", NULL};
        struct tfault t;
        tf_init(&t, "disk-fill", kv);
        assert_int_equal(TF_CALL(&t, validate), 0);
        assert_int_equal(TF_CALL(&t, prepare), 0);
        assert_int_equal(json_integer_value(json_object_get(t.f.undo, "bytes")), 10 << 20);
        const char *ballast = json_string_value(json_object_get(t.f.undo, "path"));
        assert_null(strstr(ballast, "//"));
        assert_int_equal(TF_CALL(&t, apply), 0);
        assert_int_equal(TF_CALL(&t, verify), 0);
        struct stat st;
        assert_int_equal(stat(ballast, &st), 0);
        assert_int_equal(st.st_size, 10 << 20);
        assert_true((uint64_t)st.st_blocks * 512 >= (10u << 20));

        /* A second apply of the same fault must not adopt the file. */
        assert_int_equal(TF_CALL(&t, apply), -EEXIST);
        assert_int_equal(stat(ballast, &st), 0);

        /* Revert from params + undo alone, twice. */
        struct tfault r;
        tf_init(&r, "disk-fill", kv);
        r.f.undo = json_deep_copy(t.f.undo);
        assert_int_equal(TF_CALL(&r, validate), 0);
        assert_int_equal(TF_CALL(&r, revert), 0);
        assert_int_equal(TF_CALL(&r, revert), 0);
        assert_int_equal(access(ballast, F_OK), -1);
        uint64_t free1 = free_blocks(fs4.mnt);
        assert_true(free1 + 8 >= free0 && free1 <= free0 + 8);
        tf_free(&r);
        assert_int_equal(TF_CALL(&t, revert), 0);
        tf_free(&t);
}

static void test_fill_refusals(void **state)
{
        REQUIRE_FS();
        char path[128], file[128], filep[160], missing[160];
        snprintf(path, sizeof path, "path=%s", fs4.mnt);
        snprintf(file, sizeof file, "%s/victim", fs4.mnt);
        snprintf(filep, sizeof filep, "path=%s", file);
        snprintf(missing, sizeof missing, "path=%s/nope", fs4.mnt);
        int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);

        const struct {
                const char *kv[3];
                int ret;
        } cases[] = {
            {{path, "bytes=1G"}, -EINVAL},  /* more than the filesystem */
            {{path, "bytes=63M"}, -EINVAL}, /* more than is free */
            {{filep, "bytes=1M"}, -EINVAL}, /* not a directory */
            {{missing, "bytes=1M"}, -ENOENT},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                struct tfault t;
                tf_init(&t, "disk-fill", cases[i].kv);
                assert_int_equal(TF_CALL(&t, validate), 0);
                int r = TF_CALL(&t, prepare);
                if (r != cases[i].ret)
                        fail_msg("case %zu: got %d want %d (%s)", i, r, cases[i].ret, t.err);
                assert_true(t.err[0]);
                tf_free(&t);
        }

        /* A journal entry pointing at something that is not a ballast is
         * never unlinked. */
        const char *const kv[] = {path, "bytes=1M", NULL};
        struct tfault t;
        tf_init(&t, "disk-fill", kv);
        assert_int_equal(TF_CALL(&t, validate), 0);
        t.f.undo = json_pack("{s:s, s:i}", "path", file, "bytes", 1 << 20);
        assert_int_equal(TF_CALL(&t, revert), -EINVAL);
        assert_int_equal(access(file, F_OK), 0);
        /* Prepared but never applied: revert finds nothing, succeeds. */
        json_decref(t.f.undo);
        t.f.undo = NULL;
        assert_int_equal(TF_CALL(&t, prepare), 0);
        assert_int_equal(TF_CALL(&t, revert), 0);
        /* No undo at all (crash before prepare): nothing to do. */
        json_decref(t.f.undo);
        t.f.undo = json_object();
        assert_int_equal(TF_CALL(&t, revert), 0);
        tf_free(&t);
        unlink(file);
}

/* Take bytes of space with a plain file, behind disk-fill's back. */
static void hog(const char *file, uint64_t bytes)
{
        int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        if (fallocate(fd, 0, 0, (off_t)bytes) < 0) {
                assert_int_equal(errno, EOPNOTSUPP);
                static char zero[1 << 16];
                for (uint64_t done = 0; done < bytes;) {
                        size_t n = bytes - done < sizeof zero ? bytes - done : sizeof zero;
                        ssize_t w = write(fd, zero, n);
                        assert_true(w > 0);
                        done += (uint64_t)w;
                }
                assert_int_equal(fsync(fd), 0);
        }
        close(fd);
}

static void test_fill_write_fallback(void **state)
{
        REQUIRE_FS();
        char path[128], pct[128];
        snprintf(path, sizeof path, "path=%s", fs3.mnt);
        uint64_t free0 = free_blocks(fs3.mnt);
        const char *const kv[] = {path, "bytes=8M", NULL};
        struct tfault t;
        tf_init(&t, "disk-fill", kv);
        assert_int_equal(TF_CALL(&t, validate), 0);
        assert_int_equal(TF_CALL(&t, prepare), 0);
        assert_int_equal(TF_CALL(&t, apply), 0);
        assert_string_equal(t.f.backend, "write");
        assert_int_equal(TF_CALL(&t, verify), 0);
        const char *ballast = json_string_value(json_object_get(t.f.undo, "path"));
        struct stat st;
        assert_int_equal(stat(ballast, &st), 0);
        assert_int_equal(st.st_size, 8 << 20);
        assert_int_equal(TF_CALL(&t, revert), 0);
        assert_int_equal(access(ballast, F_OK), -1);
        uint64_t free1 = free_blocks(fs3.mnt);
        assert_true(free1 + 8 >= free0 && free1 <= free0 + 8);
        tf_free(&t);

        snprintf(pct, sizeof pct, "path=%s", fs3.mnt);
        const char *const kv2[] = {pct, "percent=40", NULL};
        tf_init(&t, "disk-fill", kv2);
        assert_int_equal(TF_CALL(&t, validate), 0);
        assert_int_equal(TF_CALL(&t, prepare), 0);
        assert_int_equal(TF_CALL(&t, apply), 0);
        assert_string_equal(t.f.backend, "write");
        assert_int_equal(TF_CALL(&t, verify), 0);
        long after = used_bp(fs3.mnt);
        if (after < 3900 || after > 4100)
                fail_msg("used %ld bp after percent=40 on ext3", after);
        assert_int_equal(TF_CALL(&t, revert), 0);
        tf_free(&t);
}

/* The space vanishes between prepare() and apply(): apply fails with
 * ENOSPC and leaves no partial ballast behind, on both backends. */
static void test_fill_enospc_cleans_up(void **state)
{
        REQUIRE_FS();
        struct testfs *both[] = {&fs4, &fs3};
        for (size_t i = 0; i < 2; i++) {
                char path[128], hogfile[128];
                snprintf(path, sizeof path, "path=%s", both[i]->mnt);
                snprintf(hogfile, sizeof hogfile, "%s/hog", both[i]->mnt);
                const char *const kv[] = {path, "bytes=20M", NULL};
                struct tfault t;
                tf_init(&t, "disk-fill", kv);
                assert_int_equal(TF_CALL(&t, validate), 0);
                assert_int_equal(TF_CALL(&t, prepare), 0);

                struct statvfs v;
                assert_int_equal(statvfs(both[i]->mnt, &v), 0);
                uint64_t freeb = (uint64_t)v.f_bfree * v.f_frsize;
                hog(hogfile, freeb - (10u << 20));

                assert_int_equal(TF_CALL(&t, apply), -ENOSPC);
                assert_non_null(strstr(t.err, "No space"));
                const char *ballast = json_string_value(json_object_get(t.f.undo, "path"));
                assert_int_equal(access(ballast, F_OK), -1);
                assert_int_equal(TF_CALL(&t, revert), 0);
                assert_int_equal(unlink(hogfile), 0);
                tf_free(&t);
        }
}

int main(void)
{
        srandom((unsigned)getpid());
        const struct CMUnitTest validate_tests[] = {
            cmocka_unit_test(test_validate_table),
            cmocka_unit_test(test_validate_twice_and_destroy),
            cmocka_unit_test(test_reason_texts),
        };
        int failed = cmocka_run_group_tests_name("validate", validate_tests, NULL, NULL);

        atexit(reap_all);
        atexit(fs_cleanup);
        /* The agent protects itself; the test plays the agent. */
        agent_protect_pid(getpid());

        /* Only this test's own children are signalled: no root needed. */
        const struct CMUnitTest proc_tests[] = {
            cmocka_unit_test_teardown(test_kill_exact_name, children_teardown),
            cmocka_unit_test_teardown(test_kill_cmdline_term, children_teardown),
            cmocka_unit_test_teardown(test_kill_verify_reports_survivor, children_teardown),
            cmocka_unit_test_teardown(test_kill_percent_seeded, children_teardown),
            cmocka_unit_test_teardown(test_pause_and_revert, children_teardown),
            cmocka_unit_test_teardown(test_recycled_pid_untouched, children_teardown),
            cmocka_unit_test(test_protected_refused),
            cmocka_unit_test(test_kernel_thread_refused),
        };
        failed += cmocka_run_group_tests_name("process", proc_tests, NULL, NULL);

        if (geteuid() != 0) {
                fprintf(stderr, "test_faults: the disk-fill tests need root (mount namespace, "
                                "loop-mounted ext4); skipping them\n");
                return failed ? failed : 77;
        }

        const struct CMUnitTest fs_tests[] = {
            cmocka_unit_test(test_fill_percent),
            cmocka_unit_test(test_fill_bytes_exact),
            cmocka_unit_test(test_fill_refusals),
            cmocka_unit_test(test_fill_write_fallback),
            cmocka_unit_test(test_fill_enospc_cleans_up),
        };
        failed += cmocka_run_group_tests_name("disk-fill", fs_tests, fs_setup, fs_teardown);
        return failed;
}
