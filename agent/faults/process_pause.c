/* process-pause: SIGSTOP the chosen processes for the fault's lifetime,
 * SIGCONT them on revert. Both signals go through start-time-checked
 * pidfds, so neither can reach a process that merely inherited a pid.
 *
 * When the target is a whole cgroup (unit= or cgroup= without count= or
 * percent=: every process of it, a protected one refusing the fault) and
 * the host has a freezer for it, the cgroup is frozen
 * instead (v1 freezer.state, v2 cgroup.freeze): every process, including
 * ones forked meanwhile, with no signal a process could observe. The
 * freezer's previous state is journaled; a group that was already frozen
 * stays frozen. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cg/cg.h"
#include "fault.h"
#include "fl_log.h"
#include "fl_util.h"
#include "proc.h"

/* verify() polls /proc/PID/stat this long for the stop to show. */
#define PAUSE_VERIFY_MS 500
#define PAUSE_POLL_MS   10

struct pause_priv {
        struct agent_proc_spec spec;
};

static const char *const pause_keys[] = {"pid",   "name",    "cmdline", "unit", "cgroup",
                                         "count", "percent", "seed",    NULL};

static const char *pause_supported(void)
{
        int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
        if (fd < 0)
                return errno == ENOSYS ? "kernel lacks pidfd_open (Linux 5.3 or later needed)"
                                       : "pidfd_open refused on this host";
        close(fd);
        return NULL;
}

static void pause_destroy(struct agent_fault *f)
{
        struct pause_priv *p = f->priv;
        if (!p)
                return;
        agent_proc_spec_done(&p->spec);
        free(p);
        f->priv = NULL;
}

static int pause_validate(struct agent_fault *f, char *err, size_t errlen)
{
        pause_destroy(f);

        struct pause_priv *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        int r = agent_proc_spec_parse(&p->spec, f, err, errlen);
        if (r < 0) {
                free(p);
                return r;
        }
        f->priv = p;
        return 0;
}

/* Freeze the whole cgroup when that is what was asked and the host can.
 * Returns 0 when the freezer will be used (recorded in f->undo), 1 to go
 * on with signals, -errno to refuse (a protected process inside). */
static int freezer_prepare(struct agent_fault *f, struct pause_priv *p, char *err, size_t errlen)
{
        const struct agent_proc_selector *sel = &p->spec.sel;
        const struct agent_cg_host *h = agent_cg_host();
        if (!p->spec.all || !agent_cg_gen(h, AGENT_CG_FREEZER))
                return 1;
        bool unit = sel->kind == AGENT_PROC_SEL_UNIT;
        char dir[PATH_MAX], rel[PATH_MAX], why[FL_MSG_LEN] = "";
        int r = agent_cg_resolve(h, unit ? sel->cg : NULL, unit ? NULL : sel->cg, AGENT_CG_FREEZER,
                                 dir, sizeof dir, rel, sizeof rel, why, sizeof why);
        if (r < 0) {
                fl_log(LOG_INFO, "process-pause %s: no freezer cgroup (%s); using SIGSTOP",
                       sel->text, why);
                return 1;
        }
        if ((r = agent_cg_check_target(h, AGENT_CG_FREEZER, dir, err, errlen)) < 0)
                return r;
        const struct agent_cg_ops *ops = agent_cg_ops_for(h, AGENT_CG_FREEZER);
        bool frozen = false;
        if ((r = ops->freeze_get(dir, &frozen)) < 0) {
                snprintf(err, errlen, "reading the freezer state of %s: %s", dir, strerror(-r));
                return r;
        }
        if (json_object_set_new(f->undo, "dir", json_string(dir)) < 0 ||
            json_object_set_new(f->undo, "gen", json_integer(ops->gen)) < 0 ||
            json_object_set_new(f->undo, "freezer", json_true()) < 0 ||
            json_object_set_new(f->undo, "was_frozen", json_boolean(frozen)) < 0)
                return -ENOMEM;
        snprintf(f->target, sizeof f->target, "%.200s (%.40s)", sel->text, rel);
        fl_strlcpy(f->backend, ops->gen == 2 ? "cgroup.freeze" : "freezer", sizeof f->backend);
        return 0;
}

/* The frozen cgroup, when this fault uses the freezer. */
static bool freezer_of(const json_t *undo, const char **dir, const struct agent_cg_ops **ops,
                       char *err, size_t errlen, int *ret)
{
        if (!json_is_true(json_object_get(undo, "freezer")))
                return false;
        *ret = agent_res_target_dir(undo, dir, ops, err, errlen);
        return true;
}

static int pause_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct pause_priv *p = f->priv;
        if (!p) {
                snprintf(err, errlen, "process-pause: prepare before validate");
                return -EINVAL;
        }
        int r = agent_proc_spec_resolve(&p->spec, f, err, errlen);
        if (r < 0)
                return r;
        if ((r = freezer_prepare(f, p, err, errlen)) <= 0)
                return r;
        fl_strlcpy(f->backend, "pidfd", sizeof f->backend);
        return 0;
}

static bool state_is_stopped(char s)
{
        return s == 'T' || s == 't';
}

static const char *target_result(json_t *arr, size_t i)
{
        return json_string_value(json_object_get(json_array_get(arr, i), "result"));
}

static int pause_apply(struct agent_fault *f, char *err, size_t errlen)
{
        const char *dir;
        const struct agent_cg_ops *ops;
        int fr;
        if (freezer_of(f->undo, &dir, &ops, err, errlen, &fr)) {
                if (fr < 0)
                        return fr;
                if ((fr = ops->freeze_set(dir, true)) < 0)
                        snprintf(err, errlen, "freezing %s: %s", dir, strerror(-fr));
                return fr;
        }
        _cleanup_free_ struct agent_proc_target *t = NULL;
        int n = agent_proc_targets_load(f->undo, &t, err, errlen);
        if (n < 0)
                return n;
        json_t *arr = json_object_get(f->undo, "targets");

        int sent = 0, first_err = 0;
        pid_t err_pid = 0;
        for (int i = 0; i < n; i++) {
                const char *result;
                int fd = agent_proc_pidfd_open(t[i].pid, t[i].start);
                int r = fd;
                if (fd >= 0) {
                        r = agent_proc_pidfd_signal(fd, SIGSTOP);
                        close(fd);
                }
                if (r >= 0) {
                        result = "sent";
                        sent++;
                } else if (r == -ESRCH) {
                        result = "gone";
                } else {
                        result = "error";
                        if (!first_err) {
                                first_err = r;
                                err_pid = t[i].pid;
                        }
                }
                json_object_set_new(json_array_get(arr, (size_t)i), "result", json_string(result));
        }
        if (first_err) {
                snprintf(err, errlen, "SIGSTOP to pid %d failed: %s (%d of %d stopped)",
                         (int)err_pid, strerror(-first_err), sent, n);
                return first_err;
        }
        if (sent == 0) {
                snprintf(err, errlen, "no target left to pause: all %d exited since prepare", n);
                return -ESRCH;
        }
        return 0;
}

static int pause_verify(struct agent_fault *f, char *err, size_t errlen)
{
        const char *dir;
        const struct agent_cg_ops *ops;
        int fr;
        if (freezer_of(f->undo, &dir, &ops, err, errlen, &fr)) {
                if (fr < 0)
                        return fr;
                /* v1 passes through FREEZING while tasks reach the fridge. */
                uint64_t deadline = fl_now_mono_ms() + PAUSE_VERIFY_MS;
                for (;;) {
                        bool frozen = false;
                        if ((fr = ops->freeze_get(dir, &frozen)) < 0) {
                                snprintf(err, errlen, "reading the freezer state of %s: %s", dir,
                                         strerror(-fr));
                                return fr;
                        }
                        if (frozen)
                                return 0;
                        if (fl_now_mono_ms() >= deadline) {
                                snprintf(err, errlen, "%s not frozen %d ms after freezing", dir,
                                         PAUSE_VERIFY_MS);
                                return -ETIMEDOUT;
                        }
                        struct timespec ts = {.tv_nsec = PAUSE_POLL_MS * 1000000L};
                        nanosleep(&ts, NULL);
                }
        }
        _cleanup_free_ struct agent_proc_target *t = NULL;
        int n = agent_proc_targets_load(f->undo, &t, err, errlen);
        if (n < 0)
                return n;
        json_t *arr = json_object_get(f->undo, "targets");

        /* SIGSTOP takes effect when each thread next leaves the kernel, so
         * the state letter can lag the signal by a little. */
        uint64_t deadline = fl_now_mono_ms() + PAUSE_VERIFY_MS;
        /* Start polling fast: the usual case is "stopped within tens of
         * microseconds", and a fixed 10 ms sleep would add 10 ms to the
         * acknowledgement every time the target had not run yet. */
        long poll_ns = 50 * 1000L;
        for (;;) {
                int stopped = 0, running = 0;
                pid_t running_pid = 0;
                char running_state = '?';
                for (int i = 0; i < n; i++) {
                        const char *res = target_result(arr, (size_t)i);
                        if (res && strcmp(res, "sent") != 0)
                                continue;
                        char st;
                        if (agent_proc_state(t[i].pid, t[i].start, &st) < 0)
                                continue; /* exited while paused: not running */
                        if (state_is_stopped(st)) {
                                stopped++;
                        } else {
                                running++;
                                running_pid = t[i].pid;
                                running_state = st;
                        }
                }
                if (running == 0 && stopped > 0)
                        return 0;
                if (fl_now_mono_ms() >= deadline) {
                        if (running)
                                snprintf(err, errlen,
                                         "pid %d not stopped %d ms after SIGSTOP (state %c)",
                                         (int)running_pid, PAUSE_VERIFY_MS, running_state);
                        else
                                snprintf(err, errlen, "no paused process left to check");
                        return running ? -ETIMEDOUT : -ESRCH;
                }
                struct timespec ts = {.tv_nsec = poll_ns};
                nanosleep(&ts, NULL);
                if (poll_ns < PAUSE_POLL_MS * 1000000L)
                        poll_ns *= 2;
        }
}

/* Resume what we stopped, and only that: a target recorded as already
 * stopped at prepare() (job control, a debugger, another drill) stays
 * stopped, and one apply() found gone was never touched. A missing result
 * means apply() may have stopped it before its undo update reached the
 * journal, so it is resumed. Vanished or recycled pids are skipped. */
static int pause_revert(struct agent_fault *f, char *err, size_t errlen)
{
        const char *dir;
        const struct agent_cg_ops *ops;
        int fr;
        if (freezer_of(f->undo, &dir, &ops, err, errlen, &fr)) {
                if (fr < 0)
                        return fr;
                if (json_is_true(json_object_get(f->undo, "was_frozen")))
                        return 0;
                fr = ops->freeze_set(dir, false);
                if (fr == -ENOENT)
                        return 0; /* the cgroup is gone, and its processes with it */
                if (fr < 0)
                        snprintf(err, errlen, "thawing %s: %s", dir, strerror(-fr));
                return fr;
        }
        _cleanup_free_ struct agent_proc_target *t = NULL;
        int n = agent_proc_targets_load(f->undo, &t, err, errlen);
        if (n < 0)
                return n;
        json_t *arr = json_object_get(f->undo, "targets");

        int first_err = 0;
        for (int i = 0; i < n; i++) {
                const char *res = target_result(arr, (size_t)i);
                if ((res && strcmp(res, "sent") != 0) || state_is_stopped(t[i].state))
                        continue;
                int fd = agent_proc_pidfd_open(t[i].pid, t[i].start);
                if (fd == -ESRCH)
                        continue;
                int r = fd;
                if (fd >= 0) {
                        r = agent_proc_pidfd_signal(fd, SIGCONT);
                        close(fd);
                }
                /* Keep going: one failure must not leave the rest stopped. */
                if (r < 0 && r != -ESRCH && !first_err) {
                        first_err = r;
                        snprintf(err, errlen, "SIGCONT to pid %d failed: %s", (int)t[i].pid,
                                 strerror(-r));
                }
        }
        return first_err;
}

const struct fault_ops agent_fault_process_pause = {
    .kind = "process-pause",
    .help = "SIGSTOP processes chosen by pid=, name=, cmdline=, unit= or cgroup= (a whole "
            "cgroup: freezer); resume on revert",
    .keys = pause_keys,
    .supported = pause_supported,
    .validate = pause_validate,
    .prepare = pause_prepare,
    .apply = pause_apply,
    .verify = pause_verify,
    .revert = pause_revert,
    .destroy = pause_destroy,
};
