/* res_apply: timed APPLY / hold / REVERT of one resource fault against an
 * agent that is already running, for the issue-5 benches
 * (bench/mem_stress.sh, bench/disk_fill_bench.sh). Also times the raw
 * fallocate()/unlink() syscalls in-process (the floor any tool pays).
 *
 *   res_apply --url tcp://127.0.0.1:P --kind KIND [--runs N] [--hold-ms H]
 *             [--duration-ms D] [--statfs DIR] [key=value ...]
 *   res_apply --raw-fallocate FILE --bytes N [--runs N]
 *
 * Per run it prints one line of key=value pairs the scripts parse:
 *   run=1 apply_us=... revert_us=... id=f-... [free_before= free_applied=
 *   free_reverted=] (bytes from statvfs f_bfree * f_frsize of --statfs)
 * and "applied <id>" on its own line (flushed) as soon as the ack is in,
 * so a script can sample the fault during --hold-ms. The ack comes after
 * the agent's verify(): for memory-stress that is "the group holds >= 98 %
 * of the bytes", for disk-fill "the ballast has its blocks".
 *
 * Build (the bench scripts do this against the build directory):
 *   cc -O2 -std=gnu11 -D_GNU_SOURCE -Icommon bench/res_apply.c \
 *      BUILD/common/libflcommon.a -lmsgpackc -lnng -lmbedtls -lmbedx509 -lmbedcrypto */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "fl_transport.h"
#include "fl_wire.h"

/* Agents cap a lease's TTL (5 s by default): hold under it by renewing
 * every second, as the coordinator's renewer does (ttl / 5). */
#define LEASE_TTL_MS 5000
#define RENEW_MS     1000

static uint64_t now_ns(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(long ms)
{
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static long long free_bytes(const char *dir)
{
        struct statvfs v;
        if (!dir || statvfs(dir, &v) < 0)
                return -1;
        return (long long)v.f_bfree * (long long)(v.f_frsize ? v.f_frsize : v.f_bsize);
}

static int raw_fallocate(const char *path, unsigned long long bytes, int runs)
{
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (!slash)
                return 2;
        *slash = '\0';
        if (!dir[0])
                strcpy(dir, "/");
        for (int i = 1; i <= runs; i++) {
                long long f0 = free_bytes(dir);
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0) {
                        perror(path);
                        return 4;
                }
                uint64_t t0 = now_ns();
                int rv = fallocate(fd, 0, 0, (off_t)bytes);
                uint64_t t1 = now_ns();
                close(fd);
                long long f1 = free_bytes(dir);
                uint64_t t2 = now_ns();
                int ru = unlink(path);
                uint64_t t3 = now_ns();
                long long f2 = free_bytes(dir);
                if (rv < 0 || ru < 0) {
                        perror("fallocate/unlink");
                        unlink(path);
                        return 4;
                }
                printf("run=%d apply_us=%.1f revert_us=%.1f free_before=%lld free_applied=%lld "
                       "free_reverted=%lld\n",
                       i, (t1 - t0) / 1e3, (t3 - t2) / 1e3, f0, f1, f2);
                fflush(stdout);
        }
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
                                             {"kind", required_argument, NULL, 'k'},
                                             {"runs", required_argument, NULL, 'n'},
                                             {"hold-ms", required_argument, NULL, 'h'},
                                             {"duration-ms", required_argument, NULL, 'd'},
                                             {"statfs", required_argument, NULL, 's'},
                                             {"raw-fallocate", required_argument, NULL, 'r'},
                                             {"bytes", required_argument, NULL, 'b'},
                                             {0}};
        const char *url = NULL, *kind = NULL, *statdir = NULL, *raw = NULL;
        int runs = 1, c;
        long hold_ms = 0;
        unsigned long long duration_ms = 60000, bytes = 0;
        while ((c = getopt_long(argc, argv, "u:k:n:h:d:s:r:b:", opts, NULL)) != -1) {
                switch (c) {
                case 'u':
                        url = optarg;
                        break;
                case 'k':
                        kind = optarg;
                        break;
                case 'n':
                        runs = atoi(optarg);
                        break;
                case 'h':
                        hold_ms = atol(optarg);
                        break;
                case 'd':
                        duration_ms = strtoull(optarg, NULL, 10);
                        break;
                case 's':
                        statdir = optarg;
                        break;
                case 'r':
                        raw = optarg;
                        break;
                case 'b':
                        bytes = strtoull(optarg, NULL, 10);
                        break;
                default:
                        return 2;
                }
        }
        if (runs < 1 || runs > 1000 || hold_ms < 0 || hold_ms > 600000) {
                fprintf(stderr, "res_apply: --runs 1..1000, --hold-ms 0..600000\n");
                return 2;
        }
        if (raw)
                return bytes ? raw_fallocate(raw, bytes, runs) : 2;
        if (!url || !kind || argc - optind > FL_MAX_PARAMS) {
                fprintf(stderr, "usage: res_apply --url URL --kind KIND [--runs N] [--hold-ms H] "
                                "[--duration-ms D] [--statfs DIR] key=value...\n");
                return 2;
        }
        size_t np = (size_t)(argc - optind);
        struct fl_param params[FL_MAX_PARAMS];
        for (size_t i = 0; i < np; i++) {
                const char *kv = argv[optind + (int)i], *eq = strchr(kv, '=');
                if (!eq) {
                        fprintf(stderr, "res_apply: %s: expected key=value\n", kv);
                        return 2;
                }
                snprintf(params[i].key, sizeof params[i].key, "%.*s", (int)(eq - kv), kv);
                snprintf(params[i].value, sizeof params[i].value, "%s", eq + 1);
        }

        struct fl_conn *conn = NULL;
        int rv = fl_conn_open(url, &conn);
        if (rv < 0) {
                fprintf(stderr, "res_apply: open %s: %s\n", url, strerror(-rv));
                return 4;
        }
        /* The agent may still be starting: HELLO until it answers (5 s). */
        uint64_t deadline = now_ns() + 5000000000ull;
        for (;;) {
                struct fl_request req = {.type = FL_MSG_HELLO};
                struct fl_reply rep;
                rv = fl_conn_call(conn, &req, &rep, 500);
                bool ok = rv == 0 && rep.status == FL_ST_OK;
                if (rv == 0)
                        fl_reply_free(&rep);
                if (ok)
                        break;
                if (now_ns() > deadline) {
                        fprintf(stderr, "res_apply: agent on %s does not answer\n", url);
                        fl_conn_close(conn);
                        return 4;
                }
                sleep_ms(20);
        }

        int status = 0;
        for (int i = 1; i <= runs && status == 0; i++) {
                struct fl_request req = {
                    .type = FL_MSG_APPLY,
                    .duration_ms = duration_ms,
                    .n_params = np,
                    .params = params,
                    .lease_ttl_ms = LEASE_TTL_MS,
                };
                snprintf(req.kind, sizeof req.kind, "%s", kind);
                snprintf(req.lease, sizeof req.lease, "bench-res-apply-%d", (int)getpid());
                snprintf(req.requester, sizeof req.requester, "bench");
                struct fl_reply rep;
                long long f0 = free_bytes(statdir);
                uint64_t t0 = now_ns();
                rv = fl_conn_call(conn, &req, &rep, 180000);
                uint64_t t1 = now_ns();
                long long f1 = free_bytes(statdir);
                if (rv < 0) {
                        fprintf(stderr, "res_apply: apply: %s\n", strerror(-rv));
                        status = 4;
                        break;
                }
                if (rep.status != FL_ST_OK || rep.n_faults != 1) {
                        fprintf(stderr, "res_apply: apply %s: %s: %s\n", kind,
                                fl_status_name(rep.status), rep.msg);
                        fl_reply_free(&rep);
                        status = 4;
                        break;
                }
                char id[FL_ID_LEN];
                snprintf(id, sizeof id, "%s", rep.faults[0].id);
                fl_reply_free(&rep);
                printf("applied %s\n", id);
                fflush(stdout);
                for (long left = hold_ms; left > 0 && status == 0; left -= RENEW_MS) {
                        sleep_ms(left < RENEW_MS ? left : RENEW_MS);
                        struct fl_request rn = {.type = FL_MSG_RENEW, .lease_ttl_ms = LEASE_TTL_MS};
                        snprintf(rn.lease, sizeof rn.lease, "%s", req.lease);
                        struct fl_reply rr;
                        rv = fl_conn_call(conn, &rn, &rr, 5000);
                        if (rv < 0 || rr.status != FL_ST_OK) {
                                fprintf(stderr, "res_apply: renew %s: %s\n", req.lease,
                                        rv < 0 ? strerror(-rv) : rr.msg);
                                status = 4;
                        }
                        if (rv == 0)
                                fl_reply_free(&rr);
                }

                struct fl_request rq = {.type = FL_MSG_REVERT};
                snprintf(rq.fault_id, sizeof rq.fault_id, "%s", id);
                uint64_t t2 = now_ns();
                rv = fl_conn_call(conn, &rq, &rep, 60000);
                uint64_t t3 = now_ns();
                long long f2 = free_bytes(statdir);
                if (rv < 0 || rep.status != FL_ST_OK) {
                        fprintf(stderr, "res_apply: revert %s: %s\n", id,
                                rv < 0 ? strerror(-rv) : rep.msg);
                        status = 4;
                }
                if (rv == 0)
                        fl_reply_free(&rep);
                printf("run=%d apply_us=%.1f revert_us=%.1f id=%s", i, (t1 - t0) / 1e3,
                       (t3 - t2) / 1e3, id);
                if (statdir)
                        printf(" free_before=%lld free_applied=%lld free_reverted=%lld", f0, f1,
                               f2);
                printf("\n");
                fflush(stdout);
        }
        fl_conn_close(conn);
        return status;
}
