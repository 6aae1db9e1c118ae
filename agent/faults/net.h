/* Shared pieces of the network faults (agent/faults/net_*.c): selector
 * parsing, the nftables rules that carry them, exemptions, and the qdisc
 * plumbing. See docs/faults.md for the user-facing catalog. */
#pragma once

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "fault.h"
#include "nl/qdisc.h"

#define NET_MAX_CIDRS     16
#define NET_MAX_PROTECTED 16

enum net_dir { NET_EGRESS = 1, NET_INGRESS = 2, NET_BOTH = 3 };

struct net_cidr {
        int family; /* AF_INET, AF_INET6 */
        char text[INET6_ADDRSTRLEN + 5];
        unsigned prefix;
};

/* What a network fault hits. Parsed from the common keys; every field is
 * normalised (CIDRs re-rendered by inet_ntop) so nothing from the request
 * reaches an nft script verbatim. */
struct net_sel {
        char ifname[IFNAMSIZ]; /* "" = not given */
        struct net_cidr dst[NET_MAX_CIDRS], src[NET_MAX_CIDRS];
        size_t n_dst, n_src;
        bool has_dport, has_sport;
        uint16_t dport[2], sport[2]; /* inclusive ranges */
        int proto;                   /* 0 any, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP */
        char cgroup[256];            /* cgroup v2 path below the cgroup2 mount, "" none */
        char unit[128];              /* systemd unit to resolve to a cgroup, "" none */
        char cg_nft[300];            /* cgroup as nftables names it (below /sys/fs/cgroup) */
        unsigned cg_level;           /* its depth below the cgroup2 root */
        uint32_t classid;            /* v1 net_cls classid to match ("meta cgroup"), 0 none */
        enum net_dir dir;
};

/* The keys net_sel_parse understands, for a fault's keys[] list. */
#define NET_SEL_KEYS                                                                               \
        "interface", "dst", "src", "dport", "sport", "protocol", "cgroup", "unit", "direction"

/* Parse the selector keys present in f->params. default_dir applies when
 * direction= is absent; allowed_dirs is a mask of what the fault supports. */
int net_sel_parse(const struct agent_fault *f, struct net_sel *s, enum net_dir default_dir,
                  unsigned allowed_dirs, char *err, size_t errlen);

/* Resolve s->cgroup / s->unit (from prepare(): it looks at the system):
 * against the cgroup2 mount into s->cg_nft and s->cg_level (nft `socket
 * cgroupv2`), or, where the target is not in a cgroup2 tree, against a v1
 * net_cls hierarchy into s->classid (nft `meta cgroup`), recording in
 * f->undo.netcls the classid the fault gives the cgroup, if any. */
int net_sel_resolve_cgroup(struct agent_fault *f, struct net_sel *s, char *err, size_t errlen);
/* Give the target its net_cls classid (undo.netcls.set); net_nft_apply
 * does it, net_nft_verify checks it, net_nft_revert gives it back. */
int net_netcls_apply(const struct agent_fault *f, char *err, size_t errlen);

/* "10.0.0.0/8,fd00::/8" -> normalised list. */
int net_parse_cidrs(const char *key, const char *v, struct net_cidr *out, size_t max, size_t *ret_n,
                    char *err, size_t errlen);
/* "80" or "8000-8100". */
int net_parse_ports(const char *key, const char *v, uint16_t range[2], char *err, size_t errlen);
/* "1mbit", "500kbit", "2gbit", "100bit", "1mbps" (bytes/s, x8) -> bits/s. */
int net_parse_rate(const char *v, uint64_t *ret_bps);
/* Percent in basis points, 0 < x <= 100 %. */
int net_parse_bp(const struct agent_fault *f, const char *key, bool required, uint32_t *ret,
                 char *err, size_t errlen);

/* Exemptions every network fault honours: the agent's control port, the
 * protected ports (default 22) and CIDRs from the policy. Set by main. */
struct agent_net_policy {
        uint16_t control_port;
        uint16_t ports[NET_MAX_PROTECTED];
        size_t n_ports;
        struct net_cidr cidrs[NET_MAX_PROTECTED];
        size_t n_cidrs;
};
void agent_net_policy_set(const struct agent_net_policy *p);
const struct agent_net_policy *agent_net_policy(void);

/* nftables part: create the fault's base chains (egress on output,
 * ingress on input), each starting with the exemptions, then one rule per
 * address family "<selector matches> <action>". egress/ingress may be NULL
 * (no chain for that direction). Records the chain names in f->undo
 * ("chains") before running the batch. Returns the number of action rules
 * per chain in *ret_rules. */
/* Name of the fault's chain with this prefix: "fo" egress and "fi" ingress
 * base chains, NET_NFT_QCHAIN the regular chain holding an xt NFQUEUE
 * rule. Revert deletes all three; verify checks rules_out / rules_in /
 * rules_q from the undo record. */
#define NET_NFT_QCHAIN "fq"
void net_nft_chain(const struct agent_fault *f, const char *prefix, char *buf, size_t size);

int net_nft_apply(struct agent_fault *f, const struct net_sel *egress,
                  const struct net_sel *ingress, const char *action, char *err, size_t errlen);
/* Chains from f->undo exist with their rules. */
int net_nft_verify(const struct agent_fault *f, char *err, size_t errlen);
/* Delete the chains f->undo names. Idempotent. */
int net_nft_revert(const struct agent_fault *f, char *err, size_t errlen);

/* qdisc part: resolve the interface (given, or the route to the first dst;
 * for direction=ingress the route back to the first src), refuse a foreign
 * non-default root unless force=true (then snapshot it into f->undo), and
 * record ifname in f->undo. Called from prepare().
 *
 * direction=ingress|both adds an IFB (see nl/qdisc.h): f->undo gets "ifb"
 * (the device's name, before it exists) and "ingress_qdisc_created"; a
 * foreign ingress qdisc is refused unless force=true (then our filters are
 * added next to the foreign ones and only ours are removed). "egress"
 * records whether the interface's root is ours to remove. */
int net_qdisc_prepare(struct agent_fault *f, struct net_sel *s, char *err, size_t errlen);
/* Install the tree and what steers selected packets into it: an nft
 * rule, or, for a whole-interface fault (prepare journaled "steer": "tc"),
 * u32 filters on the htb itself (exemptions direct, the rest to fa17:1). */
int net_qdisc_apply(struct agent_fault *f, const struct net_sel *s,
                    const struct agent_qdisc_spec *spec, char *err, size_t errlen);
int net_qdisc_verify(const struct agent_fault *f, const struct agent_qdisc_spec *spec, char *err,
                     size_t errlen);
int net_qdisc_revert(const struct agent_fault *f, char *err, size_t errlen);
/* What ingress shaping cannot select on (cgroup=/unit=: no socket yet at
 * ingress; port ranges: u32 matches one port). 0 when dir has no ingress. */
int net_ingress_sel_check(const struct net_sel *s, char *err, size_t errlen);

/* supported() helpers. */
const char *net_nft_supported(void);
const char *net_netem_supported(void);
const char *net_htb_supported(void);

/* A qdisc-backed fault's private state; the generic hooks below serve
 * net-delay, net-corrupt, net-duplicate, net-reorder, net-bandwidth and
 * net-loss's netem backend. */
struct net_qfault {
        struct net_sel sel;
        struct agent_qdisc_spec spec;
        bool use_nft_loss; /* net-loss without netem: numgen rule instead */
        uint32_t loss_bp;
};
/* Allocate f->priv as a zeroed struct net_qfault and parse the selector
 * (direction=egress by default; ingress and both go through an IFB). */
int net_qfault_begin(struct agent_fault *f, struct net_qfault **ret, char *err, size_t errlen);
/* Parse a duration key into microseconds (0 if absent). */
int net_parse_us(const struct agent_fault *f, const char *key, bool required, uint32_t *ret,
                 char *err, size_t errlen);
int net_qfault_prepare(struct agent_fault *f, char *err, size_t errlen);
int net_qfault_apply(struct agent_fault *f, char *err, size_t errlen);
int net_qfault_verify(struct agent_fault *f, char *err, size_t errlen);
int net_qfault_revert(struct agent_fault *f, char *err, size_t errlen);
void net_qfault_destroy(struct agent_fault *f);
/* The netem faults whose effect is one probability and its correlation
 * (net-corrupt, net-duplicate, net-reorder): parse percent= and
 * correlation= into the struct agent_netem fields at bp_off/corr_off, and
 * append "<label>=X.XX%" to the target after the shared prepare. */
int net_prob_validate(struct agent_fault *f, size_t bp_off, size_t corr_off, char *err,
                      size_t errlen);
int net_prob_prepare(struct agent_fault *f, const char *label, size_t bp_off, char *err,
                     size_t errlen);

/* Human summary of the selector for f->target. */
void net_sel_describe(const struct net_sel *s, char *buf, size_t size);
