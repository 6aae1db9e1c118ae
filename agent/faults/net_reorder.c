/* net-reorder: netem reorder on selected packets (direction=egress|ingress|both; ingress via an
 * IFB): percent=, correlation=, and delay= (reordering sends the chosen packets at once while the
 * rest wait delay=). */
#include <stddef.h>

#include "faults/net.h"
#include "fl_util.h"

static const char *const reorder_keys[] = {"percent", "correlation", "delay",
                                           "force",   NET_SEL_KEYS,  NULL};

static int reorder_validate(struct agent_fault *f, char *err, size_t errlen)
{
        int rv = net_prob_validate(f, offsetof(struct agent_netem, reorder_bp),
                                   offsetof(struct agent_netem, reorder_corr_bp), err, errlen);
        if (rv < 0)
                return rv;
        struct net_qfault *q = f->priv;
        if ((rv = net_parse_us(f, "delay", true, &q->spec.netem.delay_us, err, errlen)) < 0) {
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
        return net_prob_prepare(f, "reorder", offsetof(struct agent_netem, reorder_bp), err,
                                errlen);
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
