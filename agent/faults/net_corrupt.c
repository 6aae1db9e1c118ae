/* net-corrupt: netem corrupt on selected packets (direction=egress|ingress|both; ingress via an
 * IFB): percent=, correlation=. */
#include "faults/net.h"
#include "fl_util.h"

static const char *const corrupt_keys[] = {"percent", "correlation", "force", NET_SEL_KEYS, NULL};

static int corrupt_validate(struct agent_fault *f, char *err, size_t errlen)
{
        struct net_qfault *q;
        int rv = net_qfault_begin(f, &q, err, errlen);
        if (rv < 0)
                return rv;
        struct agent_netem *ne = &q->spec.netem;
        q->spec.has_netem = true;
        if ((rv = net_parse_bp(f, "percent", true, &ne->corrupt_bp, err, errlen)) < 0 ||
            (rv = net_parse_bp(f, "correlation", false, &ne->corrupt_corr_bp, err, errlen)) < 0) {
                net_qfault_destroy(f);
                return rv;
        }

        return 0;
}

static int corrupt_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct net_qfault *q = f->priv;
        int rv = net_qfault_prepare(f, err, errlen);
        if (rv == 0) {
                size_t len = strlen(f->target);
                snprintf(f->target + len, sizeof(f->target) - len, " corrupt=%u.%02u%%",
                         q->spec.netem.corrupt_bp / 100, q->spec.netem.corrupt_bp % 100);
        }
        return rv;
}

const struct fault_ops agent_fault_net_corrupt = {
    .kind = "net-corrupt",
    .help = "netem corrupt: percent=, correlation=",
    .keys = corrupt_keys,
    .supported = net_netem_supported,
    .validate = corrupt_validate,
    .prepare = corrupt_prepare,
    .apply = net_qfault_apply,
    .verify = net_qfault_verify,
    .revert = net_qfault_revert,
    .destroy = net_qfault_destroy,
};
