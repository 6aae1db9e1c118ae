/* net-duplicate: netem duplicate on selected packets (direction=egress|ingress|both; ingress via an
 * IFB): percent=, correlation=. */
#include <stddef.h>

#include "faults/net.h"

static const char *const duplicate_keys[] = {"percent", "correlation", "force", NET_SEL_KEYS, NULL};

static int duplicate_validate(struct agent_fault *f, char *err, size_t errlen)
{
        return net_prob_validate(f, offsetof(struct agent_netem, duplicate_bp),
                                 offsetof(struct agent_netem, duplicate_corr_bp), err, errlen);
}

static int duplicate_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        return net_prob_prepare(f, "duplicate", offsetof(struct agent_netem, duplicate_bp), err,
                                errlen);
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
