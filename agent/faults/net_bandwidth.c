/* net-bandwidth: cap the selected traffic to rate= (htb class); egress by
 * default, direction=ingress|both through an IFB. */
#include "faults/net.h"
#include "fl_parse.h"
#include "fl_util.h"

static const char *const bw_keys[] = {"rate", "burst", "force", NET_SEL_KEYS, NULL};

static int bw_validate(struct agent_fault *f, char *err, size_t errlen)
{
        struct net_qfault *q;
        int rv = net_qfault_begin(f, &q, err, errlen);
        if (rv < 0)
                return rv;
        const char *rate = fl_params_get(f->params, f->n_params, "rate");
        const char *burst = fl_params_get(f->params, f->n_params, "burst");
        if (!rate || net_parse_rate(rate, &q->spec.rate_bps) < 0) {
                snprintf(err, errlen,
                         "rate=%s: expected a rate like 1mbit, 500kbit, 2gbit or "
                         "10mbps (bytes), at least 1kbit",
                         rate ? rate : "");
                net_qfault_destroy(f);
                return -EINVAL;
        }
        if (burst) {
                uint64_t b;
                if (fl_parse_size(burst, &b) < 0 || b < 1500 || b > 64u * 1024 * 1024) {
                        snprintf(err, errlen, "burst=%s: expected a size from 1500 to 64M", burst);
                        net_qfault_destroy(f);
                        return -EINVAL;
                }
                q->spec.burst = (uint32_t)b;
        }
        return 0;
}

static int bw_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct net_qfault *q = f->priv;
        int rv = net_qfault_prepare(f, err, errlen);
        if (rv == 0) {
                size_t len = strlen(f->target);
                snprintf(f->target + len, sizeof(f->target) - len, " rate=%s",
                         fl_params_get(f->params, f->n_params, "rate"));
        }
        (void)q;
        return rv;
}

const struct fault_ops agent_fault_net_bandwidth = {
    .kind = "net-bandwidth",
    .help = "cap selected traffic to rate= (htb; direction=ingress via ifb), e.g. rate=1mbit",
    .keys = bw_keys,
    .supported = net_htb_supported,
    .validate = bw_validate,
    .prepare = bw_prepare,
    .apply = net_qfault_apply,
    .verify = net_qfault_verify,
    .revert = net_qfault_revert,
    .destroy = net_qfault_destroy,
};
