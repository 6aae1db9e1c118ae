/* net-corrupt: netem corrupt on selected packets (direction=egress|ingress|both; ingress via an
 * IFB): percent=, correlation=. */
#include <stddef.h>

#include "faults/net.h"

static const char *const corrupt_keys[] = {"percent", "correlation", "force", NET_SEL_KEYS, NULL};

static int corrupt_validate(struct agent_fault *f, char *err, size_t errlen)
{
        return net_prob_validate(f, offsetof(struct agent_netem, corrupt_bp),
                                 offsetof(struct agent_netem, corrupt_corr_bp), err, errlen);
}

static int corrupt_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        return net_prob_prepare(f, "corrupt", offsetof(struct agent_netem, corrupt_bp), err,
                                errlen);
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
