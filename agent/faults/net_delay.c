/* net-delay: add latency to selected packets (netem): delay=, jitter=,
 * correlation=, distribution= normal|pareto|paretonormal|uniform;
 * direction=egress (default), ingress (through an IFB) or both. */
#include "faults/net.h"
#include "fl_util.h"
#include "nl/nfqueue.h"
#include "nl/nft.h"

/* Backend: netem where the kernel has it, else the NFQUEUE delayer. */
struct delay_priv {
        struct net_qfault q; /* first: the generic qdisc hooks use it */
        bool nfq;
        uint32_t busy_poll_us; /* busy-poll=: NFQUEUE worker only */
        pid_t worker;
};

static const char *const delay_keys[] = {"delay",      "jitter",  "correlation", "distribution",
                                         "limit",      "backend", "force",       "busy-poll",
                                         NET_SEL_KEYS, NULL};

static int delay_validate(struct agent_fault *f, char *err, size_t errlen)
{
        net_qfault_destroy(f);
        struct delay_priv *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        f->priv = p;
        struct net_qfault *q = &p->q;
        int rv = net_sel_parse(f, &q->sel, NET_EGRESS, NET_BOTH, err, errlen);
        if (rv < 0)
                goto fail;
        const char *backend = fl_params_get(f->params, f->n_params, "backend");
        if (backend && strcmp(backend, "auto") != 0 && strcmp(backend, "netem") != 0 &&
            strcmp(backend, "nfqueue") != 0) {
                snprintf(err, errlen, "backend=%s: expected auto, netem or nfqueue", backend);
                rv = -EINVAL;
                goto fail;
        }
        struct agent_netem *ne = &q->spec.netem;
        q->spec.has_netem = true;
        const char *dist = fl_params_get(f->params, f->n_params, "distribution");
        if ((rv = net_parse_us(f, "delay", true, &ne->delay_us, err, errlen)) < 0 ||
            (rv = net_parse_us(f, "jitter", false, &ne->jitter_us, err, errlen)) < 0 ||
            (rv = net_parse_bp(f, "correlation", false, &ne->delay_corr_bp, err, errlen)) < 0)
                goto fail;
        if ((rv = net_parse_us(f, "busy-poll", false, &p->busy_poll_us, err, errlen)) < 0)
                goto fail;
        if (p->busy_poll_us > 1000000) {
                snprintf(err, errlen,
                         "busy-poll=%s: at most 1s (it keeps a CPU busy that long "
                         "after each packet)",
                         fl_params_get(f->params, f->n_params, "busy-poll"));
                rv = -EINVAL;
                goto fail;
        }
        if (p->busy_poll_us && backend && strcmp(backend, "netem") == 0) {
                snprintf(err, errlen,
                         "busy-poll= tunes the NFQUEUE delayer: not with backend=netem");
                rv = -EINVAL;
                goto fail;
        }
        if (ne->jitter_us > ne->delay_us) {
                snprintf(err, errlen, "jitter= larger than delay= would need negative delays");
                rv = -EINVAL;
                goto fail;
        }
        if (dist) {
                if (strcmp(dist, "normal") != 0 && strcmp(dist, "pareto") != 0 &&
                    strcmp(dist, "paretonormal") != 0 && strcmp(dist, "uniform") != 0) {
                        snprintf(err, errlen,
                                 "distribution=%s: expected normal, pareto, "
                                 "paretonormal or uniform",
                                 dist);
                        rv = -EINVAL;
                        goto fail;
                }
                if (!ne->jitter_us) {
                        snprintf(err, errlen, "distribution= shapes jitter: give jitter= too");
                        rv = -EINVAL;
                        goto fail;
                }
                /* uniform is netem's own behaviour without a table. */
                if (strcmp(dist, "uniform") != 0)
                        snprintf(ne->distribution, sizeof(ne->distribution), "%s", dist);
        }
        if (ne->delay_corr_bp && !ne->jitter_us) {
                snprintf(err, errlen, "correlation= correlates jitter: give jitter= too");
                rv = -EINVAL;
                goto fail;
        }
        return 0;
fail:
        net_qfault_destroy(f);
        return rv;
}

/* NFQUEUE backend: the worker first (so no packet waits on an unbound
 * queue), then the rule that feeds it. */
static int delay_apply(struct agent_fault *f, char *err, size_t errlen)
{
        struct delay_priv *p = f->priv;
        if (!p->nfq)
                return net_qfault_apply(f, err, errlen);
        /* Queue number from the fault id; walk on if another listener has it. */
        uint32_t h = 2166136261u;
        for (const char *c = f->id; *c; c++)
                h = (h ^ (uint8_t)*c) * 16777619u;
        int rv = -EBUSY;
        uint16_t queue = 0;
        for (int i = 0; i < 16 && rv == -EBUSY; i++) {
                queue = (uint16_t)(0x4000 + (h + (uint32_t)i) % 0x4000);
                struct agent_nfq_opts o = {.delay_us = p->q.spec.netem.delay_us,
                                           .jitter_us = p->q.spec.netem.jitter_us,
                                           .busy_poll_us = p->busy_poll_us};
                rv = agent_nfq_delayer_start(queue, &o, &p->worker, err, errlen);
        }
        if (rv < 0)
                return rv;
        json_object_set_new(f->undo, "queue", json_integer(queue));
        json_object_set_new(f->undo, "worker", json_integer(p->worker));
        char action[96];
        snprintf(action, sizeof(action), "queue num %u bypass", queue);
        if (agent_nfq_use_xt()) {
                /* No nft `queue` here: the selectors jump to a chain of
                 * ours whose one rule is the xt NFQUEUE target. The chain
                 * and its rule exist before any jump to them. */
                char qchain[64], script[320];
                net_nft_chain(f, NET_NFT_QCHAIN, qchain, sizeof(qchain));
                /* `nft list` prints an inet xt rule as an empty line: the
                 * chain's comment says what the rule is. */
                snprintf(script, sizeof(script),
                         "add table inet %s\nadd chain inet %s %s { comment \"faultline %s: "
                         "xt NFQUEUE num %u bypass (nft cannot print xt rules in inet)\"; }\n",
                         AGENT_NFT_TABLE, AGENT_NFT_TABLE, qchain, f->id, queue);
                json_object_set_new(f->undo, "rules_q", json_integer(1));
                if ((rv = agent_nft_run(script, err, errlen)) < 0 ||
                    (rv = agent_nft_add_xt_queue(qchain, queue, true, err, errlen)) < 0)
                        return rv;
                snprintf(action, sizeof(action), "jump %s", qchain);
        }
        /* The input hook delays arriving packets just as well. */
        const struct net_sel *s = &p->q.sel;
        return net_nft_apply(f, s->dir & NET_EGRESS ? s : NULL, s->dir & NET_INGRESS ? s : NULL,
                             action, err, errlen);
}

static int delay_verify(struct agent_fault *f, char *err, size_t errlen)
{
        struct delay_priv *p = f->priv;
        if (!p->nfq)
                return net_qfault_verify(f, err, errlen);
        if (!agent_nfq_delayer_alive(p->worker)) {
                snprintf(err, errlen, "NFQUEUE delayer exited");
                return -EIO;
        }
        return net_nft_verify(f, err, errlen);
}

static int delay_revert(struct agent_fault *f, char *err, size_t errlen)
{
        /* Rule first, so nothing is queued to a worker that is going away
         * (bypass would pass it anyway). After an agent restart the worker
         * is already gone with its parent; stop() ignores foreign pids. */
        int rv = net_qfault_revert(f, err, errlen);
        json_t *w = json_object_get(f->undo, "worker");
        if (w)
                agent_nfq_delayer_stop((pid_t)json_integer_value(w));
        return rv;
}

static const char *delay_supported(void)
{
        const char *no_netem = net_netem_supported();
        return no_netem && agent_nfq_unavailable() ? no_netem : NULL;
}

static int delay_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct delay_priv *p = f->priv;
        struct net_qfault *q = &p->q;
        const char *backend = fl_params_get(f->params, f->n_params, "backend");
        const char *no_netem = net_netem_supported(), *no_nfq = agent_nfq_unavailable();
        bool want_nfq = backend && strcmp(backend, "nfqueue") == 0;
        bool want_netem = backend && strcmp(backend, "netem") == 0;
        if (want_netem && no_netem) {
                snprintf(err, errlen, "backend=netem unavailable: %s", no_netem);
                return -EOPNOTSUPP;
        }
        p->nfq = want_nfq || (!want_netem && no_netem);
        if (p->nfq) {
                if (no_nfq) {
                        snprintf(err, errlen, "no delay backend: %s; and the NFQUEUE fallback: %s",
                                 no_netem ? no_netem : "netem not chosen", no_nfq);
                        return -EOPNOTSUPP;
                }
                if (q->spec.netem.distribution[0] || q->spec.netem.delay_corr_bp) {
                        snprintf(err, errlen,
                                 "the NFQUEUE delayer does uniform jitter only: "
                                 "drop distribution=/correlation= or use netem");
                        return -EOPNOTSUPP;
                }
                int rv = net_sel_resolve_cgroup(f, &q->sel, err, errlen);
                if (rv < 0)
                        return rv;
                char desc[FL_NAME_LEN];
                net_sel_describe(&q->sel, desc, sizeof(desc));
                char bp[40] = "";
                if (p->busy_poll_us)
                        snprintf(bp, sizeof(bp), " busy-poll=%uus", p->busy_poll_us);
                snprintf(f->target, sizeof(f->target), "%.160s delay=%uus jitter=%uus%s%s", desc,
                         q->spec.netem.delay_us, q->spec.netem.jitter_us, bp,
                         agent_nfq_use_xt() ? " (xt NFQUEUE)" : "");
                snprintf(f->backend, sizeof(f->backend), "nfqueue");
                json_object_set_new(f->undo, "backend", json_string("nfqueue"));
                return 0;
        }
        if (p->busy_poll_us) {
                snprintf(err, errlen,
                         "busy-poll= tunes the NFQUEUE delayer, and this fault uses netem "
                         "(the kernel's qdisc needs none): drop it, or give backend=nfqueue");
                return -EINVAL;
        }
        int rv = net_qfault_prepare(f, err, errlen);
        if (rv == 0) {
                size_t len = strlen(f->target);
                snprintf(f->target + len, sizeof(f->target) - len, " delay=%uus jitter=%uus",
                         q->spec.netem.delay_us, q->spec.netem.jitter_us);
        }
        return rv;
}

const struct fault_ops agent_fault_net_delay = {
    .kind = "net-delay",
    .help = "add latency (netem): delay=100ms jitter=10ms correlation=25% distribution=normal "
            "[backend=nfqueue busy-poll=1ms]",
    .keys = delay_keys,
    .supported = delay_supported,
    .validate = delay_validate,
    .prepare = delay_prepare,
    .apply = delay_apply,
    .verify = delay_verify,
    .revert = delay_revert,
    .destroy = net_qfault_destroy,
};
