/* net-delay: add latency to selected egress packets (netem): delay=,
 * jitter=, correlation=, distribution= normal|pareto|paretonormal|uniform. */
#include "faults/net.h"
#include "fl_util.h"

static const char *const delay_keys[] = {"delay", "jitter", "correlation", "distribution", "limit",
                                         "force", NET_SEL_KEYS, NULL};

static int delay_validate(struct agent_fault *f, char *err, size_t errlen)
{
        struct net_qfault *q;
        int rv = net_qfault_begin(f, &q, err, errlen);
        if (rv < 0)
                return rv;
        struct agent_netem *ne = &q->spec.netem;
        q->spec.has_netem = true;
        const char *dist = fl_params_get(f->params, f->n_params, "distribution");
        if ((rv = net_parse_us(f, "delay", true, &ne->delay_us, err, errlen)) < 0 ||
            (rv = net_parse_us(f, "jitter", false, &ne->jitter_us, err, errlen)) < 0 ||
            (rv = net_parse_bp(f, "correlation", false, &ne->delay_corr_bp, err, errlen)) < 0)
                goto fail;
        if (ne->jitter_us > ne->delay_us) {
                snprintf(err, errlen, "jitter= larger than delay= would need negative delays");
                rv = -EINVAL;
                goto fail;
        }
        if (dist) {
                if (strcmp(dist, "normal") != 0 && strcmp(dist, "pareto") != 0 &&
                    strcmp(dist, "paretonormal") != 0 && strcmp(dist, "uniform") != 0) {
                        snprintf(err, errlen, "distribution=%s: expected normal, pareto, "
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

static int delay_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct net_qfault *q = f->priv;
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
        .help = "add latency (netem): delay=100ms jitter=10ms correlation=25% distribution=normal",
        .keys = delay_keys,
        .supported = net_netem_supported,
        .validate = delay_validate,
        .prepare = delay_prepare,
        .apply = net_qfault_apply,
        .verify = net_qfault_verify,
        .revert = net_qfault_revert,
        .destroy = net_qfault_destroy,
};
