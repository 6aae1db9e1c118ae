/* fl-nettool: traffic for the network-fault tests. Every mode is bounded
 * in packets and in time, and talks only to the address it is given (the
 * tests give addresses inside namespaces they created).
 *
 *   fl-nettool udp-sink ADDR PORT SECONDS        count datagrams; prints "received N
 *                                                reordered R" (R: datagrams whose sequence
 *                                                number is below one already seen)
 *   fl-nettool udp-send ADDR PORT COUNT PPS      send COUNT 64-byte datagrams at PPS
 *   fl-nettool tcp-sink ADDR PORT SECONDS        accept one connection, discard; prints
 *                                                "bytes N seconds S mbit R"
 *   fl-nettool tcp-send ADDR PORT SECONDS        send as fast as allowed for SECONDS
 *   fl-nettool udp-echo ADDR PORT SECONDS        echo datagrams back
 *   fl-nettool rtt ADDR PORT COUNT               COUNT request/response round trips;
 *                                                prints "rtt_ms p50 X mean Y lost L"
 *   fl-nettool tcp-connect ADDR PORT TIMEOUT_MS  exit 0 if a connection succeeds */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int addr_of(const char *a, const char *p, struct sockaddr_storage *ss, socklen_t *len)
{
        memset(ss, 0, sizeof(*ss));
        int port = atoi(p);
        if (strchr(a, ':')) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons((uint16_t)port);
                *len = sizeof(*s6);
                return inet_pton(AF_INET6, a, &s6->sin6_addr) == 1 ? AF_INET6 : -1;
        }
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *len = sizeof(*s4);
        return inet_pton(AF_INET, a, &s4->sin_addr) == 1 ? AF_INET : -1;
}

static int sock_for(const char *a, const char *p, int type, bool bind_it,
                    struct sockaddr_storage *ss, socklen_t *len)
{
        int fam = addr_of(a, p, ss, len);
        if (fam < 0) {
                fprintf(stderr, "bad address %s\n", a);
                exit(2);
        }
        int fd = socket(fam, type | SOCK_CLOEXEC, 0);
        int one = 1, big = 8 << 20;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        /* Counting tests must not lose packets to a full socket buffer. */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
        if (bind_it && bind(fd, (struct sockaddr *)ss, *len) < 0) {
                perror("bind");
                exit(1);
        }
        return fd;
}

static int wait_readable(int fd, double deadline)
{
        double left = deadline - now_s();
        if (left <= 0)
                return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        return poll(&p, 1, (int)(left * 1000) + 1);
}

int main(int argc, char **argv)
{
        if (argc < 6 && !(argc == 5)) {
                fprintf(stderr, "usage: see tests/tools/nettool.c\n");
                return 2;
        }
        const char *mode = argv[1];
        struct sockaddr_storage ss;
        socklen_t len;
        char buf[65536];
        if (strcmp(mode, "udp-sink") == 0 || strcmp(mode, "udp-echo") == 0) {
                int fd = sock_for(argv[2], argv[3], SOCK_DGRAM, true, &ss, &len);
                double deadline = now_s() + atof(argv[4]);
                long n = 0, reordered = 0;
                uint32_t max_seq = 0;
                while (wait_readable(fd, deadline) > 0) {
                        struct sockaddr_storage from;
                        socklen_t flen = sizeof(from);
                        ssize_t r =
                            recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
                        if (r < 0)
                                continue;
                        n++;
                        if (r >= 4) {
                                uint32_t seq;
                                memcpy(&seq, buf, sizeof(seq));
                                if (n > 1 && seq < max_seq)
                                        reordered++;
                                if (seq > max_seq)
                                        max_seq = seq;
                        }
                        if (mode[4] == 'e')
                                sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&from, flen);
                }
                printf("received %ld reordered %ld\n", n, reordered);
                return 0;
        }
        if (strcmp(mode, "udp-send") == 0) {
                int fd = sock_for(argv[2], argv[3], SOCK_DGRAM, false, &ss, &len);
                long count = atol(argv[4]), pps = atol(argv[5]);
                if (count <= 0 || count > 10000000 || pps <= 0 || pps > 1000000)
                        return 2;
                double start = now_s(), gap = 1.0 / (double)pps;
                memset(buf, 'x', 64);
                long sent = 0;
                for (long i = 0; i < count; i++) {
                        double due = start + (double)i * gap;
                        while (now_s() < due)
                                ;
                        uint32_t seq = (uint32_t)i;
                        memcpy(buf, &seq, sizeof(seq));
                        /* A drop in the output hook fails sendto with EPERM:
                         * that packet was "sent" as far as the test goes. */
                        if (sendto(fd, buf, 64, 0, (struct sockaddr *)&ss, len) == 64 ||
                            errno == EPERM)
                                sent++;
                }
                printf("sent %ld\n", sent);
                return 0;
        }
        if (strcmp(mode, "tcp-sink") == 0) {
                int ls = sock_for(argv[2], argv[3], SOCK_STREAM, true, &ss, &len);
                listen(ls, 4);
                double deadline = now_s() + atof(argv[4]);
                if (wait_readable(ls, deadline) <= 0) {
                        printf("bytes 0 seconds 0 mbit 0\n");
                        return 1;
                }
                int fd = accept(ls, NULL, NULL);
                double t0 = now_s(), last = t0;
                long long bytes = 0;
                while (wait_readable(fd, deadline) > 0) {
                        ssize_t r = read(fd, buf, sizeof(buf));
                        if (r <= 0)
                                break;
                        bytes += r;
                        last = now_s();
                }
                double secs = last - t0;
                printf("bytes %lld seconds %.3f mbit %.3f\n", bytes, secs,
                       secs > 0 ? (double)bytes * 8 / secs / 1e6 : 0.0);
                return 0;
        }
        if (strcmp(mode, "tcp-send") == 0) {
                int fd = sock_for(argv[2], argv[3], SOCK_STREAM, false, &ss, &len);
                if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
                        perror("connect");
                        return 1;
                }
                double end = now_s() + atof(argv[4]);
                memset(buf, 'y', sizeof(buf));
                while (now_s() < end) {
                        struct pollfd p = {.fd = fd, .events = POLLOUT};
                        if (poll(&p, 1, 100) > 0 && write(fd, buf, 16384) < 0)
                                break;
                }
                close(fd);
                return 0;
        }
        if (strcmp(mode, "rtt") == 0) {
                int fd = sock_for(argv[2], argv[3], SOCK_DGRAM, false, &ss, &len);
                connect(fd, (struct sockaddr *)&ss, len);
                long count = atol(argv[4]), lost = 0, n = 0;
                if (count <= 0 || count > 100000)
                        return 2;
                double *v = calloc((size_t)count, sizeof(double)), sum = 0;
                for (long i = 0; i < count; i++) {
                        uint32_t seq = (uint32_t)i;
                        double t0 = now_s();
                        if (send(fd, &seq, sizeof(seq), 0) < 0) {
                                lost++;
                                continue;
                        }
                        bool got = false;
                        while (wait_readable(fd, t0 + 2.0) > 0) {
                                uint32_t back;
                                if (recv(fd, &back, sizeof(back), 0) == sizeof(back) &&
                                    back == seq) {
                                        got = true;
                                        break;
                                }
                        }
                        if (!got) {
                                lost++;
                                continue;
                        }
                        v[n] = (now_s() - t0) * 1000.0;
                        sum += v[n++];
                }
                for (long i = 1; i < n; i++) /* insertion sort: n is small */
                        for (long j = i; j > 0 && v[j - 1] > v[j]; j--) {
                                double t = v[j];
                                v[j] = v[j - 1];
                                v[j - 1] = t;
                        }
                printf("rtt_ms p50 %.3f mean %.3f lost %ld\n", n ? v[n / 2] : -1.0,
                       n ? sum / (double)n : -1.0, lost);
                free(v);
                return 0;
        }
        if (strcmp(mode, "tcp-connect") == 0) {
                int fd = sock_for(argv[2], argv[3], SOCK_STREAM | SOCK_NONBLOCK, false, &ss, &len);
                if (connect(fd, (struct sockaddr *)&ss, len) == 0)
                        return 0;
                if (errno != EINPROGRESS)
                        return 1;
                struct pollfd p = {.fd = fd, .events = POLLOUT};
                if (poll(&p, 1, atoi(argv[4])) <= 0)
                        return 1;
                int e = 0;
                socklen_t el = sizeof(e);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
                return e == 0 ? 0 : 1;
        }
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
}
