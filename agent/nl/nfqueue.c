/* NFQUEUE delayer worker through libnl-nf (nfnetlink_queue). See nfqueue.h. */
#include <fcntl.h>
/* NF_ACCEPT without linux/netfilter.h, which clashes with netinet/in.h. */
#ifndef NF_ACCEPT
#define NF_ACCEPT 1
#endif
#include <netlink/netfilter/nfnl.h>
#include <netlink/netfilter/queue.h>
#include <netlink/netfilter/queue_msg.h>
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

#define RING_CAP (1u << 16) /* packets held at once; beyond that: accept now */

struct held {
        uint32_t id;
        uint16_t family;
        uint64_t due_us;
};

struct delayer {
        struct nl_sock *sk;
        uint16_t queue;
        uint32_t delay_us, jitter_us;
        struct held *ring; /* FIFO by arrival; dues are nearly monotonic */
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

static void verdict(struct delayer *d, uint32_t id, uint16_t family)
{
        struct nfnl_queue_msg *m = nfnl_queue_msg_alloc();
        if (!m)
                return;
        nfnl_queue_msg_set_group(m, d->queue);
        nfnl_queue_msg_set_family(m, (uint8_t)family);
        nfnl_queue_msg_set_packetid(m, id);
        nfnl_queue_msg_set_verdict(m, NF_ACCEPT);
        nfnl_queue_msg_send_verdict(d->sk, m);
        nfnl_queue_msg_put(m);
}

static int on_packet(struct nl_msg *msg, void *arg)
{
        struct delayer *d = arg;
        struct nfnl_queue_msg *qm = NULL;
        if (nfnlmsg_queue_msg_parse(nlmsg_hdr(msg), &qm) < 0 || !qm)
                return NL_SKIP;
        uint32_t id = nfnl_queue_msg_get_packetid(qm);
        uint16_t family = nfnl_queue_msg_get_family(qm);
        nfnl_queue_msg_put(qm);
        if (d->count == RING_CAP) {
                /* Never hold more than we can track: let it through. */
                verdict(d, id, family);
                return NL_OK;
        }
        int64_t delay = d->delay_us;
        if (d->jitter_us)
                delay += (int64_t)(xorshift(&d->rng) % (2u * d->jitter_us + 1)) - d->jitter_us;
        struct held *h = &d->ring[(d->head + d->count++) % RING_CAP];
        h->id = id;
        h->family = family;
        h->due_us = fl_now_mono_us() + (uint64_t)(delay > 0 ? delay : 0);
        return NL_OK;
}

/* Release every packet whose time has come. With jitter, a later packet
 * may be due before an earlier one; packets are released in arrival order
 * once due, like netem without reordering. Returns microseconds until the
 * next due packet, or -1 when none is held. */
static int64_t release_due(struct delayer *d)
{
        uint64_t now = fl_now_mono_us();
        while (d->count) {
                struct held *h = &d->ring[d->head];
                if (h->due_us > now)
                        return (int64_t)(h->due_us - now);
                verdict(d, h->id, h->family);
                d->head = (d->head + 1) % RING_CAP;
                d->count--;
        }
        return -1;
}

static void __attribute__((noreturn))
worker(uint16_t queue, uint32_t delay_us, uint32_t jitter_us, int ready_fd, pid_t parent)
{
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(1); /* the agent died before we armed PDEATHSIG */
        prctl(PR_SET_NAME, "fl-nfq-delayer");
        struct delayer d = {.queue = queue, .delay_us = delay_us, .jitter_us = jitter_us};
        d.ring = calloc(RING_CAP, sizeof(*d.ring));
        if (getrandom(&d.rng, sizeof(d.rng), 0) != sizeof(d.rng) || !d.rng)
                d.rng = 0x9e3779b97f4a7c15ull;
        d.sk = nfnl_queue_socket_alloc();
        char status = 1;
        if (!d.ring || !d.sk || nl_connect(d.sk, NETLINK_NETFILTER) < 0)
                goto fail;
        /* Packet ids and verdicts are not request/response pairs. */
        nl_socket_disable_seq_check(d.sk);
        nl_socket_disable_auto_ack(d.sk);
        /* SO_RCVBUF is capped at net.core.rmem_max (~208 KiB); as root
         * the FORCE variant gets the 8 MiB a burst needs, so a busy queue
         * delays packets rather than dropping them. */
        int rcvbuf = 8 << 20;
        if (setsockopt(nl_socket_get_fd(d.sk), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
                       sizeof(rcvbuf)) < 0)
                nl_socket_set_buffer_size(d.sk, rcvbuf, 1 << 20);
        nfnl_queue_pf_bind(d.sk, AF_INET); /* legacy kernels; modern ones ignore it */
        nfnl_queue_pf_bind(d.sk, AF_INET6);
        struct nfnl_queue *q = nfnl_queue_alloc();
        if (!q)
                goto fail;
        nfnl_queue_set_group(q, queue);
        nfnl_queue_set_copy_mode(q, NFNL_QUEUE_COPY_META);
        nfnl_queue_set_maxlen(q, RING_CAP);
        int rv = nfnl_queue_create(d.sk, q);
        nfnl_queue_put(q);
        if (rv < 0) {
                status = rv == -NLE_BUSY || rv == -NLE_EXIST ? 2 : 1;
                goto fail;
        }
        nl_socket_modify_cb(d.sk, NL_CB_VALID, NL_CB_CUSTOM, on_packet, &d);
        nl_socket_set_nonblocking(d.sk);
        status = 0;
        if (write(ready_fd, &status, 1) != 1)
                _exit(1);
        close(ready_fd);

        int fd = nl_socket_get_fd(d.sk);
        for (;;) {
                /* ppoll: microsecond timeouts, so a lone packet is released
                 * on time instead of up to a millisecond late. */
                int64_t wait_us = release_due(&d);
                struct timespec ts = {.tv_sec = wait_us / 1000000,
                                      .tv_nsec = (long)(wait_us % 1000000) * 1000};
                struct pollfd p = {.fd = fd, .events = POLLIN};
                int n = ppoll(&p, 1, wait_us < 0 ? NULL : &ts, NULL);
                /* Drain what is queued (libnl reads one datagram per call),
                 * bounded so due packets are never starved by a flood. */
                for (int i = 0; n > 0 && i < 256; i++)
                        if (nl_recvmsgs_default(d.sk) < 0)
                                break;
        }
fail:
        if (write(ready_fd, &status, 1) < 0)
                _exit(1);
        _exit(1);
}

int agent_nfq_delayer_start(uint16_t queue, uint32_t delay_us, uint32_t jitter_us, pid_t *ret_pid,
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
                worker(queue, delay_us, jitter_us, p[1], parent);
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

const char *agent_nfq_unavailable(void)
{
        static int state;
        static char why[200];
        if (state)
                return state == 1 ? NULL : why;
        const char *nft = agent_nft_unavailable();
        if (nft) {
                snprintf(why, sizeof(why), "%s", nft);
                state = 2;
                return why;
        }
        pid_t pid = fork();
        if (pid == 0) {
                char e[160];
                if (unshare(CLONE_NEWNET) < 0)
                        _exit(2);
                /* The inherited nft context's socket lives in the host's
                 * namespace: start a fresh one in ours. */
                agent_nft_reset();
                _exit(agent_nft_run("add table inet faultline_probe\n"
                                    "add chain inet faultline_probe c { type filter hook output "
                                    "priority 0; }\n"
                                    "add rule inet faultline_probe c queue num 1 bypass\n",
                                    e, sizeof(e)) == 0
                          ? 0
                          : 1);
        }
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                snprintf(why, sizeof(why),
                         "nftables has no `queue` expression here (nft_queue "
                         "module missing)");
                state = 2;
        } else {
                state = 1;
        }
        return state == 1 ? NULL : why;
}
