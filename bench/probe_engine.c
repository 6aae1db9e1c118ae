/* probe_engine: HTTP probes per second sustained by ONE coordinator thread
 * through the probe engine (coordinator/engine.c, libcurl multi), against
 * a local HTTP server, with the CPU this process used.
 *
 *   probe_engine URL [SECONDS] [IN_FLIGHT]
 *
 * Prints probes/s, success count, p50/p99 latency and CPU% (user+sys of
 * this process over wall time). Bounded: stops after SECONDS (default 5). */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "engine.h"
#include "fl_util.h"

static double cpu_s(void)
{
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
               ru.ru_stime.tv_usec / 1e6;
}

static int cmp(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
        if (argc < 2) {
                fprintf(stderr, "usage: probe_engine URL [SECONDS] [IN_FLIGHT]\n");
                return 2;
        }
        int secs = argc > 2 ? atoi(argv[2]) : 5, inflight = argc > 3 ? atoi(argv[3]) : 32;
        if (secs < 1 || secs > 600 || inflight < 1 || inflight > 1024)
                return 2;
        curl_global_init(CURL_GLOBAL_DEFAULT);
        struct coord_probe p = {.name = "bench", .kind = COORD_PROBE_HTTP};
        p.http.url = argv[1];
        p.http.timeout_ms = 2000;
        p.expect.status = 200;
        struct coord_engine *e;
        if (coord_engine_new(&e) < 0)
                return 4;
        size_t cap = (size_t)secs * 200000, n = 0, ok = 0;
        uint64_t *lat = malloc(cap * sizeof(*lat));
        struct coord_engine_done done[256];
        for (int i = 0; i < inflight; i++)
                coord_engine_submit(e, &p, NULL, 0);
        double c0 = cpu_s();
        uint64_t t0 = fl_now_mono_us(), end = t0 + (uint64_t)secs * 1000000u;
        while (fl_now_mono_us() < end) {
                int got = coord_engine_poll(e, 10, done, 256);
                for (int k = 0; k < got; k++) {
                        ok += done[k].rv == 0 && done[k].res.ok;
                        if (lat && n < cap)
                                lat[n] = done[k].res.latency_us;
                        n++;
                        coord_engine_submit(e, &p, NULL, 0);
                }
        }
        double wall = (double)(fl_now_mono_us() - t0) / 1e6, cpu = cpu_s() - c0;
        size_t m = n < cap ? n : cap;
        qsort(lat, m, sizeof(*lat), cmp);
        printf(
            "probe_engine: %zu HTTP probes in %.2f s from one thread, %d in flight: %.0f probes/s, "
            "%zu ok, p50 %.2f ms, p99 %.2f ms, CPU %.0f%% of one core\n",
            n, wall, inflight, (double)n / wall, ok, m ? lat[m / 2] / 1e3 : 0,
            m ? lat[m * 99 / 100] / 1e3 : 0, 100.0 * cpu / wall);
        free(lat);
        coord_engine_free(e);
        curl_global_cleanup();
        return 0;
}
