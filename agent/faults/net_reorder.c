/* net-reorder: netem reorder on selected packets (direction=egress|ingress|both; ingress via an
 * IFB): percent=, correlation=, and delay= (reordering sends the chosen packets at once while the
 * rest wait delay=). */
#include "faults/net.h"
#include "fl_util.h"

static const char *const reorder_keys[] = {"percent", "correlation", "delay",
                                           "force",   NET_SEL_KEYS,  NULL};

static int reorder_validate(struct agent_fault *f, char *err, size_t errlen)
{
        struct net_qfault *q;
        int rv = net_qfault_begin(f, &q, err, errlen);
        if (rv < 0)
                return rv;
        struct agent_netem *ne = &q->spec.netem;
        q->spec.has_netem = true;
        if ((rv = net_parse_bp(f, "percent", true, &ne->reorder_bp, err, errlen)) < 0 ||
            (rv = net_parse_bp(f, "correlation", false, &ne->reorder_corr_bp, err, errlen)) < 0) {
                net_qfault_destroy(f);
                return rv;
        }
        if ((rv = net_parse_us(f, "delay", true, &ne->delay_us, err, errlen)) < 0) {
                snprintf(err, errlen,
                         "net-reorder needs delay= (e.g. delay=10ms): reordering "
                         "holds back the packets it does not pick");
                net_qfault_destroy(f);
                return rv;
        }
        return 0;
}

static int reorder_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct net_qfault *q = f->priv;
        int rv = net_qfault_prepare(f, err, errlen);
        if (rv == 0) {
                size_t len = strlen(f->target);
                snprintf(f->target + len, sizeof(f->target) - len, " reorder=%u.%02u%%",
                         q->spec.netem.reorder_bp / 100, q->spec.netem.reorder_bp % 100);
        }
        return rv;
}

const struct fault_ops agent_fault_net_reorder = {
    .kind = "net-reorder",
    .help = "netem reorder: percent=, correlation=, delay=",
    .keys = reorder_keys,
    .supported = net_netem_supported,
    .validate = reorder_validate,
    .prepare = reorder_prepare,
    .apply = net_qfault_apply,
    .verify = net_qfault_verify,
    .revert = net_qfault_revert,
    .destroy = net_qfault_destroy,
};
