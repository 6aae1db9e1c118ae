/* Sliding-window statistics over a probe's samples, and the guardrail
 * rules judged on them (success ratio, latency percentiles, multi-window
 * SLO burn rate, consecutive failures). Pure functions: no I/O, no
 * threads, no clock reads — the caller passes `now`. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "experiment.h"

struct coord_sample {
        uint64_t t_ms; /* when the sample started (any monotonic ms clock) */
        bool ok;
        uint64_t latency_us;
        double value;
};

/* Samples in time order. Owns its array. */
struct coord_window {
        struct coord_sample *v;
        size_t start, n, cap; /* live samples are v[start .. n) */
        uint32_t consecutive_failures;
};

/* Append (t_ms must not go backwards). 0 or -ENOMEM. */
int coord_window_add(struct coord_window *w, const struct coord_sample *s);
/* Drop samples older than now - keep_ms. */
void coord_window_prune(struct coord_window *w, uint64_t now_ms, uint64_t keep_ms);
void coord_window_free(struct coord_window *w);

struct coord_wstats {
        size_t n, ok;
        double success_ratio;            /* 1.0 when n == 0 */
        uint64_t p50_us, p95_us, p99_us; /* nearest rank; 0 when n == 0 */
};

/* Statistics of the samples with t_ms in (now - span_ms, now]. */
void coord_window_stats(const struct coord_window *w, uint64_t now_ms, uint64_t span_ms,
                        struct coord_wstats *ret);

/* Burn rate of the samples in the span: error ratio / (1 - objective). */
double coord_burn_rate(const struct coord_window *w, uint64_t now_ms, uint64_t span_ms,
                       double objective);

/* Judge a guardrail at now: true (breached) with a one-line reason in why,
 * or false. */
bool coord_guard_breached(const struct coord_guardrail *g, const struct coord_window *w,
                          uint64_t now_ms, char *why, size_t whylen);
