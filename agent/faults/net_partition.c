/* net-partition: drop all traffic to and/or from a set of peers, through
 * the agent's nftables table. Control traffic (the agent's port), the
 * protected ports and CIDRs, and loopback are exempt, so a partition can
 * never cut the agent off from its own abort. */
#include "faults/net.h"
#include "fl_parse.h"
#include "fl_util.h"

struct partition_priv {
        struct net_sel out, in; /* egress: daddr in peers; ingress: saddr in peers */
        enum net_dir dir;
};

static const char *const partition_keys[] = {"peers",     "direction", "protocol", "dport",
                                             "interface", "force",     NULL};

static void partition_destroy(struct agent_fault *f)
{
        free(f->priv);
        f->priv = NULL;
}

static bool covers_everything(const struct net_cidr *c, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (c[i].prefix == 0)
                        return true;
        return false;
}

static int partition_validate(struct agent_fault *f, char *err, size_t errlen)
{
        partition_destroy(f);
        struct partition_priv *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        struct net_sel base;
        int rv = net_sel_parse(f, &base, NET_BOTH, NET_BOTH, err, errlen);
        const char *peers = fl_params_get(f->params, f->n_params, "peers");
        if (rv == 0 && !peers) {
                snprintf(err, errlen,
                         "peers= is required (CIDRs to cut off, e.g. peers=10.0.2.0/24)");
                rv = -EINVAL;
        }
        size_t n = 0;
        struct net_cidr cidrs[NET_MAX_CIDRS];
        if (rv == 0)
                rv = net_parse_cidrs("peers", peers, cidrs, NET_MAX_CIDRS, &n, err, errlen);
        if (rv == 0 && covers_everything(cidrs, n)) {
                /* Host-wide isolation is the most dangerous fault we have:
                 * an explicit opt-in, like stress-ng's pathological class. */
                const char *force = fl_params_get(f->params, f->n_params, "force");
                bool yes = false;
                if (!force || fl_parse_bool(force, &yes) < 0 || !yes) {
                        snprintf(err, errlen,
                                 "peers= includes a /0 (the whole network): add "
                                 "force=true to isolate the host");
                        rv = -EPERM;
                }
        }
        if (rv < 0) {
                free(p);
                return rv;
        }
        p->dir = base.dir;
        p->out = base;
        memcpy(p->out.dst, cidrs, sizeof(cidrs));
        p->out.n_dst = n;
        p->in = base;
        memcpy(p->in.src, cidrs, sizeof(cidrs));
        p->in.n_src = n;
        f->priv = p;
        return 0;
}

static int partition_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct partition_priv *p = f->priv;
        const char *peers = fl_params_get(f->params, f->n_params, "peers");
        snprintf(f->target, sizeof(f->target), "peers=%s direction=%s", peers,
                 p->dir == NET_BOTH     ? "both"
                 : p->dir == NET_EGRESS ? "egress"
                                        : "ingress");
        snprintf(f->backend, sizeof(f->backend), "nftables");
        return 0;
}

static int partition_apply(struct agent_fault *f, char *err, size_t errlen)
{
        struct partition_priv *p = f->priv;
        return net_nft_apply(f, p->dir & NET_EGRESS ? &p->out : NULL,
                             p->dir & NET_INGRESS ? &p->in : NULL, "drop", err, errlen);
}

static int partition_verify(struct agent_fault *f, char *err, size_t errlen)
{
        return net_nft_verify(f, err, errlen);
}

static int partition_revert(struct agent_fault *f, char *err, size_t errlen)
{
        return net_nft_revert(f, err, errlen);
}

const struct fault_ops agent_fault_net_partition = {
    .kind = "net-partition",
    .help = "drop traffic to/from peers (nftables); control traffic stays exempt",
    .keys = partition_keys,
    .supported = net_nft_supported,
    .validate = partition_validate,
    .prepare = partition_prepare,
    .apply = partition_apply,
    .verify = partition_verify,
    .revert = partition_revert,
    .destroy = partition_destroy,
};
