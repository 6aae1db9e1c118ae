/* Window statistics and guardrail rules. See window.h. */
#include "window.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int coord_window_add(struct coord_window *w, const struct coord_sample *s)
{
        if (w->n == w->cap) {
                /* Compact first if most of the array is pruned samples. */
                if (w->start > 0 && w->start >= w->n / 2) {
                        memmove(w->v, w->v + w->start, (w->n - w->start) * sizeof(*w->v));
                        w->n -= w->start;
                        w->start = 0;
                } else {
                        size_t cap = w->cap ? w->cap * 2 : 64;
                        struct coord_sample *nv = realloc(w->v, cap * sizeof(*nv));
                        if (!nv)
                                return -ENOMEM;
                        w->v = nv;
                        w->cap = cap;
                }
        }
        w->v[w->n++] = *s;
        w->consecutive_failures = s->ok ? 0 : w->consecutive_failures + 1;
        return 0;
}

void coord_window_prune(struct coord_window *w, uint64_t now_ms, uint64_t keep_ms)
{
        while (w->start < w->n && w->v[w->start].t_ms + keep_ms < now_ms)
                w->start++;
}

void coord_window_free(struct coord_window *w)
{
        free(w->v);
        memset(w, 0, sizeof(*w));
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[n]. */
static uint64_t rank(const uint64_t *v, size_t n, unsigned pct)
{
        size_t k = (n * pct + 99) / 100;
        return v[k ? k - 1 : 0];
}

static size_t first_in_span(const struct coord_window *w, uint64_t now_ms, uint64_t span_ms)
{
        size_t i = w->start;
        while (i < w->n && w->v[i].t_ms + span_ms <= now_ms)
                i++;
        return i;
}

void coord_window_stats(const struct coord_window *w, uint64_t now_ms, uint64_t span_ms,
                        struct coord_wstats *ret)
{
        memset(ret, 0, sizeof(*ret));
        ret->success_ratio = 1.0;
        size_t i0 = first_in_span(w, now_ms, span_ms);
        size_t n = w->n - i0;
        if (n == 0)
                return;
        uint64_t *lat = malloc(n * sizeof(*lat));
        for (size_t i = 0; i < n; i++) {
                ret->ok += w->v[i0 + i].ok;
                if (lat)
                        lat[i] = w->v[i0 + i].latency_us;
        }
        ret->n = n;
        ret->success_ratio = (double)ret->ok / (double)n;
        if (lat) {
                qsort(lat, n, sizeof(*lat), cmp_u64);
                ret->p50_us = rank(lat, n, 50);
                ret->p95_us = rank(lat, n, 95);
                ret->p99_us = rank(lat, n, 99);
                free(lat);
        }
}

double coord_burn_rate(const struct coord_window *w, uint64_t now_ms, uint64_t span_ms,
                       double objective)
{
        size_t i0 = first_in_span(w, now_ms, span_ms), bad = 0, n = w->n - i0;
        if (n == 0 || objective >= 1.0)
                return 0;
        for (size_t i = i0; i < w->n; i++)
                bad += !w->v[i].ok;
        return ((double)bad / (double)n) / (1.0 - objective);
}

bool coord_guard_breached(const struct coord_guardrail *g, const struct coord_window *w,
                          uint64_t now_ms, char *why, size_t whylen)
{
        if (g->failures && w->consecutive_failures >= g->failures) {
                snprintf(why, whylen, "%u consecutive failed sample(s)", w->consecutive_failures);
                return true;
        }
        struct coord_wstats st;
        coord_window_stats(w, now_ms, g->window_ms, &st);
        if (st.n >= g->min_samples) {
                if (g->min_success_bp && st.success_ratio * 10000.0 < (double)g->min_success_bp) {
                        snprintf(why, whylen, "success ratio %.1f%% < %.2f%% over %zu samples",
                                 st.success_ratio * 100.0, g->min_success_bp / 100.0, st.n);
                        return true;
                }
                const struct {
                        uint64_t max_ms, got_us;
                        const char *name;
                } lat[] = {{g->max_p50_ms, st.p50_us, "p50"},
                           {g->max_p95_ms, st.p95_us, "p95"},
                           {g->max_p99_ms, st.p99_us, "p99"}};
                for (size_t i = 0; i < 3; i++)
                        if (lat[i].max_ms && lat[i].got_us > lat[i].max_ms * 1000u) {
                                snprintf(why, whylen,
                                         "%s latency %.1f ms > %llu ms over %zu samples",
                                         lat[i].name, (double)lat[i].got_us / 1000.0,
                                         (unsigned long long)lat[i].max_ms, st.n);
                                return true;
                        }
        }
        if (g->has_slo) {
                struct coord_wstats ss;
                coord_window_stats(w, now_ms, g->slo.short_ms, &ss);
                if (ss.n >= g->min_samples) {
                        double bs = coord_burn_rate(w, now_ms, g->slo.short_ms, g->slo.objective);
                        double bl = coord_burn_rate(w, now_ms, g->slo.long_ms, g->slo.objective);
                        if (bs >= g->slo.burn_rate && bl >= g->slo.burn_rate) {
                                snprintf(why, whylen,
                                         "error budget burning at %.1fx (short window) and %.1fx "
                                         "(long window), limit %.1fx",
                                         bs, bl, g->slo.burn_rate);
                                return true;
                        }
                }
        }
        return false;
}
