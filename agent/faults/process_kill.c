/* process-kill: send one signal to count (or percent) of the processes a
 * selector matches — once, or with interval= again every interval while
 * the fault lasts, re-resolving the selector each round (a chaos monkey:
 * the service's restarted processes are hit too). Nothing to revert, so
 * everything that matters happens before a signal is sent: strict
 * validation, and a target list pinned to (pid, start time) so a recycled
 * pid is never hit. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fault.h"
#include "fl_log.h"
#include "fl_parse.h"
#include "fl_util.h"
#include "proc.h"

/* How long verify() waits for targets of a terminating signal to exit,
 * across all of them. */
#define KILL_EXIT_WAIT_MS 1000

struct kill_priv {
        struct agent_proc_spec spec;
        int sig;
        uint64_t interval_ms; /* 0: one-shot */
};

#define KILL_MIN_INTERVAL_MS 100

static const char *const kill_keys[] = {"signal", "pid",     "name", "cmdline",  "unit", "cgroup",
                                        "count",  "percent", "seed", "interval", NULL};

static const char *kill_supported(void)
{
        int fd = (int)syscall(SYS_pidfd_open, getpid(), 0);
        if (fd < 0)
                return errno == ENOSYS ? "kernel lacks pidfd_open (Linux 5.3 or later needed)"
                                       : "pidfd_open refused on this host";
        close(fd);
        return NULL;
}

static void kill_destroy(struct agent_fault *f)
{
        struct kill_priv *p = f->priv;
        if (!p)
                return;
        agent_proc_spec_done(&p->spec);
        free(p);
        f->priv = NULL;
}

/* Signals whose default action ends the process and which programs rarely
 * survive: after these, verify() insists the targets are gone. Others
 * (HUP, USR1, ...) are commonly handled, so delivery is all we can check. */
static bool signal_expects_exit(int sig)
{
        return sig == SIGKILL || sig == SIGTERM || sig == SIGINT || sig == SIGQUIT ||
               sig == SIGABRT;
}

static int kill_validate(struct agent_fault *f, char *err, size_t errlen)
{
        kill_destroy(f);

        struct kill_priv *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        int r = agent_proc_spec_parse(&p->spec, f, err, errlen);
        if (r < 0) {
                free(p);
                return r;
        }

        p->sig = SIGKILL;
        for (size_t i = 0; i < f->n_params; i++) {
                if (strcmp(f->params[i].key, "interval") == 0) {
                        const char *v = f->params[i].value;
                        if (fl_parse_duration_ms(v, &p->interval_ms) < 0 ||
                            p->interval_ms < KILL_MIN_INTERVAL_MS) {
                                snprintf(err, errlen,
                                         "interval=%s: expected a duration of at least %dms", v,
                                         KILL_MIN_INTERVAL_MS);
                                r = -EINVAL;
                        }
                        continue;
                }
                if (strcmp(f->params[i].key, "signal") != 0)
                        continue;
                const char *v = f->params[i].value;
                if (fl_parse_signal(v, &p->sig) < 0) {
                        snprintf(err, errlen, "signal=%s: not a signal name or number 1..64", v);
                        r = -EINVAL;
                } else if (p->sig == SIGSTOP || p->sig == SIGTSTP || p->sig == SIGTTIN ||
                           p->sig == SIGTTOU) {
                        /* A one-shot fault has no revert: a stop sent from
                         * here would outlive the drill. */
                        snprintf(err, errlen,
                                 "signal=%s stops the process and process-kill never resumes it: "
                                 "use process-pause",
                                 v);
                        r = -EINVAL;
                }
        }
        if (r < 0) {
                agent_proc_spec_done(&p->spec);
                free(p);
                return r;
        }
        f->priv = p;
        return 0;
}

static int kill_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct kill_priv *p = f->priv;
        if (!p) {
                snprintf(err, errlen, "process-kill: prepare before validate");
                return -EINVAL;
        }
        int r = agent_proc_spec_resolve(&p->spec, f, err, errlen);
        if (r < 0)
                return r;
        fl_strlcpy(f->backend, "pidfd", sizeof f->backend);
        return 0;
}

/* One round: signal every target recorded in f->undo. */
static int kill_round(struct agent_fault *f, struct kill_priv *p, char *err, size_t errlen)
{
        _cleanup_free_ struct agent_proc_target *t = NULL;
        int n = agent_proc_targets_load(f->undo, &t, err, errlen);
        if (n < 0)
                return n;
        json_t *arr = json_object_get(f->undo, "targets");

        int sent = 0, gone = 0, first_err = 0;
        pid_t err_pid = 0;
        for (int i = 0; i < n; i++) {
                const char *result;
                int fd = agent_proc_pidfd_open(t[i].pid, t[i].start);
                int r = fd;
                if (fd >= 0) {
                        r = agent_proc_pidfd_signal(fd, p->sig);
                        close(fd);
                }
                if (r >= 0) {
                        result = "sent";
                        sent++;
                } else if (r == -ESRCH) {
                        /* Exited (or its pid was recycled) since prepare():
                         * nothing to hit, and nothing else may be hit. */
                        result = "gone";
                        gone++;
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
                snprintf(err, errlen, "SIG%s to pid %d failed: %s (%d of %d signalled)",
                         fl_signal_name(p->sig), (int)err_pid, strerror(-first_err), sent, n);
                return first_err;
        }
        if (sent == 0) {
                snprintf(err, errlen, "no target left to signal: all %d exited since prepare",
                         gone);
                return -ESRCH;
        }
        return 0;
}

static int kill_apply(struct agent_fault *f, char *err, size_t errlen)
{
        struct kill_priv *p = f->priv;
        if (!p) {
                snprintf(err, errlen, "process-kill: apply before validate");
                return -EINVAL;
        }
        int r = kill_round(f, p, err, errlen);
        if (r == 0 && p->interval_ms)
                f->next_tick_mono_ms = fl_now_mono_ms() + p->interval_ms;
        return r;
}

/* interval=: pick targets afresh and signal them. A round that finds
 * nothing (the service not back yet) is normal for a repeating kill. */
static int kill_tick(struct agent_fault *f, uint64_t now_mono_ms, uint64_t *ret_next_ms, char *err,
                     size_t errlen)
{
        struct kill_priv *p = f->priv;
        if (!p || !p->interval_ms) {
                *ret_next_ms = 0;
                return 0;
        }
        *ret_next_ms = now_mono_ms + p->interval_ms;
        json_int_t rounds = json_integer_value(json_object_get(f->undo, "rounds"));
        json_object_set_new(f->undo, "rounds", json_integer(rounds ? rounds + 1 : 2));
        char why[FL_MSG_LEN] = "";
        int r = agent_proc_spec_resolve(&p->spec, f, why, sizeof why);
        if (r == -ENOENT) {
                fl_log(LOG_INFO, "fault tick id=%s kind=process-kill: %s (next round in %llums)",
                       f->id, why, (unsigned long long)p->interval_ms);
                return 0;
        }
        if (r < 0) {
                snprintf(err, errlen, "%s", why);
                return r;
        }
        r = kill_round(f, p, err, errlen);
        if (r == 0)
                fl_log(LOG_NOTICE, "fault tick id=%s kind=process-kill SIG%s to %s", f->id,
                       fl_signal_name(p->sig), f->target);
        return r == -ESRCH ? 0 : r;
}

static bool target_was_sent(json_t *arr, size_t i)
{
        const char *res = json_string_value(json_object_get(json_array_get(arr, i), "result"));
        return !res || strcmp(res, "sent") == 0;
}

static int kill_verify(struct agent_fault *f, char *err, size_t errlen)
{
        struct kill_priv *p = f->priv;
        if (!p) {
                snprintf(err, errlen, "process-kill: verify before validate");
                return -EINVAL;
        }
        _cleanup_free_ struct agent_proc_target *t = NULL;
        int n = agent_proc_targets_load(f->undo, &t, err, errlen);
        if (n < 0)
                return n;
        json_t *arr = json_object_get(f->undo, "targets");

        int sent = 0;
        for (int i = 0; i < n; i++)
                sent += target_was_sent(arr, (size_t)i);
        if (sent == 0) {
                snprintf(err, errlen, "SIG%s was delivered to no process", fl_signal_name(p->sig));
                return -ESRCH;
        }
        if (!signal_expects_exit(p->sig))
                return 0;

        uint64_t deadline = fl_now_mono_ms() + KILL_EXIT_WAIT_MS;
        for (int i = 0; i < n; i++) {
                if (!target_was_sent(arr, (size_t)i))
                        continue;
                /* A reopened pidfd that fails the start-time check means the
                 * target is gone for good (reaped, maybe recycled). */
                int fd = agent_proc_pidfd_open(t[i].pid, t[i].start);
                if (fd == -ESRCH)
                        continue;
                if (fd < 0) {
                        snprintf(err, errlen, "checking pid %d: %s", (int)t[i].pid, strerror(-fd));
                        return fd;
                }
                uint64_t now = fl_now_mono_ms();
                int r = agent_proc_pidfd_wait_exit(fd, now >= deadline ? 0 : (int)(deadline - now));
                close(fd);
                if (r == -ETIMEDOUT) {
                        snprintf(err, errlen, "pid %d (%s) still running %d ms after SIG%s",
                                 (int)t[i].pid, t[i].comm, KILL_EXIT_WAIT_MS,
                                 fl_signal_name(p->sig));
                        return r;
                }
                if (r < 0) {
                        snprintf(err, errlen, "waiting for pid %d: %s", (int)t[i].pid,
                                 strerror(-r));
                        return r;
                }
        }
        return 0;
}

/* A delivered signal cannot be taken back; revert exists so the lifecycle
 * (TTL, lease loss, abort, crash recovery) treats every fault alike. */
static int kill_revert(struct agent_fault *f, char *err, size_t errlen)
{
        return 0;
}

const struct fault_ops agent_fault_process_kill = {
    .kind = "process-kill",
    .help = "send a signal (default KILL) to processes chosen by pid=, name=, cmdline=, unit= or "
            "cgroup=; once, or every interval=",
    .keys = kill_keys,
    .supported = kill_supported,
    .validate = kill_validate,
    .prepare = kill_prepare,
    .apply = kill_apply,
    .verify = kill_verify,
    .revert = kill_revert,
    .destroy = kill_destroy,
    .tick = kill_tick,
};
