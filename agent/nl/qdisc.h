/* Traffic-control adapter (rtnetlink, one socket kept for the agent's
 * life; no exec of tc).
 *
 * A qdisc fault installs, on one interface's egress:
 *
 *   root  htb  fa17:   (no default class: unclassified packets go out
 *                       "direct", unshaped and undelayed)
 *    └─ class fa17:1   rate = the fault's bandwidth, or line rate
 *        └─ netem fa18: (delay/loss/corrupt/duplicate/reorder), optional
 *
 * What reaches fa17:1 is chosen in one of two ways (agent/faults/
 * net_common.c):
 *  - with selectors (CIDRs, ports, protocol, cgroup), nftables sets
 *    skb->priority to fa17:1: the selectors live in one place, for IPv4
 *    and IPv6 alike, and untargeted traffic never enters the class;
 *  - with none (the whole interface), u32 filters on the htb itself
 *    (spec.rules, priority 0xfa17 IPv4 / 0xfa18 IPv6): the exemptions
 *    first, to fa17:0 ("direct"), then "everything else" to fa17:1.
 *    Non-IP frames (ARP) match no filter and go direct, as they never
 *    reach an inet nftables chain either.
 *
 * An existing non-default root qdisc is never deleted blindly: the caller
 * snapshots it (raw netlink dump of its qdiscs, classes and filters,
 * journaled), only then may install replace it, and agent_qdisc_remove()
 * replays the snapshot after deleting a root that is ours.
 *
 * Ingress (direction=ingress) goes through an IFB device, since a qdisc
 * shapes only what a device sends:
 *
 *   eth0  ingress ffff:  (created if absent; a foreign one is shared)
 *          └─ u32 filters, prio 0xfa17 (IPv4) / 0xfa18 (IPv6):
 *               exemptions first (pass), then the fault's selectors
 *               -> mirred egress redirect -> flifb-<hash>
 *   flifb-<hash>  the same htb tree as above, but fa17:1 is htb's default
 *                 class: everything that reaches the ifb is targeted.
 *
 * Not thread-safe: the socket is shared by every call (the agent is
 * single-threaded). A forked child gets its own on first use. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_QDISC_MAJOR 0xfa17u
#define AGENT_NETEM_MAJOR 0xfa18u
#define AGENT_QDISC_CLASS ((AGENT_QDISC_MAJOR << 16) | 1u)
/* As a filter's classid on our htb: "send direct", unshaped. */
#define AGENT_QDISC_DIRECT (AGENT_QDISC_MAJOR << 16)
#define AGENT_EGRESS_PRIO  0xfa17u /* u32 filters on the htb, IPv4; IPv6 at +1 */

struct agent_netem {
        uint32_t delay_us, jitter_us;
        uint32_t delay_corr_bp; /* basis points, like every percentage here */
        char distribution[16];  /* "", "normal", "pareto", "paretonormal" */
        uint32_t loss_bp, loss_corr_bp;
        uint32_t corrupt_bp, corrupt_corr_bp;
        uint32_t duplicate_bp, duplicate_corr_bp;
        uint32_t reorder_bp, reorder_corr_bp;
        uint32_t limit; /* packets queued in netem; 0 = kernel default (1000) */
};

struct agent_u32_rule;

struct agent_qdisc_spec {
        uint64_t rate_bps; /* bits/s for the class; 0 = line rate (no shaping) */
        uint32_t burst;    /* bytes; 0 = derived from the rate */
        bool has_netem;
        struct agent_netem netem;
        /* htb's default class is fa17:1 (everything that reaches the
         * device is shaped: the IFB of an ingress fault). */
        bool default_class;
        /* Replace a root qdisc someone else installed (the caller has
         * snapshotted it). Without it, install fails with -EEXIST unless
         * the root is the kernel's default one. */
        bool replace_root;
        /* u32 filters on the htb (AGENT_EGRESS_PRIO, +1 for IPv6), in
         * order, each with a classid: AGENT_QDISC_DIRECT or
         * AGENT_QDISC_CLASS. Borrowed; none when n_rules is 0. */
        const struct agent_u32_rule *rules;
        size_t n_rules;
};

/* Root qdisc of ifindex: kind and handle. is_default: the kernel's own
 * (handle 0:), which we may replace and later simply delete. */
int agent_qdisc_root(int ifindex, char *kind, size_t kind_size, uint32_t *ret_handle,
                     bool *ret_is_default, char *err, size_t errlen);

/* Raw dump of every qdisc, class and filter on ifindex, as a JSON array of
 * {"type": RTM_NEW*, "msg": base64}. */
int agent_qdisc_snapshot(int ifindex, json_t **ret, char *err, size_t errlen);

/* Install our htb tree: the root alone first, then class, netem and
 * filters in one batch. Fails with -EEXIST if the root is already ours
 * (one qdisc fault per interface), or foreign and !s->replace_root. */
int agent_qdisc_install(int ifindex, const struct agent_qdisc_spec *s, char *err, size_t errlen);

/* Read back (one batch of GETs and a filter dump): root is ours, the
 * class has the rate, netem the parameters, s->rules' count of u32 nodes
 * per family is there. */
int agent_qdisc_verify(int ifindex, const struct agent_qdisc_spec *s, char *err, size_t errlen);

/* Remove our root if it is ours (one delete naming our handle; anything
 * else is left alone), then replay snapshot if given. With a snapshot and
 * the kernel's default root in place (a revert interrupted between the
 * two steps), the replay is done. Idempotent; a vanished interface is
 * success (its qdiscs vanished with it). */
int agent_qdisc_remove(int ifindex, json_t *snapshot, char *err, size_t errlen);

/* NULL if this kernel can run the qdisc kind ("htb", "netem"), else a
 * reason. Probed once, in a throw-away network namespace. */
const char *agent_qdisc_unavailable(const char *kind);

/* Interface index for a name; -ENODEV. */
int agent_ifindex(const char *name);
/* Egress interface the kernel would use to reach addr (IPv4/IPv6 text). */
int agent_route_ifname(const char *addr, char *ifname, size_t size);

/* ---- ingress: IFB + ingress qdisc + u32/mirred ----------------------------- */

#define AGENT_INGRESS_PRIO 0xfa17u /* u32 filters for IPv4; IPv6 at +1 */
#define AGENT_U32_MAX_KEYS 12

/* One u32 node: all keys must match (AND). val/mask in network byte
 * order; off is from the network header (IPv4 or IPv6). */
struct agent_u32_key {
        uint32_t val, mask;
        int off;
};
struct agent_u32_rule {
        int family;       /* AF_INET or AF_INET6 */
        bool redirect;    /* true: mirred to the ifb; false: exemption (pass) */
        uint32_t classid; /* non-zero: the filter's class (egress htb filters) */
        size_t n_keys;
        struct agent_u32_key keys[AGENT_U32_MAX_KEYS];
};

/* Create an ifb device, up, txqueuelen 1000. -EEXIST if the name is taken. */
int agent_ifb_create(const char *name, char *err, size_t errlen);
/* Delete the ifb device name if it exists and is an ifb. Idempotent. */
int agent_ifb_delete(const char *name, char *err, size_t errlen);
/* 0 if name exists, is an ifb and is up; else -ENODEV / -EIO and a reason. */
int agent_ifb_check(const char *name, char *err, size_t errlen);

/* The ingress hook of ifindex: kind of the qdisc there ("" if none,
 * "ingress" or "clsact"), the number of faultline filter nodes (u32 at
 * our priorities) and of other filters. */
int agent_ingress_state(int ifindex, char *kind, size_t kind_size, int *ret_ours, int *ret_others,
                        char *err, size_t errlen);

/* Add the ingress qdisc (when create_qdisc), then the rules in order as
 * u32 nodes at AGENT_INGRESS_PRIO (+1 for IPv6); redirect rules send to
 * ifb_index. */
int agent_ingress_install(int ifindex, bool create_qdisc, int ifb_index,
                          const struct agent_u32_rule *rules, size_t n, char *err, size_t errlen);

/* Our filter nodes are there: n_v4 at the IPv4 priority, n_v6 at IPv6's. */
int agent_ingress_verify(int ifindex, int n_v4, int n_v6, char *err, size_t errlen);

/* Delete our filters; then, when delete_qdisc, the ingress qdisc if it is
 * an "ingress" one with no filter left. Idempotent; a vanished interface
 * is success. */
int agent_ingress_remove(int ifindex, bool delete_qdisc, char *err, size_t errlen);

/* NULL if this kernel does ifb + ingress qdisc + u32 + mirred, else a
 * reason. Probed once, in a throw-away network namespace. */
const char *agent_ingress_unavailable(void);
