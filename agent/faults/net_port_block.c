/* net-port-block: drop (or reject) traffic to a port, e.g. DNS with
 * port=53 protocol=udp. egress: this host cannot reach that port
 * elsewhere; ingress: nobody reaches this host's service on that port. */
#include "faults/net.h"
#include "fl_util.h"

struct port_block_priv {
        struct net_sel sel;
        bool reject;
};

static const char *const port_block_keys[] = {"port",      "protocol", "direction", "dst",  "src",
                                              "interface", "action",   "cgroup",    "unit", NULL};

static void port_block_destroy(struct agent_fault *f)
{
        free(f->priv);
        f->priv = NULL;
}

static int port_block_validate(struct agent_fault *f, char *err, size_t errlen)
{
        port_block_destroy(f);
        struct port_block_priv *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        int rv = net_sel_parse(f, &p->sel, NET_EGRESS, NET_BOTH, err, errlen);
        const char *port = fl_params_get(f->params, f->n_params, "port");
        const char *action = fl_params_get(f->params, f->n_params, "action");
        if (rv == 0 && !port) {
                snprintf(err, errlen, "port= is required (e.g. port=53 protocol=udp)");
                rv = -EINVAL;
        }
        if (rv == 0)
                rv = net_parse_ports("port", port, p->sel.dport, err, errlen);
        if (rv == 0 && p->sel.proto == IPPROTO_ICMP) {
                snprintf(err, errlen, "protocol=icmp has no ports");
                rv = -EINVAL;
        }
        if (rv == 0 && action && strcmp(action, "drop") != 0 && strcmp(action, "reject") != 0) {
                snprintf(err, errlen, "action=%s: expected drop or reject", action);
                rv = -EINVAL;
        }
        if (rv < 0) {
                free(p);
                return rv;
        }
        p->sel.has_dport = true;
        p->reject = action && strcmp(action, "reject") == 0;
        f->priv = p;
        return 0;
}

static int port_block_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct port_block_priv *p = f->priv;
        int rv = net_sel_resolve_cgroup(f, &p->sel, err, errlen);
        if (rv < 0)
                return rv;
        const char *proto = p->sel.proto == IPPROTO_TCP   ? "tcp"
                            : p->sel.proto == IPPROTO_UDP ? "udp"
                                                          : "tcp+udp";
        snprintf(f->target, sizeof(f->target), "%s port %s %s", proto,
                 fl_params_get(f->params, f->n_params, "port"),
                 p->sel.dir == NET_BOTH     ? "both ways"
                 : p->sel.dir == NET_EGRESS ? "egress"
                                            : "ingress");
        snprintf(f->backend, sizeof(f->backend), "nftables");
        return 0;
}

static int port_block_apply(struct agent_fault *f, char *err, size_t errlen)
{
        struct port_block_priv *p = f->priv;
        const char *action = p->reject ? "reject" : "drop";
        return net_nft_apply(f, p->sel.dir & NET_EGRESS ? &p->sel : NULL,
                             p->sel.dir & NET_INGRESS ? &p->sel : NULL, action, err, errlen);
}

static int port_block_verify(struct agent_fault *f, char *err, size_t errlen)
{
        return net_nft_verify(f, err, errlen);
}

static int port_block_revert(struct agent_fault *f, char *err, size_t errlen)
{
        return net_nft_revert(f, err, errlen);
}

const struct fault_ops agent_fault_net_port_block = {
    .kind = "net-port-block",
    .help = "drop or reject traffic to a port (nftables), e.g. DNS: port=53 protocol=udp",
    .keys = port_block_keys,
    .supported = net_nft_supported,
    .validate = port_block_validate,
    .prepare = port_block_prepare,
    .apply = port_block_apply,
    .verify = port_block_verify,
    .revert = port_block_revert,
    .destroy = port_block_destroy,
};
