/* lease_client: hold one process-pause fault on an agent and renew its
 * lease on a fixed period, like the coordinator's renewer does, for a
 * bounded time; then revert it. Used by agent_idle.sh to measure the
 * agent's cost while a lease is held.
 *
 *   lease_client --url URL --pid PID --seconds S [--period-ms 1000] [--ttl-ms 5000]
 *
 * The fault's duration is S + 30 s, so only the revert at the end (or the
 * lease lapsing if this client dies) ends it. Prints the number of
 * renewals and their worst round trip. Exit 0 when every renewal was
 * acknowledged with the fault still held. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_common.h"

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"url", required_argument, NULL, 'u'},     {"pid", required_argument, NULL, 'p'},
            {"seconds", required_argument, NULL, 's'}, {"period-ms", required_argument, NULL, 'P'},
            {"ttl-ms", required_argument, NULL, 't'},  {0}};
        const char *url = NULL;
        long pid = 0, seconds = 60, period_ms = 1000, ttl_ms = 5000;
        int c;
        while ((c = getopt_long(argc, argv, "u:p:s:P:t:", opts, NULL)) != -1) {
                switch (c) {
                case 'u':
                        url = optarg;
                        break;
                case 'p':
                        pid = atol(optarg);
                        break;
                case 's':
                        seconds = atol(optarg);
                        break;
                case 'P':
                        period_ms = atol(optarg);
                        break;
                case 't':
                        ttl_ms = atol(optarg);
                        break;
                default:
                        return 2;
                }
        }
        if (!url || strncmp(url, "tcp://127.", 10) != 0 || pid < 2 || seconds < 1 ||
            seconds > 3600 || period_ms < 10 || ttl_ms < period_ms) {
                fprintf(stderr, "usage: lease_client --url tcp://127.x.x.x:PORT --pid PID "
                                "--seconds 1-3600 [--period-ms >=10] [--ttl-ms >=period]\n");
                return 2;
        }
        bench_init();

        struct fl_conn *conn = NULL;
        int rv = fl_conn_open(url, &conn);
        if (rv < 0 || bench_wait_agent(conn, 5000) < 0) {
                fprintf(stderr, "lease_client: agent %s not answering\n", url);
                fl_conn_close(conn);
                return 4;
        }
        const char *lease = "bench-lease-client";
        char id[FL_ID_LEN];
        rv = bench_apply_pause(conn, (pid_t)pid, lease, (uint64_t)(seconds + 30) * 1000u,
                               (uint64_t)ttl_ms, id);
        if (rv < 0) {
                fprintf(stderr, "lease_client: apply: %s\n", strerror(-rv));
                fl_conn_close(conn);
                return 4;
        }

        int status = 0;
        unsigned renewals = 0;
        uint64_t worst = 0;
        uint64_t start = bench_now_ns(), end = start + (uint64_t)seconds * 1000000000u;
        uint64_t next = start + (uint64_t)period_ms * 1000000u;
        while (!bench_stop_requested) {
                uint64_t now = bench_now_ns();
                if (now >= end)
                        break;
                if (now < next) {
                        uint64_t wait = next - now;
                        struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000u),
                                              .tv_nsec = (long)(wait % 1000000000u)};
                        nanosleep(&ts, NULL);
                        continue;
                }
                next += (uint64_t)period_ms * 1000000u;
                struct fl_request req = {.type = FL_MSG_RENEW, .lease_ttl_ms = (uint64_t)ttl_ms};
                snprintf(req.lease, sizeof(req.lease), "%s", lease);
                struct fl_reply rep;
                uint64_t t0 = bench_now_ns();
                rv = fl_conn_call(conn, &req, &rep, (int)ttl_ms / 3);
                uint64_t dt = bench_now_ns() - t0;
                worst = dt > worst ? dt : worst;
                if (rv < 0 || rep.status != FL_ST_OK || rep.count != 1) {
                        fprintf(stderr, "lease_client: renew %u: %s\n", renewals,
                                rv < 0 ? strerror(-rv) : rep.msg);
                        if (rv == 0)
                                fl_reply_free(&rep);
                        status = 4;
                        break;
                }
                fl_reply_free(&rep);
                renewals++;
        }
        if (bench_revert(conn, id) < 0)
                status = 4;
        printf("lease_client: %u renewals every %ld ms over %ld s, worst renew %.1f us, "
               "fault %s %s\n",
               renewals, period_ms, seconds, (double)worst / 1000.0, id,
               status ? "NOT cleanly held" : "held and reverted");
        fl_conn_close(conn);
        return bench_stop_requested ? 3 : status;
}
