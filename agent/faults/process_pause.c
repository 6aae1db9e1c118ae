/* process-pause: SIGSTOP the chosen processes for the fault's lifetime,
 * SIGCONT them on revert. Both signals go through start-time-checked
 * pidfds, so neither can reach a process that merely inherited a pid. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "fl_util.h"
#include "proc.h"

/* verify() polls /proc/PID/stat this long for the stop to show. */
#define PAUSE_VERIFY_MS 500
#define PAUSE_POLL_MS   10

struct pause_priv {
        struct agent_proc_spec spec;
};

static const char *const pause_keys[] = {"pid",     "name", "cmdline", "count",
                                         "percent", "seed", NULL};

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
        _cleanup_free_ struct agent_proc_target *t = NULL;
        int n = agent_proc_targets_load(f->undo, &t, err, errlen);
        if (n < 0)
                return n;
        json_t *arr = json_object_get(f->undo, "targets");

        /* SIGSTOP takes effect when each thread next leaves the kernel, so
         * the state letter can lag the signal by a little. */
        uint64_t deadline = fl_now_mono_ms() + PAUSE_VERIFY_MS;
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
                struct timespec ts = {.tv_nsec = PAUSE_POLL_MS * 1000000L};
                nanosleep(&ts, NULL);
        }
}

/* Resume what we stopped, and only that: a target recorded as already
 * stopped at prepare() (job control, a debugger, another drill) stays
 * stopped, and one apply() found gone was never touched. A missing result
 * means apply() may have stopped it before its undo update reached the
 * journal, so it is resumed. Vanished or recycled pids are skipped. */
static int pause_revert(struct agent_fault *f, char *err, size_t errlen)
{
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
    .help = "SIGSTOP processes chosen by pid=, name= or cmdline=; SIGCONT on revert",
    .keys = pause_keys,
    .supported = pause_supported,
    .validate = pause_validate,
    .prepare = pause_prepare,
    .apply = pause_apply,
    .verify = pause_verify,
    .revert = pause_revert,
    .destroy = pause_destroy,
};
