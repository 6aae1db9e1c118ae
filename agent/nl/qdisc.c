/* rtnetlink traffic-control adapter through libnl-route. See qdisc.h. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/tc_act/tc_mirred.h>
#include <netlink/route/class.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/qdisc/netem.h>
#include <netlink/route/tc.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "fl_log.h"
#include "fl_util.h"
#include "nl/qdisc.h"

#define ROOT_HANDLE  TC_HANDLE(AGENT_QDISC_MAJOR, 0)
#define NETEM_HANDLE TC_HANDLE(AGENT_NETEM_MAJOR, 0)

static void sock_freep(struct nl_sock **s)
{
        if (*s)
                nl_socket_free(*s);
}
#define _cleanup_nlsock_ __attribute__((cleanup(sock_freep)))

static int nl_fail(int nlerr, const char *what, char *err, size_t errlen)
{
        snprintf(err, errlen, "%s: %s", what, nl_geterror(nlerr));
        /* libnl's codes are positive enum values; report a generic errno
         * apart from the few that matter to callers. */
        switch (-nlerr) {
        case NLE_EXIST:
                return -EEXIST;
        case NLE_OBJ_NOTFOUND:
        case NLE_NODEV:
                return -ENODEV;
        case NLE_PERM:
                return -EPERM;
        case NLE_OPNOTSUPP:
                return -EOPNOTSUPP;
        default:
                return -EIO;
        }
}

static int open_sock(struct nl_sock **ret, char *err, size_t errlen)
{
        struct nl_sock *s = nl_socket_alloc();
        if (!s) {
                snprintf(err, errlen, "netlink: out of memory");
                return -ENOMEM;
        }
        int rv = nl_connect(s, NETLINK_ROUTE);
        if (rv < 0) {
                nl_socket_free(s);
                return nl_fail(rv, "netlink connect", err, errlen);
        }
        *ret = s;
        return 0;
}

int agent_ifindex(const char *name)
{
        unsigned idx = if_nametoindex(name);
        return idx ? (int)idx : -ENODEV;
}

int agent_route_ifname(const char *addr, char *ifname, size_t size)
{
        /* Ask the kernel's routing table the cheap way: a connected UDP
         * socket picks the source address of the egress route, and that
         * address belongs to exactly the egress interface. No packet is
         * sent. */
        struct sockaddr_storage ss = {0};
        socklen_t len;
        int family = strchr(addr, ':') ? AF_INET6 : AF_INET;
        if (family == AF_INET) {
                struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
                s4->sin_family = AF_INET;
                s4->sin_port = htons(9);
                if (inet_pton(AF_INET, addr, &s4->sin_addr) != 1)
                        return -EINVAL;
                len = sizeof(*s4);
        } else {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons(9);
                if (inet_pton(AF_INET6, addr, &s6->sin6_addr) != 1)
                        return -EINVAL;
                len = sizeof(*s6);
        }
        _cleanup_close_ int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *)&ss, len) < 0)
                return -errno;
        struct sockaddr_storage local;
        socklen_t llen = sizeof(local);
        if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
                return -errno;
        struct ifaddrs *ifa = NULL;
        if (getifaddrs(&ifa) < 0)
                return -errno;
        int rv = -ENODEV;
        for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
                if (!i->ifa_addr || i->ifa_addr->sa_family != family)
                        continue;
                bool same = family == AF_INET
                                ? ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr ==
                                      ((struct sockaddr_in *)&local)->sin_addr.s_addr
                                : memcmp(&((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr,
                                         &((struct sockaddr_in6 *)&local)->sin6_addr, 16) == 0;
                if (same) {
                        rv = fl_strlcpy(ifname, i->ifa_name, size);
                        break;
                }
        }
        freeifaddrs(ifa);
        return rv;
}

int agent_qdisc_root(int ifindex, char *kind, size_t kind_size, uint32_t *ret_handle,
                     bool *ret_is_default, char *err, size_t errlen)
{
        _cleanup_nlsock_ struct nl_sock *sk = NULL;
        struct nl_cache *cache = NULL;
        int rv = open_sock(&sk, err, errlen);
        if (rv < 0)
                return rv;
        if ((rv = rtnl_qdisc_alloc_cache(sk, &cache)) < 0)
                return nl_fail(rv, "qdisc dump", err, errlen);
        struct rtnl_qdisc *q = rtnl_qdisc_get_by_parent(cache, ifindex, TC_H_ROOT);
        if (!q) {
                /* No root at all (e.g. a device without a queue). */
                snprintf(kind, kind_size, "none");
                *ret_handle = 0;
                *ret_is_default = true;
        } else {
                const char *k = rtnl_tc_get_kind(TC_CAST(q));
                snprintf(kind, kind_size, "%s", k ? k : "?");
                *ret_handle = rtnl_tc_get_handle(TC_CAST(q));
                /* The kernel's own root qdiscs (noqueue, pfifo_fast, mq,
                 * the default fq_codel) have handle 0:. tc always gives
                 * user-installed ones a non-zero major. */
                *ret_is_default = TC_H_MAJ(*ret_handle) == 0;
                rtnl_qdisc_put(q);
        }
        nl_cache_free(cache);
        return 0;
}

/* ---- raw snapshot --------------------------------------------------------- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const unsigned char *in, size_t n)
{
        char *out = malloc(4 * ((n + 2) / 3) + 1), *p = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16;
                if (i + 1 < n)
                        v |= (uint32_t)in[i + 1] << 8;
                if (i + 2 < n)
                        v |= in[i + 2];
                *p++ = b64[(v >> 18) & 63];
                *p++ = b64[(v >> 12) & 63];
                *p++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
                *p++ = i + 2 < n ? b64[v & 63] : '=';
        }
        *p = 0;
        return out;
}

static int b64_decode(const char *in, unsigned char **ret, size_t *ret_len)
{
        size_t n = strlen(in);
        if (n % 4)
                return -EINVAL;
        unsigned char *out = malloc(n / 4 * 3 + 1);
        size_t o = 0;
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i += 4) {
                uint32_t v = 0;
                int pad = 0;
                for (int k = 0; k < 4; k++) {
                        const char *c = strchr(b64, in[i + k]);
                        if (in[i + k] == '=') {
                                pad++;
                                v <<= 6;
                        } else if (c && in[i + k]) {
                                v = (v << 6) | (uint32_t)(c - b64);
                        } else {
                                free(out);
                                return -EINVAL;
                        }
                }
                out[o++] = (unsigned char)(v >> 16);
                if (pad < 2)
                        out[o++] = (unsigned char)(v >> 8);
                if (pad < 1)
                        out[o++] = (unsigned char)v;
        }
        *ret = out;
        *ret_len = o;
        return 0;
}

struct dump_ctx {
        int ifindex;
        int new_type; /* RTM_NEWQDISC, RTM_NEWTCLASS, RTM_NEWTFILTER */
        json_t *arr;
        json_t *classes; /* handles seen (for per-class filter dumps) */
};

/* Keep only what configures the object; statistics and dump-only
 * attributes are not accepted back (or mean nothing) on creation. */
static bool keep_attr(int type)
{
        switch (type) {
        case TCA_KIND:
        case TCA_OPTIONS:
        case TCA_RATE:
        case TCA_STAB:
        case TCA_CHAIN:
        case TCA_INGRESS_BLOCK:
        case TCA_EGRESS_BLOCK:
                return true;
        default:
                return false;
        }
}

static int dump_cb(struct nl_msg *msg, void *arg)
{
        struct dump_ctx *c = arg;
        struct nlmsghdr *h = nlmsg_hdr(msg);
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct tcmsg)))
                return NL_SKIP;
        struct tcmsg *t = nlmsg_data(h);
        if (t->tcm_ifindex != c->ifindex)
                return NL_SKIP;
        /* Kernel-created qdiscs (handle 0:, or flagged invisible) come
         * back by themselves; replaying them would clash. */
        struct nlattr *a;
        int rem;
        bool invisible = false;
        nlmsg_for_each_attr(a, h, sizeof(struct tcmsg), rem)
        {
                if (nla_type(a) == TCA_DUMP_INVISIBLE)
                        invisible = true;
        }
        if (c->new_type == RTM_NEWQDISC && (TC_H_MAJ(t->tcm_handle) == 0 || invisible))
                return NL_SKIP;

        size_t cap = NLMSG_ALIGN(sizeof(*t)) + nlmsg_attrlen(h, sizeof(*t));
        _cleanup_free_ unsigned char *buf = calloc(1, cap);
        if (!buf)
                return NL_STOP;
        memcpy(buf, t, sizeof(*t));
        size_t len = NLMSG_ALIGN(sizeof(*t));
        nlmsg_for_each_attr(a, h, sizeof(struct tcmsg), rem)
        {
                if (!keep_attr(nla_type(a)))
                        continue;
                memcpy(buf + len, a, a->nla_len);
                len += NLA_ALIGN(a->nla_len);
        }
        _cleanup_free_ char *enc = b64_encode(buf, len);
        if (!enc)
                return NL_STOP;
        json_array_append_new(c->arr, json_pack("{s:i, s:I, s:s}", "type", c->new_type, "handle",
                                                (json_int_t)t->tcm_handle, "msg", enc));
        if (c->new_type == RTM_NEWTCLASS && c->classes)
                json_array_append_new(c->classes, json_integer(t->tcm_handle));
        return NL_OK;
}

static int dump(struct nl_sock *sk, int get_type, int new_type, int ifindex, uint32_t parent,
                json_t *arr, json_t *classes, char *err, size_t errlen)
{
        struct tcmsg t = {.tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex, .tcm_parent = parent};
        struct dump_ctx c = {
            .ifindex = ifindex, .new_type = new_type, .arr = arr, .classes = classes};
        int rv = nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, dump_cb, &c);
        if (rv >= 0)
                rv = nl_send_simple(sk, get_type, NLM_F_DUMP, &t, sizeof(t));
        if (rv >= 0)
                rv = nl_recvmsgs_default(sk);
        return rv < 0 ? nl_fail(rv, "tc dump", err, errlen) : 0;
}

int agent_qdisc_snapshot(int ifindex, json_t **ret, char *err, size_t errlen)
{
        _cleanup_nlsock_ struct nl_sock *sk = NULL;
        int rv = open_sock(&sk, err, errlen);
        if (rv < 0)
                return rv;
        json_t *arr = json_array(), *classes = json_array();
        if (!arr || !classes) {
                json_decref(arr);
                json_decref(classes);
                return -ENOMEM;
        }
        rv = dump(sk, RTM_GETQDISC, RTM_NEWQDISC, ifindex, 0, arr, NULL, err, errlen);
        if (rv == 0)
                rv = dump(sk, RTM_GETTCLASS, RTM_NEWTCLASS, ifindex, 0, arr, classes, err, errlen);
        /* Filters hang off a qdisc or a class: the root's, then each class's. */
        if (rv == 0)
                rv = dump(sk, RTM_GETTFILTER, RTM_NEWTFILTER, ifindex, TC_H_ROOT, arr, NULL, err,
                          errlen);
        size_t i;
        json_t *h;
        json_array_foreach(classes, i, h)
        {
                if (rv == 0)
                        rv = dump(sk, RTM_GETTFILTER, RTM_NEWTFILTER, ifindex,
                                  (uint32_t)json_integer_value(h), arr, NULL, err, errlen);
        }
        json_decref(classes);
        if (rv < 0) {
                json_decref(arr);
                return rv;
        }
        *ret = arr;
        return 0;
}

/* The one asymmetry of replaying a dump: htb reports its version as
 * HTB_VER (0x30011) but accepts only the major (3) on creation. */
static void fixup_htb(unsigned char *payload, size_t len)
{
        size_t off = NLMSG_ALIGN(sizeof(struct tcmsg));
        bool is_htb = false;
        struct nlattr *opts = NULL;
        while (off + sizeof(struct nlattr) <= len) {
                struct nlattr *a = (struct nlattr *)(payload + off);
                if (a->nla_len < sizeof(*a) || off + a->nla_len > len)
                        return;
                if (a->nla_type == TCA_KIND && a->nla_len >= NLA_HDRLEN + 4 &&
                    memcmp((char *)a + NLA_HDRLEN, "htb", 4) == 0)
                        is_htb = true;
                if ((a->nla_type & NLA_TYPE_MASK) == TCA_OPTIONS)
                        opts = a;
                off += NLA_ALIGN(a->nla_len);
        }
        if (!is_htb || !opts)
                return;
        size_t o = NLA_HDRLEN, end = opts->nla_len;
        while (o + sizeof(struct nlattr) <= end) {
                struct nlattr *a = (struct nlattr *)((char *)opts + o);
                if (a->nla_len < sizeof(*a) || o + a->nla_len > end)
                        return;
                if ((a->nla_type & NLA_TYPE_MASK) == TCA_HTB_INIT &&
                    a->nla_len >= NLA_HDRLEN + sizeof(struct tc_htb_glob)) {
                        struct tc_htb_glob *g = (struct tc_htb_glob *)((char *)a + NLA_HDRLEN);
                        if (g->version > 0xffff)
                                g->version >>= 16;
                }
                o += NLA_ALIGN(a->nla_len);
        }
}

static int send_raw(struct nl_sock *sk, int type, unsigned char *payload, size_t len)
{
        if (type == RTM_NEWQDISC)
                fixup_htb(payload, len);
        struct nl_msg *m = nlmsg_alloc_simple(type, NLM_F_CREATE | NLM_F_EXCL);
        if (!m)
                return -NLE_NOMEM;
        int rv = nlmsg_append(m, (void *)payload, len, NLMSG_ALIGNTO);
        if (rv >= 0)
                rv = nl_send_auto_complete(sk, m);
        nlmsg_free(m);
        if (rv >= 0)
                rv = nl_wait_for_ack(sk);
        return rv;
}

/* Replay in passes: a child needs its parent first and the dump order
 * does not promise that. Stops when a pass makes no progress. */
static int replay(struct nl_sock *sk, json_t *snap, char *err, size_t errlen)
{
        size_t n = json_array_size(snap);
        _cleanup_free_ bool *done = calloc(n + 1, sizeof(bool));
        if (!done)
                return -ENOMEM;
        static const int order[] = {RTM_NEWQDISC, RTM_NEWTCLASS, RTM_NEWTFILTER};
        int last_err = 0;
        for (size_t o = 0; o < FL_ARRAY_SIZE(order); o++) {
                bool progress = true;
                while (progress) {
                        progress = false;
                        for (size_t i = 0; i < n; i++) {
                                json_t *e = json_array_get(snap, i);
                                if (done[i] ||
                                    json_integer_value(json_object_get(e, "type")) != order[o])
                                        continue;
                                _cleanup_free_ unsigned char *buf = NULL;
                                size_t len = 0;
                                const char *msg = json_string_value(json_object_get(e, "msg"));
                                if (!msg || b64_decode(msg, &buf, &len) < 0) {
                                        done[i] = true;
                                        last_err = -NLE_INVAL;
                                        continue;
                                }
                                int rv = send_raw(sk, order[o], buf, len);
                                if (rv >= 0 || rv == -NLE_EXIST) {
                                        done[i] = progress = true;
                                } else {
                                        last_err = rv;
                                }
                        }
                }
        }
        for (size_t i = 0; i < n; i++)
                if (!done[i])
                        return nl_fail(last_err ? last_err : -NLE_FAILURE,
                                       "restoring the interface's previous qdiscs", err, errlen);
        return 0;
}

/* ---- our tree ------------------------------------------------------------- */

/* Read a netem distribution table ("normal", ...) shipped by iproute2:
 * whitespace-separated int16 values, '#' comments. */
static int load_dist(const char *name, int16_t **ret, size_t *ret_n, char *err, size_t errlen)
{
        static const char *const dirs[] = {"/usr/lib/x86_64-linux-gnu/tc", "/usr/lib/tc",
                                           "/usr/lib64/tc", "/usr/local/lib/tc", "/lib/tc"};
        for (size_t d = 0; d < FL_ARRAY_SIZE(dirs); d++) {
                char path[256];
                snprintf(path, sizeof(path), "%s/%s.dist", dirs[d], name);
                _cleanup_fclose_ FILE *f = fopen(path, "re");
                if (!f)
                        continue;
                size_t cap = 4096, n = 0;
                int16_t *v = malloc(cap * sizeof(*v));
                char line[1024];
                while (v && fgets(line, sizeof(line), f)) {
                        if (line[0] == '#')
                                continue;
                        char *p = line, *end;
                        for (;;) {
                                long x = strtol(p, &end, 10);
                                if (end == p)
                                        break;
                                if (n == cap) {
                                        /* Real tables hold 4096 entries; cap at 64 Ki. */
                                        if (cap >= 65536) {
                                                free(v);
                                                snprintf(err, errlen, "%s: table too large", path);
                                                return -EFBIG;
                                        }
                                        int16_t *nv = realloc(v, 2 * cap * sizeof(*v));
                                        if (!nv) {
                                                free(v);
                                                return -ENOMEM;
                                        }
                                        v = nv;
                                        cap *= 2;
                                }
                                v[n++] = (int16_t)x;
                                p = end;
                        }
                }
                if (!v)
                        return -ENOMEM;
                *ret = v;
                *ret_n = n;
                return 0;
        }
        snprintf(err, errlen, "distribution \"%s\" not found (iproute2's %s.dist)", name, name);
        return -ENOENT;
}

static uint32_t bp_to_prob(uint32_t bp)
{
        /* netem scales probabilities to the full u32 range. */
        return bp >= 10000 ? UINT32_MAX : (uint32_t)(((uint64_t)bp * UINT32_MAX) / 10000u);
}

/* The netem request is built here rather than with libnl's rtnl_netem_*:
 * libnl 3.7 miscomputes the message length when a delay distribution is
 * attached and sendmsg() reads past its buffer (ASan shows it). netem's
 * TCA_OPTIONS is a struct tc_netem_qopt followed by nested attributes;
 * nla_nest_start/end keep the lengths right. Latency and jitter go in
 * 64-bit nanoseconds (TCA_NETEM_LATENCY64/JITTER64, Linux >= 4.15), so no
 * psched tick conversion is needed. */
static int add_netem(struct nl_sock *sk, int ifindex, const struct agent_netem *ne, char *err,
                     size_t errlen)
{
        int16_t *tab = NULL;
        size_t tab_n = 0;
        int rv;
        if (ne->distribution[0] &&
            (rv = load_dist(ne->distribution, &tab, &tab_n, err, errlen)) < 0)
                return rv;

        /* Room for a distribution table (4096 x int16 in iproute2's files);
         * the default message size is one page. */
        struct nl_msg *m = nlmsg_alloc_size(65536);
        if (!m || !nlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, RTM_NEWQDISC, 0,
                             NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL)) {
                if (m)
                        nlmsg_free(m);
                free(tab);
                return -ENOMEM;
        }
        struct tcmsg t = {.tcm_family = AF_UNSPEC,
                          .tcm_ifindex = ifindex,
                          .tcm_handle = NETEM_HANDLE,
                          .tcm_parent = AGENT_QDISC_CLASS};
        struct tc_netem_qopt q = {
            .limit = ne->limit ? ne->limit : 10000,
            .loss = bp_to_prob(ne->loss_bp),
            .duplicate = bp_to_prob(ne->duplicate_bp),
            .gap = ne->reorder_bp ? 1 : 0, /* as tc does: reorder needs a gap */
        };
        struct tc_netem_corr corr = {.delay_corr = bp_to_prob(ne->delay_corr_bp),
                                     .loss_corr = bp_to_prob(ne->loss_corr_bp),
                                     .dup_corr = bp_to_prob(ne->duplicate_corr_bp)};
        struct tc_netem_reorder reo = {.probability = bp_to_prob(ne->reorder_bp),
                                       .correlation = bp_to_prob(ne->reorder_corr_bp)};
        struct tc_netem_corrupt cor = {.probability = bp_to_prob(ne->corrupt_bp),
                                       .correlation = bp_to_prob(ne->corrupt_corr_bp)};
        int64_t lat_ns = (int64_t)ne->delay_us * 1000, jit_ns = (int64_t)ne->jitter_us * 1000;

        rv = nlmsg_append(m, &t, sizeof(t), NLMSG_ALIGNTO);
        if (rv >= 0)
                rv = nla_put_string(m, TCA_KIND, "netem");
        struct nlattr *opts = rv >= 0 ? nla_nest_start(m, TCA_OPTIONS) : NULL;
        if (!opts)
                rv = -NLE_NOMEM;
        if (rv >= 0)
                rv = nlmsg_append(m, &q, sizeof(q), NLMSG_ALIGNTO);
        if (rv >= 0)
                rv = nla_put(m, TCA_NETEM_CORR, sizeof(corr), &corr);
        if (rv >= 0 && ne->reorder_bp)
                rv = nla_put(m, TCA_NETEM_REORDER, sizeof(reo), &reo);
        if (rv >= 0 && ne->corrupt_bp)
                rv = nla_put(m, TCA_NETEM_CORRUPT, sizeof(cor), &cor);
        if (rv >= 0 && lat_ns)
                rv = nla_put_s64(m, TCA_NETEM_LATENCY64, lat_ns);
        if (rv >= 0 && jit_ns)
                rv = nla_put_s64(m, TCA_NETEM_JITTER64, jit_ns);
        if (rv >= 0 && tab)
                rv = nla_put(m, TCA_NETEM_DELAY_DIST, (int)(tab_n * sizeof(*tab)), tab);
        if (rv >= 0)
                rv = nla_nest_end(m, opts);
        free(tab);
        if (rv >= 0)
                rv = nl_send_auto_complete(sk, m);
        nlmsg_free(m);
        if (rv >= 0)
                rv = nl_wait_for_ack(sk);
        return rv < 0 ? nl_fail(rv, "adding netem", err, errlen) : 0;
}

int agent_qdisc_install(int ifindex, const struct agent_qdisc_spec *s, char *err, size_t errlen)
{
        _cleanup_nlsock_ struct nl_sock *sk = NULL;
        char kind[32];
        uint32_t handle = 0;
        bool is_default = true;
        int rv = agent_qdisc_root(ifindex, kind, sizeof(kind), &handle, &is_default, err, errlen);
        if (rv < 0)
                return rv;
        if (handle == ROOT_HANDLE) {
                snprintf(err, errlen, "interface already carries a faultline qdisc fault");
                return -EEXIST;
        }
        if ((rv = open_sock(&sk, err, errlen)) < 0)
                return rv;

        struct rtnl_qdisc *q = rtnl_qdisc_alloc();
        struct rtnl_class *c = rtnl_class_alloc();
        if (!q || !c) {
                rtnl_qdisc_put(q);
                rtnl_class_put(c);
                return -ENOMEM;
        }
        rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
        rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
        rtnl_tc_set_handle(TC_CAST(q), ROOT_HANDLE);
        rv = rtnl_tc_set_kind(TC_CAST(q), "htb");
        /* defcls 0: unclassified packets bypass the classes ("direct").
         * On an IFB everything is targeted: our class is the default. */
        if (rv >= 0)
                rv = rtnl_htb_set_defcls(q, s->default_class ? TC_H_MIN(AGENT_QDISC_CLASS) : 0);
        if (rv >= 0)
                rv = rtnl_qdisc_add(sk, q, NLM_F_CREATE | NLM_F_REPLACE);
        rtnl_qdisc_put(q);
        if (rv < 0) {
                rtnl_class_put(c);
                return nl_fail(rv, "installing the htb root", err, errlen);
        }

        /* Line rate when no bandwidth is asked: 10 Gbit/s is beyond what
         * a shaped test path carries, so only netem acts. */
        uint64_t bytes = (s->rate_bps ? s->rate_bps : 10000000000ull) / 8;
        uint32_t burst = s->burst ? s->burst : (uint32_t)(bytes / 250 > 1600 ? bytes / 250 : 1600);
        rtnl_tc_set_ifindex(TC_CAST(c), ifindex);
        rtnl_tc_set_parent(TC_CAST(c), ROOT_HANDLE);
        rtnl_tc_set_handle(TC_CAST(c), AGENT_QDISC_CLASS);
        rv = rtnl_tc_set_kind(TC_CAST(c), "htb");
        if (rv >= 0)
                rv = rtnl_htb_set_rate64(c, bytes);
        if (rv >= 0)
                rv = rtnl_htb_set_ceil64(c, bytes);
        if (rv >= 0)
                rv = rtnl_htb_set_rbuffer(c, burst);
        if (rv >= 0)
                rv = rtnl_htb_set_cbuffer(c, burst);
        if (rv >= 0)
                rv = rtnl_htb_set_quantum(c, 60000);
        if (rv >= 0)
                rv = rtnl_class_add(sk, c, NLM_F_CREATE | NLM_F_EXCL);
        rtnl_class_put(c);
        if (rv < 0)
                return nl_fail(rv, "adding the htb class", err, errlen);
        if (s->has_netem)
                return add_netem(sk, ifindex, &s->netem, err, errlen);
        return 0;
}

int agent_qdisc_verify(int ifindex, const struct agent_qdisc_spec *s, char *err, size_t errlen)
{
        _cleanup_nlsock_ struct nl_sock *sk = NULL;
        struct nl_cache *qc = NULL, *cc = NULL;
        int rv = open_sock(&sk, err, errlen);
        if (rv < 0)
                return rv;
        if ((rv = rtnl_qdisc_alloc_cache(sk, &qc)) < 0)
                return nl_fail(rv, "qdisc dump", err, errlen);
        rv = -EIO;
        struct rtnl_qdisc *root = rtnl_qdisc_get_by_parent(qc, ifindex, TC_H_ROOT);
        if (!root || rtnl_tc_get_handle(TC_CAST(root)) != ROOT_HANDLE ||
            strcmp(rtnl_tc_get_kind(TC_CAST(root)), "htb") != 0) {
                snprintf(err, errlen, "root qdisc is not faultline's htb");
                goto out;
        }
        if (s->default_class && rtnl_htb_get_defcls(root) != TC_H_MIN(AGENT_QDISC_CLASS)) {
                snprintf(err, errlen, "htb default class is not fa17:1");
                goto out;
        }
        if (rtnl_class_alloc_cache(sk, ifindex, &cc) < 0) {
                snprintf(err, errlen, "class dump failed");
                goto out;
        }
        struct rtnl_class *c = rtnl_class_get(cc, ifindex, AGENT_QDISC_CLASS);
        uint64_t rate = 0;
        if (!c || rtnl_htb_get_rate64(c, &rate) < 0) {
                if (c)
                        rtnl_class_put(c);
                snprintf(err, errlen, "faultline's htb class is missing");
                goto out;
        }
        rtnl_class_put(c);
        if (s->rate_bps && rate != s->rate_bps / 8) {
                snprintf(err, errlen, "class rate reads back %llu B/s, asked %llu B/s",
                         (unsigned long long)rate, (unsigned long long)(s->rate_bps / 8));
                goto out;
        }
        if (s->has_netem) {
                struct rtnl_qdisc *ne = rtnl_qdisc_get(qc, ifindex, NETEM_HANDLE);
                if (!ne) {
                        snprintf(err, errlen, "netem qdisc missing");
                        goto out;
                }
                int d = rtnl_netem_get_delay(ne);
                /* Read-back goes through the kernel's tick conversion:
                 * allow one microsecond of rounding. */
                bool ok = !s->netem.delay_us || (d >= 0 && (uint32_t)d + 1 >= s->netem.delay_us &&
                                                 (uint32_t)d <= s->netem.delay_us + 1);
                if (s->netem.loss_bp && rtnl_netem_get_loss(ne) == 0)
                        ok = false;
                rtnl_qdisc_put(ne);
                if (!ok) {
                        snprintf(err, errlen, "netem parameters did not read back as set");
                        goto out;
                }
        }
        rv = 0;
out:
        if (root)
                rtnl_qdisc_put(root);
        nl_cache_free(qc);
        if (cc)
                nl_cache_free(cc);
        return rv;
}

int agent_qdisc_remove(int ifindex, json_t *snapshot, char *err, size_t errlen)
{
        char kind[32];
        uint32_t handle = 0;
        bool is_default = true;
        int rv = agent_qdisc_root(ifindex, kind, sizeof(kind), &handle, &is_default, err, errlen);
        if (rv == -ENODEV)
                return 0;
        if (rv < 0)
                return rv;
        _cleanup_nlsock_ struct nl_sock *sk = NULL;
        if ((rv = open_sock(&sk, err, errlen)) < 0)
                return rv;
        if (handle == ROOT_HANDLE) {
                struct rtnl_qdisc *q = rtnl_qdisc_alloc();
                if (!q)
                        return -ENOMEM;
                rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
                rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
                rtnl_tc_set_handle(TC_CAST(q), ROOT_HANDLE);
                rv = rtnl_qdisc_delete(sk, q);
                rtnl_qdisc_put(q);
                if (rv < 0 && rv != -NLE_OBJ_NOTFOUND && rv != -NLE_NODEV)
                        return nl_fail(rv, "deleting faultline's root qdisc", err, errlen);
        } else if (snapshot && json_array_size(snapshot) > 0) {
                /* Someone else's root is in place: ours is already gone and
                 * the snapshot must not fight it. */
                return 0;
        }
        if (snapshot && json_array_size(snapshot) > 0)
                return replay(sk, snapshot, err, errlen);
        return 0;
}

/* Probe in a throw-away network namespace so nothing on the host moves. */
static int probe_root(struct nl_sock *sk, const char *kind, uint32_t handle)
{
        struct rtnl_qdisc *q = rtnl_qdisc_alloc();
        if (!q)
                return -NLE_NOMEM;
        rtnl_tc_set_ifindex(TC_CAST(q), 1); /* lo */
        rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
        rtnl_tc_set_handle(TC_CAST(q), handle);
        int rv = rtnl_tc_set_kind(TC_CAST(q), kind);
        if (rv >= 0)
                rv = rtnl_qdisc_add(sk, q, NLM_F_CREATE);
        if (rv >= 0)
                rtnl_qdisc_delete(sk, q);
        rtnl_qdisc_put(q);
        return rv;
}

static int probe_kind(const char *kind)
{
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                if (unshare(CLONE_NEWNET) < 0)
                        _exit(2);
                struct nl_sock *sk = nl_socket_alloc();
                if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0)
                        _exit(2);
                _exit(probe_root(sk, kind, TC_HANDLE(1, 0)) < 0 ? 1 : 0);
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

/* 0 ok, 1 no ifb, 2 no ingress qdisc, 3 no u32/mirred (in the probe's
 * namespace). */
static int probe_ingress(void)
{
        char err[256];
        if (agent_ifb_create("flifbprobe", err, sizeof(err)) < 0)
                return 1;
        int ifb = agent_ifindex("flifbprobe");
        struct agent_u32_rule all = {.family = AF_INET, .redirect = true};
        if (ifb < 0 || agent_ingress_install(1, true, ifb, NULL, 0, err, sizeof(err)) < 0)
                return 2;
        return agent_ingress_install(1, false, ifb, &all, 1, err, sizeof(err)) < 0 ? 3 : 0;
}

/* The common questions (htb, netem, ingress shaping) share one namespace:
 * creating and tearing one down is the slow part (seconds under TCG).
 * Exit status bits: 1 no htb, 2 no netem, bits 2-3 probe_ingress()'s
 * code; 0x80 cannot probe. */
#define PROBE_CANNOT 0x80
static int probe_common(void)
{
        static int result = -1;
        if (result >= 0)
                return result;
        pid_t pid = fork();
        if (pid < 0)
                return result = PROBE_CANNOT;
        if (pid == 0) {
                if (unshare(CLONE_NEWNET) < 0)
                        _exit(PROBE_CANNOT);
                struct nl_sock *sk = nl_socket_alloc();
                if (!sk || nl_connect(sk, NETLINK_ROUTE) < 0)
                        _exit(PROBE_CANNOT);
                int r = 0;
                if (probe_root(sk, "htb", TC_HANDLE(1, 0)) < 0)
                        r |= 1;
                if (probe_root(sk, "netem", TC_HANDLE(2, 0)) < 0)
                        r |= 2;
                _exit(r | probe_ingress() << 2);
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return result = WIFEXITED(status) ? WEXITSTATUS(status) : PROBE_CANNOT;
}

const char *agent_qdisc_unavailable(const char *kind)
{
        static struct {
                char kind[16];
                int state; /* 1 ok, 2 missing */
                char why[160];
        } cache[4];
        for (size_t i = 0; i < FL_ARRAY_SIZE(cache); i++) {
                if (cache[i].state && strcmp(cache[i].kind, kind) == 0)
                        return cache[i].state == 1 ? NULL : cache[i].why;
                if (!cache[i].state) {
                        int rv;
                        if (strcmp(kind, "htb") == 0 || strcmp(kind, "netem") == 0) {
                                int c = probe_common();
                                rv = c == PROBE_CANNOT ? 2 : (c & (kind[0] == 'h' ? 1 : 2)) != 0;
                        } else {
                                rv = probe_kind(kind);
                        }
                        snprintf(cache[i].kind, sizeof(cache[i].kind), "%s", kind);
                        cache[i].state = rv == 0 ? 1 : 2;
                        if (rv == 1)
                                snprintf(cache[i].why, sizeof(cache[i].why),
                                         "kernel has no sch_%s (module missing or not loadable)",
                                         kind);
                        else if (rv != 0)
                                snprintf(cache[i].why, sizeof(cache[i].why),
                                         "cannot probe for sch_%s (no CAP_NET_ADMIN or no "
                                         "network namespaces)",
                                         kind);
                        return cache[i].state == 1 ? NULL : cache[i].why;
                }
        }
        return NULL;
}

/* ---- ingress: IFB, ingress qdisc, u32 + mirred ------------------------------ */

/* Filters on the ingress hook: parent ffff: under the "ingress" qdisc (as
 * `tc filter add ... parent ffff:` does), ffff:fff2 under "clsact". The
 * kernel remembers the form last used and reports every filter's parent
 * that way, so using the ingress qdisc's own form keeps a foreign
 * configuration's `tc filter show` exactly as it was. */
static uint32_t ingress_parent(const char *kind)
{
        return strcmp(kind, "clsact") == 0 ? TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)
                                           : TC_H_MAKE(TC_H_INGRESS, 0);
}
#define INGRESS_HANDLE TC_H_MAKE(TC_H_INGRESS, 0)

static struct nl_msg *tc_msg(int type, int flags, int ifindex, uint32_t parent, uint32_t handle,
                             uint32_t info)
{
        struct nl_msg *m = nlmsg_alloc_simple(type, flags);
        struct tcmsg t = {.tcm_family = AF_UNSPEC,
                          .tcm_ifindex = ifindex,
                          .tcm_parent = parent,
                          .tcm_handle = handle,
                          .tcm_info = info};
        if (m && nlmsg_append(m, &t, sizeof(t), NLMSG_ALIGNTO) < 0) {
                nlmsg_free(m);
                return NULL;
        }
        return m;
}

/* Send (consumes m) and wait for the kernel's answer. */
static int send_msg(struct nl_sock *sk, struct nl_msg *m)
{
        int rv = nl_send_auto_complete(sk, m);
        nlmsg_free(m);
        return rv < 0 ? rv : nl_wait_for_ack(sk);
}

int agent_ifb_create(const char *name, char *err, size_t errlen)
{
        _cleanup_nlsock_ struct nl_sock *sk = NULL;
        int rv = open_sock(&sk, err, errlen);
        if (rv < 0)
                return rv;
        struct rtnl_link *l = rtnl_link_alloc();
        if (!l)
                return -ENOMEM;
        rtnl_link_set_name(l, name);
        rv = rtnl_link_set_type(l, "ifb");
        /* ifb's own default is 32 packets: too short a queue for a shaped
         * TCP flow; 1000 is what an ethernet device gets. */
        rtnl_link_set_txqlen(l, 1000);
        rtnl_link_set_flags(l, IFF_UP);
        if (rv >= 0)
                rv = rtnl_link_add(sk, l, NLM_F_CREATE | NLM_F_EXCL);
        rtnl_link_put(l);
        if (rv < 0) {
                char what[64];
                snprintf(what, sizeof(what), "creating ifb device %s", name);
                return nl_fail(rv, what, err, errlen);
        }
        return 0;
}

/* The link called name; -ENODEV if there is none, -EEXIST if it is not an ifb. */
static int ifb_get(struct nl_sock *sk, const char *name, struct rtnl_link **ret, char *err,
                   size_t errlen)
{
        struct rtnl_link *l = NULL;
        int rv = rtnl_link_get_kernel(sk, 0, name, &l);
        if (rv == -NLE_NODEV || rv == -NLE_OBJ_NOTFOUND)
                return -ENODEV;
        if (rv < 0)
                return nl_fail(rv, "link lookup", err, errlen);
        const char *type = rtnl_link_get_type(l);
        if (!type || strcmp(type, "ifb") != 0) {
                rtnl_link_put(l);
                snprintf(err, errlen, "%s exists but is not an ifb device", name);
                return -EEXIST;
        }
        *ret = l;
        return 0;
}

int agent_ifb_delete(const char *name, char *err, size_t errlen)
{
        _cleanup_nlsock_ struct nl_sock *sk = NULL;
        struct rtnl_link *l = NULL;
        int rv = open_sock(&sk, err, errlen);
        if (rv < 0)
                return rv;
        rv = ifb_get(sk, name, &l, err, errlen);
        if (rv == -ENODEV)
                return 0;
        if (rv < 0)
                return rv;
        rv = rtnl_link_delete(sk, l);
        rtnl_link_put(l);
        if (rv < 0 && rv != -NLE_NODEV && rv != -NLE_OBJ_NOTFOUND)
                return nl_fail(rv, "deleting the ifb device", err, errlen);
        return 0;
}

int agent_ifb_check(const char *name, char *err, size_t errlen)
{
        _cleanup_nlsock_ struct nl_sock *sk = NULL;
        struct rtnl_link *l = NULL;
        int rv = open_sock(&sk, err, errlen);
        if (rv < 0)
                return rv;
        if ((rv = ifb_get(sk, name, &l, err, errlen)) < 0) {
                if (rv == -ENODEV)
                        snprintf(err, errlen, "ifb device %s missing", name);
                return rv;
        }
        bool up = rtnl_link_get_flags(l) & IFF_UP;
        rtnl_link_put(l);
        if (!up) {
                snprintf(err, errlen, "ifb device %s is down", name);
                return -EIO;
        }
        return 0;
}

struct filt_count {
        int ifindex;
        int ours[2]; /* u32 nodes at our IPv4 / IPv6 priority */
        int others;  /* any other filter message */
};

static int count_cb(struct nl_msg *msg, void *arg)
{
        struct filt_count *c = arg;
        struct nlmsghdr *h = nlmsg_hdr(msg);
        if (h->nlmsg_type != RTM_NEWTFILTER || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct tcmsg)))
                return NL_SKIP;
        struct tcmsg *t = nlmsg_data(h);
        if (t->tcm_ifindex != c->ifindex)
                return NL_SKIP;
        uint32_t prio = TC_H_MAJ(t->tcm_info) >> 16;
        if (prio == AGENT_INGRESS_PRIO || prio == AGENT_INGRESS_PRIO + 1) {
                if (TC_U32_NODE(t->tcm_handle))
                        c->ours[prio - AGENT_INGRESS_PRIO]++;
        } else {
                c->others++;
        }
        return NL_OK;
}

static int ingress_state(int ifindex, char *kind, size_t kind_size, int ret_ours[2],
                         int *ret_others, char *err, size_t errlen)
{
        _cleanup_nlsock_ struct nl_sock *sk = NULL;
        struct nl_cache *cache = NULL;
        int rv = open_sock(&sk, err, errlen);
        if (rv < 0)
                return rv;
        if ((rv = rtnl_qdisc_alloc_cache(sk, &cache)) < 0)
                return nl_fail(rv, "qdisc dump", err, errlen);
        struct rtnl_qdisc *q = rtnl_qdisc_get_by_parent(cache, ifindex, TC_H_INGRESS);
        const char *k = q ? rtnl_tc_get_kind(TC_CAST(q)) : NULL;
        snprintf(kind, kind_size, "%s", q ? (k ? k : "?") : "");
        if (q)
                rtnl_qdisc_put(q);
        nl_cache_free(cache);
        struct filt_count c = {.ifindex = ifindex};
        if (kind[0]) {
                struct tcmsg t = {.tcm_family = AF_UNSPEC,
                                  .tcm_ifindex = ifindex,
                                  .tcm_parent = ingress_parent(kind)};
                rv = nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, count_cb, &c);
                if (rv >= 0)
                        rv = nl_send_simple(sk, RTM_GETTFILTER, NLM_F_DUMP, &t, sizeof(t));
                if (rv >= 0)
                        rv = nl_recvmsgs_default(sk);
                if (rv < 0)
                        return nl_fail(rv, "ingress filter dump", err, errlen);
        }
        if (ret_ours) {
                ret_ours[0] = c.ours[0];
                ret_ours[1] = c.ours[1];
        }
        if (ret_others)
                *ret_others = c.others;
        return 0;
}

int agent_ingress_state(int ifindex, char *kind, size_t kind_size, int *ret_ours, int *ret_others,
                        char *err, size_t errlen)
{
        int ours[2] = {0, 0};
        int rv = ingress_state(ifindex, kind, kind_size, ours, ret_others, err, errlen);
        if (rv == 0 && ret_ours)
                *ret_ours = ours[0] + ours[1];
        return rv;
}

/* One u32 node, built by hand. The handle names the node only: u32 hash
 * tables are shared by every u32 instance of a block, so 800: may belong
 * to another priority; without a table id the kernel uses this instance's
 * root table, where nodes are kept in id order (rules[] order). */
/* One u32 node, built by hand (libnl's u32 API cannot express an action
 * list and a selector without a class id in one message). */
static int add_u32(struct nl_sock *sk, int ifindex, uint32_t parent, uint32_t prio, uint16_t proto,
                   uint32_t node, const struct agent_u32_rule *r, int ifb_index)
{
        unsigned char
            sel[sizeof(struct tc_u32_sel) + AGENT_U32_MAX_KEYS * sizeof(struct tc_u32_key)] = {0};
        struct tc_u32_sel hdr = {.flags = TC_U32_TERMINAL};
        size_t nk = r->n_keys > AGENT_U32_MAX_KEYS ? AGENT_U32_MAX_KEYS : r->n_keys;
        for (size_t i = 0; i < nk; i++) {
                struct tc_u32_key k = {.mask = r->keys[i].mask,
                                       .val = r->keys[i].val & r->keys[i].mask,
                                       .off = r->keys[i].off};
                memcpy(sel + sizeof(hdr) + i * sizeof(k), &k, sizeof(k));
        }
        /* No key: "match u32 0 0 at 0" (already zeroed), as tc does. */
        hdr.nkeys = (unsigned char)(nk ? nk : 1);
        memcpy(sel, &hdr, sizeof(hdr));
        struct nl_msg *m = tc_msg(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, ifindex, parent, node,
                                  TC_H_MAKE(prio << 16, htons(proto)));
        if (!m)
                return -NLE_NOMEM;
        int rv = nla_put_string(m, TCA_KIND, "u32");
        struct nlattr *opts = rv >= 0 ? nla_nest_start(m, TCA_OPTIONS) : NULL;
        if (!opts)
                rv = -NLE_NOMEM;
        if (rv >= 0)
                rv = nla_put(m, TCA_U32_SEL,
                             (int)(sizeof(hdr) + hdr.nkeys * sizeof(struct tc_u32_key)), sel);
        if (rv >= 0 && r->redirect) {
                /* act_mirred, egress redirect to the ifb: the packet is
                 * "stolen" from this ingress path and re-enters the stack
                 * after the ifb's qdiscs have shaped it. */
                struct tc_mirred p = {.action = TC_ACT_STOLEN,
                                      .eaction = TCA_EGRESS_REDIR,
                                      .ifindex = (uint32_t)ifb_index};
                struct nlattr *acts = nla_nest_start(m, TCA_U32_ACT);
                struct nlattr *a1 = acts ? nla_nest_start(m, 1) : NULL;
                struct nlattr *ao = NULL;
                rv = a1 ? nla_put_string(m, TCA_ACT_KIND, "mirred") : -NLE_NOMEM;
                if (rv >= 0 && !(ao = nla_nest_start(m, TCA_ACT_OPTIONS)))
                        rv = -NLE_NOMEM;
                if (rv >= 0)
                        rv = nla_put(m, TCA_MIRRED_PARMS, sizeof(p), &p);
                if (rv >= 0)
                        rv = nla_nest_end(m, ao);
                if (rv >= 0)
                        rv = nla_nest_end(m, a1);
                if (rv >= 0)
                        rv = nla_nest_end(m, acts);
        }
        if (rv >= 0)
                rv = nla_nest_end(m, opts);
        if (rv < 0) {
                nlmsg_free(m);
                return rv;
        }
        return send_msg(sk, m);
}

int agent_ingress_install(int ifindex, bool create_qdisc, int ifb_index,
                          const struct agent_u32_rule *rules, size_t n, char *err, size_t errlen)
{
        _cleanup_nlsock_ struct nl_sock *sk = NULL;
        char kind[32] = "ingress";
        int rv = create_qdisc
                     ? 0
                     : agent_ingress_state(ifindex, kind, sizeof(kind), NULL, NULL, err, errlen);
        if (rv < 0)
                return rv;
        if ((rv = open_sock(&sk, err, errlen)) < 0)
                return rv;
        if (create_qdisc) {
                struct nl_msg *m = tc_msg(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, ifindex,
                                          TC_H_INGRESS, INGRESS_HANDLE, 0);
                if (!m)
                        return -ENOMEM;
                rv = nla_put_string(m, TCA_KIND, "ingress");
                if (rv < 0) {
                        nlmsg_free(m);
                        return nl_fail(rv, "building the ingress qdisc request", err, errlen);
                }
                if ((rv = send_msg(sk, m)) < 0)
                        return nl_fail(rv, "adding the ingress qdisc", err, errlen);
        }
        uint32_t node[2] = {0, 0};
        for (size_t i = 0; i < n; i++) {
                int v6 = rules[i].family == AF_INET6;
                if (++node[v6] > 0xfff) {
                        snprintf(err, errlen, "too many ingress filter rules");
                        return -E2BIG;
                }
                rv = add_u32(sk, ifindex, ingress_parent(kind), AGENT_INGRESS_PRIO + (uint32_t)v6,
                             v6 ? ETH_P_IPV6 : ETH_P_IP, node[v6], &rules[i], ifb_index);
                if (rv < 0)
                        return nl_fail(rv, "adding the ingress u32/mirred filter", err, errlen);
        }
        return 0;
}

int agent_ingress_verify(int ifindex, int n_v4, int n_v6, char *err, size_t errlen)
{
        char kind[32];
        int ours[2] = {0, 0};
        int rv = ingress_state(ifindex, kind, sizeof(kind), ours, NULL, err, errlen);
        if (rv < 0)
                return rv;
        if (!kind[0]) {
                snprintf(err, errlen, "no ingress qdisc on the interface");
                return -EIO;
        }
        if (ours[0] != n_v4 || ours[1] != n_v6) {
                snprintf(err, errlen,
                         "ingress u32 filters: %d IPv4 / %d IPv6 read back, %d / %d "
                         "installed",
                         ours[0], ours[1], n_v4, n_v6);
                return -EIO;
        }
        return 0;
}

int agent_ingress_remove(int ifindex, bool delete_qdisc, char *err, size_t errlen)
{
        char kind[32];
        int ours = 0, others = 0;
        int rv = agent_ingress_state(ifindex, kind, sizeof(kind), &ours, &others, err, errlen);
        if (rv == -ENODEV)
                return 0;
        if (rv < 0)
                return rv;
        if (!kind[0])
                return 0; /* no ingress qdisc: nothing of ours can be left */
        _cleanup_nlsock_ struct nl_sock *sk = NULL;
        if ((rv = open_sock(&sk, err, errlen)) < 0)
                return rv;
        for (uint32_t v6 = 0; v6 < 2; v6++) {
                /* Handle 0 with a priority and protocol: the whole u32
                 * instance at that priority, i.e. exactly our filters. */
                struct nl_msg *m = tc_msg(
                    RTM_DELTFILTER, 0, ifindex, ingress_parent(kind), 0,
                    TC_H_MAKE((AGENT_INGRESS_PRIO + v6) << 16, htons(v6 ? ETH_P_IPV6 : ETH_P_IP)));
                if (!m)
                        return -ENOMEM;
                rv = send_msg(sk, m);
                if (rv < 0 && rv != -NLE_OBJ_NOTFOUND && rv != -NLE_NODEV)
                        return nl_fail(rv, "deleting faultline's ingress filters", err, errlen);
        }
        if (!delete_qdisc || strcmp(kind, "ingress") != 0 || others > 0)
                return 0;
        struct nl_msg *m = tc_msg(RTM_DELQDISC, 0, ifindex, TC_H_INGRESS, INGRESS_HANDLE, 0);
        if (!m)
                return -ENOMEM;
        rv = send_msg(sk, m);
        if (rv < 0 && rv != -NLE_OBJ_NOTFOUND && rv != -NLE_NODEV && rv != -NLE_INVAL)
                return nl_fail(rv, "deleting the ingress qdisc", err, errlen);
        return 0;
}

const char *agent_ingress_unavailable(void)
{
        static int state = -1;
        static const char *const why[] = {
            NULL,
            "kernel has no ifb devices (CONFIG_IFB)",
            "kernel has no ingress qdisc (CONFIG_NET_SCH_INGRESS)",
            "kernel has no u32 classifier or mirred action (CONFIG_NET_CLS_U32, "
            "CONFIG_NET_ACT_MIRRED)",
            "cannot probe for ingress shaping (no CAP_NET_ADMIN or no network namespaces)",
        };
        if (state < 0) {
                int c = probe_common();
                state = c == PROBE_CANNOT ? 4 : (c >> 2) & 3;
        }
        return why[state];
}
