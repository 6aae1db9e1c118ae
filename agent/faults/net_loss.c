/* net-loss: drop percent= of the selected packets. Backends: netem (a
 * qdisc, supports correlation=; ingress through an IFB) where the kernel
 * has sch_netem, otherwise nftables `numgen random` (egress and ingress).
 * auto picks netem for egress and nftables for ingress/both (unless
 * correlation= needs netem). backend= forces one; the agent reports which
 * it used. */
#include "faults/net.h"
#include "fl_util.h"

enum loss_backend { LOSS_AUTO, LOSS_NFT, LOSS_NETEM };

struct loss_priv {
        struct net_qfault q; /* must stay first: the generic hooks use it */
        enum loss_backend want;
};

static const char *const loss_keys[] = {"percent", "correlation", "backend",
                                        "force",   NET_SEL_KEYS,  NULL};

static int loss_validate(struct agent_fault *f, char *err, size_t errlen)
{
        net_qfault_destroy(f);
        struct loss_priv *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        int rv = net_sel_parse(f, &p->q.sel, NET_EGRESS, NET_BOTH, err, errlen);
        uint32_t corr = 0;
        if (rv == 0)
                rv = net_parse_bp(f, "percent", true, &p->q.loss_bp, err, errlen);
        if (rv == 0)
                rv = net_parse_bp(f, "correlation", false, &corr, err, errlen);
        const char *b = fl_params_get(f->params, f->n_params, "backend");
        if (rv == 0 && b) {
                if (strcmp(b, "nftables") == 0 || strcmp(b, "nft") == 0)
                        p->want = LOSS_NFT;
                else if (strcmp(b, "netem") == 0)
                        p->want = LOSS_NETEM;
                else if (strcmp(b, "auto") != 0) {
                        snprintf(err, errlen, "backend=%s: expected auto, netem or nftables", b);
                        rv = -EINVAL;
                }
        }
        if (rv == 0 && corr && p->want == LOSS_NFT) {
                snprintf(err, errlen, "correlation= needs the netem backend");
                rv = -EINVAL;
        }
        if (rv < 0) {
                free(p);
                return rv;
        }
        p->q.spec.has_netem = true;
        p->q.spec.netem.loss_bp = p->q.loss_bp;
        p->q.spec.netem.loss_corr_bp = corr;
        f->priv = p;
        return 0;
}

static int loss_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct loss_priv *p = f->priv;
        const char *no_netem = net_netem_supported();
        const struct net_sel *sel = &p->q.sel;
        /* netem needs an interface: given, or the route to dst= (egress)
         * or back to src= (ingress), as net_qdisc_prepare picks it. */
        bool has_if = sel->ifname[0] || ((sel->dir & NET_EGRESS) && sel->n_dst) ||
                      ((sel->dir & NET_INGRESS) && sel->n_src);
        bool netem_ok = !no_netem && has_if;
        bool corr = p->q.spec.netem.loss_corr_bp != 0;
        if (p->want == LOSS_NETEM && no_netem) {
                snprintf(err, errlen, "backend=netem unavailable: %s", no_netem);
                return -EOPNOTSUPP;
        }
        if (p->want == LOSS_NETEM && !netem_ok) {
                snprintf(err, errlen, "backend=netem needs interface= or %s",
                         sel->dir == NET_INGRESS ? "src=" : "dst=");
                return -EINVAL;
        }
        if (corr && !netem_ok) {
                snprintf(err, errlen, "correlation= needs netem (%s)",
                         no_netem ? no_netem : "give interface= or dst=");
                return -EOPNOTSUPP;
        }
        /* auto: netem for egress; for ingress/both nftables' input hook
         * (no IFB needed, every selector works) unless correlation= asks
         * for netem, which then goes through an IFB. */
        p->q.use_nft_loss =
            p->want == LOSS_NFT ||
            (p->want == LOSS_AUTO && (!netem_ok || (sel->dir != NET_EGRESS && !corr)));
        if (p->q.use_nft_loss && net_nft_supported()) {
                snprintf(err, errlen, "%s", net_nft_supported());
                return -EOPNOTSUPP;
        }
        int rv = net_qfault_prepare(f, err, errlen);
        if (rv == 0) {
                size_t len = strlen(f->target);
                snprintf(f->target + len, sizeof(f->target) - len, " loss=%u.%02u%%",
                         p->q.loss_bp / 100, p->q.loss_bp % 100);
        }
        return rv;
}

static const char *loss_supported(void)
{
        /* Either backend will do. */
        const char *nft = net_nft_supported();
        return nft && net_netem_supported() ? nft : NULL;
}

const struct fault_ops agent_fault_net_loss = {
    .kind = "net-loss",
    .help = "drop percent= of selected packets (netem, or nftables numgen without netem)",
    .keys = loss_keys,
    .supported = loss_supported,
    .validate = loss_validate,
    .prepare = loss_prepare,
    .apply = net_qfault_apply,
    .verify = net_qfault_verify,
    .revert = net_qfault_revert,
    .destroy = net_qfault_destroy,
};
