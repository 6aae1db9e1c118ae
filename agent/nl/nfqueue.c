/* NFQUEUE delayer worker: set up through libnl-nf (nfnetlink_queue), then
 * a hand-rolled receive/verdict loop (recvmmsg, batch verdicts) so the
 * per-packet path allocates nothing. See nfqueue.h. */
#include <fcntl.h>
/* NF_ACCEPT without linux/netfilter.h, which clashes with netinet/in.h. */
#ifndef NF_ACCEPT
#define NF_ACCEPT 1
#endif
#include <arpa/inet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <netlink/netfilter/nfnl.h>
#include <netlink/netfilter/queue.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>

#include "fl_log.h"
#include "fl_util.h"
#include "nl/nfqueue.h"
#include "nl/nft.h"

#define RING_CAP      (1u << 16) /* packets held at once; beyond that: accept now */
#define RX_BATCH      64         /* datagrams per recvmmsg() */
#define RX_SIZE       1024       /* one packet's metadata (copy mode META) */
#define SPIN_US       20         /* releases closer than this are waited for awake */
#define LONG_SLEEP_US 1000       /* sleeps longer than this wake SPIN_US early */

struct held {
        uint32_t id;
        uint64_t due_us;
};

struct delayer {
        int fd;
        uint16_t queue;
        uint32_t delay_us, jitter_us;
        uint32_t busy_poll_us; /* read without sleeping this long after an arrival */
        uint64_t last_rx_us;   /* when drain() last read a packet */
        struct held *ring;     /* FIFO by arrival, i.e. by packet id */
        size_t head, count;
        uint64_t rng;
};

static uint64_t xorshift(uint64_t *s)
{
        uint64_t x = *s;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return *s = x;
}

/* One verdict message, built by hand: the hot path allocates nothing.
 * NFQNL_MSG_VERDICT_BATCH accepts every queued packet whose id is <= id. */
static void send_verdict(const struct delayer *d, uint16_t type, uint32_t id)
{
        struct {
                struct nlmsghdr nh;
                struct nfgenmsg g;
                struct nlattr a;
                struct nfqnl_msg_verdict_hdr v;
        } m;
        memset(&m, 0, sizeof(m));
        m.nh.nlmsg_len = sizeof(m);
        m.nh.nlmsg_type = (uint16_t)((NFNL_SUBSYS_QUEUE << 8) | type);
        m.nh.nlmsg_flags = NLM_F_REQUEST;
        m.g.nfgen_family = AF_UNSPEC;
        m.g.version = NFNETLINK_V0;
        m.g.res_id = htons(d->queue);
        m.a.nla_len = sizeof(m.a) + sizeof(m.v);
        m.a.nla_type = NFQA_VERDICT_HDR;
        m.v.verdict = htonl(NF_ACCEPT);
        m.v.id = htonl(id);
        /* A full socket buffer cannot happen on send to the kernel; a lost
         * verdict would leave the packet queued until the worker exits,
         * when the kernel accepts it (bypass semantics on unbind). */
        if (send(d->fd, &m, sizeof(m), 0) < 0)
                fl_log(LOG_DEBUG, "nfqueue verdict: %s", strerror(errno));
}

/* Packet id of an NFQNL_MSG_PACKET message of which len bytes were read
 * (a truncated one is parsed as far as it goes), or -1. */
static int64_t packet_id(const struct nlmsghdr *nh, size_t len)
{
        if (len < NLMSG_HDRLEN + sizeof(struct nfgenmsg) ||
            nh->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET))
                return -1;
        size_t end = nh->nlmsg_len < len ? nh->nlmsg_len : len;
        size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
        while (off + sizeof(struct nlattr) <= end) {
                const struct nlattr *a = (const void *)((const char *)nh + off);
                if (a->nla_len < sizeof(*a) || off + a->nla_len > end)
                        return -1;
                if ((a->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR &&
                    a->nla_len >= sizeof(*a) + sizeof(struct nfqnl_msg_packet_hdr)) {
                        struct nfqnl_msg_packet_hdr ph;
                        memcpy(&ph, (const char *)a + sizeof(*a), sizeof(ph));
                        return ntohl(ph.packet_id);
                }
                off += NLA_ALIGN(a->nla_len);
        }
        return -1;
}

static void on_packet(struct delayer *d, uint32_t id, uint64_t now)
{
        if (d->count == RING_CAP) {
                /* Never hold more than we can track: let it through. */
                send_verdict(d, NFQNL_MSG_VERDICT, id);
                return;
        }
        int64_t delay = d->delay_us;
        if (d->jitter_us)
                delay += (int64_t)(xorshift(&d->rng) % (2u * d->jitter_us + 1)) - d->jitter_us;
        struct held *h = &d->ring[(d->head + d->count++) % RING_CAP];
        h->id = id;
        h->due_us = now + (uint64_t)(delay > 0 ? delay : 0);
}

/* Release every packet whose time has come, with ONE batch verdict: the
 * due packets are always a prefix of the FIFO, so "accept all ids up to
 * the last due one" releases exactly them. With jitter, a later packet may
 * be due before an earlier one; packets leave in arrival order once due,
 * like netem without reordering. Returns microseconds until the next due
 * packet, or -1 when none is held. */
static int64_t release_due(struct delayer *d)
{
        uint64_t now = fl_now_mono_us();
        int64_t wait = -1;
        bool any = false;
        uint32_t last = 0;
        while (d->count) {
                struct held *h = &d->ring[d->head];
                if (h->due_us > now) {
                        wait = (int64_t)(h->due_us - now);
                        break;
                }
                last = h->id;
                any = true;
                d->head = (d->head + 1) % RING_CAP;
                d->count--;
        }
        if (any)
                send_verdict(d, NFQNL_MSG_VERDICT_BATCH, last);
        return wait;
}

/* Queue flags libnl cannot set: fail-open (a full queue or socket buffer
 * passes packets undelayed instead of dropping them) and GSO (no software
 * segmentation just to hand us metadata). */
static int set_queue_flags(struct nl_sock *sk, uint16_t queue)
{
        struct nl_msg *m =
            nfnlmsg_alloc_simple(NFNL_SUBSYS_QUEUE, NFQNL_MSG_CONFIG, 0, AF_UNSPEC, queue);
        if (!m)
                return -NLE_NOMEM;
        uint32_t flags = htonl(NFQA_CFG_F_FAIL_OPEN | NFQA_CFG_F_GSO);
        int rv = nla_put(m, NFQA_CFG_MASK, sizeof(flags), &flags);
        if (rv == 0)
                rv = nla_put(m, NFQA_CFG_FLAGS, sizeof(flags), &flags);
        if (rv == 0)
                rv = nl_send_sync(sk, m); /* frees m */
        else
                nlmsg_free(m);
        return rv;
}

struct rx {
        char *buf; /* RX_BATCH * RX_SIZE */
        struct mmsghdr msgs[RX_BATCH];
        struct iovec iov[RX_BATCH];
};

/* The receive vectors, set once: recvmmsg() writes only msg_len and the
 * headers' flags (no name, no control data). */
static void rx_init(struct rx *r)
{
        for (int i = 0; i < RX_BATCH; i++) {
                r->iov[i] =
                    (struct iovec){.iov_base = r->buf + (size_t)i * RX_SIZE, .iov_len = RX_SIZE};
                r->msgs[i].msg_hdr = (struct msghdr){.msg_iov = &r->iov[i], .msg_iovlen = 1};
        }
}

/* Read what is queued, RX_BATCH datagrams per syscall, bounded so due
 * packets are never starved by a flood. Never blocks. Returns how many
 * packets it read. */
static int drain(struct delayer *d, struct rx *r)
{
        int total = 0;
        for (int round = 0; round < 16; round++) {
                int n = recvmmsg(d->fd, r->msgs, RX_BATCH, MSG_DONTWAIT, NULL);
                if (n <= 0)
                        return total;
                total += n;
                uint64_t now = fl_now_mono_us();
                d->last_rx_us = now;
                for (int i = 0; i < n; i++) {
                        /* MSG_TRUNC still leaves the header, and the packet
                         * id is in the first attribute. */
                        size_t len = r->msgs[i].msg_len < RX_SIZE ? r->msgs[i].msg_len : RX_SIZE;
                        int64_t id = packet_id(r->iov[i].iov_base, len);
                        if (id >= 0)
                                on_packet(d, (uint32_t)id, now);
                }
                if (n < RX_BATCH)
                        return total;
        }
        return total;
}

static void __attribute__((noreturn))
worker(uint16_t queue, const struct agent_nfq_opts *o, int ready_fd, pid_t parent)
{
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(1); /* the agent died before we armed PDEATHSIG */
        prctl(PR_SET_NAME, "fl-nfq-delayer");
        /* The default 50 us timer slack would land on every release. */
        prctl(PR_SET_TIMERSLACK, 1UL);
        struct delayer d = {.queue = queue,
                            .delay_us = o->delay_us,
                            .jitter_us = o->jitter_us,
                            .busy_poll_us = o->busy_poll_us};
        d.ring = calloc(RING_CAP, sizeof(*d.ring));
        char *rx = malloc((size_t)RX_BATCH * RX_SIZE);
        if (getrandom(&d.rng, sizeof(d.rng), 0) != sizeof(d.rng) || !d.rng)
                d.rng = 0x9e3779b97f4a7c15ull;
        struct nl_sock *sk = nfnl_queue_socket_alloc();
        char status = 1;
        if (!d.ring || !rx || !sk || nl_connect(sk, NETLINK_NETFILTER) < 0)
                goto fail;
        d.fd = nl_socket_get_fd(sk);
        /* SO_RCVBUF is capped at net.core.rmem_max (~208 KiB); as root
         * the FORCE variant gets the 8 MiB a burst needs, so a busy queue
         * delays packets rather than dropping them. */
        int rcvbuf = 8 << 20;
        if (setsockopt(d.fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
                nl_socket_set_buffer_size(sk, rcvbuf, 1 << 20);
        nfnl_queue_pf_bind(sk, AF_INET); /* legacy kernels; modern ones ignore it */
        nfnl_queue_pf_bind(sk, AF_INET6);
        struct nfnl_queue *q = nfnl_queue_alloc();
        if (!q)
                goto fail;
        nfnl_queue_set_group(q, queue);
        nfnl_queue_set_copy_mode(q, NFNL_QUEUE_COPY_META);
        nfnl_queue_set_maxlen(q, RING_CAP);
        int rv = nfnl_queue_create(sk, q);
        nfnl_queue_put(q);
        if (rv < 0) {
                status = rv == -NLE_BUSY || rv == -NLE_EXIST ? 2 : 1;
                goto fail;
        }
        if (set_queue_flags(sk, queue) < 0)
                fl_log(LOG_WARNING, "NFQUEUE %u: kernel refused fail-open; a full queue drops",
                       queue);
        int fl = fcntl(d.fd, F_GETFL);
        fcntl(d.fd, F_SETFL, fl | O_NONBLOCK);
        status = 0;
        if (write(ready_fd, &status, 1) != 1)
                _exit(1);
        close(ready_fd);

        struct rx rx_state = {.buf = rx};
        rx_init(&rx_state);
        for (;;) {
                int64_t wait_us = release_due(&d);
                if (wait_us >= 0 && wait_us <= SPIN_US) {
                        /* A release due within SPIN_US: wait for it awake
                         * (still reading arrivals, so their timestamps stay
                         * exact). A sleep that short costs more than it
                         * saves; this is what makes delay ~0 cheap. */
                        drain(&d, &rx_state);
                        continue;
                }
                if (d.busy_poll_us && fl_now_mono_us() - d.last_rx_us < d.busy_poll_us) {
                        /* Opt-in busy polling (busy-poll=): while packets
                         * keep arriving closer together than this, read
                         * without sleeping, so an arrival costs no wake-up
                         * (the CPU this burns is bounded by the traffic:
                         * the worker sleeps busy_poll_us after the last
                         * packet). Nothing read: let whatever else wants
                         * this CPU (the sender, the receiver) run first. */
                        if (drain(&d, &rx_state) == 0)
                                sched_yield();
                        continue;
                }
                /* ppoll: microsecond timeouts. After a long sleep the CPU
                 * may be deep idle and take ~100 us to wake: wake SPIN_US
                 * early and spin the rest. Only sparse traffic pays. */
                if (wait_us > LONG_SLEEP_US)
                        wait_us -= SPIN_US;
                struct timespec ts = {.tv_sec = wait_us / 1000000,
                                      .tv_nsec = (long)(wait_us % 1000000) * 1000};
                struct pollfd p = {.fd = d.fd, .events = POLLIN};
                if (ppoll(&p, 1, wait_us < 0 ? NULL : &ts, NULL) > 0)
                        drain(&d, &rx_state);
        }
fail:
        if (write(ready_fd, &status, 1) < 0)
                _exit(1);
        _exit(1);
}

int agent_nfq_delayer_start(uint16_t queue, const struct agent_nfq_opts *o, pid_t *ret_pid,
                            char *err, size_t errlen)
{
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                int e = errno;
                close(p[0]);
                close(p[1]);
                return -e;
        }
        if (pid == 0) {
                close(p[0]);
                worker(queue, o, p[1], parent);
        }
        close(p[1]);
        char status = 1;
        struct pollfd pf = {.fd = p[0], .events = POLLIN};
        if (poll(&pf, 1, 5000) <= 0 || read(p[0], &status, 1) != 1)
                status = 1;
        close(p[0]);
        if (status != 0) {
                agent_nfq_delayer_stop(pid);
                snprintf(err, errlen,
                         status == 2 ? "NFQUEUE %u is taken by another listener"
                                     : "cannot bind NFQUEUE %u (nfnetlink_queue)",
                         queue);
                return status == 2 ? -EBUSY : -EIO;
        }
        *ret_pid = pid;
        return 0;
}

void agent_nfq_delayer_stop(pid_t pid)
{
        if (pid <= 0)
                return;
        /* Only our own child: waitpid tells, without racing a recycled pid
         * (an unreaped child's pid cannot be reused). */
        if (waitpid(pid, NULL, WNOHANG) < 0)
                return;
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

int agent_nfq_delayer_alive(pid_t pid)
{
        return pid > 0 && waitpid(pid, NULL, WNOHANG) == 0;
}

static int nfq_state; /* 0 unknown, 1 native `queue`, 2 xt NFQUEUE, 3 none */

/* In a throw-away network namespace: can a rule queue packets the given
 * way? Nothing is left behind (the namespace goes with the child). */
static bool probe(bool xt)
{
        pid_t pid = fork();
        if (pid == 0) {
                char e[160];
                if (unshare(CLONE_NEWNET) < 0)
                        _exit(2);
                /* The inherited nft context's socket lives in the host's
                 * namespace: start a fresh one in ours. */
                agent_nft_reset();
                int rv = agent_nft_run(xt ? "add table inet " AGENT_NFT_TABLE "\n"
                                            "add chain inet " AGENT_NFT_TABLE " q\n"
                                          : "add table inet faultline_probe\n"
                                            "add chain inet faultline_probe c { type filter "
                                            "hook output priority 0; }\n"
                                            "add rule inet faultline_probe c queue num 1 bypass\n",
                                       e, sizeof(e));
                if (rv == 0 && xt)
                        rv = agent_nft_add_xt_queue("q", 1, true, e, sizeof(e));
                _exit(rv == 0 ? 0 : 1);
        }
        int st = 0;
        return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

const char *agent_nfq_unavailable(void)
{
        static char why[200];
        if (nfq_state == 0) {
                const char *nft = agent_nft_unavailable();
                if (nft) {
                        snprintf(why, sizeof(why), "%s", nft);
                        nfq_state = 3;
                } else if (probe(false)) {
                        nfq_state = 1;
                } else if (probe(true)) {
                        /* What iptables-nft does: the xtables NFQUEUE
                         * target through nf_tables' compat expression. */
                        nfq_state = 2;
                } else {
                        snprintf(why, sizeof(why),
                                 "nftables has neither the `queue` expression (nft_queue) nor "
                                 "the xt NFQUEUE target through nft_compat");
                        nfq_state = 3;
                }
        }
        return nfq_state == 3 ? why : NULL;
}

bool agent_nfq_use_xt(void)
{
        return agent_nfq_unavailable() == NULL && nfq_state == 2;
}
