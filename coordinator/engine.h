/* The probe engine: many probes in flight at once, driven by ONE thread.
 *
 * HTTP and prometheus probes go through libcurl's multi interface (one
 * multi handle, its connection cache reused across samples). TCP and
 * command probes, which have no multi-interface form, run each on a short
 * worker thread; the engine only collects their results. Either way
 * coord_engine_poll never waits longer than the timeout it is given, so a
 * slow or hanging probe cannot stall the caller's loop (the guardrail
 * checker, the benchmark).
 *
 * Threads: an engine belongs to the thread that created it; it is not
 * safe to call into one engine from two threads. Several engines may run
 * in parallel. Same global preconditions as probe.h (curl_global_init). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "probe.h"

#define COORD_ENGINE_MAX_INFLIGHT 4096

struct coord_engine;

/* A finished probe: the token given to _submit and its result. */
struct coord_engine_done {
        uint64_t token;
        int rv; /* as coord_probe_run's return */
        struct coord_probe_result res;
};

/* 0 or -ENOMEM. */
int coord_engine_new(struct coord_engine **ret);
/* Cancels everything in flight (waits for worker threads, which are
 * bounded by their probe's timeout). Accepts NULL. */
void coord_engine_free(struct coord_engine *e);

/* Start spec (borrowed: it must outlive the probe) with an optional
 * marker. Returns 0, or -EAGAIN past COORD_ENGINE_MAX_INFLIGHT, -ENOMEM,
 * -EINVAL (bad spec; nothing started). */
int coord_engine_submit(struct coord_engine *e, const struct coord_probe *spec, const char *marker,
                        uint64_t token);

/* Drive transfers for up to timeout_ms (0: just what is ready) and move
 * up to max finished probes into out. Returns how many, or -errno. */
int coord_engine_poll(struct coord_engine *e, int timeout_ms, struct coord_engine_done *out,
                      size_t max);

/* Probes submitted and not yet returned by _poll. */
size_t coord_engine_inflight(const struct coord_engine *e);

/* Make a coord_engine_poll sleeping in another thread return now. The
 * only call that is safe from another thread. */
void coord_engine_wakeup(struct coord_engine *e);
