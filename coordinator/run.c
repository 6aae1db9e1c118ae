/* The game-day sequencer: hypothesis before, method (serial steps and
 * parallel groups, foreground and background faults), guardrails watched
 * on their own thread from the first fault to the last revert, revert,
 * hypothesis after, rollbacks, DR drill figures, journal and reports.
 *
 * Every fault applied is reverted before this returns, whatever happened
 * (error, deviation, guardrail breach, Ctrl-C); and if this process dies
 * instead, the agents revert on their own when the lease lapses.
 *
 * Threads: the main thread runs the steps; a parallel group runs each of
 * its steps on a thread of its own; the guardrail thread samples and
 * judges guardrails and, on a breach, broadcasts ABORT on connections of
 * its own (an nng req socket carries one request at a time, so it cannot
 * borrow the main thread's); the RTO and RPO-writer threads run probes.
 * r->lock guards the journal, the fault list, the series and the output;
 * each fleet member has its own lock so two parallel steps never share a
 * req socket. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "client.h"
#include "engine.h"
#include "experiment.h"
#include "faultcheck.h"
#include "fl_log.h"
#include "fl_parse.h"
#include "fl_util.h"
#include "report.h"
#include "run.h"
#include "window.h"

bool coord_sleep_ms(uint64_t ms)
{
        uint64_t end = fl_now_mono_ms() + ms;
        while (!coord_interrupted) {
                uint64_t now = fl_now_mono_ms();
                if (now >= end)
                        return true;
                uint64_t slice = end - now < 50 ? end - now : 50;
                struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(slice * 1000000u)};
                nanosleep(&ts, NULL);
        }
        return false;
}

static int hook_validate_fault(void *ud, const char *kind, const struct fl_param *params, size_t n,
                               char *err, size_t errlen)
{
        (void)ud;
        return coord_fault_check(kind, params, n, err, errlen);
}

static const struct coord_validate_hooks hooks = {.validate_fault = hook_validate_fault};

/* ---- run state ------------------------------------------------------------ */

struct active_fault {
        size_t member; /* index into fleet */
        char id[FL_ID_LEN];
        char kind[FL_KIND_LEN];
        char target[FL_NAME_LEN];
        uint64_t expires_ms;
        bool done;
};

struct resolved_target {
        const struct coord_agent **agents; /* owned array, borrowed agents */
        int n;
        uint64_t seed;
};

struct guard_state {
        struct coord_window w;
        uint64_t next_due_ms;   /* mono */
        uint64_t inflight_t0;   /* mono start of the sample in flight, 0 = none */
        uint64_t inflight_wall; /* its wall start */
        size_t samples, failed;
        bool breached;
};

struct run {
        const struct coord_run_opts *o;
        struct coord_experiment exp;
        struct coord_inventory override_inv;
        const struct coord_inventory *inv;
        struct resolved_target *rt; /* exp.n_targets */
        struct coord_fleet fleet;
        pthread_mutex_t *member_locks;  /* fleet.n */
        struct coord_fleet abort_fleet; /* the guardrail thread's own connections */
        struct coord_lease *lease;
        pthread_mutex_t lock;
        struct active_fault *faults;
        size_t n_faults, cap_faults;
        json_t *journal; /* the document */
        json_t *events;  /* borrowed from journal */
        json_t *series;  /* borrowed: probe name -> [[t_ms, ok, latency_ms, value], ...] */
        const char *phase;
        int failures; /* apply/revert/agent failures */
        uint64_t t0_mono;
        bool in_rollbacks;

        /* guardrails */
        atomic_bool breached;
        atomic_bool abort_done; /* the breach's ABORT broadcast has finished */
        atomic_bool guard_stop;
        bool guard_running;
        pthread_t guard_thread;
        struct coord_engine *engine;
        struct guard_state *gs;
        json_t *breach; /* owned until put into the journal */

        /* drill */
        atomic_bool failover_set;
        uint64_t failover_mono, failover_wall;
        bool rto_running;
        pthread_t rto_thread;
        atomic_bool rto_done;
        bool rto_recovered;
        uint64_t rto_ms, rto_recovered_wall;
        unsigned rto_checks;
        bool rpo_running;
        pthread_t rpo_thread;
        atomic_bool rpo_stop;
        uint64_t
            *marker_wall; /* marker_wall[seq] = wall ms the write of seq was acked, 0 = failed */
        size_t n_markers, cap_markers;

        /* output */
        bool live;
        bool live_stop;
        pthread_t live_thread;
        char status[160];
        const char *step_label;
        uint64_t step_end_mono;
};

static bool stopping(struct run *r)
{
        if (coord_interrupted)
                return true;
        return !r->in_rollbacks && atomic_load(&r->breached);
}

/* Sleep up to ms; false if the run is being stopped. */
static bool run_sleep(struct run *r, uint64_t ms)
{
        uint64_t end = fl_now_mono_ms() + ms;
        while (!stopping(r)) {
                uint64_t now = fl_now_mono_ms();
                if (now >= end)
                        return true;
                uint64_t slice = end - now < 20 ? end - now : 20;
                struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(slice * 1000000u)};
                nanosleep(&ts, NULL);
        }
        return false;
}

/* ---- output --------------------------------------------------------------- */

static void status_clear(struct run *r)
{
        if (r->live)
                fputs("\r\033[K", stdout);
}

/* The live status line (TTY only): elapsed, phase, step and time left,
 * active faults, latest probe. Caller holds r->lock. */
static void status_draw(struct run *r)
{
        if (!r->live)
                return;
        uint64_t now = fl_now_mono_ms();
        size_t active = 0;
        for (size_t i = 0; i < r->n_faults; i++)
                active += !r->faults[i].done;
        char left[48] = "", line[512];
        if (r->step_end_mono > now)
                snprintf(left, sizeof(left), ", %.1fs left",
                         (double)(r->step_end_mono - now) / 1e3);
        int cols = 100;
        struct winsize ws;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
                cols = ws.ws_col - 1;
        snprintf(line, sizeof(line), "[%6.1fs] %s: %s%s | faults active: %zu%s%s",
                 (double)(now - r->t0_mono) / 1e3, r->phase, r->step_label ? r->step_label : "-",
                 left, active, r->status[0] ? " | " : "", r->status);
        printf("\r\033[K\033[7m%.*s\033[0m", cols, line);
        fflush(stdout);
}

static void say(struct run *r, bool important, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(struct run *r, bool important, const char *fmt, ...)
{
        if (r->o->quiet && !important)
                return;
        char ts[32];
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        struct tm tm;
        localtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
        va_list ap;
        va_start(ap, fmt);
        pthread_mutex_lock(&r->lock);
        FILE *out = important && r->o->quiet ? stderr : stdout;
        status_clear(r);
        fprintf(out, "[%s.%03ld] ", ts, now.tv_nsec / 1000000);
        vfprintf(out, fmt, ap);
        fputc('\n', out);
        status_draw(r);
        fflush(out);
        pthread_mutex_unlock(&r->lock);
        va_end(ap);
}

static void *live_main(void *arg)
{
        struct run *r = arg;
        for (;;) {
                pthread_mutex_lock(&r->lock);
                bool stop = r->live_stop;
                if (!stop)
                        status_draw(r);
                pthread_mutex_unlock(&r->lock);
                if (stop)
                        return NULL;
                struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000000L};
                nanosleep(&ts, NULL);
        }
}

static void set_step(struct run *r, const char *label, uint64_t dur_ms)
{
        pthread_mutex_lock(&r->lock);
        r->step_label = label;
        r->step_end_mono = dur_ms ? fl_now_mono_ms() + dur_ms : 0;
        pthread_mutex_unlock(&r->lock);
}

/* ---- journal ---------------------------------------------------------------- */

/* Append an event; the caller fills it under r->lock (use ev_set). */
static json_t *event_locked(struct run *r, const char *type)
{
        json_t *e = json_pack("{s:I, s:s, s:s}", "t", (json_int_t)fl_now_wall_ms(), "phase",
                              r->phase, "type", type);
        if (e)
                json_array_append_new(r->events, e);
        return e;
}

static void add_sample(struct run *r, const char *name, uint64_t t_wall, bool ok, uint64_t lat_us,
                       double value)
{
        pthread_mutex_lock(&r->lock);
        json_t *a = json_object_get(r->series, name);
        if (!a) {
                a = json_array();
                json_object_set_new(r->series, name, a);
        }
        if (a)
                json_array_append_new(a, json_pack("[I, i, f, f]", (json_int_t)t_wall, ok ? 1 : 0,
                                                   (double)lat_us / 1000.0, value));
        pthread_mutex_unlock(&r->lock);
}

static int write_json(json_t *doc, const char *path)
{
        char tmp[4200 + 8];
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        if (json_dump_file(doc, tmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 ||
            rename(tmp, path) < 0) {
                fprintf(stderr, "faultline: cannot write journal %s: %s\n", path, strerror(errno));
                unlink(tmp);
                return -EIO;
        }
        return 0;
}

/* ---- probes ----------------------------------------------------------------- */

static bool run_probe(struct run *r, const struct coord_probe *p)
{
        struct coord_probe_result res;
        memset(&res, 0, sizeof(res));
        int rv = coord_probe_run(p, &res);
        bool ok = rv == 0 && res.ok;
        pthread_mutex_lock(&r->lock);
        json_t *e = event_locked(r, "probe");
        if (e) {
                json_object_set_new(e, "name", json_string(p->name));
                json_object_set_new(e, "ok", json_boolean(ok));
                json_object_set_new(e, "detail", json_string(res.detail));
                json_object_set_new(e, "value", json_real(res.value));
                json_object_set_new(e, "latency_us", json_integer((json_int_t)res.latency_us));
                json_object_set_new(e, "started_ms", json_integer((json_int_t)res.started_wall_ms));
        }
        snprintf(r->status, sizeof(r->status), "%.40s %s %.100s", p->name, ok ? "ok" : "FAILED",
                 res.detail);
        pthread_mutex_unlock(&r->lock);
        add_sample(r, p->name, res.started_wall_ms, ok, res.latency_us, res.value);
        say(r, false, "%s: probe %s %s (%s)", r->phase, p->name, ok ? "ok" : "FAILED", res.detail);
        return ok;
}

/* All probes; true if every one held. Runs them all even after a failure
 * so the journal shows the whole picture. */
static bool hypothesis(struct run *r, const char *phase)
{
        r->phase = phase;
        bool held = true;
        for (size_t i = 0; i < r->exp.n_steady_state && !coord_interrupted; i++)
                held &= run_probe(r, &r->exp.steady_state[i]);
        pthread_mutex_lock(&r->lock);
        json_t *e = event_locked(r, "hypothesis");
        if (e)
                json_object_set_new(e, "held", json_boolean(held));
        pthread_mutex_unlock(&r->lock);
        say(r, !held, "%s: steady-state hypothesis %s", phase, held ? "held" : "DEVIATED");
        return held;
}

/* ---- faults ------------------------------------------------------------------- */

/* Lock the members in ascending index order (no deadlock between two
 * parallel steps that share agents). idx need not be sorted. */
static void lock_members(struct run *r, const size_t *idx, size_t n, bool lock)
{
        for (size_t m = 0; m < r->fleet.n; m++)
                for (size_t i = 0; i < n; i++)
                        if (idx[i] == m) {
                                if (lock)
                                        pthread_mutex_lock(&r->member_locks[m]);
                                else
                                        pthread_mutex_unlock(&r->member_locks[m]);
                                break;
                        }
}

/* Returns the index of the new entry or -ENOMEM. Caller holds r->lock. */
static ssize_t track_fault_locked(struct run *r, size_t member, const struct fl_fault_info *fi)
{
        if (r->n_faults == r->cap_faults) {
                size_t cap = r->cap_faults ? r->cap_faults * 2 : 16;
                struct active_fault *n = realloc(r->faults, cap * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                r->faults = n;
                r->cap_faults = cap;
        }
        struct active_fault *a = &r->faults[r->n_faults];
        memset(a, 0, sizeof(*a));
        a->member = member;
        snprintf(a->id, sizeof(a->id), "%s", fi->id);
        snprintf(a->kind, sizeof(a->kind), "%s", fi->kind);
        snprintf(a->target, sizeof(a->target), "%s", fi->target);
        a->expires_ms = fi->expires_ms;
        return (ssize_t)r->n_faults++;
}

static const struct resolved_target *find_rt(struct run *r, const char *name)
{
        for (size_t i = 0; i < r->exp.n_targets; i++)
                if (!strcmp(r->exp.targets[i].name, name))
                        return &r->rt[i];
        return NULL;
}

static int start_guardrails(struct run *r);
static void start_drill_rto(struct run *r);

/* Revert the listed faults (indices into r->faults), skipping done ones. */
static void revert_list(struct run *r, const size_t *list, size_t n, const char *why)
{
        for (size_t k = 0; k < n; k++) {
                pthread_mutex_lock(&r->lock);
                struct active_fault a = r->faults[list[k]];
                pthread_mutex_unlock(&r->lock);
                if (a.done)
                        continue;
                struct coord_member *m = &r->fleet.m[a.member];
                struct fl_request req = {.type = FL_MSG_REVERT};
                struct fl_reply rep;
                snprintf(req.fault_id, sizeof(req.fault_id), "%s", a.id);
                snprintf(req.requester, sizeof(req.requester), "%s", r->o->requester);
                pthread_mutex_lock(&r->member_locks[a.member]);
                int rv = fl_conn_call(m->conn, &req, &rep, r->o->call_timeout_ms);
                pthread_mutex_unlock(&r->member_locks[a.member]);
                bool ok = rv == 0 && (rep.status == FL_ST_OK || rep.status == FL_ST_NOT_FOUND);
                bool gone = rv == 0 && rep.status == FL_ST_NOT_FOUND;
                const char *by = !gone                       ? "coordinator"
                                 : atomic_load(&r->breached) ? "guardrail-abort"
                                                             : "agent-ttl";
                const char *err = rv < 0 ? coord_call_error(rv) : rep.msg;
                pthread_mutex_lock(&r->lock);
                json_t *e = event_locked(r, "fault-revert");
                if (e) {
                        json_object_set_new(e, "agent", json_string(m->agent->name));
                        json_object_set_new(e, "id", json_string(a.id));
                        json_object_set_new(e, "kind", json_string(a.kind));
                        json_object_set_new(e, "why", json_string(why));
                        json_object_set_new(e, "ok", json_boolean(ok));
                        if (ok)
                                json_object_set_new(e, "by", json_string(by));
                        else
                                json_object_set_new(e, "error", json_string(err));
                }
                if (ok)
                        r->faults[list[k]].done = true;
                else
                        r->failures++;
                pthread_mutex_unlock(&r->lock);
                if (ok)
                        say(r, false, "revert: %s %s on %s %s", a.kind, a.id, m->agent->name,
                            !gone                       ? "reverted"
                            : atomic_load(&r->breached) ? "already reverted by the abort"
                                                        : "already reverted by the agent at its "
                                                          "deadline");
                else
                        say(r, true,
                            "revert: %s %s on %s FAILED: %s (the agent reverts it when the lease "
                            "lapses)",
                            a.kind, a.id, m->agent->name, err);
                if (rv == 0)
                        fl_reply_free(&rep);
        }
}

/* Revert every fault still marked active. */
static void revert_all(struct run *r, const char *why)
{
        const char *saved = r->phase;
        r->phase = "revert";
        pthread_mutex_lock(&r->lock);
        size_t n = r->n_faults;
        pthread_mutex_unlock(&r->lock);
        size_t *list = calloc(n ? n : 1, sizeof(*list));
        if (list) {
                for (size_t i = 0; i < n; i++)
                        list[i] = i;
                revert_list(r, list, n, why);
        }
        free(list);
        r->phase = saved;
}

/* Apply one fault step on every agent of its target, concurrently. A
 * version 2 foreground fault then holds the step for its duration and
 * reverts what it applied. */
static int step_fault(struct run *r, const struct coord_fault_step *fs)
{
        const struct resolved_target *t = find_rt(r, fs->target);
        if (!t) {
                say(r, true, "%s: unknown target %s", r->phase, fs->target);
                return -EINVAL;
        }
        int n = t->n;
        if (!r->guard_running && start_guardrails(r) < 0)
                say(r, true, "guardrails: cannot start the checker thread");
        if (stopping(r))
                return -EINTR;
        struct fl_request req = {.type = FL_MSG_APPLY,
                                 .duration_ms = fs->duration_ms,
                                 .lease_ttl_ms = coord_lease_ttl(r->lease)};
        snprintf(req.kind, sizeof(req.kind), "%s", fs->kind);
        snprintf(req.lease, sizeof(req.lease), "%s", coord_lease_id(r->lease));
        snprintf(req.requester, sizeof(req.requester), "%s", r->o->requester);
        req.params = fs->params;
        req.n_params = fs->n_params;

        struct fl_conn **conns = calloc((size_t)n, sizeof(*conns));
        size_t *idx = calloc((size_t)n, sizeof(*idx));
        size_t *mine = calloc((size_t)n, sizeof(*mine));
        struct fl_reply *replies = calloc((size_t)n, sizeof(*replies));
        int *rcs = calloc((size_t)n, sizeof(*rcs));
        size_t n_mine = 0;
        int rv = 0;
        if (!conns || !idx || !replies || !rcs || !mine) {
                rv = -ENOMEM;
                goto out;
        }
        for (int i = 0; i < n; i++) {
                struct coord_member *m = coord_fleet_find(&r->fleet, t->agents[i]->name);
                idx[i] = (size_t)(m - r->fleet.m);
                conns[i] = m->conn;
                coord_lease_add(r->lease, t->agents[i]->address);
        }
        if (fs->failover)
                atomic_store(&r->rpo_stop, true); /* the writer stamps up to the fault */
        lock_members(r, idx, (size_t)n, true);
        uint64_t t_send = fl_now_mono_ms(), w_send = fl_now_wall_ms();
        fl_conn_call_many(conns, (size_t)n, &req, replies, rcs, r->o->call_timeout_ms);
        uint64_t t_back = fl_now_mono_ms(), w_back = fl_now_wall_ms();
        lock_members(r, idx, (size_t)n, false);
        char d[32];
        fl_format_duration(fs->duration_ms, d, sizeof(d));
        for (int i = 0; i < n; i++) {
                const char *name = t->agents[i]->name;
                bool ok = rcs[i] == 0 && replies[i].status == FL_ST_OK && replies[i].n_faults == 1;
                const char *why = rcs[i] < 0 ? coord_call_error(rcs[i]) : replies[i].msg;
                const struct fl_fault_info *fi = ok ? &replies[i].faults[0] : NULL;
                pthread_mutex_lock(&r->lock);
                json_t *e = event_locked(r, "fault-apply");
                if (e) {
                        json_object_set_new(e, "agent", json_string(name));
                        json_object_set_new(e, "kind", json_string(fs->kind));
                        json_object_set_new(e, "duration_ms",
                                            json_integer((json_int_t)fs->duration_ms));
                        json_object_set_new(e, "background", json_boolean(fs->background));
                        if (fs->failover)
                                json_object_set_new(e, "failover", json_true());
                        json_object_set_new(e, "ok", json_boolean(ok));
                }
                if (!ok) {
                        if (e)
                                json_object_set_new(e, "error", json_string(why));
                        pthread_mutex_unlock(&r->lock);
                        say(r, true, "%s: %s on %s FAILED: %s", r->phase, fs->kind, name, why);
                        rv = -EIO;
                } else {
                        if (e) {
                                json_object_set_new(e, "id", json_string(fi->id));
                                json_object_set_new(e, "target", json_string(fi->target));
                                json_object_set_new(e, "backend", json_string(fi->backend));
                                json_object_set_new(e, "expires_ms",
                                                    json_integer((json_int_t)fi->expires_ms));
                        }
                        ssize_t k = track_fault_locked(r, idx[i], fi);
                        pthread_mutex_unlock(&r->lock);
                        if (k < 0)
                                rv = -ENOMEM;
                        else
                                mine[n_mine++] = (size_t)k;
                        say(r, false, "%s: applied %s %s on %s: %s (backend %s) for %s", r->phase,
                            fs->kind, fi->id, name, fi->target, fi->backend, d);
                }
                fl_reply_free(&replies[i]);
        }
        if (fs->failover && rv == 0) {
                /* The fault happened between send and reply: take the middle. */
                r->failover_mono = (t_send + t_back) / 2;
                r->failover_wall = (w_send + w_back) / 2;
                atomic_store(&r->failover_set, true);
                pthread_mutex_lock(&r->lock);
                json_t *e = event_locked(r, "failover");
                if (e)
                        json_object_set_new(e, "at_ms", json_integer((json_int_t)r->failover_wall));
                pthread_mutex_unlock(&r->lock);
                start_drill_rto(r);
        }
        bool hold = r->exp.version >= 2 && !fs->background && rv == 0;
        if (hold) {
                if (!run_sleep(r, fs->duration_ms))
                        rv = -EINTR;
                else
                        revert_list(r, mine, n_mine, "step-complete");
        }
out:
        free(conns);
        free(idx);
        free(mine);
        free(replies);
        free(rcs);
        if (rv < 0 && rv != -EINTR) {
                pthread_mutex_lock(&r->lock);
                r->failures++;
                pthread_mutex_unlock(&r->lock);
        }
        return rv;
}

/* ---- steps ---------------------------------------------------------------------- */

static int run_steps(struct run *r, const struct coord_step *steps, size_t n, const char *prefix,
                     atomic_bool *probes_failed);

struct par_arg {
        struct run *r;
        const struct coord_step *step;
        char label[48];
        atomic_bool *probes_failed;
        int rv;
};

static void *par_main(void *arg)
{
        struct par_arg *a = arg;
        a->rv = run_steps(a->r, a->step, 1, a->label, a->probes_failed);
        return NULL;
}

static void step_desc(const struct coord_step *s, char *buf, size_t size)
{
        char d[32];
        switch (s->kind) {
        case COORD_STEP_FAULT:
                fl_format_duration(s->fault.duration_ms, d, sizeof(d));
                snprintf(buf, size, "fault %s on %s for %s%s%s", s->fault.kind, s->fault.target, d,
                         s->fault.background ? " (background)" : "",
                         s->fault.failover ? " (failover)" : "");
                break;
        case COORD_STEP_WAIT:
                fl_format_duration(s->wait_ms, d, sizeof(d));
                snprintf(buf, size, "wait %s", d);
                break;
        case COORD_STEP_PROBE:
                snprintf(buf, size, "probe %s", s->probe.name);
                break;
        case COORD_STEP_PARALLEL:
                snprintf(buf, size, "parallel group of %zu steps", s->group.n);
                break;
        }
}

static void step_event(struct run *r, const char *type, const char *label, const char *desc, int rv)
{
        pthread_mutex_lock(&r->lock);
        json_t *e = event_locked(r, type);
        if (e) {
                json_object_set_new(e, "step", json_string(label));
                json_object_set_new(e, "what", json_string(desc));
                if (!strcmp(type, "step-end"))
                        json_object_set_new(e, "result",
                                            json_string(rv == 0        ? "ok"
                                                        : rv == -EINTR ? "interrupted"
                                                                       : "failed"));
        }
        pthread_mutex_unlock(&r->lock);
}

/* Run a list of steps. Returns 0, -EINTR (interrupted or aborted) or -EIO
 * (a fault could not be applied). Probe failures are recorded (and set
 * *probes_failed), not fatal: the hypothesis decides the verdict. */
static int run_steps(struct run *r, const struct coord_step *steps, size_t n, const char *prefix,
                     atomic_bool *probes_failed)
{
        for (size_t i = 0; i < n; i++) {
                if (stopping(r))
                        return -EINTR;
                const struct coord_step *s = &steps[i];
                char label[32], desc[160];
                if (prefix && n == 1)
                        snprintf(label, sizeof(label), "%s", prefix);
                else
                        snprintf(label, sizeof(label), "%s%s%zu", prefix ? prefix : "",
                                 prefix ? "." : "", i + 1);
                step_desc(s, desc, sizeof(desc));
                step_event(r, "step-start", label, desc, 0);
                if (!prefix || !strchr(prefix, '.'))
                        set_step(r, NULL, 0);
                int rv = 0;
                switch (s->kind) {
                case COORD_STEP_FAULT:
                        if (r->exp.version >= 2 && !s->fault.background)
                                set_step(r, s->fault.kind, s->fault.duration_ms);
                        else
                                set_step(r, s->fault.kind, 0);
                        rv = step_fault(r, &s->fault);
                        break;
                case COORD_STEP_WAIT:
                        set_step(r, "wait", s->wait_ms);
                        say(r, false, "%s: step %s: %s", r->phase, label, desc);
                        if (!run_sleep(r, s->wait_ms))
                                rv = -EINTR;
                        break;
                case COORD_STEP_PROBE:
                        set_step(r, s->probe.name, 0);
                        if (!run_probe(r, &s->probe) && probes_failed)
                                atomic_store(probes_failed, true);
                        break;
                case COORD_STEP_PARALLEL: {
                        say(r, false, "%s: step %s: %s", r->phase, label, desc);
                        size_t k = s->group.n;
                        struct par_arg *args = calloc(k, sizeof(*args));
                        pthread_t *th = calloc(k, sizeof(*th));
                        bool *started = calloc(k, sizeof(*started));
                        if (!args || !th || !started) {
                                free(args);
                                free(th);
                                free(started);
                                return -ENOMEM;
                        }
                        for (size_t j = 0; j < k; j++) {
                                args[j] = (struct par_arg){.r = r,
                                                           .step = &s->group.steps[j],
                                                           .probes_failed = probes_failed};
                                snprintf(args[j].label, sizeof(args[j].label), "%.24s.%u", label,
                                         (unsigned)(j + 1) % 10000u);
                                started[j] = pthread_create(&th[j], NULL, par_main, &args[j]) == 0;
                                if (!started[j]) /* no thread: run it here, in order */
                                        par_main(&args[j]);
                        }
                        for (size_t j = 0; j < k; j++) {
                                if (started[j])
                                        pthread_join(th[j], NULL);
                                if (args[j].rv == -EIO || (args[j].rv < 0 && rv == 0))
                                        rv = args[j].rv;
                        }
                        free(args);
                        free(th);
                        free(started);
                        break;
                }
                }
                step_event(r, "step-end", label, desc, rv);
                if (rv < 0)
                        return rv;
        }
        return stopping(r) ? -EINTR : 0;
}

/* ---- guardrails ------------------------------------------------------------------ */

/* Breach: ABORT with this run's lease to every agent at once, on the
 * guardrail thread's own connections. Called once, from that thread. */
static void guard_abort(struct run *r, size_t gi, const char *why, uint64_t sample_wall)
{
        uint64_t detected = fl_now_wall_ms(), det_mono = fl_now_mono_us();
        atomic_store(&r->breached, true);
        size_t n = r->abort_fleet.n;
        struct fl_reply *replies = calloc(n ? n : 1, sizeof(*replies));
        int *rcs = calloc(n ? n : 1, sizeof(*rcs));
        struct fl_request req = {.type = FL_MSG_ABORT};
        snprintf(req.lease, sizeof(req.lease), "%s", coord_lease_id(r->lease));
        snprintf(req.requester, sizeof(req.requester), "%s", r->o->requester);
        if (replies && rcs)
                coord_fleet_broadcast(&r->abort_fleet, &req, replies, rcs, r->o->call_timeout_ms);
        uint64_t done = fl_now_wall_ms(), done_mono = fl_now_mono_us();
        json_t *agents = json_array();
        unsigned total = 0;
        bool all_ok = replies && rcs;
        for (size_t i = 0; replies && rcs && i < n; i++) {
                bool ok = rcs[i] == 0 && replies[i].status == FL_ST_OK;
                all_ok &= ok;
                total += ok ? replies[i].count : 0;
                json_array_append_new(agents,
                                      json_pack("{s:s, s:b, s:i, s:s}", "agent",
                                                r->abort_fleet.m[i].agent->name, "ok", ok,
                                                "reverted", ok ? (int)replies[i].count : 0, "error",
                                                ok           ? ""
                                                : rcs[i] < 0 ? coord_call_error(rcs[i])
                                                             : replies[i].msg));
                if (rcs[i] == 0)
                        fl_reply_free(&replies[i]);
        }
        free(replies);
        free(rcs);
        const char *name = r->exp.guardrails[gi].probe.name;
        pthread_mutex_lock(&r->lock);
        r->breach =
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:f, s:f, s:b, s:i, s:o}", "guardrail", name,
                      "reason", why, "sample_started_ms", (json_int_t)sample_wall, "detected_ms",
                      (json_int_t)detected, "all_reverted_ms", (json_int_t)done,
                      "detect_to_reverted_ms", (double)(done_mono - det_mono) / 1000.0,
                      "sample_to_reverted_ms", (double)(done - sample_wall), "all_agents_confirmed",
                      all_ok, "faults_reverted", (int)total, "agents", agents);
        json_t *e = event_locked(r, "guardrail-breach");
        if (e) {
                json_object_set_new(e, "guardrail", json_string(name));
                json_object_set_new(e, "reason", json_string(why));
        }
        e = event_locked(r, "abort");
        if (e) {
                json_object_set_new(e, "t", json_integer((json_int_t)done));
                json_object_set_new(e, "faults_reverted", json_integer(total));
                json_object_set_new(e, "all_agents_confirmed", json_boolean(all_ok));
        }
        r->failures += all_ok ? 0 : 1;
        pthread_mutex_unlock(&r->lock);
        atomic_store(&r->abort_done, true);
        say(r, true, "GUARDRAIL BREACHED: %s: %s", name, why);
        say(r, true, "abort: %u fault(s) reverted on %zu agent(s) %.1f ms after the breach%s",
            total, n, (double)(done_mono - det_mono) / 1000.0,
            all_ok ? "" : "; SOME AGENTS DID NOT CONFIRM");
}

static void *guard_main(void *arg)
{
        struct run *r = arg;
        size_t n = r->exp.n_guardrails;
        struct coord_engine_done done[64];
        uint64_t keep = 0;
        for (size_t i = 0; i < n; i++) {
                const struct coord_guardrail *g = &r->exp.guardrails[i];
                uint64_t k = g->window_ms;
                if (g->has_slo && g->slo.long_ms > k)
                        k = g->slo.long_ms;
                keep = k > keep ? k : keep;
                r->gs[i].next_due_ms = fl_now_mono_ms();
        }
        while (!atomic_load(&r->guard_stop) && !atomic_load(&r->breached)) {
                uint64_t now = fl_now_mono_ms(), next = now + 100;
                for (size_t i = 0; i < n; i++) {
                        struct guard_state *s = &r->gs[i];
                        /* One sample per guardrail in flight: a probe slower
                         * than its interval delays its next sample, never the
                         * other guardrails. */
                        if (!s->inflight_t0 && now >= s->next_due_ms) {
                                s->inflight_t0 = now;
                                s->inflight_wall = fl_now_wall_ms();
                                if (coord_engine_submit(r->engine, &r->exp.guardrails[i].probe,
                                                        NULL, i) < 0)
                                        s->inflight_t0 = 0;
                                s->next_due_ms += r->exp.guardrails[i].interval_ms;
                                if (s->next_due_ms < now)
                                        s->next_due_ms = now + r->exp.guardrails[i].interval_ms;
                        }
                        if (!s->inflight_t0 && s->next_due_ms < next)
                                next = s->next_due_ms;
                }
                now = fl_now_mono_ms();
                int wait = next > now ? (int)(next - now) : 0;
                int got = coord_engine_poll(r->engine, wait, done, FL_ARRAY_SIZE(done));
                for (int k = 0; k < got; k++) {
                        size_t i = (size_t)done[k].token;
                        struct guard_state *s = &r->gs[i];
                        const struct coord_guardrail *g = &r->exp.guardrails[i];
                        bool ok = done[k].rv == 0 && done[k].res.ok;
                        struct coord_sample smp = {.t_ms = s->inflight_t0,
                                                   .ok = ok,
                                                   .latency_us = done[k].res.latency_us,
                                                   .value = done[k].res.value};
                        uint64_t sample_wall = s->inflight_wall;
                        s->inflight_t0 = 0;
                        s->samples++;
                        s->failed += !ok;
                        coord_window_add(&s->w, &smp);
                        coord_window_prune(&s->w, fl_now_mono_ms(), keep);
                        add_sample(r, g->probe.name, sample_wall, ok, smp.latency_us, smp.value);
                        if (!ok)
                                say(r, false, "guardrail %s: sample FAILED (%s)", g->probe.name,
                                    done[k].res.detail);
                        char why[256];
                        if (!s->breached &&
                            coord_guard_breached(g, &s->w, fl_now_mono_ms(), why, sizeof(why))) {
                                s->breached = true;
                                /* The breach started with the oldest failing sample still
                                 * counted, for "failures"; else with this sample. */
                                guard_abort(r, i, why, sample_wall);
                                break;
                        }
                }
        }
        return NULL;
}

static int start_guardrails(struct run *r)
{
        r->guard_running = true; /* tried once, whatever happens */
        if (r->exp.n_guardrails == 0)
                return 0;
        r->gs = calloc(r->exp.n_guardrails, sizeof(*r->gs));
        if (!r->gs || coord_engine_new(&r->engine) < 0)
                return -ENOMEM;
        say(r, false, "guardrails: watching %zu guardrail(s) from now until the last revert",
            r->exp.n_guardrails);
        int rv = pthread_create(&r->guard_thread, NULL, guard_main, r);
        if (rv != 0) {
                r->guard_running = false;
                return -rv;
        }
        return 0;
}

static void stop_guardrails(struct run *r)
{
        if (!r->guard_running || !r->gs)
                return;
        atomic_store(&r->guard_stop, true);
        coord_engine_wakeup(r->engine);
        pthread_join(r->guard_thread, NULL);
        json_t *arr = json_array();
        uint64_t now = fl_now_mono_ms();
        for (size_t i = 0; i < r->exp.n_guardrails; i++) {
                const struct coord_guardrail *g = &r->exp.guardrails[i];
                struct coord_wstats st;
                coord_window_stats(&r->gs[i].w, now, g->window_ms, &st);
                json_array_append_new(
                    arr,
                    json_pack("{s:s, s:I, s:I, s:I, s:b, s:f, s:f, s:f, s:f}", "name",
                              g->probe.name, "interval_ms", (json_int_t)g->interval_ms, "samples",
                              (json_int_t)r->gs[i].samples, "failed", (json_int_t)r->gs[i].failed,
                              "breached", r->gs[i].breached, "success_ratio", st.success_ratio,
                              "p50_ms", (double)st.p50_us / 1000.0, "p95_ms",
                              (double)st.p95_us / 1000.0, "p99_ms", (double)st.p99_us / 1000.0));
                coord_window_free(&r->gs[i].w);
        }
        pthread_mutex_lock(&r->lock);
        json_object_set_new(r->journal, "guardrails", arr);
        pthread_mutex_unlock(&r->lock);
        coord_engine_free(r->engine);
        r->engine = NULL;
        free(r->gs);
        r->gs = NULL;
        r->guard_running = false;
}

/* ---- DR drill: RTO and RPO ------------------------------------------------------- */

/* From the failover fault on, re-check the steady-state hypothesis every
 * poll until it holds: RTO = start of the first check that held - fault. */
static void *rto_main(void *arg)
{
        struct run *r = arg;
        const struct coord_rto *rto = &r->exp.rto;
        uint64_t deadline = r->failover_mono + rto->timeout_ms;
        while (!stopping(r) && fl_now_mono_ms() < deadline) {
                uint64_t t0 = fl_now_mono_ms(), w0 = fl_now_wall_ms();
                bool held = r->exp.n_steady_state > 0;
                for (size_t i = 0; i < r->exp.n_steady_state && held; i++) {
                        struct coord_probe_result res;
                        int rv = coord_probe_run(&r->exp.steady_state[i], &res);
                        held = rv == 0 && res.ok;
                        add_sample(r, r->exp.steady_state[i].name, res.started_wall_ms, held,
                                   res.latency_us, res.value);
                }
                r->rto_checks++;
                if (held) {
                        r->rto_recovered = true;
                        r->rto_ms = t0 - r->failover_mono;
                        r->rto_recovered_wall = w0;
                        say(r, false, "drill: steady state back %.2f s after the failover fault",
                            (double)r->rto_ms / 1000.0);
                        break;
                }
                uint64_t next = t0 + rto->poll_ms, now = fl_now_mono_ms();
                if (next > now && !run_sleep(r, next - now))
                        break;
        }
        atomic_store(&r->rto_done, true);
        return NULL;
}

static void start_drill_rto(struct run *r)
{
        if (r->rto_running || r->exp.n_steady_state == 0)
                return;
        r->rto_running = pthread_create(&r->rto_thread, NULL, rto_main, r) == 0;
}

/* Writes marker 1, 2, 3... every interval until the failover fault. */
static void *rpo_main(void *arg)
{
        struct run *r = arg;
        const struct coord_rpo *rpo = &r->exp.rpo;
        uint64_t seq = 0;
        while (!atomic_load(&r->rpo_stop) && !stopping(r)) {
                uint64_t t0 = fl_now_mono_ms();
                char marker[24];
                seq++;
                snprintf(marker, sizeof(marker), "%llu", (unsigned long long)seq);
                struct coord_probe_result res;
                int rv = coord_probe_run_marked(&rpo->writer, marker, &res);
                bool ok = rv == 0 && res.ok;
                uint64_t acked = fl_now_wall_ms();
                pthread_mutex_lock(&r->lock);
                if (seq >= r->cap_markers) {
                        size_t cap = r->cap_markers ? r->cap_markers * 2 : 256;
                        uint64_t *nv = realloc(r->marker_wall, cap * sizeof(*nv));
                        if (nv) {
                                memset(nv + r->cap_markers, 0,
                                       (cap - r->cap_markers) * sizeof(*nv));
                                r->marker_wall = nv;
                                r->cap_markers = cap;
                        }
                }
                /* A write that ended after the fault is not "before the fault". */
                bool before = !atomic_load(&r->failover_set) || acked <= r->failover_wall;
                if (seq < r->cap_markers)
                        r->marker_wall[seq] = ok && before ? acked : 0;
                r->n_markers = seq;
                pthread_mutex_unlock(&r->lock);
                add_sample(r, rpo->writer.name, res.started_wall_ms, ok, res.latency_us,
                           (double)seq);
                uint64_t next = t0 + rpo->interval_ms, now = fl_now_mono_ms();
                while (next > now && !atomic_load(&r->rpo_stop) && !stopping(r)) {
                        uint64_t slice = next - now < 10 ? next - now : 10;
                        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)(slice * 1000000u)};
                        nanosleep(&ts, NULL);
                        now = fl_now_mono_ms();
                }
        }
        return NULL;
}

/* Newest marker in the reader's output: group 1 of marker-regex, or the
 * first run of digits. */
static bool parse_marker(const char *re, const char *out, uint64_t *ret)
{
        const char *p = out, *end = NULL;
        regex_t rx;
        regmatch_t m[2];
        if (re) {
                char why[128];
                if (fl_regex_check_size(re, why, sizeof(why)) < 0 ||
                    regcomp(&rx, re, REG_EXTENDED | REG_NEWLINE) != 0)
                        return false;
                int rc = regexec(&rx, out, 2, m, 0);
                regfree(&rx);
                if (rc != 0 || m[1].rm_so < 0)
                        return false;
                p = out + m[1].rm_so;
                end = out + m[1].rm_eo;
        } else {
                p += strcspn(p, "0123456789");
                end = p + strspn(p, "0123456789");
        }
        if (end == p || end - p > 19)
                return false;
        char buf[24];
        snprintf(buf, sizeof(buf), "%.*s", (int)(end - p), p);
        return fl_parse_u64(buf, ret) == 0;
}

/* Join the drill threads and put the measured RTO / RPO in the journal.
 * Returns false if a declared target was missed. */
static bool finish_drill(struct run *r)
{
        const struct coord_experiment *e = &r->exp;
        bool ok = true;
        if (!e->has_failover && !e->rpo.enabled)
                return true;
        if (r->rpo_running) {
                atomic_store(&r->rpo_stop, true);
                pthread_join(r->rpo_thread, NULL);
                r->rpo_running = false;
        }
        if (r->rto_running) {
                /* The RTO thread gives up on its own at rto.timeout. */
                while (!atomic_load(&r->rto_done) && !coord_interrupted) {
                        struct timespec ts = {.tv_sec = 0, .tv_nsec = 20 * 1000000L};
                        nanosleep(&ts, NULL);
                }
                pthread_join(r->rto_thread, NULL);
                r->rto_running = false;
        }
        json_t *drill = json_object();
        bool failed_over = atomic_load(&r->failover_set);
        if (e->has_failover) {
                json_t *j = json_pack("{s:b, s:b, s:I, s:i}", "failover_applied", failed_over,
                                      "recovered", r->rto_recovered, "failover_ms",
                                      (json_int_t)r->failover_wall, "checks", (int)r->rto_checks);
                if (r->rto_recovered) {
                        json_object_set_new(j, "measured_ms", json_integer((json_int_t)r->rto_ms));
                        json_object_set_new(j, "recovered_ms",
                                            json_integer((json_int_t)r->rto_recovered_wall));
                }
                bool pass = failed_over && r->rto_recovered &&
                            (!e->rto.has_target || r->rto_ms <= e->rto.target_ms);
                if (e->rto.has_target) {
                        json_object_set_new(j, "target_ms",
                                            json_integer((json_int_t)e->rto.target_ms));
                        json_object_set_new(j, "ok", json_boolean(pass));
                        ok &= pass;
                }
                json_object_set_new(drill, "rto", j);
                char tg[32] = "";
                if (e->rto.has_target)
                        fl_format_duration(e->rto.target_ms, tg, sizeof(tg));
                if (r->rto_recovered)
                        say(r, !pass, "drill: RTO %.2f s%s%s%s", (double)r->rto_ms / 1000.0,
                            e->rto.has_target ? " (target " : "", tg,
                            e->rto.has_target ? (pass ? ": met)" : ": MISSED)") : "");
                else
                        say(r, true,
                            "drill: RTO not measured: the steady state did not come back "
                            "within the RTO timeout");
        }
        if (e->rpo.enabled) {
                json_t *j = json_object();
                bool pass = false;
                uint64_t marker = 0;
                struct coord_probe_result res;
                memset(&res, 0, sizeof(res));
                if (failed_over) {
                        int rv = coord_probe_run(&e->rpo.reader, &res);
                        add_sample(r, e->rpo.reader.name, res.started_wall_ms, rv == 0 && res.ok,
                                   res.latency_us, res.value);
                        bool got = rv == 0 && res.ok &&
                                   parse_marker(e->rpo.marker_regex, res.output, &marker);
                        size_t last_acked = 0;
                        pthread_mutex_lock(&r->lock);
                        for (size_t i = 1; i <= r->n_markers && i < r->cap_markers; i++)
                                if (r->marker_wall[i])
                                        last_acked = i;
                        uint64_t mw = got && marker < r->cap_markers && marker <= r->n_markers
                                          ? r->marker_wall[marker]
                                          : 0;
                        json_object_set_new(j, "markers_written",
                                            json_integer((json_int_t)r->n_markers));
                        json_object_set_new(j, "last_acked_marker",
                                            json_integer((json_int_t)last_acked));
                        pthread_mutex_unlock(&r->lock);
                        json_object_set_new(j, "reader", json_string(res.detail));
                        if (!got)
                                say(r, true,
                                    "drill: RPO not measured: the reader found no marker (%s)",
                                    res.detail);
                        else if (!mw)
                                say(r, true,
                                    "drill: RPO not measured: marker %llu was never acknowledged "
                                    "before the fault",
                                    (unsigned long long)marker);
                        else {
                                uint64_t rpo = r->failover_wall > mw ? r->failover_wall - mw : 0;
                                pass = rpo <= e->rpo.target_ms;
                                json_object_set_new(j, "surviving_marker",
                                                    json_integer((json_int_t)marker));
                                json_object_set_new(j, "marker_written_ms",
                                                    json_integer((json_int_t)mw));
                                json_object_set_new(j, "measured_ms",
                                                    json_integer((json_int_t)rpo));
                                char tg[32];
                                fl_format_duration(e->rpo.target_ms, tg, sizeof(tg));
                                say(r, !pass,
                                    "drill: RPO %.2f s: newest surviving marker %llu of %llu "
                                    "acknowledged (target %s: %s)",
                                    (double)rpo / 1000.0, (unsigned long long)marker,
                                    (unsigned long long)last_acked, tg, pass ? "met" : "MISSED");
                        }
                }
                json_object_set_new(j, "target_ms", json_integer((json_int_t)e->rpo.target_ms));
                json_object_set_new(j, "ok", json_boolean(pass));
                json_object_set_new(drill, "rpo", j);
                ok &= pass;
        }
        pthread_mutex_lock(&r->lock);
        json_object_set_new(r->journal, "drill", drill);
        pthread_mutex_unlock(&r->lock);
        return ok;
}
static int load(const char *path, const struct coord_run_opts *o, struct run *r)
{
        struct coord_diags diags = {0};
        int rv = coord_experiment_load(path, &hooks, &r->exp, &diags);
        if (rv < 0) {
                coord_diags_print(&diags, stderr);
                coord_diags_free(&diags);
                return rv;
        }
        if (o->inventory_override) {
                rv = coord_inventory_load(o->inventory_override, &r->override_inv, &diags);
                if (rv < 0) {
                        coord_diags_print(&diags, stderr);
                        coord_diags_free(&diags);
                        coord_experiment_free(&r->exp);
                        return rv;
                }
                r->inv = &r->override_inv;
        } else if (r->exp.has_inventory) {
                r->inv = &r->exp.inventory;
        } else {
                fprintf(stderr,
                        "%s: error: no inventory: add `inventory:` to the file or pass "
                        "-i FILE\n",
                        path);
                coord_experiment_free(&r->exp);
                return -EINVAL;
        }
        /* Every target must resolve against the inventory in use. */
        for (size_t i = 0; i < r->exp.n_targets; i++) {
                const struct coord_agent **agents = NULL;
                char err[FL_MSG_LEN];
                const struct coord_target *t = &r->exp.targets[i];
                int n = coord_inventory_select(r->inv, &t->sel, &agents, err, sizeof(err));
                free(agents);
                if (n < 0) {
                        coord_diags_add(&diags, path, t->line, t->column, NULL, "target \"%s\": %s",
                                        t->name, err);
                        rv = -EINVAL;
                }
        }
        if (rv < 0) {
                coord_diags_print(&diags, stderr);
                coord_diags_free(&diags);
                coord_experiment_free(&r->exp);
                coord_inventory_free(&r->override_inv);
                return rv;
        }
        coord_diags_free(&diags);
        return 0;
}

/* Resolve every target once per run (random ones with their seed), and
 * enforce max-blast-radius against the inventory actually in use. */
static int resolve_targets(struct run *r)
{
        int rv = 0;
        r->rt = calloc(r->exp.n_targets ? r->exp.n_targets : 1, sizeof(*r->rt));
        if (!r->rt)
                return -ENOMEM;
        for (size_t i = 0; i < r->exp.n_targets; i++) {
                const struct coord_target *t = &r->exp.targets[i];
                struct resolved_target *rt = &r->rt[i];
                char err[FL_MSG_LEN];
                struct coord_selector sel = t->sel;
                if (t->random) {
                        /* Shuffle the whole matching set, then narrow it. */
                        sel.count = 0;
                        sel.percent_bp = 0;
                        rt->seed = t->seed;
                        if (!t->has_seed &&
                            getrandom(&rt->seed, sizeof(rt->seed), 0) != sizeof(rt->seed))
                                rt->seed = fl_now_mono_us() ^ (uint64_t)getpid();
                }
                int n = coord_inventory_select(r->inv, &sel, &rt->agents, err, sizeof(err));
                if (n < 0) {
                        fprintf(stderr, "%s:%u:%u: error: target \"%s\": %s\n", r->exp.path,
                                t->line, t->column, t->name, err);
                        rv = -EINVAL;
                        continue;
                }
                if (t->random) {
                        coord_shuffle((const void **)rt->agents, (size_t)n, rt->seed);
                        int keep = n;
                        if (t->sel.count && (int)t->sel.count < n)
                                keep = (int)t->sel.count;
                        else if (t->sel.percent_bp)
                                keep = (int)(((uint64_t)n * t->sel.percent_bp + 9999) / 10000);
                        n = keep;
                }
                rt->n = n;
                if (t->max_blast && (uint32_t)n > t->max_blast) {
                        fprintf(stderr,
                                "%s:%u:%u: error: target \"%s\" selects %d agents, more than its "
                                "max-blast-radius %u: refusing to start\n",
                                r->exp.path, t->line, t->column, t->name, n, t->max_blast);
                        rv = -EINVAL;
                }
        }
        return rv;
}

static void free_targets(struct run *r)
{
        for (size_t i = 0; r->rt && i < r->exp.n_targets; i++)
                free(r->rt[i].agents);
        free(r->rt);
        r->rt = NULL;
}

static void count_steps(const struct coord_step *s, size_t n, size_t *steps, size_t *faults)
{
        for (size_t i = 0; i < n; i++) {
                if (s[i].kind == COORD_STEP_PARALLEL)
                        count_steps(s[i].group.steps, s[i].group.n, steps, faults);
                else {
                        (*steps)++;
                        *faults += s[i].kind == COORD_STEP_FAULT;
                }
        }
}

int coord_validate(const char *path, const struct coord_run_opts *o)
{
        struct run r = {.o = o};
        if (load(path, o, &r) < 0)
                return COORD_EXIT_USAGE;
        size_t steps = 0, faults = 0;
        count_steps(r.exp.method, r.exp.n_method, &steps, &faults);
        printf("%s: valid (format %u): \"%s\", %zu target(s), %zu steady-state probe(s), %zu "
               "method step(s) (%zu fault(s)), %zu rollback step(s), %zu guardrail(s)%s%s\n",
               path, r.exp.version, r.exp.title, r.exp.n_targets, r.exp.n_steady_state, steps,
               faults, r.exp.n_rollbacks, r.exp.n_guardrails,
               r.exp.has_failover ? ", DR drill (RTO" : "",
               r.exp.has_failover ? (r.exp.rpo.enabled ? ", RPO)" : ")") : "");
        coord_experiment_free(&r.exp);
        coord_inventory_free(&r.override_inv);
        return 0;
}

static void plan_steps(struct run *r, const struct coord_step *steps, size_t n, const char *prefix,
                       int indent)
{
        for (size_t i = 0; i < n; i++) {
                const struct coord_step *s = &steps[i];
                char label[64], desc[160];
                snprintf(label, sizeof(label), "%.40s%s%zu", prefix, prefix[0] ? "." : "", i + 1);
                step_desc(s, desc, sizeof(desc));
                printf("%*s%s. %s", indent, "", label, desc);
                if (s->kind == COORD_STEP_FAULT) {
                        const struct resolved_target *t = find_rt(r, s->fault.target);
                        printf(":");
                        for (int k = 0; t && k < t->n; k++)
                                printf(" %s", t->agents[k]->name);
                }
                printf("\n");
                if (s->kind == COORD_STEP_PARALLEL)
                        plan_steps(r, s->group.steps, s->group.n, label, indent + 3);
        }
}

static void print_plan(struct run *r)
{
        printf("plan for \"%s\" (dry run: nothing is applied)\n", r->exp.title);
        for (size_t i = 0; i < r->exp.n_targets; i++)
                if (r->exp.targets[i].random)
                        printf("  target %s: random, seed %llu\n", r->exp.targets[i].name,
                               (unsigned long long)r->rt[i].seed);
        printf("  steady-state: %zu probe(s), before and after\n", r->exp.n_steady_state);
        plan_steps(r, r->exp.method, r->exp.n_method, "", 2);
        for (size_t i = 0; i < r->exp.n_guardrails; i++) {
                char d[32];
                fl_format_duration(r->exp.guardrails[i].interval_ms, d, sizeof(d));
                printf("  guardrail %s every %s\n", r->exp.guardrails[i].probe.name, d);
        }
        printf("  rollbacks: %zu step(s)\n", r->exp.n_rollbacks);
}

/* Connections to every agent a target names (once each), plus a second
 * set for the guardrail thread's abort broadcast. */
static int open_fleet(struct run *r)
{
        const struct coord_agent **all = calloc(r->inv->n_agents + 1, sizeof(*all));
        size_t n = 0;
        if (!all)
                return -ENOMEM;
        for (size_t t = 0; t < r->exp.n_targets; t++)
                for (int i = 0; i < r->rt[t].n; i++) {
                        bool seen = false;
                        for (size_t j = 0; j < n; j++)
                                seen |= all[j] == r->rt[t].agents[i];
                        if (!seen)
                                all[n++] = r->rt[t].agents[i];
                }
        int rv = coord_fleet_open(&r->fleet, all, n);
        if (rv == 0 && r->exp.n_guardrails > 0)
                rv = coord_fleet_open(&r->abort_fleet, all, n);
        free(all);
        if (rv < 0)
                return rv;
        r->member_locks = calloc(n ? n : 1, sizeof(*r->member_locks));
        if (!r->member_locks)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                pthread_mutex_init(&r->member_locks[i], NULL);
        return 0;
}

/* ---- cron safety: lock, report dir ------------------------------------------------ */

/* Default lock: one per experiment file, /run/faultline/NAME.lock (or
 * $XDG_RUNTIME_DIR/faultline/ for a non-root user). */
static void default_lock_path(const char *exp_path, char *buf, size_t size)
{
        char copy[4096];
        snprintf(copy, sizeof(copy), "%s", exp_path);
        char *base = basename(copy);
        char *dot = strrchr(base, '.');
        if (dot && dot != base)
                *dot = 0;
        const char *dir = "/run/faultline";
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        if (geteuid() != 0 && xdg && *xdg) {
                static char d[4096];
                snprintf(d, sizeof(d), "%s/faultline", xdg);
                dir = d;
        }
        mkdir(dir, 0755);
        int n = snprintf(buf, size, "%s/%s.lock", dir, base);
        if (n < 0 || (size_t)n >= size)
                snprintf(buf, size, "/run/faultline/faultline.lock"); /* absurdly long name */
}

/* Take the lock. Returns an fd (kept open for the whole run), or -EBUSY
 * after printing who holds it, or another -errno. */
static int take_lock(const char *path, const char *exp_path)
{
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
                int e = errno;
                fprintf(stderr, "faultline: cannot open lock file %s: %s (use --lock FILE)\n", path,
                        strerror(e));
                return -e;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int e = errno;
                char who[512] = "";
                ssize_t k = pread(fd, who, sizeof(who) - 1, 0);
                who[k > 0 ? k : 0] = 0;
                who[strcspn(who, "\n")] = 0;
                close(fd);
                if (e == EWOULDBLOCK) {
                        fprintf(stderr,
                                "faultline: another run holds the lock %s (%s); not starting. "
                                "Exit %d.\n",
                                path, who[0] ? who : "holder unknown", COORD_EXIT_LOCKED);
                        return -EBUSY;
                }
                fprintf(stderr, "faultline: cannot lock %s: %s\n", path, strerror(e));
                return -e;
        }
        char ts[32];
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
        char line[4200];
        int len =
            snprintf(line, sizeof(line), "pid %d, started %s, %s\n", (int)getpid(), ts, exp_path);
        if (ftruncate(fd, 0) == 0 && len > 0)
                (void)!pwrite(fd, line, (size_t)len < sizeof(line) ? (size_t)len : sizeof(line) - 1,
                              0);
        return fd;
}

static void slugify(const char *s, char *buf, size_t size)
{
        size_t k = 0;
        bool dash = false;
        for (; *s && k + 1 < size && k < 48; s++) {
                unsigned char ch = (unsigned char)*s;
                if (isalnum(ch)) {
                        buf[k++] = (char)tolower(ch);
                        dash = false;
                } else if (!dash && k > 0) {
                        buf[k++] = '-';
                        dash = true;
                }
        }
        while (k > 0 && buf[k - 1] == '-')
                k--;
        buf[k] = 0;
        if (!k)
                snprintf(buf, size, "experiment");
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keep the newest `keep` reports of this slug in dir (names sort by time). */
static void prune_reports(const char *dir, const char *slug, unsigned keep)
{
        DIR *d = opendir(dir);
        if (!d)
                return;
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        size_t sl = strlen(slug);
        while ((de = readdir(d))) {
                const char *nm = de->d_name;
                size_t len = strlen(nm);
                /* SLUG-YYYYmmdd-HHMMSS.json: one entry per run */
                if (strncmp(nm, slug, sl) || nm[sl] != '-' || len != sl + 21 ||
                    strcmp(nm + len - 5, ".json"))
                        continue;
                if (n == cap) {
                        cap = cap ? cap * 2 : 32;
                        char **nn = realloc(names, cap * sizeof(*nn));
                        if (!nn)
                                break;
                        names = nn;
                }
                if (!(names[n] = strdup(nm)))
                        break;
                n++;
        }
        closedir(d);
        qsort(names, n, sizeof(*names), cmp_str);
        for (size_t i = 0; n > keep && i < n - keep; i++) {
                char p[4096];
                static const char *const ext[] = {".json", ".html", ".xml"};
                for (size_t x = 0; x < 3; x++) {
                        snprintf(p, sizeof(p), "%s/%.*s%s", dir, (int)(strlen(names[i]) - 5),
                                 names[i], ext[x]);
                        unlink(p);
                }
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

/* Write journal / junit / html where asked. Returns 0 or -EIO. */
static int write_outputs(struct run *r)
{
        int rv = 0;
        const struct coord_run_opts *o = r->o;
        if (o->journal_path && write_json(r->journal, o->journal_path) < 0)
                rv = -EIO;
        if (o->junit_path && coord_report_junit(r->journal, o->junit_path) < 0)
                rv = -EIO;
        if (o->html_path && coord_report_html(r->journal, o->html_path) < 0)
                rv = -EIO;
        if (o->report_dir) {
                char slug[64], ts[32], base[4096];
                slugify(r->exp.title ? r->exp.title : "experiment", slug, sizeof(slug));
                time_t t = time(NULL);
                struct tm tm;
                localtime_r(&t, &tm);
                strftime(ts, sizeof(ts), "%Y%m%d-%H%M%S", &tm);
                mkdir(o->report_dir, 0755);
                snprintf(base, sizeof(base), "%s/%s-%s", o->report_dir, slug, ts);
                char p[4200];
                snprintf(p, sizeof(p), "%s.json", base);
                if (write_json(r->journal, p) < 0)
                        rv = -EIO;
                snprintf(p, sizeof(p), "%s.html", base);
                if (coord_report_html(r->journal, p) < 0)
                        rv = -EIO;
                snprintf(p, sizeof(p), "%s.xml", base);
                if (coord_report_junit(r->journal, p) < 0)
                        rv = -EIO;
                if (o->keep)
                        prune_reports(o->report_dir, slug, o->keep);
                if (rv == 0)
                        say(r, false, "reports: %s.{json,html,xml}", base);
        }
        return rv;
}

/* ---- run ---------------------------------------------------------------------- */

static const char *kind_word(enum coord_probe_kind k)
{
        switch (k) {
        case COORD_PROBE_HTTP:
                return "http";
        case COORD_PROBE_COMMAND:
                return "command";
        case COORD_PROBE_TCP:
                return "tcp";
        case COORD_PROBE_PROMETHEUS:
                return "prometheus";
        }
        return "?";
}

static void kinds_of_steps(json_t *o, const struct coord_step *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                if (s[i].kind == COORD_STEP_PROBE)
                        json_object_set_new(o, s[i].probe.name,
                                            json_string(kind_word(s[i].probe.kind)));
                else if (s[i].kind == COORD_STEP_PARALLEL)
                        kinds_of_steps(o, s[i].group.steps, s[i].group.n);
        }
}

/* name -> probe kind, so a report knows what a series' values mean. */
static json_t *probe_kinds(const struct coord_experiment *e)
{
        json_t *o = json_object();
        for (size_t i = 0; i < e->n_steady_state; i++)
                json_object_set_new(o, e->steady_state[i].name,
                                    json_string(kind_word(e->steady_state[i].kind)));
        for (size_t i = 0; i < e->n_guardrails; i++)
                json_object_set_new(o, e->guardrails[i].probe.name,
                                    json_string(kind_word(e->guardrails[i].probe.kind)));
        kinds_of_steps(o, e->method, e->n_method);
        kinds_of_steps(o, e->rollbacks, e->n_rollbacks);
        if (e->rpo.enabled) {
                json_object_set_new(o, e->rpo.writer.name,
                                    json_string(kind_word(e->rpo.writer.kind)));
                json_object_set_new(o, e->rpo.reader.name,
                                    json_string(kind_word(e->rpo.reader.kind)));
        }
        return o;
}

static void run_free(struct run *r)
{
        json_decref(r->journal);
        json_decref(r->breach);
        free(r->faults);
        free(r->marker_wall);
        for (size_t i = 0; r->member_locks && i < r->fleet.n; i++)
                pthread_mutex_destroy(&r->member_locks[i]);
        free(r->member_locks);
        coord_fleet_close(&r->fleet);
        coord_fleet_close(&r->abort_fleet);
        free_targets(r);
        coord_experiment_free(&r->exp);
        coord_inventory_free(&r->override_inv);
        pthread_mutex_destroy(&r->lock);
}

int coord_run(const char *path, const struct coord_run_opts *o)
{
        struct run r = {.o = o, .phase = "setup"};
        pthread_mutex_init(&r.lock, NULL);
        if (load(path, o, &r) < 0 || resolve_targets(&r) < 0) {
                run_free(&r);
                return COORD_EXIT_USAGE;
        }
        if (o->dry_run) {
                print_plan(&r);
                run_free(&r);
                return 0;
        }
        _cleanup_close_ int lock_fd = -1;
        if (!o->no_lock) {
                char lp[4096];
                if (o->lock_path)
                        snprintf(lp, sizeof(lp), "%s", o->lock_path);
                else
                        default_lock_path(path, lp, sizeof(lp));
                lock_fd = take_lock(lp, path);
                if (lock_fd < 0) {
                        run_free(&r);
                        return lock_fd == -EBUSY ? COORD_EXIT_LOCKED : COORD_EXIT_FAILURE;
                }
        }

        int exit_code = COORD_EXIT_HELD;
        const char *verdict = "held";
        char reason[512] = "";
        r.journal = json_pack("{s:i, s:s, s:s, s:i, s:I, s:s, s:[], s:{}}", "journal_version", 2,
                              "experiment", r.exp.title, "file", path, "format_version",
                              (int)r.exp.version, "started_ms", (json_int_t)fl_now_wall_ms(),
                              "requester", o->requester, "events", "series");
        r.events = r.journal ? json_object_get(r.journal, "events") : NULL;
        r.series = r.journal ? json_object_get(r.journal, "series") : NULL;
        if (!r.events || !r.series || open_fleet(&r) < 0 ||
            coord_lease_start(COORD_LEASE_TTL_MS, o->requester, &r.lease) < 0) {
                fprintf(stderr, "faultline: out of memory or cannot start the lease thread\n");
                run_free(&r);
                return COORD_EXIT_FAILURE;
        }
        json_object_set_new(r.journal, "lease", json_string(coord_lease_id(r.lease)));
        json_t *tj = json_array();
        for (size_t i = 0; i < r.exp.n_targets; i++) {
                json_t *agents = json_array();
                for (int k = 0; k < r.rt[i].n; k++)
                        json_array_append_new(agents, json_string(r.rt[i].agents[k]->name));
                json_t *t = json_pack("{s:s, s:o, s:b}", "name", r.exp.targets[i].name, "agents",
                                      agents, "random", r.exp.targets[i].random);
                if (r.exp.targets[i].random)
                        json_object_set_new(t, "seed", json_integer((json_int_t)r.rt[i].seed));
                json_array_append_new(tj, t);
        }
        json_object_set_new(r.journal, "targets", tj);
        json_object_set_new(r.journal, "probe_kinds", probe_kinds(&r.exp));

        r.t0_mono = fl_now_mono_ms();
        r.live = o->progress > 0 || (o->progress < 0 && !o->quiet && isatty(STDOUT_FILENO));
        bool live_thread = r.live && pthread_create(&r.live_thread, NULL, live_main, &r) == 0;
        say(&r, false, "game day \"%s\": %zu agent(s), lease %s", r.exp.title, r.fleet.n,
            coord_lease_id(r.lease));
        for (size_t i = 0; i < r.exp.n_targets; i++)
                if (r.exp.targets[i].random)
                        say(&r, false, "target %s: random selection, seed %llu",
                            r.exp.targets[i].name, (unsigned long long)r.rt[i].seed);

        bool ran_method = false;
        if (!hypothesis(&r, "before")) {
                exit_code = coord_interrupted ? COORD_EXIT_ABORTED : COORD_EXIT_DEVIATED;
                verdict = coord_interrupted ? "aborted" : "deviated";
                snprintf(reason, sizeof(reason), "%s",
                         coord_interrupted ? "interrupted"
                                           : "hypothesis did not hold before the method; nothing "
                                             "was injected");
        } else {
                r.phase = "method";
                ran_method = true;
                if (r.exp.rpo.enabled)
                        r.rpo_running = pthread_create(&r.rpo_thread, NULL, rpo_main, &r) == 0;
                int rv = run_steps(&r, r.exp.method, r.exp.n_method, NULL, NULL);
                if (atomic_load(&r.breached)) {
                        exit_code = COORD_EXIT_ABORTED;
                        verdict = "aborted";
                        const char *g = json_string_value(json_object_get(r.breach, "guardrail"));
                        const char *why = json_string_value(json_object_get(r.breach, "reason"));
                        snprintf(reason, sizeof(reason), "guardrail %s breached: %s", g ? g : "?",
                                 why ? why : "?");
                } else if (rv == -EINTR) {
                        exit_code = COORD_EXIT_ABORTED;
                        verdict = "aborted";
                        snprintf(reason, sizeof(reason), "interrupted by the operator");
                } else if (rv < 0) {
                        exit_code = COORD_EXIT_FAILURE;
                        verdict = "error";
                        snprintf(reason, sizeof(reason), "a fault could not be applied");
                }
        }
        /* A breach's ABORT broadcast is the revert; let it finish before
         * the per-fault pass below, or both race to revert the same faults
         * and the journal cannot say which did. Bounded by the call timeout. */
        if (atomic_load(&r.breached)) {
                uint64_t until = fl_now_mono_ms() + (uint64_t)o->call_timeout_ms + 1000;
                while (!atomic_load(&r.abort_done) && fl_now_mono_ms() < until) {
                        struct timespec ts = {.tv_nsec = 1000000};
                        nanosleep(&ts, NULL);
                }
        }
        bool drill_ok = finish_drill(&r);
        /* Faults still running when the method ends are reverted before
         * the system is judged: the hypothesis is about recovery. */
        revert_all(&r, ran_method && exit_code == 0 ? "method-complete" : verdict);
        stop_guardrails(&r);
        if (atomic_load(&r.breached)) {
                /* Checked again here: the guardrail thread may have fired
                 * while the method was finishing on its own. */
                exit_code = COORD_EXIT_ABORTED;
                verdict = "aborted";
                const char *g = json_string_value(json_object_get(r.breach, "guardrail"));
                const char *why = json_string_value(json_object_get(r.breach, "reason"));
                snprintf(reason, sizeof(reason), "guardrail %s breached: %s", g ? g : "?",
                         why ? why : "?");
        }
        if (exit_code == COORD_EXIT_HELD && ran_method) {
                if (!hypothesis(&r, "after")) {
                        exit_code = coord_interrupted ? COORD_EXIT_ABORTED : COORD_EXIT_DEVIATED;
                        verdict = coord_interrupted ? "aborted" : "deviated";
                        snprintf(reason, sizeof(reason), "%s",
                                 coord_interrupted ? "interrupted"
                                                   : "hypothesis did not hold after the method");
                } else if (!drill_ok) {
                        exit_code = COORD_EXIT_DEVIATED;
                        verdict = "deviated";
                        snprintf(reason, sizeof(reason), "the DR drill missed its RTO/RPO target");
                }
        }
        /* Rollbacks always run: interrupted, aborted or not; a second
         * Ctrl-C is what stops them. */
        r.phase = "rollbacks";
        r.in_rollbacks = true;
        sig_atomic_t saved = coord_interrupted;
        coord_interrupted = 0;
        atomic_bool rb_failed = false;
        int rrv = run_steps(&r, r.exp.rollbacks, r.exp.n_rollbacks, "rollback", &rb_failed);
        if (saved)
                coord_interrupted = saved;
        bool rb_ok = rrv == 0 && !atomic_load(&rb_failed);
        json_object_set_new(r.journal, "rollbacks",
                            json_pack("{s:i, s:b}", "steps", (int)r.exp.n_rollbacks, "ok", rb_ok));
        if (!rb_ok) {
                say(&r, true, "rollbacks FAILED");
                if (exit_code == COORD_EXIT_HELD || exit_code == COORD_EXIT_DEVIATED) {
                        exit_code = COORD_EXIT_FAILURE;
                        verdict = "error";
                        snprintf(reason, sizeof(reason), "a rollback failed");
                } else {
                        size_t l = strlen(reason);
                        snprintf(reason + l, sizeof(reason) - l, "; a rollback failed");
                }
        }
        /* A fault a rollback step applied is reverted too. */
        revert_all(&r, "end-of-run");
        if (r.failures && exit_code == COORD_EXIT_HELD) {
                exit_code = COORD_EXIT_FAILURE;
                verdict = "error";
                snprintf(reason, sizeof(reason), "an agent call failed");
        }
        coord_lease_stop(r.lease);
        if (live_thread) {
                pthread_mutex_lock(&r.lock);
                r.live_stop = true;
                pthread_mutex_unlock(&r.lock);
                pthread_join(r.live_thread, NULL);
                pthread_mutex_lock(&r.lock);
                status_clear(&r);
                r.live = false;
                pthread_mutex_unlock(&r.lock);
        }

        if (r.breach) {
                json_object_set(r.journal, "breach", r.breach);
        }
        json_object_set_new(r.journal, "ended_ms", json_integer((json_int_t)fl_now_wall_ms()));
        json_object_set_new(r.journal, "verdict", json_string(verdict));
        json_object_set_new(r.journal, "reason", json_string(reason));
        json_object_set_new(r.journal, "exit_code", json_integer(exit_code));
        if (write_outputs(&r) < 0 && exit_code == COORD_EXIT_HELD)
                exit_code = COORD_EXIT_FAILURE;
        say(&r, true, "verdict: %s%s%s (exit %d)%s%s", verdict, reason[0] ? ": " : "", reason,
            exit_code, o->journal_path ? ", journal " : "", o->journal_path ? o->journal_path : "");
        run_free(&r);
        return exit_code;
}
