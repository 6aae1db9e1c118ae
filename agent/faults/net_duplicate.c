/* net-duplicate: netem duplicate on selected packets (direction=egress|ingress|both; ingress via an
 * IFB): percent=, correlation=. */
#include "faults/net.h"
#include "fl_util.h"

static const char *const duplicate_keys[] = {"percent", "correlation", "force", NET_SEL_KEYS, NULL};

static int duplicate_validate(struct agent_fault *f, char *err, size_t errlen)
{
        struct net_qfault *q;
        int rv = net_qfault_begin(f, &q, err, errlen);
        if (rv < 0)
                return rv;
        struct agent_netem *ne = &q->spec.netem;
        q->spec.has_netem = true;
        if ((rv = net_parse_bp(f, "percent", true, &ne->duplicate_bp, err, errlen)) < 0 ||
            (rv = net_parse_bp(f, "correlation", false, &ne->duplicate_corr_bp, err, errlen)) < 0) {
                net_qfault_destroy(f);
                return rv;
        }

        return 0;
}

static int duplicate_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct net_qfault *q = f->priv;
        int rv = net_qfault_prepare(f, err, errlen);
        if (rv == 0) {
                size_t len = strlen(f->target);
                snprintf(f->target + len, sizeof(f->target) - len, " duplicate=%u.%02u%%",
                         q->spec.netem.duplicate_bp / 100, q->spec.netem.duplicate_bp % 100);
        }
        return rv;
}

const struct fault_ops agent_fault_net_duplicate = {
    .kind = "net-duplicate",
    .help = "netem duplicate: percent=, correlation=",
    .keys = duplicate_keys,
    .supported = net_netem_supported,
    .validate = duplicate_validate,
    .prepare = duplicate_prepare,
    .apply = net_qfault_apply,
    .verify = net_qfault_verify,
    .revert = net_qfault_revert,
    .destroy = net_qfault_destroy,
};
