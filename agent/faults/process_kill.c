/* process-kill: send one signal to count (or percent) of the processes a
 * selector matches — once, or with interval= again every interval while
 * the fault lasts, re-resolving the selector each round (a chaos monkey:
 * the service's restarted processes are hit too). Nothing to revert, so
 * everything that matters happens before a signal is sent: strict
 * validation, and a target list pinned to (pid, start time) so a recycled
 * pid is never hit.
 *
 * unit= or cgroup= without count=/percent= is the whole group. With
 * SIGKILL, when the group is a cgroup v2 directory holding exactly the
 * matched processes (always, on a v2-only host), one write of "1" to its
 * cgroup.kill ends them all — including any forked after the scan — and
 * verify() waits for cgroup.events to say "populated 0". Without
 * cgroup.kill (v1, hybrid hosts whose group is not in the v2 tree,
 * kernels before 5.14) every match gets its own pidfd signal and verify()
 * polls the pidfds. A group holding a protected process is refused either
 * way. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cg/cg.h"
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
        /* pidfds of the targets, opened (and start-time checked) right
         * after resolving, so apply() only sends signals and verify()
         * only polls: the kill goes out in one burst, before the dying
         * processes compete with the agent for the CPU. fds[i] < 0: open
         * it when needed (past KILL_HELD_MAX, or gone). */
        int *fds;
        int n_fds;
};

#define KILL_HELD_MAX 1024

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

static void fds_close(struct kill_priv *p)
{
        for (int i = 0; i < p->n_fds; i++)
                if (p->fds[i] >= 0)
                        close(p->fds[i]);
        free(p->fds);
        p->fds = NULL;
        p->n_fds = 0;
}

/* Open a pidfd for each target just resolved into f->undo. A target gone
 * already gets -ESRCH, which kill_round() reports as "gone". */
static int fds_open(struct agent_fault *f, struct kill_priv *p, char *err, size_t errlen)
{
        fds_close(p);
        _cleanup_free_ struct agent_proc_target *t = NULL;
        int n = agent_proc_targets_load(f->undo, &t, err, errlen);
        if (n <= 0)
                return n;
        p->fds = malloc((size_t)n * sizeof *p->fds);
        if (!p->fds)
                return -ENOMEM;
        p->n_fds = n;
        for (int i = 0; i < n; i++) {
                p->fds[i] = i < KILL_HELD_MAX ? agent_proc_pidfd_open(t[i].pid, t[i].start) : -1;
                /* Out of descriptors: the rest are opened one at a time. */
                if (p->fds[i] == -EMFILE || p->fds[i] == -ENFILE)
                        p->fds[i] = -1;
        }
        return 0;
}

/* The pidfd of target i: held, or opened now (the caller closes it when
 * *owned). -ESRCH when the target is gone. */
static int target_fd(struct kill_priv *p, const struct agent_proc_target *t, int i, bool *owned)
{
        *owned = false;
        if (i < p->n_fds && p->fds[i] != -1)
                return p->fds[i];
        *owned = true;
        return agent_proc_pidfd_open(t[i].pid, t[i].start);
}

static void kill_destroy(struct agent_fault *f)
{
        struct kill_priv *p = f->priv;
        if (!p)
                return;
        fds_close(p);
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

static bool pid_in_targets(pid_t pid, const struct agent_proc_target *t, int n)
{
        for (int i = 0; i < n; i++)
                if (t[i].pid == pid)
                        return true;
        return false;
}

/* The cgroup.kill backend: for a whole-group SIGKILL whose group is a v2
 * directory holding exactly the processes the selector matched (so one
 * write kills no more and no fewer). Records "cgkill":DIR in f->undo and
 * returns 0; without it returns 0 too, and the pidfds are used; -EPERM
 * when the v2 group must not be touched (agent_cg_v2_target). */
static int cgkill_prepare(struct agent_fault *f, struct kill_priv *p, char *err, size_t errlen)
{
        const struct agent_proc_selector *sel = &p->spec.sel;
        json_object_del(f->undo, "cgkill");
        if (!p->spec.all || p->sig != SIGKILL)
                return 0;

        const struct agent_cg_host *h = agent_cg_host();
        bool unit = sel->kind == AGENT_PROC_SEL_UNIT;
        char dir[PATH_MAX], why[FL_MSG_LEN] = "";
        /* The resolve checked every match for protection, and the group
         * is used only if it holds exactly those: no second pass. */
        int r = agent_cg_v2_target(h, unit ? sel->cg : NULL, unit ? NULL : sel->cg, false, dir,
                                   sizeof dir, why, sizeof why);
        if (r == -EPERM) {
                snprintf(err, errlen, "%s", why);
                return r;
        }
        if (r < 0) {
                fl_log(LOG_DEBUG, "process-kill %s: no cgroup.kill (%s); using pidfds", sel->text,
                       why);
                return 0;
        }
        char knob[PATH_MAX + 16];
        snprintf(knob, sizeof knob, "%s/cgroup.kill", dir);
        if (access(knob, W_OK) < 0) {
                fl_log(LOG_INFO,
                       "process-kill %s: %s has no cgroup.kill (Linux 5.14 or later); "
                       "using pidfds",
                       sel->text, dir);
                return 0;
        }

        _cleanup_free_ struct agent_proc_target *t = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        int n = agent_proc_targets_load(f->undo, &t, err, errlen);
        if (n < 0)
                return n;
        int np = agent_cg_procs(dir, true, &pids);
        if (np < 0) {
                fl_log(LOG_INFO, "process-kill %s: reading %s: %s; using pidfds", sel->text, dir,
                       strerror(-np));
                return 0;
        }
        /* Every pid of the v2 group matches the selector; the reverse
         * fails when some match sits outside it (hybrid: in a v1-only
         * group) — then only pidfds reach them all. */
        bool same = np == n;
        for (int i = 0; same && i < np; i++)
                same = pid_in_targets(pids[i], t, n);
        if (!same) {
                fl_log(LOG_INFO,
                       "process-kill %s: the v2 group %s holds %d processes, the selector "
                       "matches %d; using pidfds",
                       sel->text, dir, np, n);
                return 0;
        }
        if (json_object_set_new(f->undo, "cgkill", json_string(dir)) < 0)
                return -ENOMEM;
        fl_strlcpy(f->backend, "cgroup.kill", sizeof f->backend);
        return 0;
}

/* The v2 group to cgroup.kill, when prepare chose that backend. A
 * journal-provided dir must lie in the v2 tree, like any other target. */
static const char *cgkill_dir(const json_t *undo)
{
        const char *dir = json_string_value(json_object_get(undo, "cgkill"));
        const struct agent_cg_host *h = agent_cg_host();
        size_t n = strlen(h->v2);
        if (!dir || !n || strncmp(dir, h->v2, n) != 0 || dir[n] != '/' || strstr(dir, "/../") ||
            strstr(dir, "/./"))
                return NULL;
        return dir;
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
        if ((r = cgkill_prepare(f, p, err, errlen)) < 0)
                return r;
        return cgkill_dir(f->undo) ? 0 : fds_open(f, p, err, errlen);
}

/* cgroup.kill of the group prepare() checked. A process that joined the
 * group since then dies with it — the point of a whole-group kill —
 * unless it is protected: then nothing is killed. */
static int cgkill_round(struct agent_fault *f, const char *dir, const struct agent_proc_target *t,
                        int n, char *err, size_t errlen)
{
        _cleanup_free_ pid_t *pids = NULL;
        int np = agent_cg_procs(dir, true, &pids);
        if (np == -ENOENT)
                np = 0;
        if (np < 0) {
                snprintf(err, errlen, "reading the processes of %s: %s", dir, strerror(-np));
                return np;
        }
        for (int i = 0; i < np; i++) {
                struct agent_proc_stat st;
                if (pid_in_targets(pids[i], t, n) || agent_proc_read_stat(pids[i], &st) < 0)
                        continue;
                if (agent_proc_is_protected(&st)) {
                        snprintf(err, errlen,
                                 "refused: protected pid %d (%s) joined %s since the fault was "
                                 "prepared",
                                 (int)pids[i], st.comm, dir);
                        return -EPERM;
                }
        }
        int r = agent_cg_v2_ops.kill_all(dir);
        if (r < 0) {
                if (r != -EOPNOTSUPP)
                        snprintf(err, errlen, "cgroup.kill of %s: %s", dir, strerror(-r));
                return r;
        }
        json_t *arr = json_object_get(f->undo, "targets");
        for (int i = 0; i < n; i++)
                json_object_set_new(json_array_get(arr, (size_t)i), "result", json_string("sent"));
        return 0;
}

/* One round: cgroup.kill the group, or signal every target recorded in
 * f->undo through its pidfd. */
static int kill_round(struct agent_fault *f, struct kill_priv *p, char *err, size_t errlen)
{
        _cleanup_free_ struct agent_proc_target *t = NULL;
        int n = agent_proc_targets_load(f->undo, &t, err, errlen);
        if (n < 0)
                return n;
        json_t *arr = json_object_get(f->undo, "targets");

        const char *dir = cgkill_dir(f->undo);
        if (dir) {
                int r = cgkill_round(f, dir, t, n, err, errlen);
                if (r != -EOPNOTSUPP)
                        return r;
                /* The knob vanished under us (it was there at prepare):
                 * fall back rather than fail. */
                json_object_del(f->undo, "cgkill");
                fl_strlcpy(f->backend, "pidfd", sizeof f->backend);
        }

        int sent = 0, gone = 0, first_err = 0;
        pid_t err_pid = 0;
        /* Signals first, bookkeeping after: the burst stays short. */
        _cleanup_free_ int *res = malloc((size_t)(n ? n : 1) * sizeof *res);
        if (!res)
                return -ENOMEM;
        for (int i = 0; i < n; i++) {
                bool owned;
                int fd = target_fd(p, t, i, &owned);
                res[i] = fd < 0 ? fd : agent_proc_pidfd_signal(fd, p->sig);
                if (owned && fd >= 0)
                        close(fd);
        }
        for (int i = 0; i < n; i++) {
                const char *result;
                int r = res[i];
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
        if (r >= 0)
                r = cgkill_prepare(f, p, why, sizeof why);
        if (r >= 0 && !cgkill_dir(f->undo))
                r = fds_open(f, p, why, sizeof why);
        if (r < 0) {
                snprintf(err, errlen, "%s", why);
                return r;
        }
        r = kill_round(f, p, err, errlen);
        fds_close(p); /* a tick has no verify() */
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

static int verify_exit(struct agent_fault *f, struct kill_priv *p, char *err, size_t errlen)
{
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

        const char *dir = cgkill_dir(f->undo);
        if (dir) {
                int r = agent_cg_v2_ops.wait_empty(dir, KILL_EXIT_WAIT_MS);
                if (r == -ETIMEDOUT)
                        snprintf(err, errlen, "%s still populated %d ms after cgroup.kill", dir,
                                 KILL_EXIT_WAIT_MS);
                else if (r < 0)
                        snprintf(err, errlen, "waiting for %s to empty: %s", dir, strerror(-r));
                return r;
        }

        uint64_t deadline = fl_now_mono_ms() + KILL_EXIT_WAIT_MS;
        for (int i = 0; i < n; i++) {
                if (!target_was_sent(arr, (size_t)i))
                        continue;
                /* A held pidfd still names the target; a reopened one that
                 * fails the start-time check means it is gone for good
                 * (reaped, maybe recycled). */
                bool owned;
                int fd = target_fd(p, t, i, &owned);
                if (fd == -ESRCH)
                        continue;
                if (fd < 0) {
                        snprintf(err, errlen, "checking pid %d: %s", (int)t[i].pid, strerror(-fd));
                        return fd;
                }
                uint64_t now = fl_now_mono_ms();
                int r = agent_proc_pidfd_wait_exit(fd, now >= deadline ? 0 : (int)(deadline - now));
                if (owned)
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

static int kill_verify(struct agent_fault *f, char *err, size_t errlen)
{
        struct kill_priv *p = f->priv;
        if (!p) {
                snprintf(err, errlen, "process-kill: verify before validate");
                return -EINVAL;
        }
        int r = verify_exit(f, p, err, errlen);
        fds_close(p); /* the fault may last long: hold no pidfds meanwhile */
        return r;
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
            "cgroup= (a whole group: cgroup.kill on v2); once, or every interval=",
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
