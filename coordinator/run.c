/* The game-day sequencer: hypothesis before, method, revert, hypothesis
 * after, rollbacks, journal. Every fault applied is reverted before this
 * returns, whatever happened (error, deviation, Ctrl-C); and if this
 * process dies instead, the agents revert on their own when the lease
 * lapses. */
#include <jansson.h>
#include <libgen.h>
#include <time.h>

#include "client.h"
#include "experiment.h"
#include "faultcheck.h"
#include "fl_log.h"
#include "fl_parse.h"
#include "fl_util.h"
#include "run.h"

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

struct run {
        const struct coord_run_opts *o;
        struct coord_experiment exp;
        struct coord_inventory override_inv;
        const struct coord_inventory *inv;
        struct coord_fleet fleet;
        struct coord_lease *lease;
        struct active_fault *faults;
        size_t n_faults, cap_faults;
        json_t *journal; /* the document */
        json_t *events;  /* borrowed from journal */
        const char *phase;
        int failures; /* apply/revert/agent failures */
};

static void say(struct run *r, bool important, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(struct run *r, bool important, const char *fmt, ...)
{
        if (r->o->quiet && !important)
                return;
        char ts[16];
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
        va_list ap;
        va_start(ap, fmt);
        FILE *out = important && r->o->quiet ? stderr : stdout;
        fprintf(out, "[%s] ", ts);
        vfprintf(out, fmt, ap);
        fputc('\n', out);
        fflush(out);
        va_end(ap);
}

static json_t *event(struct run *r, const char *type)
{
        json_t *e = json_pack("{s:I, s:s, s:s}", "t", (json_int_t)fl_now_wall_ms(), "phase",
                              r->phase, "type", type);
        if (e)
                json_array_append_new(r->events, e);
        return e;
}

static int write_journal(struct run *r)
{
        if (!r->o->journal_path)
                return 0;
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", r->o->journal_path);
        if (json_dump_file(r->journal, tmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0 ||
            rename(tmp, r->o->journal_path) < 0) {
                fprintf(stderr, "faultline: cannot write journal %s: %s\n", r->o->journal_path,
                        strerror(errno));
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
        json_t *e = event(r, "probe");
        if (e) {
                json_object_set_new(e, "name", json_string(p->name));
                json_object_set_new(e, "ok", json_boolean(rv == 0 && res.ok));
                json_object_set_new(e, "detail", json_string(res.detail));
                json_object_set_new(e, "value", json_real(res.value));
                json_object_set_new(e, "latency_us", json_integer((json_int_t)res.latency_us));
                json_object_set_new(e, "started_ms", json_integer((json_int_t)res.started_wall_ms));
        }
        bool ok = rv == 0 && res.ok;
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
        json_t *e = event(r, "hypothesis");
        if (e)
                json_object_set_new(e, "held", json_boolean(held));
        say(r, !held, "%s: steady-state hypothesis %s", phase, held ? "held" : "DEVIATED");
        return held;
}

/* ---- faults ------------------------------------------------------------------- */

static int track_fault(struct run *r, size_t member, const struct fl_fault_info *fi)
{
        if (r->n_faults == r->cap_faults) {
                size_t cap = r->cap_faults ? r->cap_faults * 2 : 16;
                struct active_fault *n = realloc(r->faults, cap * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                r->faults = n;
                r->cap_faults = cap;
        }
        struct active_fault *a = &r->faults[r->n_faults++];
        memset(a, 0, sizeof(*a));
        a->member = member;
        snprintf(a->id, sizeof(a->id), "%s", fi->id);
        snprintf(a->kind, sizeof(a->kind), "%s", fi->kind);
        snprintf(a->target, sizeof(a->target), "%s", fi->target);
        a->expires_ms = fi->expires_ms;
        return 0;
}

static int resolve_target(struct run *r, const char *name, const struct coord_agent ***ret,
                          char *err, size_t errlen)
{
        const struct coord_target *t = coord_experiment_find_target(&r->exp, name);
        if (!t) {
                snprintf(err, errlen, "unknown target \"%s\"", name);
                return -ENOENT;
        }
        return coord_inventory_select(r->inv, &t->sel, ret, err, errlen);
}

/* Apply one fault step on every agent of its target, concurrently. */
static int step_fault(struct run *r, const struct coord_fault_step *fs)
{
        const struct coord_agent **agents = NULL;
        char err[FL_MSG_LEN];
        int n = resolve_target(r, fs->target, &agents, err, sizeof(err));
        if (n < 0) {
                say(r, true, "%s: target %s: %s", r->phase, fs->target, err);
                return -EINVAL;
        }
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
        struct fl_reply *replies = calloc((size_t)n, sizeof(*replies));
        int *rcs = calloc((size_t)n, sizeof(*rcs));
        int rv = 0;
        if (!conns || !idx || !replies || !rcs) {
                rv = -ENOMEM;
                goto out;
        }
        for (int i = 0; i < n; i++) {
                struct coord_member *m = coord_fleet_find(&r->fleet, agents[i]->name);
                idx[i] = (size_t)(m - r->fleet.m);
                conns[i] = m->conn;
                coord_lease_add(r->lease, agents[i]->address);
        }
        fl_conn_call_many(conns, (size_t)n, &req, replies, rcs, r->o->call_timeout_ms);
        for (int i = 0; i < n; i++) {
                json_t *e = event(r, "fault-apply");
                const char *name = agents[i]->name;
                if (e) {
                        json_object_set_new(e, "agent", json_string(name));
                        json_object_set_new(e, "kind", json_string(fs->kind));
                        json_object_set_new(e, "duration_ms",
                                            json_integer((json_int_t)fs->duration_ms));
                }
                if (rcs[i] < 0 || replies[i].status != FL_ST_OK || replies[i].n_faults != 1) {
                        const char *why = rcs[i] < 0 ? coord_call_error(rcs[i]) : replies[i].msg;
                        if (e) {
                                json_object_set_new(e, "ok", json_false());
                                json_object_set_new(e, "error", json_string(why));
                        }
                        say(r, true, "%s: %s on %s FAILED: %s", r->phase, fs->kind, name, why);
                        rv = -EIO;
                } else {
                        const struct fl_fault_info *fi = &replies[i].faults[0];
                        char d[32];
                        fl_format_duration(fs->duration_ms, d, sizeof(d));
                        if (e) {
                                json_object_set_new(e, "ok", json_true());
                                json_object_set_new(e, "id", json_string(fi->id));
                                json_object_set_new(e, "target", json_string(fi->target));
                                json_object_set_new(e, "backend", json_string(fi->backend));
                                json_object_set_new(e, "expires_ms",
                                                    json_integer((json_int_t)fi->expires_ms));
                        }
                        say(r, false, "%s: applied %s %s on %s: %s (backend %s) for %s", r->phase,
                            fs->kind, fi->id, name, fi->target, fi->backend, d);
                        if (track_fault(r, idx[i], fi) < 0)
                                rv = -ENOMEM;
                }
                fl_reply_free(&replies[i]);
        }
out:
        free(agents);
        free(conns);
        free(idx);
        free(replies);
        free(rcs);
        if (rv < 0)
                r->failures++;
        return rv;
}

/* Revert every fault still marked active. NOT_FOUND means the agent
 * already reverted it at its deadline. */
static void revert_all(struct run *r, const char *why)
{
        const char *saved = r->phase;
        r->phase = "revert";
        for (size_t i = 0; i < r->n_faults; i++) {
                struct active_fault *a = &r->faults[i];
                if (a->done)
                        continue;
                struct coord_member *m = &r->fleet.m[a->member];
                struct fl_request req = {.type = FL_MSG_REVERT};
                struct fl_reply rep;
                snprintf(req.fault_id, sizeof(req.fault_id), "%s", a->id);
                snprintf(req.requester, sizeof(req.requester), "%s", r->o->requester);
                int rv = fl_conn_call(m->conn, &req, &rep, r->o->call_timeout_ms);
                json_t *e = event(r, "fault-revert");
                if (e) {
                        json_object_set_new(e, "agent", json_string(m->agent->name));
                        json_object_set_new(e, "id", json_string(a->id));
                        json_object_set_new(e, "kind", json_string(a->kind));
                        json_object_set_new(e, "why", json_string(why));
                }
                if (rv == 0 && (rep.status == FL_ST_OK || rep.status == FL_ST_NOT_FOUND)) {
                        bool by_agent = rep.status == FL_ST_NOT_FOUND;
                        if (e) {
                                json_object_set_new(e, "ok", json_true());
                                json_object_set_new(
                                    e, "by", json_string(by_agent ? "agent-ttl" : "coordinator"));
                        }
                        say(r, false, "revert: %s %s on %s %s", a->kind, a->id, m->agent->name,
                            by_agent ? "already reverted by the agent at its deadline"
                                     : "reverted");
                        a->done = true;
                } else {
                        const char *err = rv < 0 ? coord_call_error(rv) : rep.msg;
                        if (e) {
                                json_object_set_new(e, "ok", json_false());
                                json_object_set_new(e, "error", json_string(err));
                        }
                        say(r, true,
                            "revert: %s %s on %s FAILED: %s (the agent reverts it when the lease "
                            "lapses)",
                            a->kind, a->id, m->agent->name, err);
                        r->failures++;
                }
                if (rv == 0)
                        fl_reply_free(&rep);
        }
        r->phase = saved;
}

/* Run a list of steps. Returns 0, -EINTR (interrupted) or -EIO (a fault
 * could not be applied). Probe failures inside a list are recorded, not
 * fatal: the hypothesis decides the verdict. */
static int run_steps(struct run *r, const struct coord_step *steps, size_t n, bool *probes_ok)
{
        for (size_t i = 0; i < n; i++) {
                if (coord_interrupted)
                        return -EINTR;
                const struct coord_step *s = &steps[i];
                switch (s->kind) {
                case COORD_STEP_FAULT:
                        if (step_fault(r, &s->fault) < 0)
                                return -EIO;
                        break;
                case COORD_STEP_WAIT: {
                        char d[32];
                        fl_format_duration(s->wait_ms, d, sizeof(d));
                        say(r, false, "%s: wait %s", r->phase, d);
                        json_t *e = event(r, "wait");
                        if (e)
                                json_object_set_new(e, "ms", json_integer((json_int_t)s->wait_ms));
                        if (!coord_sleep_ms(s->wait_ms))
                                return -EINTR;
                        break;
                }
                case COORD_STEP_PROBE:
                        if (!run_probe(r, &s->probe) && probes_ok)
                                *probes_ok = false;
                        break;
                }
        }
        return coord_interrupted ? -EINTR : 0;
}

/* ---- setup -------------------------------------------------------------------- */

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

int coord_validate(const char *path, const struct coord_run_opts *o)
{
        struct run r = {.o = o};
        if (load(path, o, &r) < 0)
                return COORD_EXIT_USAGE;
        size_t faults = 0;
        for (size_t i = 0; i < r.exp.n_method; i++)
                faults += r.exp.method[i].kind == COORD_STEP_FAULT;
        printf("%s: valid: \"%s\", %zu target(s), %zu steady-state probe(s), %zu method step(s) "
               "(%zu fault(s)), %zu rollback step(s)\n",
               path, r.exp.title, r.exp.n_targets, r.exp.n_steady_state, r.exp.n_method, faults,
               r.exp.n_rollbacks);
        coord_experiment_free(&r.exp);
        coord_inventory_free(&r.override_inv);
        return 0;
}

static void print_plan(struct run *r)
{
        printf("plan for \"%s\" (dry run: nothing is applied)\n", r->exp.title);
        printf("  steady-state: %zu probe(s), before and after\n", r->exp.n_steady_state);
        for (size_t i = 0; i < r->exp.n_method; i++) {
                const struct coord_step *s = &r->exp.method[i];
                char d[32];
                if (s->kind == COORD_STEP_FAULT) {
                        const struct coord_agent **agents = NULL;
                        char err[FL_MSG_LEN];
                        int n = resolve_target(r, s->fault.target, &agents, err, sizeof(err));
                        fl_format_duration(s->fault.duration_ms, d, sizeof(d));
                        printf("  %zu. fault %s for %s on %s:", i + 1, s->fault.kind, d,
                               s->fault.target);
                        for (int k = 0; k < n; k++)
                                printf(" %s", agents[k]->name);
                        printf("\n");
                        free(agents);
                } else if (s->kind == COORD_STEP_WAIT) {
                        fl_format_duration(s->wait_ms, d, sizeof(d));
                        printf("  %zu. wait %s\n", i + 1, d);
                } else {
                        printf("  %zu. probe %s\n", i + 1, s->probe.name);
                }
        }
        printf("  rollbacks: %zu step(s)\n", r->exp.n_rollbacks);
}

/* Open connections to every agent a target names (once each). */
static int open_fleet(struct run *r)
{
        const struct coord_agent **all = calloc(r->inv->n_agents + 1, sizeof(*all));
        size_t n = 0;
        if (!all)
                return -ENOMEM;
        for (size_t t = 0; t < r->exp.n_targets; t++) {
                const struct coord_agent **agents = NULL;
                char err[FL_MSG_LEN];
                int k = coord_inventory_select(r->inv, &r->exp.targets[t].sel, &agents, err,
                                               sizeof(err));
                for (int i = 0; i < k; i++) {
                        bool seen = false;
                        for (size_t j = 0; j < n; j++)
                                seen |= all[j] == agents[i];
                        if (!seen)
                                all[n++] = agents[i];
                }
                free(agents);
        }
        int rv = coord_fleet_open(&r->fleet, all, n);
        free(all);
        return rv;
}

/* ---- run ---------------------------------------------------------------------- */

int coord_run(const char *path, const struct coord_run_opts *o)
{
        struct run r = {.o = o, .phase = "setup"};
        if (load(path, o, &r) < 0)
                return COORD_EXIT_USAGE;
        if (o->dry_run) {
                print_plan(&r);
                coord_experiment_free(&r.exp);
                coord_inventory_free(&r.override_inv);
                return 0;
        }

        int exit_code = COORD_EXIT_HELD;
        const char *verdict = "held", *reason = "";
        r.journal = json_pack("{s:i, s:s, s:s, s:I, s:s, s:[]}", "journal_version", 1, "experiment",
                              r.exp.title, "file", path, "started_ms", (json_int_t)fl_now_wall_ms(),
                              "requester", o->requester, "events");
        r.events = r.journal ? json_object_get(r.journal, "events") : NULL;
        if (!r.events || open_fleet(&r) < 0 ||
            coord_lease_start(COORD_LEASE_TTL_MS, o->requester, &r.lease) < 0) {
                fprintf(stderr, "faultline: out of memory or cannot start the lease thread\n");
                json_decref(r.journal);
                coord_fleet_close(&r.fleet);
                coord_experiment_free(&r.exp);
                coord_inventory_free(&r.override_inv);
                return COORD_EXIT_FAILURE;
        }
        json_object_set_new(r.journal, "lease", json_string(coord_lease_id(r.lease)));
        say(&r, false, "game day \"%s\": %zu agent(s), lease %s", r.exp.title, r.fleet.n,
            coord_lease_id(r.lease));

        bool ran_method = false;
        if (!hypothesis(&r, "before")) {
                exit_code = coord_interrupted ? COORD_EXIT_ABORTED : COORD_EXIT_DEVIATED;
                verdict = coord_interrupted ? "aborted" : "deviated";
                reason = coord_interrupted ? "interrupted"
                                           : "hypothesis did not hold before the "
                                             "method; nothing was injected";
        } else {
                r.phase = "method";
                ran_method = true;
                int rv = run_steps(&r, r.exp.method, r.exp.n_method, NULL);
                if (rv == -EINTR) {
                        exit_code = COORD_EXIT_ABORTED;
                        verdict = "aborted";
                        reason = "interrupted by the operator";
                } else if (rv < 0) {
                        exit_code = COORD_EXIT_FAILURE;
                        verdict = "error";
                        reason = "a fault could not be applied";
                }
        }
        /* Faults still running when the method ends are reverted before
         * the system is judged: the hypothesis is about recovery. */
        revert_all(&r, ran_method && exit_code == 0 ? "method-complete" : verdict);
        if (exit_code == COORD_EXIT_HELD && ran_method) {
                if (!hypothesis(&r, "after")) {
                        exit_code = coord_interrupted ? COORD_EXIT_ABORTED : COORD_EXIT_DEVIATED;
                        verdict = coord_interrupted ? "aborted" : "deviated";
                        reason = coord_interrupted ? "interrupted"
                                                   : "hypothesis did not hold after the method";
                }
        }
        /* Rollbacks always run, interrupted or not; a second Ctrl-C is what
         * stops them. */
        r.phase = "rollbacks";
        sig_atomic_t saved = coord_interrupted;
        coord_interrupted = 0;
        bool rb_ok = true;
        int rrv = run_steps(&r, r.exp.rollbacks, r.exp.n_rollbacks, &rb_ok);
        if (saved)
                coord_interrupted = saved;
        if (rrv < 0 || !rb_ok) {
                say(&r, true, "rollbacks FAILED");
                if (exit_code == COORD_EXIT_HELD || exit_code == COORD_EXIT_DEVIATED) {
                        exit_code = COORD_EXIT_FAILURE;
                        verdict = "error";
                        reason = "a rollback failed";
                }
        }
        /* A fault a rollback step applied is reverted too. */
        revert_all(&r, "end-of-run");
        if (r.failures && exit_code == COORD_EXIT_HELD) {
                exit_code = COORD_EXIT_FAILURE;
                verdict = "error";
                reason = "an agent call failed";
        }
        coord_lease_stop(r.lease);

        json_object_set_new(r.journal, "ended_ms", json_integer((json_int_t)fl_now_wall_ms()));
        json_object_set_new(r.journal, "verdict", json_string(verdict));
        json_object_set_new(r.journal, "reason", json_string(reason));
        json_object_set_new(r.journal, "exit_code", json_integer(exit_code));
        if (write_journal(&r) < 0 && exit_code == COORD_EXIT_HELD)
                exit_code = COORD_EXIT_FAILURE;
        say(&r, true, "verdict: %s%s%s (exit %d)%s%s", verdict, reason[0] ? ": " : "", reason,
            exit_code, o->journal_path ? ", journal " : "", o->journal_path ? o->journal_path : "");

        json_decref(r.journal);
        free(r.faults);
        coord_fleet_close(&r.fleet);
        coord_experiment_free(&r.exp);
        coord_inventory_free(&r.override_inv);
        return exit_code;
}
