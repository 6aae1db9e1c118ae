/* rtnetlink traffic-control adapter. See qdisc.h.
 *
 * Requests are built with libnl-route (its object builders and nl_msg
 * attribute helpers) but sent and answered over one raw NETLINK_ROUTE
 * socket the agent keeps for its life (rt_xfer below): a fresh libnl
 * socket per operation cost socket+bind+connect each time, and libnl's
 * caches dump every qdisc of every device where one targeted GET is
 * enough. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <linux/tc_act/tc_mirred.h>
#include <netlink/route/class.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/tc.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fl_log.h"
#include "fl_util.h"
#include "nl/qdisc.h"

#define ROOT_HANDLE  TC_HANDLE(AGENT_QDISC_MAJOR, 0)
#define NETEM_HANDLE TC_HANDLE(AGENT_NETEM_MAJOR, 0)

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

/* libnl's codes are positive enum values (negated on return); only the
 * probes and the message builders still produce them. */
static int nl_fail(int nlerr, const char *what, char *err, size_t errlen)
{
        snprintf(err, errlen, "%s: %s", what, nl_geterror(nlerr));
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
        case NLE_NOMEM:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

/* ---- the agent's rtnetlink socket ------------------------------------------ */

/* Opened on first use and kept. A netlink socket belongs to the network
 * namespace it was opened in, so a forked child (the kernel probes, which
 * unshare a namespace first) must not use its parent's: rt.pid says whose
 * it is, and a child opens its own. Sequence numbers only grow, so an
 * answer left in the queue by an earlier failure (older sequence number)
 * is recognised and skipped. The agent is single-threaded; nothing else
 * reads this socket. */
static struct {
        int fd;
        pid_t pid;
        uint32_t seq;
        unsigned char *buf;
} rt = {.fd = -1};

/* Above the largest skb the kernel fills for a dump (32 KiB). */
#define RT_BUF_SIZE (64u * 1024u)

static void rt_close(void)
{
        if (rt.fd >= 0)
                close(rt.fd);
        rt.fd = -1;
}

static int rt_open(char *err, size_t errlen)
{
        pid_t me = getpid();
        if (rt.fd >= 0 && rt.pid == me)
                return 0;
        rt_close(); /* a parent's socket, inherited: not ours to use */
        if (!rt.buf && !(rt.buf = malloc(RT_BUF_SIZE))) {
                snprintf(err, errlen, "netlink: out of memory");
                return -ENOMEM;
        }
        int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0) {
                int e = errno;
                snprintf(err, errlen, "netlink socket: %s", strerror(e));
                return -e;
        }
        /* The kernel's reason text with every error; acks without a copy
         * of the request. Both optional (older kernels). */
        int one = 1;
        (void)setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
        (void)setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
        struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;
                close(fd);
                snprintf(err, errlen, "netlink bind: %s", strerror(e));
                return -e;
        }
        rt.fd = fd;
        rt.pid = me;
        if (!rt.seq)
                rt.seq = (uint32_t)time(NULL);
        return 0;
}

/* The kernel's extended-ack text of an error message, or NULL. */
static const char *ext_ack_msg(const struct nlmsghdr *h)
{
        if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
                return NULL;
        const struct nlmsgerr *e = NLMSG_DATA(h);
        size_t off = NLMSG_HDRLEN + sizeof(*e);
        if (!(h->nlmsg_flags & NLM_F_CAPPED))
                off += e->msg.nlmsg_len - NLMSG_HDRLEN;
        while (off + NLA_HDRLEN <= h->nlmsg_len) {
                const struct nlattr *a = (const struct nlattr *)((const char *)h + off);
                if (a->nla_len < NLA_HDRLEN || off + a->nla_len > h->nlmsg_len)
                        return NULL;
                if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG && a->nla_len > NLA_HDRLEN &&
                    ((const char *)a)[a->nla_len - 1] == 0)
                        return (const char *)a + NLA_HDRLEN;
                off += NLA_ALIGN(a->nla_len);
        }
        return NULL;
}

/* A reply (a GET's answer, one part of a dump) to request idx. */
typedef void (*rt_reply_fn)(const struct nlmsghdr *h, size_t idx, void *arg);

/* What ends a request's exchange. */
enum rt_end {
        RT_END_NONE, /* nothing: a change in the middle of a batch (errors still come) */
        RT_END_ACK,  /* its acknowledgement (a GET; the last change of a batch) */
        RT_END_DONE, /* NLMSG_DONE (a dump) */
};

static bool is_get(const struct nlmsghdr *h)
{
        return h->nlmsg_type == RTM_GETQDISC || h->nlmsg_type == RTM_GETTCLASS ||
               h->nlmsg_type == RTM_GETTFILTER || h->nlmsg_type == RTM_GETLINK;
}

/* Send msgs[0..n) in one sendmsg and wait for every answer; always frees
 * the messages. The kernel handles them in order, each on its own: a
 * failing request does not stop the next ones, so a caller batches only
 * requests that are right together whatever happens to the others (the
 * root qdisc that makes an interface ours goes alone, first). At most one
 * dump per batch (the kernel runs one at a time per socket).
 *
 * A GET (sent with NLM_F_ECHO, which older kernels need to answer the
 * sender) asks for an acknowledgement too: the kernel may answer one with
 * nothing at all (a GET of the built-in noop qdisc a deleted ingress
 * qdisc leaves behind, on 6.x), so its answer cannot be what ends it. A
 * dump ends with NLMSG_DONE. Of the changes, only the last of the batch
 * asks for an acknowledgement. The kernel
 * reports an error for any request and answers in order, so once the
 * last request has ended, every earlier failure has arrived. Replies go
 * to fn (may be NULL).
 *
 * Returns 0 or the first failure as -errno, its reason (with the kernel's
 * extended-ack text) in err after what. ret_errs (may be NULL) gets each
 * request's 0 / -errno. */
static int rt_xfer(struct nl_msg **msgs, size_t n, rt_reply_fn fn, void *arg, int *ret_errs,
                   const char *what, char *err, size_t errlen)
{
        struct iovec iov[64];
        enum rt_end end[64];
        bool done[64] = {false};
        int first = 0;
        size_t pending = 0;
        char ack_text[160] = "";
        for (size_t i = 0; ret_errs && i < n; i++)
                ret_errs[i] = 0;
        int rv = n > FL_ARRAY_SIZE(iov) ? -E2BIG : rt_open(err, errlen);
        for (size_t i = 0; i < n; i++)
                if (!msgs[i])
                        rv = rv < 0 ? rv : -ENOMEM;
        if (rv < 0) {
                for (size_t i = 0; i < n; i++)
                        if (msgs[i])
                                nlmsg_free(msgs[i]);
                if (rv == -ENOMEM || rv == -E2BIG)
                        snprintf(err, errlen, "%s: %s", what, strerror(-rv));
                return rv;
        }
        uint32_t base = rt.seq + 1;
        for (size_t i = 0; i < n; i++) {
                struct nlmsghdr *h = nlmsg_hdr(msgs[i]);
                h->nlmsg_seq = ++rt.seq;
                h->nlmsg_pid = 0;
                h->nlmsg_flags |= NLM_F_REQUEST;
                bool dump = is_get(h) && (h->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
                if (is_get(h))
                        h->nlmsg_flags |= NLM_F_ECHO;
                if (dump) {
                        end[i] = RT_END_DONE;
                } else if (is_get(h) || i + 1 == n) {
                        h->nlmsg_flags |= NLM_F_ACK;
                        end[i] = RT_END_ACK;
                } else {
                        end[i] = RT_END_NONE;
                }
                pending += end[i] != RT_END_NONE;
                iov[i] = (struct iovec){.iov_base = h, .iov_len = h->nlmsg_len};
        }
        struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
        struct msghdr mh = {
            .msg_name = &kernel, .msg_namelen = sizeof(kernel), .msg_iov = iov, .msg_iovlen = n};
        ssize_t sent;
        while ((sent = sendmsg(rt.fd, &mh, 0)) < 0 && errno == EINTR)
                ;
        int send_errno = sent < 0 ? errno : 0;
        for (size_t i = 0; i < n; i++)
                nlmsg_free(msgs[i]);
        if (send_errno) {
                rt_close();
                snprintf(err, errlen, "%s: netlink send: %s", what, strerror(send_errno));
                return -send_errno;
        }
        while (pending) {
                ssize_t len = recv(rt.fd, rt.buf, RT_BUF_SIZE, MSG_TRUNC);
                if (len < 0 && errno == EINTR)
                        continue;
                if (len < 0 || (size_t)len > RT_BUF_SIZE) {
                        int e = len < 0 ? errno : EMSGSIZE;
                        rt_close(); /* unread answers: start over on a new socket */
                        snprintf(err, errlen, "%s: netlink receive: %s", what, strerror(e));
                        return -e;
                }
                int left = (int)len;
                for (struct nlmsghdr *h = (struct nlmsghdr *)rt.buf; NLMSG_OK(h, left);
                     h = NLMSG_NEXT(h, left)) {
                        size_t idx = (uint32_t)(h->nlmsg_seq - base);
                        if (idx >= n)
                                continue; /* an earlier exchange's leftover */
                        int e = 0;
                        bool final = false;
                        if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_DONE) {
                                final = true;
                                if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(int)))
                                        e = *(const int *)NLMSG_DATA(h);
                                if (e > 0)
                                        e = -e;
                                if (e < 0 && !first) {
                                        const char *t =
                                            h->nlmsg_type == NLMSG_ERROR ? ext_ack_msg(h) : NULL;
                                        first = e;
                                        snprintf(ack_text, sizeof(ack_text), "%s", t ? t : "");
                                }
                                if (e < 0 && ret_errs)
                                        ret_errs[idx] = e;
                        } else if (fn) {
                                fn(h, idx, arg);
                        }
                        if (final && end[idx] != RT_END_NONE && !done[idx]) {
                                done[idx] = true;
                                pending--;
                        }
                }
        }
        if (first) {
                if (ack_text[0])
                        snprintf(err, errlen, "%s: %s (%s)", what, strerror(-first), ack_text);
                else
                        snprintf(err, errlen, "%s: %s", what, strerror(-first));
        }
        return first;
}

/* One request, alone. */
static int rt_one(struct nl_msg *m, rt_reply_fn fn, void *arg, const char *what, char *err,
                  size_t errlen)
{
        return rt_xfer(&m, 1, fn, arg, NULL, what, err, errlen);
}

/* A traffic-control request: header and struct tcmsg, attributes to add. */
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

/* Attributes of a tc message (tb[TCA_MAX + 1]); false if malformed. */
static bool tc_attrs(const struct nlmsghdr *h, struct nlattr **tb)
{
        if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct tcmsg)))
                return false;
        return nlmsg_parse((struct nlmsghdr *)h, sizeof(struct tcmsg), tb, TCA_MAX, NULL) >= 0;
}

/* Errors that mean "the interface, or the object, is not there". */
static bool gone(int rv)
{
        return rv == -ENODEV || rv == -ENOENT;
}

int agent_ifindex(const char *name)
{
        /* if_nametoindex() without its socket()+close(): the ioctl on the
         * kept netlink socket (same namespace rules: see rt_open). */
        struct ifreq ifr = {0};
        char err[128];
        if (strlen(name) >= sizeof(ifr.ifr_name))
                return -ENODEV;
        if (rt_open(err, sizeof(err)) < 0) {
                unsigned idx = if_nametoindex(name);
                return idx ? (int)idx : -ENODEV;
        }
        memcpy(ifr.ifr_name, name, strlen(name) + 1);
        if (ioctl(rt.fd, SIOCGIFINDEX, &ifr) < 0)
                return -ENODEV;
        return ifr.ifr_ifindex;
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

struct root_info {
        char kind[32];
        uint32_t handle;
        uint32_t defcls; /* htb only */
        bool found;
};

static void root_reply(const struct nlmsghdr *h, size_t idx, void *arg)
{
        struct root_info *r = arg;
        struct nlattr *tb[TCA_MAX + 1];
        (void)idx;
        if (h->nlmsg_type != RTM_NEWQDISC || !tc_attrs(h, tb))
                return;
        const struct tcmsg *t = NLMSG_DATA(h);
        r->found = true;
        r->handle = t->tcm_handle;
        snprintf(r->kind, sizeof(r->kind), "%s", tb[TCA_KIND] ? nla_get_string(tb[TCA_KIND]) : "?");
        struct nlattr *ob[TCA_HTB_MAX + 1];
        if (strcmp(r->kind, "htb") == 0 && tb[TCA_OPTIONS] &&
            nla_parse_nested(ob, TCA_HTB_MAX, tb[TCA_OPTIONS], NULL) >= 0 && ob[TCA_HTB_INIT] &&
            nla_len(ob[TCA_HTB_INIT]) >= (int)sizeof(struct tc_htb_glob))
                r->defcls = ((const struct tc_htb_glob *)nla_data(ob[TCA_HTB_INIT]))->defcls;
}

/* GET of the qdisc at parent (TC_H_ROOT or TC_H_INGRESS) of ifindex. */
static struct nl_msg *qdisc_get_msg(int ifindex, uint32_t parent)
{
        return tc_msg(RTM_GETQDISC, 0, ifindex, parent, 0, 0);
}

/* The kernel answers a GET of a built-in qdisc (noqueue, noop: what a
 * virtual device or an absent ingress hook has) with EINVAL, since such
 * qdiscs are never reported; ENOENT when there is no qdisc at all. */
static bool builtin_or_none(int rv)
{
        return rv == -EINVAL || rv == -ENOENT;
}

int agent_qdisc_root(int ifindex, char *kind, size_t kind_size, uint32_t *ret_handle,
                     bool *ret_is_default, char *err, size_t errlen)
{
        struct root_info r = {.found = false};
        char e2[256];
        int rv = rt_one(qdisc_get_msg(ifindex, TC_H_ROOT), root_reply, &r, "root qdisc lookup", e2,
                        sizeof(e2));
        if (rv < 0 && !builtin_or_none(rv)) {
                snprintf(err, errlen, "%s", e2);
                return rv == -ENOENT ? -ENODEV : rv;
        }
        if (!r.found) {
                /* noqueue / noop, or no root at all. */
                snprintf(kind, kind_size, "none");
                *ret_handle = 0;
                *ret_is_default = true;
                return 0;
        }
        snprintf(kind, kind_size, "%s", r.kind);
        *ret_handle = r.handle;
        /* The kernel's own root qdiscs (pfifo_fast, mq, the default
         * fq_codel) have handle 0:. tc always gives user-installed ones a
         * non-zero major. */
        *ret_is_default = TC_H_MAJ(r.handle) == 0;
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
        bool failed;     /* out of memory on the way */
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

static void dump_cb(const struct nlmsghdr *h, size_t idx, void *arg)
{
        struct dump_ctx *c = arg;
        (void)idx;
        if (h->nlmsg_type != c->new_type || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct tcmsg)))
                return;
        const struct tcmsg *t = NLMSG_DATA(h);
        if (t->tcm_ifindex != c->ifindex)
                return;
        /* Kernel-created qdiscs (handle 0:, or flagged invisible) come
         * back by themselves; replaying them would clash. */
        struct nlattr *a;
        int rem;
        bool invisible = false;
        nlmsg_for_each_attr(a, (struct nlmsghdr *)h, sizeof(struct tcmsg), rem)
        {
                if (nla_type(a) == TCA_DUMP_INVISIBLE)
                        invisible = true;
        }
        if (c->new_type == RTM_NEWQDISC && (TC_H_MAJ(t->tcm_handle) == 0 || invisible))
                return;

        size_t cap = NLMSG_ALIGN(sizeof(*t)) + nlmsg_attrlen(h, sizeof(*t));
        _cleanup_free_ unsigned char *buf = calloc(1, cap);
        if (!buf) {
                c->failed = true;
                return;
        }
        memcpy(buf, t, sizeof(*t));
        size_t len = NLMSG_ALIGN(sizeof(*t));
        nlmsg_for_each_attr(a, (struct nlmsghdr *)h, sizeof(struct tcmsg), rem)
        {
                if (!keep_attr(nla_type(a)))
                        continue;
                memcpy(buf + len, a, a->nla_len);
                len += NLA_ALIGN(a->nla_len);
        }
        _cleanup_free_ char *enc = b64_encode(buf, len);
        if (!enc) {
                c->failed = true;
                return;
        }
        json_array_append_new(c->arr, json_pack("{s:i, s:I, s:s}", "type", c->new_type, "handle",
                                                (json_int_t)t->tcm_handle, "msg", enc));
        if (c->new_type == RTM_NEWTCLASS && c->classes)
                json_array_append_new(c->classes, json_integer(t->tcm_handle));
}

static int dump(int get_type, int new_type, int ifindex, uint32_t parent, json_t *arr,
                json_t *classes, char *err, size_t errlen)
{
        struct dump_ctx c = {
            .ifindex = ifindex, .new_type = new_type, .arr = arr, .classes = classes};
        int rv = rt_one(tc_msg(get_type, NLM_F_DUMP, ifindex, parent, 0, 0), dump_cb, &c, "tc dump",
                        err, errlen);
        if (rv == 0 && c.failed) {
                snprintf(err, errlen, "tc dump: out of memory");
                rv = -ENOMEM;
        }
        return rv;
}

int agent_qdisc_snapshot(int ifindex, json_t **ret, char *err, size_t errlen)
{
        json_t *arr = json_array(), *classes = json_array();
        if (!arr || !classes) {
                json_decref(arr);
                json_decref(classes);
                return -ENOMEM;
        }
        int rv = dump(RTM_GETQDISC, RTM_NEWQDISC, ifindex, 0, arr, NULL, err, errlen);
        if (rv == 0)
                rv = dump(RTM_GETTCLASS, RTM_NEWTCLASS, ifindex, 0, arr, classes, err, errlen);
        /* Filters hang off a qdisc or a class: the root's (parent 0 means
         * the root qdisc; TC_H_ROOT would name ffff:, the ingress hook),
         * then each class's. */
        if (rv == 0)
                rv = dump(RTM_GETTFILTER, RTM_NEWTFILTER, ifindex, 0, arr, NULL, err, errlen);
        size_t i;
        json_t *h;
        json_array_foreach(classes, i, h)
        {
                if (rv == 0)
                        rv = dump(RTM_GETTFILTER, RTM_NEWTFILTER, ifindex,
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

/* u32 reports whether a node is offloaded (TCA_CLS_FLAGS_IN_HW /
 * NOT_IN_HW) in the flags it dumps, and refuses those bits on creation. */
static void fixup_u32(unsigned char *payload, size_t len)
{
        size_t off = NLMSG_ALIGN(sizeof(struct tcmsg));
        bool is_u32 = false;
        struct nlattr *opts = NULL;
        while (off + sizeof(struct nlattr) <= len) {
                struct nlattr *a = (struct nlattr *)(payload + off);
                if (a->nla_len < sizeof(*a) || off + a->nla_len > len)
                        return;
                if (a->nla_type == TCA_KIND && a->nla_len >= NLA_HDRLEN + 4 &&
                    memcmp((char *)a + NLA_HDRLEN, "u32", 4) == 0)
                        is_u32 = true;
                if ((a->nla_type & NLA_TYPE_MASK) == TCA_OPTIONS)
                        opts = a;
                off += NLA_ALIGN(a->nla_len);
        }
        if (!is_u32 || !opts)
                return;
        size_t o = NLA_HDRLEN, end = opts->nla_len;
        while (o + sizeof(struct nlattr) <= end) {
                struct nlattr *a = (struct nlattr *)((char *)opts + o);
                if (a->nla_len < sizeof(*a) || o + a->nla_len > end)
                        return;
                if ((a->nla_type & NLA_TYPE_MASK) == TCA_U32_FLAGS &&
                    a->nla_len >= NLA_HDRLEN + sizeof(uint32_t)) {
                        uint32_t f;
                        memcpy(&f, (char *)a + NLA_HDRLEN, sizeof(f));
                        f &= ~(uint32_t)(TCA_CLS_FLAGS_IN_HW | TCA_CLS_FLAGS_NOT_IN_HW);
                        memcpy((char *)a + NLA_HDRLEN, &f, sizeof(f));
                }
                o += NLA_ALIGN(a->nla_len);
        }
}

static int send_msg(int type, const unsigned char *payload, size_t len, const char *what, char *err,
                    size_t errlen)
{
        struct nl_msg *m = nlmsg_alloc_simple(type, NLM_F_CREATE | NLM_F_EXCL);
        if (m && nlmsg_append(m, (void *)payload, len, NLMSG_ALIGNTO) < 0) {
                nlmsg_free(m);
                m = NULL;
        }
        return rt_one(m, NULL, NULL, what, err, errlen);
}

static int send_raw(int type, unsigned char *payload, size_t len, char *err, size_t errlen)
{
        if (type == RTM_NEWQDISC)
                fixup_htb(payload, len);
        if (type == RTM_NEWTFILTER) {
                /* A dump reports each classifier instance (priority) once
                 * with handle 0, before its filters: the first filter
                 * replayed creates the instance (u32 instances are made
                 * by u32_renumber, in their original order). */
                if (len >= sizeof(struct tcmsg) && ((struct tcmsg *)payload)->tcm_handle == 0)
                        return 0;
                fixup_u32(payload, len);
        }
        return send_msg(type, payload, len, "restoring the interface's previous qdiscs", err,
                        errlen);
}

/* ---- u32 hash-table numbers ------------------------------------------------
 *
 * Every u32 instance (one per parent, chain, priority and protocol) has a
 * root hash table, and a table made without a handle gets one too: the
 * kernel numbers both from one counter per qdisc, 800: for the qdisc's
 * first instance, then 801:, 802:, ... in creation order, never reusing a
 * number it handed out while the qdisc lives. Those numbers are what a
 * user's scripts name (`ht 801::`) and what link keys point at, so a
 * restore must hand them out again in the same order, holes included:
 * instances and auto-numbered tables are created in ascending number, and
 * a number nobody holds any more is taken by a throw-away table (or, for
 * 800:, a throw-away instance) that is deleted right after. */

struct u32_ent {
        bool is_u32, has_chain;
        int ifindex;
        uint32_t parent, info, chain, handle;
};

static struct u32_ent u32_parse(int type, const unsigned char *p, size_t len)
{
        struct u32_ent e = {.is_u32 = false};
        if (type != RTM_NEWTFILTER || len < NLMSG_ALIGN(sizeof(struct tcmsg)))
                return e;
        const struct tcmsg *t = (const struct tcmsg *)p;
        e.ifindex = t->tcm_ifindex;
        e.parent = t->tcm_parent;
        e.info = t->tcm_info;
        e.handle = t->tcm_handle;
        size_t off = NLMSG_ALIGN(sizeof(struct tcmsg));
        while (off + sizeof(struct nlattr) <= len) {
                const struct nlattr *a = (const struct nlattr *)(p + off);
                if (a->nla_len < sizeof(*a) || off + a->nla_len > len)
                        break;
                if (a->nla_type == TCA_KIND && a->nla_len >= NLA_HDRLEN + 4 &&
                    memcmp((const char *)a + NLA_HDRLEN, "u32", 4) == 0)
                        e.is_u32 = true;
                if (a->nla_type == TCA_CHAIN && a->nla_len >= NLA_HDRLEN + 4) {
                        memcpy(&e.chain, (const char *)a + NLA_HDRLEN, 4);
                        e.has_chain = true;
                }
                off += NLA_ALIGN(a->nla_len);
        }
        return e;
}

/* A hash table (not a key node), numbered by the kernel (8xx:). */
static bool u32_is_table(const struct u32_ent *e)
{
        return e->is_u32 && e->handle && (e->handle & 0xfffff) == 0;
}

static bool u32_same_instance(const struct u32_ent *a, const struct u32_ent *b)
{
        return a->parent == b->parent && a->info == b->info && a->chain == b->chain;
}

/* A u32 request for an instance: handle 0 and no options make the bare
 * instance; a handle names a table or node to delete. */
static struct nl_msg *u32_msg_for(int type, int flags, const struct u32_ent *e, uint32_t parent,
                                  uint32_t info, uint32_t handle)
{
        struct nl_msg *m = tc_msg(type, flags, e->ifindex, parent, handle, info);
        if (m && (nla_put_string(m, TCA_KIND, "u32") < 0 ||
                  (e->has_chain && nla_put_u32(m, TCA_CHAIN, e->chain) < 0))) {
                nlmsg_free(m);
                return NULL;
        }
        return m;
}

/* Take number `id` with a throw-away table in the instance `in`. */
static int u32_burn(const struct u32_ent *in, uint32_t id, char *err, size_t errlen)
{
        struct nl_msg *m =
            u32_msg_for(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, in, in->parent, in->info, 0);
        struct nlattr *o = m ? nla_nest_start(m, TCA_OPTIONS) : NULL;
        if (!o || nla_put_u32(m, TCA_U32_DIVISOR, 1) < 0) {
                nlmsg_free(m);
                return -ENOMEM;
        }
        nla_nest_end(m, o);
        int rv = rt_one(m, NULL, NULL, "restoring u32 table numbers", err, errlen);
        if (rv < 0)
                return rv;
        return rt_one(u32_msg_for(RTM_DELTFILTER, 0, in, in->parent, in->info, id << 20), NULL,
                      NULL, "restoring u32 table numbers", err, errlen);
}

#define U32_MAX_HOLES 256

/* Make the u32 instances and auto-numbered tables of the qdisc `major`
 * in number order; marks what it replayed done. Failures are left to the
 * sweeps (which then create instances in dump order, as before). */
static void u32_renumber_qdisc(size_t n, unsigned char **buf, const size_t *len, const int *type,
                               const struct u32_ent *ent, bool *done, uint32_t major)
{
        char e2[256];
        uint32_t max_id = 0;
        size_t autos = 0;
        for (size_t i = 0; i < n; i++)
                if (u32_is_table(&ent[i]) && (ent[i].handle & 0x80000000u) &&
                    TC_H_MAJ(ent[i].parent) == major) {
                        autos++;
                        if ((ent[i].handle >> 20) > max_id)
                                max_id = ent[i].handle >> 20;
                }
        if (!autos || max_id + 1 - 0x800 > autos + U32_MAX_HOLES)
                return;
        /* Instances at one priority on the qdisc and on its classes list
         * each other's tables too (the kernel walks the qdisc's tables by
         * priority only): whose root a table is cannot be read from the
         * dump. Leave those trees to the sweeps (nodes first, which make
         * their instances in dump order). */
        for (size_t i = 0; i < n; i++)
                for (size_t j = i + 1; j < n && u32_is_table(&ent[i]); j++)
                        if (u32_is_table(&ent[j]) && ent[j].handle == ent[i].handle &&
                            TC_H_MAJ(ent[i].parent) == major && TC_H_MAJ(ent[j].parent) == major &&
                            !u32_same_instance(&ent[i], &ent[j]))
                                return;
        struct u32_ent dummy = {.is_u32 = false};
        const struct u32_ent *any = NULL; /* an instance made so far */
        for (uint32_t id = 0x800; id <= max_id; id++) {
                size_t hit = n;
                for (size_t i = 0; i < n && hit == n; i++)
                        if (u32_is_table(&ent[i]) && ent[i].handle >> 20 == id &&
                            TC_H_MAJ(ent[i].parent) == major)
                                hit = i;
                if (hit == n) {
                        /* A number nobody holds now. 800: goes with the
                         * qdisc's first instance: a throw-away one. */
                        if (id == 0x800) {
                                uint16_t prio = 0xfff0;
                                for (size_t i = 0; i < n; i++)
                                        if (ent[i].is_u32 && TC_H_MAJ(ent[i].parent) == major &&
                                            TC_H_MAJ(ent[i].info) >> 16 >= prio)
                                                prio =
                                                    (uint16_t)((TC_H_MAJ(ent[i].info) >> 16) - 1);
                                for (size_t i = 0; i < n && !dummy.is_u32; i++)
                                        if (ent[i].is_u32 && TC_H_MAJ(ent[i].parent) == major) {
                                                dummy = ent[i];
                                                dummy.parent = major;
                                                dummy.has_chain = false;
                                                dummy.chain = 0;
                                                dummy.info = TC_H_MAKE((uint32_t)prio << 16,
                                                                       htons(ETH_P_ALL));
                                        }
                                if (rt_one(u32_msg_for(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL,
                                                       &dummy, dummy.parent, dummy.info, 0),
                                           NULL, NULL, "restoring u32 table numbers", e2,
                                           sizeof(e2)) < 0)
                                        return;
                                any = &dummy;
                        } else if (!any || u32_burn(any, id, e2, sizeof(e2)) < 0) {
                                break;
                        }
                        continue;
                }
                /* The root is the instance's last table in the dump (the
                 * kernel lists tables newest first). */
                bool root = true;
                for (size_t j = hit + 1; j < n && root; j++)
                        if (u32_is_table(&ent[j]) && u32_same_instance(&ent[j], &ent[hit]))
                                root = false;
                int rv;
                if (root) {
                        rv = rt_one(u32_msg_for(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL,
                                                &ent[hit], ent[hit].parent, ent[hit].info, 0),
                                    NULL, NULL, "restoring a u32 instance", e2, sizeof(e2));
                } else {
                        /* Made without a handle, as it first was: the
                         * kernel gives it `id` again. */
                        ((struct tcmsg *)buf[hit])->tcm_handle = 0;
                        fixup_u32(buf[hit], len[hit]);
                        rv = send_msg(type[hit], buf[hit], len[hit], "restoring a u32 table", e2,
                                      sizeof(e2));
                        ((struct tcmsg *)buf[hit])->tcm_handle = ent[hit].handle;
                }
                if (rv < 0)
                        break;
                if (!any)
                        any = &ent[hit];
                /* The same table may be dumped under more than one parent. */
                for (size_t i = 0; i < n; i++)
                        if (u32_is_table(&ent[i]) && ent[i].handle == ent[hit].handle &&
                            TC_H_MAJ(ent[i].parent) == major)
                                done[i] = true;
        }
        if (dummy.is_u32)
                rt_one(u32_msg_for(RTM_DELTFILTER, 0, &dummy, dummy.parent, dummy.info, 0), NULL,
                       NULL, "restoring u32 table numbers", e2, sizeof(e2));
}

/* Where a snapshot entry goes in a replay sweep: qdiscs, classes,
 * filters, then u32 hash tables. Where u32_renumber_qdisc could not make
 * the instances, the first node replayed at a priority makes its
 * instance and root table (so they come back in dump order), and a node
 * that links to, or lives in, a table made later fails and is retried on
 * the next sweep. */
static int replay_rank(int type, const struct u32_ent *e)
{
        if (type == RTM_NEWQDISC)
                return 0;
        if (type == RTM_NEWTCLASS)
                return 1;
        return u32_is_table(e) ? 3 : 2;
}

/* Replay in sweeps, each in replay_rank order: a child needs its parent
 * first (a leaf qdisc its class, a filter its qdisc or class) and the dump
 * order does not promise that. Stops when a sweep makes no progress. u32
 * instances and numbered tables are made between the qdisc/class sweeps
 * and the filter sweeps (u32_renumber_qdisc). */
static int replay(json_t *snap, int ifindex, char *err, size_t errlen)
{
        size_t n = json_array_size(snap);
        _cleanup_free_ bool *done = calloc(n + 1, sizeof(bool));
        _cleanup_free_ int *rank = calloc(n + 1, sizeof(int));
        _cleanup_free_ int *type = calloc(n + 1, sizeof(int));
        _cleanup_free_ size_t *len = calloc(n + 1, sizeof(size_t));
        _cleanup_free_ unsigned char **buf = calloc(n + 1, sizeof(*buf));
        _cleanup_free_ struct u32_ent *ent = calloc(n + 1, sizeof(*ent));
        if (!done || !rank || !type || !len || !buf || !ent)
                return -ENOMEM;
        int last_err = 0;
        char last_msg[256] = "", malformed_msg[128] = "";
        bool malformed = false;
        for (size_t i = 0; i < n; i++) {
                json_t *e = json_array_get(snap, i);
                const char *msg = json_string_value(json_object_get(e, "msg"));
                type[i] = (int)json_integer_value(json_object_get(e, "type"));
                if (!msg || b64_decode(msg, &buf[i], &len[i]) < 0 ||
                    (type[i] != RTM_NEWQDISC && type[i] != RTM_NEWTCLASS &&
                     type[i] != RTM_NEWTFILTER) ||
                    len[i] < NLMSG_ALIGN(sizeof(struct tcmsg))) {
                        done[i] = malformed = true;
                        snprintf(malformed_msg, sizeof(malformed_msg),
                                 "restoring the interface's previous qdiscs: snapshot entry %zu "
                                 "is malformed",
                                 i);
                        continue;
                }
                ent[i] = u32_parse(type[i], buf[i], len[i]);
                rank[i] = replay_rank(type[i], &ent[i]);
        }
        /* An interface deleted and made again under the same name (a
         * container restarted) has a new index and a configuration of its
         * own maker's: the snapshot belonged to the old one. */
        for (size_t i = 0; i < n; i++)
                if (!done[i] && ((const struct tcmsg *)buf[i])->tcm_ifindex != ifindex) {
                        fl_log(LOG_NOTICE,
                               "interface index %d is not the snapshot's %d: the interface was "
                               "replaced since the fault began; its old qdiscs are not restored "
                               "onto the new one",
                               ifindex, ((const struct tcmsg *)buf[i])->tcm_ifindex);
                        for (size_t j = 0; j < n; j++)
                                free(buf[j]);
                        return 0;
                }
        for (int phase = 0; phase < 2; phase++) {
                if (phase == 1)
                        for (size_t i = 0; i < n; i++)
                                if (!done[i] && u32_is_table(&ent[i])) {
                                        bool first = true;
                                        for (size_t j = 0; j < i && first; j++)
                                                if (u32_is_table(&ent[j]) &&
                                                    TC_H_MAJ(ent[j].parent) ==
                                                        TC_H_MAJ(ent[i].parent))
                                                        first = false;
                                        if (first)
                                                u32_renumber_qdisc(n, buf, len, type, ent, done,
                                                                   TC_H_MAJ(ent[i].parent));
                                }
                for (bool progress = true; progress;) {
                        progress = false;
                        for (int r = 0; r < (phase ? 4 : 2); r++)
                                for (size_t i = 0; i < n; i++) {
                                        if (done[i] || rank[i] != r)
                                                continue;
                                        int rv = send_raw(type[i], buf[i], len[i], last_msg,
                                                          sizeof(last_msg));
                                        if (rv >= 0 || rv == -EEXIST)
                                                done[i] = progress = true;
                                        else
                                                last_err = rv;
                                }
                }
        }
        for (size_t i = 0; i < n; i++)
                free(buf[i]);
        for (size_t i = 0; i < n; i++)
                if (!done[i]) {
                        snprintf(err, errlen, "%s",
                                 last_msg[0] ? last_msg
                                             : "restoring the interface's previous qdiscs failed");
                        return last_err ? last_err : -EIO;
                }
        if (malformed) {
                snprintf(err, errlen, "%s", malformed_msg);
                return -EINVAL;
        }
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
static int netem_msg(int ifindex, const struct agent_netem *ne, struct nl_msg **ret, char *err,
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
        if (rv < 0) {
                nlmsg_free(m);
                return nl_fail(rv, "building the netem request", err, errlen);
        }
        *ret = m;
        return 0;
}

/* One u32 node, built by hand (libnl's u32 API cannot express an action
 * list and a selector without a class id in one message). The handle
 * names the node only: u32 hash tables are shared by every u32 instance
 * of a block, so 800: may belong to another priority; without a table id
 * the kernel uses this instance's root table, where nodes are kept in id
 * order (rules[] order). */
static struct nl_msg *u32_msg(int ifindex, uint32_t parent, uint32_t prio, uint16_t proto,
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
                return NULL;
        int rv = nla_put_string(m, TCA_KIND, "u32");
        struct nlattr *opts = rv >= 0 ? nla_nest_start(m, TCA_OPTIONS) : NULL;
        if (!opts)
                rv = -NLE_NOMEM;
        if (rv >= 0)
                rv = nla_put(m, TCA_U32_SEL,
                             (int)(sizeof(hdr) + hdr.nkeys * sizeof(struct tc_u32_key)), sel);
        if (rv >= 0 && r->classid)
                rv = nla_put_u32(m, TCA_U32_CLASSID, r->classid);
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
                return NULL;
        }
        return m;
}

/* Build the u32 nodes for rules[0..n) at prio (IPv4) / prio+1 (IPv6) under
 * parent into msgs (appending at *pos, at most max). */
static int u32_msgs(int ifindex, uint32_t parent, uint32_t prio, const struct agent_u32_rule *rules,
                    size_t n, int ifb_index, struct nl_msg **msgs, size_t *pos, size_t max,
                    char *err, size_t errlen)
{
        uint32_t node[2] = {0, 0};
        for (size_t i = 0; i < n; i++) {
                int v6 = rules[i].family == AF_INET6;
                if (++node[v6] > 0xfff || *pos >= max) {
                        snprintf(err, errlen, "too many u32 filter rules");
                        return -E2BIG;
                }
                msgs[(*pos)++] =
                    u32_msg(ifindex, parent, prio + (uint32_t)v6, v6 ? ETH_P_IPV6 : ETH_P_IP,
                            node[v6], &rules[i], ifb_index);
        }
        return 0;
}

static void free_msgs(struct nl_msg **msgs, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (msgs[i])
                        nlmsg_free(msgs[i]);
}

#define MAX_BATCH 64

int agent_qdisc_install(int ifindex, const struct agent_qdisc_spec *s, char *err, size_t errlen)
{
        /* One batch: the root, then class, netem and filters. The root is
         * what makes the interface ours: EXCL refuses our own root (one
         * qdisc fault per interface); without replace_root, the kernel
         * refuses any root but its own default one, so a root that
         * appeared after prepare looked is never replaced unsnapshotted.
         * The kernel handles the requests in order: when the root is
         * refused, everything below it fails too (no qdisc fa17: to hang
         * it on) unless a faultline root was already there, which prepare
         * refuses and the agent's single thread keeps so. */
        struct nl_msg *msgs[MAX_BATCH] = {NULL};
        size_t n = 0;
        struct rtnl_qdisc *q = rtnl_qdisc_alloc();
        if (!q)
                return -ENOMEM;
        rtnl_tc_set_ifindex(TC_CAST(q), ifindex);
        rtnl_tc_set_parent(TC_CAST(q), TC_H_ROOT);
        rtnl_tc_set_handle(TC_CAST(q), ROOT_HANDLE);
        int rv = rtnl_tc_set_kind(TC_CAST(q), "htb");
        /* defcls 0: unclassified packets bypass the classes ("direct").
         * On an IFB everything is targeted: our class is the default. */
        if (rv >= 0)
                rv = rtnl_htb_set_defcls(q, s->default_class ? TC_H_MIN(AGENT_QDISC_CLASS) : 0);
        if (rv >= 0)
                rv = rtnl_qdisc_build_add_request(
                    q, NLM_F_CREATE | NLM_F_EXCL | (s->replace_root ? NLM_F_REPLACE : 0),
                    &msgs[n++]);
        rtnl_qdisc_put(q);
        if (rv < 0) {
                free_msgs(msgs, n);
                return nl_fail(rv, "building the htb root request", err, errlen);
        }

        /* Line rate when no bandwidth is asked: 10 Gbit/s is beyond what a
         * shaped test path carries, so only netem acts. */
        uint64_t bytes = (s->rate_bps ? s->rate_bps : 10000000000ull) / 8;
        uint32_t burst = s->burst ? s->burst : (uint32_t)(bytes / 250 > 1600 ? bytes / 250 : 1600);
        struct rtnl_class *c = rtnl_class_alloc();
        if (!c) {
                free_msgs(msgs, n);
                return -ENOMEM;
        }
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
                rv = rtnl_class_build_add_request(c, NLM_F_CREATE | NLM_F_EXCL, &msgs[n++]);
        rtnl_class_put(c);
        if (rv < 0) {
                free_msgs(msgs, n);
                return nl_fail(rv, "building the htb class request", err, errlen);
        }
        if (s->has_netem && (rv = netem_msg(ifindex, &s->netem, &msgs[n++], err, errlen)) < 0) {
                free_msgs(msgs, n);
                return rv;
        }
        if (s->n_rules && (rv = u32_msgs(ifindex, ROOT_HANDLE, AGENT_EGRESS_PRIO, s->rules,
                                         s->n_rules, 0, msgs, &n, MAX_BATCH, err, errlen)) < 0) {
                free_msgs(msgs, n);
                return rv;
        }
        int errs[MAX_BATCH];
        char e2[256];
        rv = rt_xfer(msgs, n, NULL, NULL, errs, "installing the htb root, class, netem and filters",
                     e2, sizeof(e2));
        if (rv == 0)
                return 0;
        if (errs[0] == -EEXIST) {
                snprintf(err, errlen,
                         "interface's root qdisc is taken: a faultline qdisc fault's, or one "
                         "installed since the fault was prepared");
                return -EEXIST;
        }
        if (errs[0] == -ENOENT || errs[0] == -ENODEV) {
                snprintf(err, errlen, "%s", e2);
                return -ENODEV;
        }
        snprintf(err, errlen, "%s", e2);
        return rv;
}

struct verify_ctx {
        struct root_info root;
        bool class_found, netem_found;
        uint64_t rate; /* bytes/s */
        uint32_t delay_us;
        uint32_t loss;
        int ifindex;
        int filters[2]; /* u32 nodes at our IPv4 / IPv6 priority */
        int others;
        size_t root_idx, class_idx, netem_idx, filter_idx;
};

static void class_rate(struct verify_ctx *v, struct nlattr **tb)
{
        struct nlattr *ob[TCA_HTB_MAX + 1];
        if (!tb[TCA_OPTIONS] || nla_parse_nested(ob, TCA_HTB_MAX, tb[TCA_OPTIONS], NULL) < 0 ||
            !ob[TCA_HTB_PARMS] || nla_len(ob[TCA_HTB_PARMS]) < (int)sizeof(struct tc_htb_opt))
                return;
        v->class_found = true;
        v->rate = ((const struct tc_htb_opt *)nla_data(ob[TCA_HTB_PARMS]))->rate.rate;
        if (ob[TCA_HTB_RATE64] && nla_len(ob[TCA_HTB_RATE64]) >= (int)sizeof(uint64_t))
                v->rate = nla_get_u64(ob[TCA_HTB_RATE64]);
}

/* netem's TCA_OPTIONS: a struct tc_netem_qopt, then nested attributes. */
static void netem_params(struct verify_ctx *v, struct nlattr **tb)
{
        struct nlattr *o = tb[TCA_OPTIONS];
        if (!o || nla_len(o) < (int)sizeof(struct tc_netem_qopt))
                return;
        const struct tc_netem_qopt *q = nla_data(o);
        v->netem_found = true;
        v->loss = q->loss;
        /* Pre-4.15 kernels only report psched ticks (64 ns). */
        v->delay_us = (uint32_t)(((uint64_t)q->latency << 6) / 1000);
        int off = NLA_ALIGN(sizeof(*q)), rem = nla_len(o) - off;
        struct nlattr *a = (struct nlattr *)((char *)nla_data(o) + off);
        for (; nla_ok(a, rem); a = nla_next(a, &rem))
                if (nla_type(a) == TCA_NETEM_LATENCY64 && nla_len(a) >= (int)sizeof(int64_t))
                        v->delay_us = (uint32_t)(nla_get_s64(a) / 1000);
}

/* A filter of a dump: ours (a u32 node at our priorities) or another's. */
static void count_filter(const struct nlmsghdr *h, int ifindex, uint32_t prio, int ours[2],
                         int *others)
{
        if (h->nlmsg_type != RTM_NEWTFILTER || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct tcmsg)))
                return;
        const struct tcmsg *t = NLMSG_DATA(h);
        if (t->tcm_ifindex != ifindex)
                return;
        uint32_t p = TC_H_MAJ(t->tcm_info) >> 16;
        if (p == prio || p == prio + 1) {
                if (TC_U32_NODE(t->tcm_handle))
                        ours[p - prio]++;
        } else {
                (*others)++;
        }
}

static void verify_reply(const struct nlmsghdr *h, size_t idx, void *arg)
{
        struct verify_ctx *v = arg;
        struct nlattr *tb[TCA_MAX + 1];
        if (idx == v->root_idx)
                root_reply(h, idx, &v->root);
        else if (idx == v->filter_idx)
                count_filter(h, v->ifindex, AGENT_EGRESS_PRIO, v->filters, &v->others);
        else if (idx == v->class_idx && h->nlmsg_type == RTM_NEWTCLASS && tc_attrs(h, tb))
                class_rate(v, tb);
        else if (idx == v->netem_idx && h->nlmsg_type == RTM_NEWQDISC && tc_attrs(h, tb))
                netem_params(v, tb);
}

int agent_qdisc_verify(int ifindex, const struct agent_qdisc_spec *s, char *err, size_t errlen)
{
        /* One batch: root, class, netem, and the filter dump last. */
        struct nl_msg *msgs[4];
        size_t n = 0;
        struct verify_ctx v = {.ifindex = ifindex, .netem_idx = SIZE_MAX, .filter_idx = SIZE_MAX};
        v.root_idx = n;
        msgs[n++] = qdisc_get_msg(ifindex, TC_H_ROOT);
        v.class_idx = n;
        msgs[n++] = tc_msg(RTM_GETTCLASS, 0, ifindex, ROOT_HANDLE, AGENT_QDISC_CLASS, 0);
        if (s->has_netem) {
                v.netem_idx = n;
                msgs[n++] = tc_msg(RTM_GETQDISC, 0, ifindex, AGENT_QDISC_CLASS, NETEM_HANDLE, 0);
        }
        int want[2] = {0, 0};
        for (size_t i = 0; i < s->n_rules; i++)
                want[s->rules[i].family == AF_INET6]++;
        if (s->n_rules) {
                v.filter_idx = n;
                msgs[n++] = tc_msg(RTM_GETTFILTER, NLM_F_DUMP, ifindex, ROOT_HANDLE, 0, 0);
        }
        char e2[256];
        int rv =
            rt_xfer(msgs, n, verify_reply, &v, NULL, "reading the qdisc tree back", e2, sizeof(e2));
        if (rv < 0 && !builtin_or_none(rv) && rv != -ENODEV) {
                snprintf(err, errlen, "%s", e2);
                return rv;
        }
        if (!v.root.found || v.root.handle != ROOT_HANDLE || strcmp(v.root.kind, "htb") != 0) {
                snprintf(err, errlen, "root qdisc is not faultline's htb");
                return -EIO;
        }
        if (s->default_class && v.root.defcls != TC_H_MIN(AGENT_QDISC_CLASS)) {
                snprintf(err, errlen, "htb default class is not fa17:1");
                return -EIO;
        }
        if (!v.class_found) {
                snprintf(err, errlen, "faultline's htb class is missing");
                return -EIO;
        }
        if (s->rate_bps && v.rate != s->rate_bps / 8) {
                snprintf(err, errlen, "class rate reads back %llu B/s, asked %llu B/s",
                         (unsigned long long)v.rate, (unsigned long long)(s->rate_bps / 8));
                return -EIO;
        }
        if (s->has_netem) {
                if (!v.netem_found) {
                        snprintf(err, errlen, "netem qdisc missing");
                        return -EIO;
                }
                /* Read-back goes through the kernel's time conversion:
                 * allow one microsecond of rounding. */
                uint32_t d = v.delay_us, want_d = s->netem.delay_us;
                bool ok = !want_d || (d + 1 >= want_d && d <= want_d + 1);
                if (s->netem.loss_bp && v.loss == 0)
                        ok = false;
                if (!ok) {
                        snprintf(err, errlen, "netem parameters did not read back as set");
                        return -EIO;
                }
        }
        if (v.filters[0] != want[0] || v.filters[1] != want[1]) {
                snprintf(err, errlen,
                         "htb u32 filters: %d IPv4 / %d IPv6 read back, %d / %d installed",
                         v.filters[0], v.filters[1], want[0], want[1]);
                return -EIO;
        }
        return 0;
}

int agent_qdisc_remove(int ifindex, json_t *snapshot, char *err, size_t errlen)
{
        /* A delete naming our handle at the root: the kernel removes the
         * root only if it is ours (EINVAL otherwise), in one request,
         * with no window between looking and deleting. */
        char e2[256];
        int rv = rt_one(tc_msg(RTM_DELQDISC, 0, ifindex, TC_H_ROOT, ROOT_HANDLE, 0), NULL, NULL,
                        "deleting faultline's root qdisc", e2, sizeof(e2));
        bool have_snap = snapshot && json_array_size(snapshot) > 0;
        if (rv == -ENODEV)
                return 0; /* the interface, and its qdiscs, are gone */
        if (rv < 0 && !builtin_or_none(rv)) {
                snprintf(err, errlen, "%s", e2);
                return rv;
        }
        if (rv < 0 && have_snap) {
                /* Not ours (any more). Someone else's root in place: ours
                 * is long gone and the snapshot must not fight it. The
                 * kernel's default: an earlier revert stopped between
                 * the delete and the replay; finish it. */
                char kind[32];
                uint32_t handle = 0;
                bool is_default = false;
                if ((rv = agent_qdisc_root(ifindex, kind, sizeof(kind), &handle, &is_default, err,
                                           errlen)) < 0)
                        return rv == -ENODEV ? 0 : rv;
                if (!is_default)
                        return 0;
        }
        return have_snap ? replay(snapshot, ifindex, err, errlen) : 0;
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

int agent_ifb_create(const char *name, char *err, size_t errlen)
{
        struct rtnl_link *l = rtnl_link_alloc();
        struct nl_msg *m = NULL;
        if (!l)
                return -ENOMEM;
        rtnl_link_set_name(l, name);
        int rv = rtnl_link_set_type(l, "ifb");
        /* ifb's own default is 32 packets: too short a queue for a shaped
         * TCP flow; 1000 is what an ethernet device gets. */
        rtnl_link_set_txqlen(l, 1000);
        rtnl_link_set_flags(l, IFF_UP);
        if (rv >= 0)
                rv = rtnl_link_build_add_request(l, NLM_F_CREATE | NLM_F_EXCL, &m);
        rtnl_link_put(l);
        if (rv < 0)
                return nl_fail(rv, "building the ifb request", err, errlen);
        char what[64];
        snprintf(what, sizeof(what), "creating ifb device %s", name);
        return rt_one(m, NULL, NULL, what, err, errlen);
}

struct link_info {
        bool found, up, is_ifb;
        int ifindex;
};

static void link_reply(const struct nlmsghdr *h, size_t idx, void *arg)
{
        struct link_info *li = arg;
        (void)idx;
        if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof(struct ifinfomsg)))
                return;
        const struct ifinfomsg *ifi = NLMSG_DATA(h);
        struct nlattr *tb[IFLA_MAX + 1], *li_tb[IFLA_INFO_MAX + 1];
        li->found = true;
        li->ifindex = ifi->ifi_index;
        li->up = ifi->ifi_flags & IFF_UP;
        if (nlmsg_parse((struct nlmsghdr *)h, sizeof(*ifi), tb, IFLA_MAX, NULL) >= 0 &&
            tb[IFLA_LINKINFO] &&
            nla_parse_nested(li_tb, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL) >= 0 &&
            li_tb[IFLA_INFO_KIND])
                li->is_ifb = strcmp(nla_get_string(li_tb[IFLA_INFO_KIND]), "ifb") == 0;
}

/* The link called name; -ENODEV if there is none, -EEXIST if it is not an ifb. */
static int ifb_get(const char *name, struct link_info *li, char *err, size_t errlen)
{
        struct nl_msg *m = NULL;
        int rv = rtnl_link_build_get_request(0, name, &m);
        if (rv < 0)
                return nl_fail(rv, "building the link request", err, errlen);
        *li = (struct link_info){.found = false};
        rv = rt_one(m, link_reply, li, "link lookup", err, errlen);
        if (gone(rv) || (rv == 0 && !li->found))
                return -ENODEV;
        if (rv < 0)
                return rv;
        if (!li->is_ifb) {
                snprintf(err, errlen, "%s exists but is not an ifb device", name);
                return -EEXIST;
        }
        return 0;
}

int agent_ifb_delete(const char *name, char *err, size_t errlen)
{
        struct link_info li;
        int rv = ifb_get(name, &li, err, errlen);
        if (rv == -ENODEV)
                return 0;
        if (rv < 0)
                return rv;
        struct nl_msg *m = nlmsg_alloc_simple(RTM_DELLINK, 0);
        struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC, .ifi_index = li.ifindex};
        if (m && nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0) {
                nlmsg_free(m);
                m = NULL;
        }
        rv = rt_one(m, NULL, NULL, "deleting the ifb device", err, errlen);
        return gone(rv) ? 0 : rv;
}

int agent_ifb_check(const char *name, char *err, size_t errlen)
{
        struct link_info li;
        int rv = ifb_get(name, &li, err, errlen);
        if (rv < 0) {
                if (rv == -ENODEV)
                        snprintf(err, errlen, "ifb device %s missing", name);
                return rv;
        }
        if (!li.up) {
                snprintf(err, errlen, "ifb device %s is down", name);
                return -EIO;
        }
        return 0;
}

struct ingress_ctx {
        struct root_info q; /* the qdisc on the ingress hook */
        int ifindex;
        int ours[2]; /* u32 nodes at our IPv4 / IPv6 priority */
        int others;  /* any other filter message */
};

static void ingress_reply(const struct nlmsghdr *h, size_t idx, void *arg)
{
        struct ingress_ctx *c = arg;
        if (idx == 0)
                root_reply(h, idx, &c->q);
        else
                count_filter(h, c->ifindex, AGENT_INGRESS_PRIO, c->ours, &c->others);
}

static void ingress_filter_reply(const struct nlmsghdr *h, size_t idx, void *arg)
{
        struct ingress_ctx *c = arg;
        (void)idx;
        count_filter(h, c->ifindex, AGENT_INGRESS_PRIO, c->ours, &c->others);
}

/* The ingress hook's qdisc and filters: one batch, the qdisc GET and a
 * dump in the "ingress" qdisc's form; a clsact qdisc (rare) needs its own
 * form, so a second dump. */
static int ingress_state(int ifindex, char *kind, size_t kind_size, int ret_ours[2],
                         int *ret_others, char *err, size_t errlen)
{
        struct ingress_ctx c = {.ifindex = ifindex};
        struct nl_msg *msgs[2] = {
            qdisc_get_msg(ifindex, TC_H_INGRESS),
            tc_msg(RTM_GETTFILTER, NLM_F_DUMP, ifindex, ingress_parent("ingress"), 0, 0)};
        int errs[2];
        char e2[256];
        int rv = rt_xfer(msgs, 2, ingress_reply, &c, errs, "ingress state", e2, sizeof(e2));
        if (errs[0] == -ENODEV) {
                snprintf(err, errlen, "%s", e2);
                return -ENODEV;
        }
        if (rv < 0 && !builtin_or_none(errs[0])) {
                snprintf(err, errlen, "%s", e2);
                return rv;
        }
        snprintf(kind, kind_size, "%s", c.q.found ? c.q.kind : "");
        if (c.q.found && errs[1] < 0 && !builtin_or_none(errs[1])) {
                snprintf(err, errlen, "%s", e2);
                return errs[1];
        }
        if (c.q.found && strcmp(c.q.kind, "clsact") == 0) {
                c.ours[0] = c.ours[1] = c.others = 0;
                struct nl_msg *m =
                    tc_msg(RTM_GETTFILTER, NLM_F_DUMP, ifindex, ingress_parent(kind), 0, 0);
                if ((rv = rt_one(m, ingress_filter_reply, &c, "ingress filter dump", err, errlen)) <
                    0)
                        return rv;
        }
        if (!c.q.found)
                c.ours[0] = c.ours[1] = c.others = 0;
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

int agent_ingress_install(int ifindex, bool create_qdisc, int ifb_index,
                          const struct agent_u32_rule *rules, size_t n, char *err, size_t errlen)
{
        char kind[32] = "ingress";
        int rv;
        if (create_qdisc) {
                /* Alone: if someone else's appeared since prepare, EEXIST
                 * and none of our filters lands on theirs. */
                struct nl_msg *m = tc_msg(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, ifindex,
                                          TC_H_INGRESS, INGRESS_HANDLE, 0);
                if (m && nla_put_string(m, TCA_KIND, "ingress") < 0) {
                        nlmsg_free(m);
                        m = NULL;
                }
                if ((rv = rt_one(m, NULL, NULL, "adding the ingress qdisc", err, errlen)) < 0)
                        return rv;
        } else if ((rv = agent_ingress_state(ifindex, kind, sizeof(kind), NULL, NULL, err,
                                             errlen)) < 0) {
                return rv;
        }
        if (!n)
                return 0;
        _cleanup_free_ struct nl_msg **msgs = calloc(n, sizeof(*msgs));
        size_t pos = 0;
        if (!msgs)
                return -ENOMEM;
        if ((rv = u32_msgs(ifindex, ingress_parent(kind), AGENT_INGRESS_PRIO, rules, n, ifb_index,
                           msgs, &pos, n, err, errlen)) < 0) {
                free_msgs(msgs, pos);
                return rv;
        }
        return rt_xfer(msgs, pos, NULL, NULL, NULL, "adding the ingress u32/mirred filters", err,
                       errlen);
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
        /* Handle 0 with a priority and protocol: the whole u32 instance at
         * that priority, i.e. exactly our filters. Either may be absent. */
        struct nl_msg *msgs[2];
        for (uint32_t v6 = 0; v6 < 2; v6++)
                msgs[v6] = tc_msg(
                    RTM_DELTFILTER, 0, ifindex, ingress_parent(kind), 0,
                    TC_H_MAKE((AGENT_INGRESS_PRIO + v6) << 16, htons(v6 ? ETH_P_IPV6 : ETH_P_IP)));
        int errs[2];
        rv =
            rt_xfer(msgs, 2, NULL, NULL, errs, "deleting faultline's ingress filters", err, errlen);
        for (int i = 0; i < 2; i++)
                if (errs[i] < 0 && !gone(errs[i]))
                        return errs[i];
        if (rv < 0 && (errs[0] == 0 && errs[1] == 0))
                return rv; /* transport failure */
        if (!delete_qdisc || strcmp(kind, "ingress") != 0 || others > 0)
                return 0;
        rv = rt_one(tc_msg(RTM_DELQDISC, 0, ifindex, TC_H_INGRESS, INGRESS_HANDLE, 0), NULL, NULL,
                    "deleting the ingress qdisc", err, errlen);
        return gone(rv) || rv == -EINVAL ? 0 : rv;
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
