/* The agent's table of active faults, their TTLs and their leases.
 *
 * Order of an APPLY (see fault.h): validate -> policy -> prepare -> journal
 * -> apply -> verify. Anything failing after the journal write is reverted
 * on the spot and the journal entry removed, so a request either leaves a
 * fully applied, journaled, timed fault or nothing at all. */
#include <sys/random.h>

#include "agent.h"
#include "cg/cg.h"
#include "fl_log.h"
#include "fl_parse.h"
#include "fl_util.h"

struct lease {
        char id[FL_ID_LEN];
        uint64_t ttl_ms;
        uint64_t expires_mono_ms;
};

struct agent {
        struct agent_config cfg;
        struct agent_fault **faults;
        size_t n_faults, cap_faults;
        struct lease *leases;
        size_t n_leases, cap_leases;
        char hostname[FL_NAME_LEN];
};

static void fault_free(struct agent_fault *f)
{
        if (!f)
                return;
        if (f->ops && f->ops->destroy)
                f->ops->destroy(f);
        free(f->params);
        json_decref(f->undo);
        free(f);
}

int agent_new(const struct agent_config *cfg, struct agent **ret)
{
        struct agent *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->cfg = *cfg;
        if (gethostname(a->hostname, sizeof(a->hostname) - 1) < 0)
                snprintf(a->hostname, sizeof(a->hostname), "unknown");
        *ret = a;
        return 0;
}

void agent_free(struct agent *a)
{
        if (!a)
                return;
        for (size_t i = 0; i < a->n_faults; i++)
                fault_free(a->faults[i]);
        free(a->faults);
        free(a->leases);
        free(a);
}

size_t agent_active_count(const struct agent *a)
{
        return a->n_faults;
}

static void new_fault_id(char *buf, size_t size)
{
        uint64_t r[2] = {0, 0};
        if (getrandom(r, sizeof(r), 0) != sizeof(r))
                r[0] = fl_now_mono_us() ^ (uint64_t)getpid();
        snprintf(buf, size, "f-%016llx", (unsigned long long)(r[0] ^ (r[1] << 1)));
}

static struct lease *lease_find(struct agent *a, const char *id)
{
        for (size_t i = 0; i < a->n_leases; i++)
                if (strcmp(a->leases[i].id, id) == 0)
                        return &a->leases[i];
        return NULL;
}

static uint64_t clamp_ttl(const struct agent *a, uint64_t ttl)
{
        if (ttl < AGENT_MIN_LEASE_MS)
                ttl = AGENT_MIN_LEASE_MS;
        if (ttl > a->cfg.policy.max_lease_ms)
                ttl = a->cfg.policy.max_lease_ms;
        return ttl;
}

static int lease_touch(struct agent *a, const char *id, uint64_t ttl)
{
        struct lease *l = lease_find(a, id);
        if (!l) {
                if (a->n_leases == a->cap_leases) {
                        size_t cap = a->cap_leases ? a->cap_leases * 2 : 8;
                        struct lease *n = realloc(a->leases, cap * sizeof(*n));
                        if (!n)
                                return -ENOMEM;
                        a->leases = n;
                        a->cap_leases = cap;
                }
                l = &a->leases[a->n_leases++];
                memset(l, 0, sizeof(*l));
                snprintf(l->id, sizeof(l->id), "%s", id);
        }
        l->ttl_ms = clamp_ttl(a, ttl);
        l->expires_mono_ms = fl_now_mono_ms() + l->ttl_ms;
        return 0;
}

static size_t lease_fault_count(const struct agent *a, const char *id)
{
        size_t n = 0;
        for (size_t i = 0; i < a->n_faults; i++)
                n += strcmp(a->faults[i]->lease, id) == 0;
        return n;
}

static void lease_drop_unused(struct agent *a)
{
        for (size_t i = 0; i < a->n_leases;) {
                if (lease_fault_count(a, a->leases[i].id) == 0)
                        a->leases[i] = a->leases[--a->n_leases];
                else
                        i++;
        }
}

/* Revert f and drop its journal entry. The entry stays when the revert
 * failed, so recovery on the next start tries again. */
static int fault_revert(struct agent *a, struct agent_fault *f, const char *why)
{
        char err[FL_MSG_LEN] = "";
        int rv = f->ops->revert(f, err, sizeof(err));
        if (rv < 0) {
                fl_log(LOG_ERR,
                       "fault revert failed id=%s kind=%s target=\"%s\" lease=%s why=%s: %s", f->id,
                       f->ops->kind, f->target, f->lease, why, err);
                agent_audit("revert", f->ops->kind, f->id, f->target, f->lease, "failed", err);
                return rv;
        }
        agent_audit("revert", f->ops->kind, f->id, f->target, f->lease, "ok", why);
        int jr = agent_journal_remove(a->cfg.state_dir, f->id);
        if (jr < 0)
                fl_log(LOG_WARNING, "journal remove id=%s: %s", f->id, strerror(-jr));
        fl_log(LOG_NOTICE, "fault reverted id=%s kind=%s target=\"%s\" lease=%s why=%s", f->id,
               f->ops->kind, f->target, f->lease, why);
        return 0;
}

static void remove_at(struct agent *a, size_t i)
{
        fault_free(a->faults[i]);
        memmove(&a->faults[i], &a->faults[i + 1], (a->n_faults - i - 1) * sizeof(a->faults[0]));
        a->n_faults--;
}

/* Revert every fault matching (lease == NULL: all). Faults whose revert
 * fails stay in the table and are retried at the next tick. */
static int revert_matching(struct agent *a, const char *lease, const char *why)
{
        int n = 0;
        for (size_t i = 0; i < a->n_faults;) {
                struct agent_fault *f = a->faults[i];
                if (lease && strcmp(f->lease, lease) != 0) {
                        i++;
                        continue;
                }
                if (fault_revert(a, f, why) == 0) {
                        remove_at(a, i);
                        n++;
                } else {
                        i++;
                }
        }
        lease_drop_unused(a);
        return n;
}

int agent_revert_all(struct agent *a, const char *why)
{
        return revert_matching(a, NULL, why);
}

/* Periodic work of an active fault (fault.h: tick). A failed tick is the
 * injected fault missing its aim this round, not the agent failing. */
static void fault_tick(struct agent_fault *f, uint64_t now)
{
        char err[FL_MSG_LEN] = "";
        uint64_t next = 0;
        int rv = f->ops->tick(f, now, &next, err, sizeof(err));
        if (rv < 0)
                fl_log(LOG_WARNING, "fault tick id=%s kind=%s target=\"%s\" lease=%s: %s", f->id,
                       f->ops->kind, f->target, f->lease, err);
        /* Never the same millisecond twice: no hot loop on a bad hook. */
        f->next_tick_mono_ms = next > now ? next : next ? now + 1 : 0;
}

int agent_tick(struct agent *a, int cap_ms)
{
        uint64_t now = fl_now_mono_ms();
        uint64_t next = now + (uint64_t)cap_ms;

        for (size_t i = 0; i < a->n_faults;) {
                struct agent_fault *f = a->faults[i];
                if (f->ops->tick && f->next_tick_mono_ms && f->next_tick_mono_ms <= now &&
                    f->deadline_mono_ms > now)
                        fault_tick(f, now);
                if (f->ops->tick && f->next_tick_mono_ms && f->next_tick_mono_ms < next)
                        next = f->next_tick_mono_ms;
                if (f->deadline_mono_ms <= now) {
                        if (fault_revert(a, f, "duration-elapsed") == 0) {
                                remove_at(a, i);
                                continue;
                        }
                        /* Failed revert: retry in a second, not in a hot loop. */
                        f->deadline_mono_ms = now + 1000;
                }
                if (f->deadline_mono_ms < next)
                        next = f->deadline_mono_ms;
                i++;
        }
        for (size_t i = 0; i < a->n_leases; i++) {
                struct lease *l = &a->leases[i];
                if (l->expires_mono_ms <= now) {
                        char id[FL_ID_LEN];
                        snprintf(id, sizeof(id), "%s", l->id);
                        fl_log(LOG_WARNING,
                               "lease lapsed lease=%s ttl=%llums: reverting its faults", id,
                               (unsigned long long)l->ttl_ms);
                        revert_matching(a, id, "lease-lapsed");
                        /* revert_matching reshuffles the lease array. */
                        struct lease *still = lease_find(a, id);
                        if (still)
                                still->expires_mono_ms = now + 1000;
                        return 0;
                }
                if (l->expires_mono_ms < next)
                        next = l->expires_mono_ms;
        }
        lease_drop_unused(a);
        return (int)(next > now ? next - now : 0);
}

static void fault_to_info(const struct agent_fault *f, struct fl_fault_info *info)
{
        memset(info, 0, sizeof(*info));
        snprintf(info->id, sizeof(info->id), "%s", f->id);
        snprintf(info->kind, sizeof(info->kind), "%s", f->ops->kind);
        snprintf(info->lease, sizeof(info->lease), "%s", f->lease);
        snprintf(info->target, sizeof(info->target), "%s", f->target);
        snprintf(info->backend, sizeof(info->backend), "%s", f->backend);
        snprintf(info->state, sizeof(info->state), "active");
        info->started_ms = f->started_wall_ms;
        info->expires_ms = f->expires_wall_ms;
        for (size_t i = 0; i < f->n_params; i++)
                fl_params_add(&info->params, &info->n_params, f->params[i].key, f->params[i].value);
}

static void reply_status(struct fl_reply *r, enum fl_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_status(struct fl_reply *r, enum fl_status st, const char *fmt, ...)
{
        va_list ap;
        r->status = st;
        va_start(ap, fmt);
        vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
        va_end(ap);
}

static enum fl_status status_from_errno(int rv)
{
        switch (rv) {
        case -EINVAL:
        case -ERANGE:
        case -ENAMETOOLONG:
                return FL_ST_INVALID;
        case -EPERM:
        case -EACCES:
                return FL_ST_REFUSED;
        case -ENOENT:
        case -ESRCH:
                return FL_ST_NOT_FOUND;
        case -EOPNOTSUPP:
                return FL_ST_UNSUPPORTED;
        default:
                return FL_ST_FAILED;
        }
}

static bool kind_allowed(const struct agent_policy *p, const char *kind)
{
        if (p->allow_all_kinds)
                return true;
        for (size_t i = 0; i < p->n_allowed_kinds; i++)
                if (strcmp(p->allowed_kinds[i], kind) == 0)
                        return true;
        return false;
}

static bool key_known(const struct fault_ops *ops, const char *key)
{
        for (const char *const *k = ops->keys; k && *k; k++)
                if (strcmp(*k, key) == 0)
                        return true;
        return false;
}

static void handle_apply(struct agent *a, const struct fl_request *req, struct fl_reply *r)
{
        char err[FL_MSG_LEN] = "";
        const struct fault_ops *ops = agent_fault_lookup(req->kind);
        int rv;

        if (!ops) {
                char known[FL_MSG_LEN] = "";
                for (size_t i = 0; i < agent_fault_registry_len; i++)
                        snprintf(known + strlen(known), sizeof(known) - strlen(known), "%s%s",
                                 i ? ", " : "", agent_fault_registry[i]->kind);
                return reply_status(r, FL_ST_UNKNOWN_KIND, "unknown fault kind \"%s\" (known: %s)",
                                    req->kind, known);
        }
        const char *why_not = ops->supported ? ops->supported() : NULL;
        if (why_not)
                return reply_status(r, FL_ST_UNSUPPORTED, "%s unavailable on this host: %s",
                                    ops->kind, why_not);
        if (!kind_allowed(&a->cfg.policy, ops->kind))
                return reply_status(r, FL_ST_REFUSED, "policy: fault kind %s is not allowed here",
                                    ops->kind);
        if (req->duration_ms == 0)
                return reply_status(r, FL_ST_INVALID, "duration is mandatory and must be > 0");
        if (req->duration_ms > a->cfg.policy.max_duration_ms) {
                char d1[32], d2[32];
                fl_format_duration(req->duration_ms, d1, sizeof(d1));
                fl_format_duration(a->cfg.policy.max_duration_ms, d2, sizeof(d2));
                return reply_status(r, FL_ST_REFUSED, "policy: duration %s exceeds max-duration %s",
                                    d1, d2);
        }
        if (a->n_faults >= a->cfg.policy.max_faults)
                return reply_status(r, FL_ST_REFUSED,
                                    "policy: %zu faults active, max-concurrent-faults is %u",
                                    a->n_faults, a->cfg.policy.max_faults);
        if (!req->lease[0])
                return reply_status(r, FL_ST_INVALID, "lease is mandatory");
        if (agent_policy_check_params(&a->cfg.policy, ops, req->params, req->n_params, err,
                                      sizeof(err)) < 0)
                return reply_status(r, FL_ST_REFUSED, "%s", err);
        for (size_t i = 0; i < req->n_params; i++) {
                if (!key_known(ops, req->params[i].key))
                        return reply_status(r, FL_ST_INVALID, "%s: unknown parameter \"%s\"",
                                            ops->kind, req->params[i].key);
                for (size_t j = 0; j < i; j++)
                        if (strcmp(req->params[i].key, req->params[j].key) == 0)
                                return reply_status(r, FL_ST_INVALID,
                                                    "%s: parameter \"%s\" given twice", ops->kind,
                                                    req->params[i].key);
        }

        struct agent_fault *f = calloc(1, sizeof(*f));
        if (!f)
                return reply_status(r, FL_ST_INTERNAL, "out of memory");
        f->ops = ops;
        new_fault_id(f->id, sizeof(f->id));
        snprintf(f->lease, sizeof(f->lease), "%s", req->lease);
        snprintf(f->requester, sizeof(f->requester), "%s",
                 req->requester[0] ? req->requester : "unknown");
        f->duration_ms = req->duration_ms;
        for (size_t i = 0; i < req->n_params; i++) {
                if (fl_params_add(&f->params, &f->n_params, req->params[i].key,
                                  req->params[i].value) < 0) {
                        fault_free(f);
                        return reply_status(r, FL_ST_INTERNAL, "out of memory");
                }
        }

        if ((rv = ops->validate(f, err, sizeof(err))) < 0) {
                fault_free(f);
                return reply_status(r,
                                    status_from_errno(rv) == FL_ST_FAILED ? FL_ST_INVALID
                                                                          : status_from_errno(rv),
                                    "%s: %s", ops->kind, err);
        }
        /* Protected names from the policy apply to every process fault. */
        for (size_t i = 0; i < a->cfg.policy.n_protected_names; i++) {
                const char *name = fl_params_get(f->params, f->n_params, "name");
                if (name && strcmp(name, a->cfg.policy.protected_names[i]) == 0) {
                        /* name points into f->params: answer before freeing. */
                        reply_status(r, FL_ST_REFUSED, "policy: process name \"%s\" is protected",
                                     name);
                        fault_free(f);
                        return;
                }
        }
        f->undo = json_object(); /* prepare() records into it */
        if (!f->undo) {
                fault_free(f);
                return reply_status(r, FL_ST_INTERNAL, "out of memory");
        }
        if ((rv = ops->prepare(f, err, sizeof(err))) < 0) {
                fault_free(f);
                return reply_status(r, status_from_errno(rv), "%s: %s", ops->kind, err);
        }
        if (!f->undo)
                f->undo = json_object();

        f->started_wall_ms = fl_now_wall_ms();
        f->expires_wall_ms = f->started_wall_ms + f->duration_ms;
        f->deadline_mono_ms = fl_now_mono_ms() + f->duration_ms;

        /* Durable intent before any change to the system. */
        if ((rv = agent_journal_write(a->cfg.state_dir, f)) < 0) {
                fault_free(f);
                return reply_status(r, FL_ST_FAILED, "journal write failed: %s; nothing applied",
                                    strerror(-rv));
        }
        if ((rv = ops->apply(f, err, sizeof(err))) < 0) {
                char rerr[FL_MSG_LEN] = "";
                enum fl_status st = status_from_errno(rv);
                fl_log(LOG_ERR, "fault apply failed id=%s kind=%s target=\"%s\" lease=%s: %s",
                       f->id, ops->kind, f->target, f->lease, err);
                if (ops->revert(f, rerr, sizeof(rerr)) == 0)
                        agent_journal_remove(a->cfg.state_dir, f->id);
                fault_free(f);
                return reply_status(r, st == FL_ST_INVALID ? FL_ST_FAILED : st, "%s: %s", ops->kind,
                                    err);
        }
        /* apply() may have recorded more detail (e.g. per-target results).
         * Revert never depends on it (prepare() journaled everything revert
         * needs, durably), so this rewrite skips the fsyncs: one durable
         * write per apply, not two. */
        if ((rv = agent_journal_write_mode(a->cfg.state_dir, f, false)) < 0)
                fl_log(LOG_WARNING, "journal rewrite id=%s: %s", f->id, strerror(-rv));
        if (ops->verify && (rv = ops->verify(f, err, sizeof(err))) < 0) {
                char rerr[FL_MSG_LEN] = "";
                fl_log(LOG_ERR,
                       "fault verify failed id=%s kind=%s target=\"%s\" lease=%s: %s (reverting)",
                       f->id, ops->kind, f->target, f->lease, err);
                if (ops->revert(f, rerr, sizeof(rerr)) == 0)
                        agent_journal_remove(a->cfg.state_dir, f->id);
                fault_free(f);
                return reply_status(r, FL_ST_VERIFY, "%s: applied but had no effect: %s", ops->kind,
                                    err);
        }

        if (a->n_faults == a->cap_faults) {
                size_t cap = a->cap_faults ? a->cap_faults * 2 : 16;
                struct agent_fault **n = realloc(a->faults, cap * sizeof(*n));
                if (!n) {
                        fault_revert(a, f, "out-of-memory");
                        fault_free(f);
                        return reply_status(r, FL_ST_INTERNAL, "out of memory; reverted");
                }
                a->faults = n;
                a->cap_faults = cap;
        }
        a->faults[a->n_faults++] = f;
        if (lease_touch(a, f->lease, req->lease_ttl_ms) < 0)
                fl_log(LOG_WARNING, "lease table full; fault %s relies on its TTL", f->id);

        char dur[32];
        fl_format_duration(f->duration_ms, dur, sizeof(dur));
        fl_log(LOG_NOTICE,
               "fault applied id=%s kind=%s target=\"%s\" backend=%s lease=%s duration=%s from=%s",
               f->id, ops->kind, f->target, f->backend, f->lease, dur, f->requester);

        r->faults = calloc(1, sizeof(*r->faults));
        if (r->faults) {
                fault_to_info(f, &r->faults[0]);
                r->n_faults = 1;
        }
        reply_status(r, FL_ST_OK, "applied %s %s on %s for %s", ops->kind, f->id, f->target, dur);
}

static void handle_revert(struct agent *a, const struct fl_request *req, struct fl_reply *r)
{
        for (size_t i = 0; i < a->n_faults; i++) {
                struct agent_fault *f = a->faults[i];
                if (strcmp(f->id, req->fault_id) != 0)
                        continue;
                if (fault_revert(a, f, "requested") < 0)
                        return reply_status(r, FL_ST_FAILED,
                                            "revert of %s failed; will retry at its deadline",
                                            req->fault_id);
                remove_at(a, i);
                lease_drop_unused(a);
                r->count = 1;
                return reply_status(r, FL_ST_OK, "reverted %s", req->fault_id);
        }
        reply_status(r, FL_ST_NOT_FOUND, "no active fault with id \"%s\"", req->fault_id);
}

static void handle_hello(struct agent *a, struct fl_reply *r)
{
        r->proto_version = FL_PROTO_VERSION;
        snprintf(r->agent_version, sizeof(r->agent_version), "%s", FL_VERSION);
        snprintf(r->hostname, sizeof(r->hostname), "%s", a->hostname);
        r->caps = calloc(agent_fault_registry_len, sizeof(*r->caps));
        if (!r->caps)
                return reply_status(r, FL_ST_INTERNAL, "out of memory");
        for (size_t i = 0; i < agent_fault_registry_len; i++) {
                const struct fault_ops *ops = agent_fault_registry[i];
                const char *why = ops->supported ? ops->supported() : NULL;
                struct fl_cap *c = &r->caps[i];
                snprintf(c->kind, sizeof(c->kind), "%s", ops->kind);
                if (!why && !kind_allowed(&a->cfg.policy, ops->kind))
                        why = "not allowed by this agent's policy";
                c->available = !why;
                snprintf(c->reason, sizeof(c->reason), "%s", why ? why : "");
        }
        r->n_caps = agent_fault_registry_len;
        r->count = (uint32_t)a->n_faults;
        char cg[256];
        agent_cg_describe(agent_cg_host(), cg, sizeof(cg));
        reply_status(r, FL_ST_OK, "faultline-agent %s on %s, %zu active fault(s), %s", FL_VERSION,
                     a->hostname, a->n_faults, cg);
}

static void handle_list(struct agent *a, struct fl_reply *r)
{
        size_t n = a->n_faults < FL_MAX_FAULTS ? a->n_faults : FL_MAX_FAULTS;
        if (n) {
                r->faults = calloc(n, sizeof(*r->faults));
                if (!r->faults)
                        return reply_status(r, FL_ST_INTERNAL, "out of memory");
        }
        for (size_t i = 0; i < n; i++)
                fault_to_info(a->faults[i], &r->faults[i]);
        r->n_faults = n;
        r->count = (uint32_t)a->n_faults;
        reply_status(r, FL_ST_OK, "%zu active fault(s)", a->n_faults);
}

static void handle_renew(struct agent *a, const struct fl_request *req, struct fl_reply *r)
{
        if (!lease_find(a, req->lease))
                return reply_status(r, FL_ST_NOT_FOUND,
                                    "lease %s holds no faults (expired, reverted or never used)",
                                    req->lease);
        lease_touch(a, req->lease, req->lease_ttl_ms);
        r->count = (uint32_t)lease_fault_count(a, req->lease);
        reply_status(r, FL_ST_OK, "lease %s renewed, %u fault(s)", req->lease, r->count);
}

static void handle_abort(struct agent *a, const struct fl_request *req, struct fl_reply *r)
{
        size_t before = a->n_faults;
        int n = revert_matching(a, req->lease[0] ? req->lease : NULL, "abort");
        r->count = (uint32_t)n;
        if ((size_t)n < before && !req->lease[0])
                return reply_status(r, FL_ST_FAILED, "aborted: %d reverted, %zu failed to revert",
                                    n, a->n_faults);
        reply_status(r, FL_ST_OK, "aborted: %d fault(s) reverted", n);
}

void agent_handle(struct agent *a, const struct fl_request *req, struct fl_reply *r)
{
        memset(r, 0, sizeof(*r));
        r->version = FL_PROTO_VERSION;
        r->type = req->type;
        r->seq = req->seq;
        switch (req->type) {
        case FL_MSG_HELLO:
                return handle_hello(a, r);
        case FL_MSG_APPLY:
                return handle_apply(a, req, r);
        case FL_MSG_REVERT:
                return handle_revert(a, req, r);
        case FL_MSG_LIST:
                return handle_list(a, r);
        case FL_MSG_RENEW:
                return handle_renew(a, req, r);
        case FL_MSG_ABORT:
                return handle_abort(a, req, r);
        default:
                return reply_status(r, FL_ST_UNKNOWN_TYPE, "unknown message type");
        }
}

/* Recovery: every journal entry is a fault a previous run applied and did
 * not revert. Revert it from its journaled params and undo data. */
struct recover_ctx {
        struct agent *a;
        int failed;
        int handled; /* entries the journal could parse */
};

static int recover_one(struct agent_fault *f, const char *path, void *ud)
{
        struct recover_ctx *ctx = ud;
        char err[FL_MSG_LEN] = "";
        ctx->handled++;
        int rv = f->ops->validate(f, err, sizeof(err));
        if (rv == 0)
                rv = f->ops->revert(f, err, sizeof(err));
        if (rv < 0) {
                fl_log(LOG_ERR, "recovery failed id=%s kind=%s target=\"%s\": %s (entry %s kept)",
                       f->id, f->ops->kind, f->target, err, path);
                ctx->failed++;
        } else {
                agent_audit("revert", f->ops->kind, f->id, f->target, f->lease, "ok",
                            "recovered-after-restart");
                agent_journal_remove(ctx->a->cfg.state_dir, f->id);
                fl_log(LOG_NOTICE,
                       "fault reverted id=%s kind=%s target=\"%s\" lease=%s "
                       "why=recovered-after-restart",
                       f->id, f->ops->kind, f->target, f->lease);
        }
        fault_free(f);
        return 0;
}

int agent_recover(struct agent *a)
{
        struct recover_ctx ctx = {.a = a};
        int seen = agent_journal_load(a->cfg.state_dir, recover_one, &ctx);
        if (seen < 0) {
                fl_log(LOG_ERR, "journal scan of %s failed: %s", a->cfg.state_dir, strerror(-seen));
                return 1;
        }
        /* Entries the journal could not even read are never handed to
         * recover_one; they are leftovers all the same. */
        int unusable = seen - ctx.handled;
        int failed = ctx.failed + (unusable > 0 ? unusable : 0);
        if (seen > 0)
                fl_log(failed ? LOG_ERR : LOG_NOTICE,
                       "recovery: %d journal entr%s, %d could not be reverted", seen,
                       seen == 1 ? "y" : "ies", failed);
        return failed;
}
