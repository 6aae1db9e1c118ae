/* fl-bench-owd: one-way delay and throughput of 64-byte UDP datagrams
 * between two network namespaces of the same kernel (one clock, so the
 * one-way delay needs no clock sync). Used by the NFQUEUE-delayer bench
 * (tests/vm/cases/bench_nfq_delayer.sh, docs/BENCHMARKS.md); built into
 * <build>/tests so the VM lane's initramfs carries it.
 *
 *   fl-bench-owd owd   FROM_NS TO_NS DST PORT COUNT PPS
 *   fl-bench-owd flood FROM_NS TO_NS DST PORT COUNT
 *   fl-bench-owd timer COUNT
 *
 * FROM_NS/TO_NS are names from `ip netns add` (/run/netns/NAME). The
 * receiving socket is bound to DST:PORT in TO_NS, the sending socket is
 * made in FROM_NS; both are used from this one process (a socket stays in
 * the namespace it was made in), so every timestamp is CLOCK_MONOTONIC of
 * the same kernel.
 *
 * owd:   COUNT datagrams at a steady PPS (absolute-time pacing; a sender
 *        that falls behind sends at once to catch up, and the achieved rate
 *        is printed). Each carries its sequence number and send time; the
 *        receiver thread takes the time at recv(). Prints
 *        "owd sent N recv R lost L rate_pps X min A p50 B mean C p90 D p99 E
 *         max F" (microseconds).
 * flood: COUNT datagrams as fast as the sender can; prints
 *        "flood sent N recv R lost L send_pps X recv_pps Y" where recv_pps is
 *        (R-1) / (last arrival - first arrival).
 * timer: how long poll(NULL, 0, 1) and a 100 us clock_nanosleep really
 *        take here, COUNT times each (the delayer sleeps in poll with a
 *        millisecond timeout); prints p50/p99 in microseconds.
 *
 * Bounded: COUNT <= 2,000,000, PPS <= 1,000,000; the receiver gives up 3 s
 * after the last datagram it got once the sender is done. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_COUNT 2000000L
#define PAYLOAD   64

static uint64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* socket(AF_INET, type) inside the named network namespace. */
static int socket_in(const char *ns, int type)
{
        char path[300];
        if (strchr(ns, '/') || strlen(ns) > 200)
                return -EINVAL;
        snprintf(path, sizeof(path), "/run/netns/%s", ns);
        int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        int target = open(path, O_RDONLY | O_CLOEXEC);
        int fd = -1, err = 0;
        if (self < 0 || target < 0) {
                err = errno;
        } else if (setns(target, CLONE_NEWNET) < 0) {
                err = errno;
        } else {
                fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        err = errno;
                if (setns(self, CLONE_NEWNET) < 0) {
                        perror("setns back");
                        exit(1);
                }
        }
        if (self >= 0)
                close(self);
        if (target >= 0)
                close(target);
        return fd >= 0 ? fd : -err;
}

struct rx {
        int fd;
        long count;
        int64_t *owd_ns; /* by sequence number; -1 = not received */
        atomic_long received;
        atomic_int sender_done;
        uint64_t first_ns, last_ns;
        long dup;
};

static void *receiver(void *arg)
{
        struct rx *r = arg;
        unsigned char buf[2048];
        uint64_t idle_since = 0;
        for (;;) {
                struct pollfd p = {.fd = r->fd, .events = POLLIN};
                int n = poll(&p, 1, 100);
                if (n <= 0) {
                        if (atomic_load(&r->sender_done)) {
                                uint64_t t = now_ns();
                                if (!idle_since)
                                        idle_since = t;
                                if (t - idle_since > 3000000000ull)
                                        break;
                        }
                        continue;
                }
                for (int k = 0; k < 64; k++) {
                        ssize_t got = recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT);
                        if (got < 0)
                                break;
                        uint64_t t = now_ns();
                        idle_since = 0;
                        if (got < 12)
                                continue;
                        uint32_t seq;
                        uint64_t sent;
                        memcpy(&seq, buf, 4);
                        memcpy(&sent, buf + 4, 8);
                        if ((long)seq >= r->count)
                                continue;
                        if (r->owd_ns[seq] >= 0) {
                                r->dup++;
                                continue;
                        }
                        r->owd_ns[seq] = (int64_t)(t - sent);
                        if (!r->first_ns)
                                r->first_ns = t;
                        r->last_ns = t;
                        if (atomic_fetch_add(&r->received, 1) + 1 == r->count)
                                return NULL;
                }
        }
        return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
        return x < y ? -1 : x > y;
}

static double rank_us(const int64_t *v, long n, double q)
{
        long k = (long)(q * (double)n + 0.999999);
        if (k < 1)
                k = 1;
        if (k > n)
                k = n;
        return (double)v[k - 1] / 1000.0;
}

static int timer_mode(long count)
{
        if (count < 1 || count > 100000)
                return 2;
        int64_t *a = malloc((size_t)count * sizeof(int64_t)),
                *b = malloc((size_t)count * sizeof(int64_t));
        if (!a || !b)
                return 1;
        for (long i = 0; i < count; i++) {
                uint64_t t0 = now_ns();
                poll(NULL, 0, 1);
                uint64_t t1 = now_ns();
                struct timespec ts = {.tv_nsec = 100000};
                nanosleep(&ts, NULL);
                a[i] = (int64_t)(t1 - t0);
                b[i] = (int64_t)(now_ns() - t1);
        }
        qsort(a, (size_t)count, sizeof(*a), cmp_i64);
        qsort(b, (size_t)count, sizeof(*b), cmp_i64);
        printf("timer poll_1ms p50 %.1f p99 %.1f nanosleep_100us p50 %.1f p99 %.1f\n",
               rank_us(a, count, 0.5), rank_us(a, count, 0.99), rank_us(b, count, 0.5),
               rank_us(b, count, 0.99));
        free(a);
        free(b);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc == 3 && strcmp(argv[1], "timer") == 0)
                return timer_mode(atol(argv[2]));
        if (argc < 7 || (strcmp(argv[1], "owd") != 0 && strcmp(argv[1], "flood") != 0) ||
            (strcmp(argv[1], "owd") == 0 && argc != 8) ||
            (strcmp(argv[1], "flood") == 0 && argc != 7)) {
                fprintf(stderr, "usage: fl-bench-owd owd FROM_NS TO_NS DST PORT COUNT PPS\n"
                                "       fl-bench-owd flood FROM_NS TO_NS DST PORT COUNT\n"
                                "       fl-bench-owd timer COUNT\n");
                return 2;
        }
        int flood = strcmp(argv[1], "flood") == 0;
        const char *from = argv[2], *to = argv[3], *dst = argv[4];
        long port = atol(argv[5]), count = atol(argv[6]), pps = flood ? 0 : atol(argv[7]);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        if (port < 1 || port > 65535 || count < 1 || count > MAX_COUNT ||
            (!flood && (pps < 1 || pps > 1000000)) || inet_pton(AF_INET, dst, &sa.sin_addr) != 1) {
                fprintf(stderr, "fl-bench-owd: bad arguments\n");
                return 2;
        }
        int rfd = socket_in(to, SOCK_DGRAM), sfd = socket_in(from, SOCK_DGRAM);
        if (rfd < 0 || sfd < 0) {
                fprintf(stderr, "fl-bench-owd: socket in %s/%s: %s\n", to, from,
                        strerror(rfd < 0 ? -rfd : -sfd));
                return 1;
        }
        int big = 16 << 20;
        setsockopt(rfd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
        setsockopt(sfd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
        if (bind(rfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            connect(sfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                perror("fl-bench-owd: bind/connect");
                return 1;
        }
        struct rx r = {.fd = rfd, .count = count};
        r.owd_ns = malloc((size_t)count * sizeof(int64_t));
        if (!r.owd_ns)
                return 1;
        for (long i = 0; i < count; i++)
                r.owd_ns[i] = -1;
        pthread_t th;
        if (pthread_create(&th, NULL, receiver, &r) != 0)
                return 1;
        usleep(50000);

        unsigned char buf[PAYLOAD];
        memset(buf, 'o', sizeof(buf));
        long sent = 0, errors = 0;
        uint64_t gap = flood ? 0 : 1000000000ull / (uint64_t)pps;
        uint64_t start = now_ns();
        for (long i = 0; i < count; i++) {
                if (!flood) {
                        uint64_t due = start + (uint64_t)i * gap;
                        if (now_ns() < due) {
                                struct timespec ts = {.tv_sec = (time_t)(due / 1000000000u),
                                                      .tv_nsec = (long)(due % 1000000000u)};
                                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) ==
                                       EINTR)
                                        ;
                        }
                }
                uint32_t seq = (uint32_t)i;
                uint64_t t = now_ns();
                memcpy(buf, &seq, 4);
                memcpy(buf + 4, &t, 8);
                if (send(sfd, buf, sizeof(buf), 0) == (ssize_t)sizeof(buf))
                        sent++;
                else
                        errors++;
        }
        uint64_t send_ns = now_ns() - start;
        atomic_store(&r.sender_done, 1);
        pthread_join(th, NULL);

        long got = atomic_load(&r.received);
        double send_pps = send_ns ? (double)count * 1e9 / (double)send_ns : 0;
        if (flood) {
                double span = (double)(r.last_ns - r.first_ns);
                printf("flood sent %ld recv %ld lost %ld send_pps %.0f recv_pps %.0f send_errors "
                       "%ld dup %ld\n",
                       sent, got, sent - got, send_pps,
                       got > 1 && span > 0 ? (double)(got - 1) * 1e9 / span : 0.0, errors, r.dup);
                return 0;
        }
        int64_t *v = malloc((size_t)(got ? got : 1) * sizeof(int64_t));
        if (!v)
                return 1;
        long n = 0;
        double sum = 0;
        for (long i = 0; i < count; i++)
                if (r.owd_ns[i] >= 0) {
                        v[n++] = r.owd_ns[i];
                        sum += (double)r.owd_ns[i];
                }
        qsort(v, (size_t)n, sizeof(*v), cmp_i64);
        if (n == 0) {
                printf("owd sent %ld recv 0 lost %ld rate_pps %.0f\n", sent, sent, send_pps);
                return 1;
        }
        printf("owd sent %ld recv %ld lost %ld rate_pps %.0f min %.1f p50 %.1f mean %.1f p90 %.1f "
               "p99 %.1f max %.1f send_errors %ld dup %ld\n",
               sent, n, sent - n, send_pps, (double)v[0] / 1000.0, rank_us(v, n, 0.5),
               sum / (double)n / 1000.0, rank_us(v, n, 0.9), rank_us(v, n, 0.99),
               (double)v[n - 1] / 1000.0, errors, r.dup);
        free(v);
        free(r.owd_ns);
        return 0;
}
