/* Window statistics and guardrail rules (coordinator/window.c): success
 * ratio, nearest-rank percentiles, multi-window burn rate, consecutive
 * failures, pruning; and the v2 parser's guardrail defaults. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "experiment.h"
#include "window.h"

static void fill(struct coord_window *w, uint64_t t0, uint64_t step, size_t n, bool ok,
                 uint64_t lat_us)
{
        for (size_t i = 0; i < n; i++) {
                struct coord_sample s = {.t_ms = t0 + i * step, .ok = ok, .latency_us = lat_us};
                assert_int_equal(coord_window_add(w, &s), 0);
        }
}

static void test_stats(void **state)
{
        (void)state;
        struct coord_window w = {0};
        /* latencies 1..100 ms, one per 10 ms, 10 failures at the end */
        for (size_t i = 0; i < 100; i++) {
                struct coord_sample s = {
                    .t_ms = i * 10, .ok = i < 90, .latency_us = (i + 1) * 1000};
                assert_int_equal(coord_window_add(&w, &s), 0);
        }
        struct coord_wstats st;
        coord_window_stats(&w, 990, 100000, &st);
        assert_int_equal(st.n, 100);
        assert_int_equal(st.ok, 90);
        assert_true(st.success_ratio > 0.899 && st.success_ratio < 0.901);
        assert_int_equal(st.p50_us, 50000);
        assert_int_equal(st.p95_us, 95000);
        assert_int_equal(st.p99_us, 99000);
        assert_int_equal(w.consecutive_failures, 10);
        /* last 100 ms: samples 90..99, all failed */
        coord_window_stats(&w, 990, 100, &st);
        assert_int_equal(st.n, 10);
        assert_int_equal(st.ok, 0);
        coord_window_prune(&w, 990, 500);
        coord_window_stats(&w, 990, 100000, &st);
        assert_int_equal(st.n, 51); /* t >= 490 */
        coord_window_free(&w);
        coord_window_stats(&w, 0, 1000, &st);
        assert_int_equal(st.n, 0);
        assert_true(st.success_ratio == 1.0);
}

static void test_burn_rate(void **state)
{
        (void)state;
        struct coord_guardrail g = {
            .min_samples = 5,
            .window_ms = 60000,
            .has_slo = true,
            .slo = {.objective = 0.99, .short_ms = 1000, .long_ms = 10000, .burn_rate = 10}};
        struct coord_window w = {0};
        char why[256];
        /* 10 s of successes, then 1 s of 20 % errors: short burns 20x, long 2x */
        fill(&w, 0, 100, 100, true, 1000);
        for (size_t i = 0; i < 10; i++) {
                struct coord_sample s = {.t_ms = 10000 + i * 100, .ok = i % 5 != 0};
                coord_window_add(&w, &s);
        }
        double bs = coord_burn_rate(&w, 10900, 1000, 0.99);
        double bl = coord_burn_rate(&w, 10900, 10000, 0.99);
        assert_true(bs > 19.9 && bs < 20.1);
        assert_true(bl > 1.9 && bl < 2.1);
        assert_false(coord_guard_breached(&g, &w, 10900, why, sizeof(why)));
        /* errors go on for 10 s: both windows burn >= 10x */
        for (size_t i = 0; i < 100; i++) {
                struct coord_sample s = {.t_ms = 11000 + i * 100, .ok = i % 5 != 0};
                coord_window_add(&w, &s);
        }
        assert_true(coord_guard_breached(&g, &w, 20900, why, sizeof(why)));
        assert_non_null(strstr(why, "error budget burning"));
        coord_window_free(&w);
}

static void test_rules(void **state)
{
        (void)state;
        char why[256];
        struct coord_window w = {0};
        struct coord_guardrail g = {.failures = 3, .min_samples = 5, .window_ms = 10000};
        fill(&w, 0, 100, 10, true, 1000);
        fill(&w, 1000, 100, 2, false, 1000);
        assert_false(coord_guard_breached(&g, &w, 1200, why, sizeof(why)));
        fill(&w, 1200, 100, 1, false, 1000);
        assert_true(coord_guard_breached(&g, &w, 1300, why, sizeof(why)));
        assert_string_equal(why, "3 consecutive failed sample(s)");
        coord_window_free(&w);

        struct coord_guardrail lat = {.min_samples = 5, .window_ms = 10000, .max_p95_ms = 50};
        fill(&w, 0, 100, 4, true, 200000); /* below min-samples: not judged */
        assert_false(coord_guard_breached(&lat, &w, 400, why, sizeof(why)));
        fill(&w, 400, 100, 1, true, 200000);
        assert_true(coord_guard_breached(&lat, &w, 500, why, sizeof(why)));
        assert_non_null(strstr(why, "p95 latency 200.0 ms > 50 ms"));
        coord_window_free(&w);

        struct coord_guardrail ratio = {
            .min_samples = 5, .window_ms = 1000, .min_success_bp = 9000};
        fill(&w, 0, 100, 9, true, 1000);
        fill(&w, 900, 100, 1, false, 1000);
        assert_false(coord_guard_breached(&ratio, &w, 950, why, sizeof(why))); /* 90 % */
        fill(&w, 1000, 100, 1, false, 1000);
        assert_true(coord_guard_breached(&ratio, &w, 1050, why, sizeof(why)));
        coord_window_free(&w);
}

static void test_shuffle(void **state)
{
        (void)state;
        const char *a[8] = {"a", "b", "c", "d", "e", "f", "g", "h"};
        const char *b[8];
        memcpy(b, a, sizeof(a));
        coord_shuffle((const void **)a, 8, 42);
        coord_shuffle((const void **)b, 8, 42);
        assert_memory_equal(a, b, sizeof(a));
        const char *c[8] = {"a", "b", "c", "d", "e", "f", "g", "h"};
        coord_shuffle((const void **)c, 8, 43);
        assert_true(memcmp(a, c, sizeof(a)) != 0);
}

static void test_v2_valid(void **state)
{
        (void)state;
        static const char yaml[] =
            "version: 2\n"
            "title: v2\n"
            "inventory: {agents: [{name: a, address: 'tcp://127.0.0.1:1', tags: [w]},\n"
            "                     {name: b, address: 'tcp://127.0.0.1:2', tags: [w]}]}\n"
            "defaults: {guardrail-interval: 500ms}\n"
            "targets:\n"
            "  one: {tags: [w], count: 1, random: true, seed: 7, max-blast-radius: 1}\n"
            "steady-state:\n"
            "  probes:\n"
            "    - {name: s, tcp: {host: 127.0.0.1, port: 80, send: 'PING', timeout: 1s},\n"
            "       expect: {reply-regex: PONG}}\n"
            "guardrails:\n"
            "  - {name: g1, http: {url: 'http://x/'}, p99-latency: 1s, success-ratio: 99%}\n"
            "  - {name: g2, prometheus: {url: 'http://p:9090', query: up}, expect: {value: 1,\n"
            "     tolerance: 0.1}, interval: 2s, slo: {objective: 99.9%, windows: [5m, 1h],\n"
            "     burn-rate: 14.4}}\n"
            "drill:\n"
            "  rto: {target: 30s}\n"
            "  rpo: {target: 5s, writer: {name: w, command: {argv: [echo, '{marker}']}},\n"
            "        reader: {name: r, command: {argv: [cat, /x]}}, marker-regex: 'seq=([0-9]+)'}\n"
            "method:\n"
            "  - parallel:\n"
            "      - fault: {target: one, kind: k, duration: 5s, background: true}\n"
            "      - parallel: [{wait: 1s}, {probe: {name: p, command: {argv: [/bin/true]}}}]\n"
            "  - fault: {target: one, kind: k, duration: 1s, failover: true}\n";
        struct coord_experiment e;
        struct coord_diags d = {0};
        int r = coord_experiment_load_buffer("v2.yaml", yaml, strlen(yaml), NULL, NULL, &e, &d);
        coord_diags_print(&d, stderr);
        assert_int_equal(r, 0);
        assert_int_equal(e.version, 2);
        assert_true(e.targets[0].random && e.targets[0].has_seed);
        assert_int_equal(e.targets[0].seed, 7);
        assert_int_equal(e.targets[0].max_blast, 1);
        assert_int_equal(e.steady_state[0].kind, COORD_PROBE_TCP);
        assert_int_equal(e.steady_state[0].tcp.port, 80);
        assert_int_equal(e.n_guardrails, 2);
        assert_int_equal(e.guardrails[0].interval_ms, 500);
        assert_int_equal(e.guardrails[0].failures, 0);
        assert_int_equal(e.guardrails[0].min_success_bp, 9900);
        assert_int_equal(e.guardrails[1].probe.kind, COORD_PROBE_PROMETHEUS);
        assert_true(e.guardrails[1].probe.expect.min_value > 0.89);
        assert_true(e.guardrails[1].has_slo);
        assert_int_equal(e.guardrails[1].slo.long_ms, 3600000);
        assert_true(e.has_failover && e.rto.has_target && e.rpo.enabled);
        assert_int_equal(e.rto.target_ms, 30000);
        assert_int_equal(e.method[0].kind, COORD_STEP_PARALLEL);
        assert_int_equal(e.method[0].group.n, 2);
        assert_true(e.method[0].group.steps[0].fault.background);
        assert_int_equal(e.method[0].group.steps[1].group.n, 2);
        assert_true(e.method[1].fault.failover);
        coord_experiment_free(&e);
        coord_diags_free(&d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_stats),    cmocka_unit_test(test_burn_rate),
            cmocka_unit_test(test_rules),    cmocka_unit_test(test_shuffle),
            cmocka_unit_test(test_v2_valid),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
