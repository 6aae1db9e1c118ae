/* Experiment files (format versions 1 and 2): parse, validate, and hand
 * the sequencer plain C structs. docs/experiment-format.md is the user-facing
 * reference; this header is the contract for code.
 *
 * Parsing uses libyaml's document API so every problem is reported as
 * "FILE:LINE:COL: error: message (hint: ...)". Validation collects ALL
 * errors in one pass (struct coord_diags) instead of stopping at the first.
 *
 * Versions: version 2 adds parallel groups, background/failover faults,
 * guardrails, DR drills (RTO/RPO), tcp and prometheus probes, seeded
 * random selection and max-blast-radius. Using any of them in a version 1
 * file is an error that says so. One semantic difference: in version 1 a
 * fault step returns as soon as the fault is applied (the agent reverts
 * it at its duration); in version 2 a fault step lasts its duration and
 * the coordinator reverts it at the end, unless it is `background: true`.
 *
 * Ownership: coord_experiment_load fills a caller-provided struct that
 * owns everything reachable from it; coord_experiment_free releases it
 * (not the struct itself), accepts a zeroed struct and leaves it zeroed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fl_wire.h"
#include "inventory.h"
#include "probe.h"

#define COORD_EXPERIMENT_VERSION 2    /* newest; 1 is still read */
#define COORD_MAX_STEPS          1024 /* per list (method, rollbacks, parallel group) */
#define COORD_MAX_NESTING        4    /* parallel groups inside parallel groups */
#define COORD_GUARD_INTERVAL_MS  1000 /* default guardrail interval */
#define COORD_GUARD_WINDOW_MS    60000
#define COORD_GUARD_MIN_SAMPLES  5

/* A named set of agents, resolved against the inventory at run time
 * (and checked against it at load time). */
struct coord_target {
        char *name;
        struct coord_selector sel;
        bool random;        /* v2: shuffle the matching agents before count/percent */
        bool has_seed;      /* seed given in the file; else one is drawn at run time */
        uint64_t seed;      /* printed in the journal either way */
        uint32_t max_blast; /* v2 max-blast-radius: refuse to start above; 0 = none */
        unsigned line, column;
};

enum coord_step_kind {
        COORD_STEP_FAULT = 1,
        COORD_STEP_WAIT,
        COORD_STEP_PROBE,
        COORD_STEP_PARALLEL, /* v2 */
};

struct coord_fault_step {
        char *target;            /* name of a struct coord_target in the experiment */
        char *kind;              /* agent fault kind, < FL_KIND_LEN */
        struct fl_param *params; /* values as strings; lists joined with "," */
        size_t n_params;
        uint64_t duration_ms; /* > 0: the agent-side TTL */
        bool background;      /* v2: do not hold the step for the duration */
        bool failover;        /* v2: the DR drill's fault; RTO/RPO are measured from it */
};

struct coord_step_list {
        struct coord_step *steps;
        size_t n;
};

struct coord_step {
        enum coord_step_kind kind;
        unsigned line, column; /* of the list item */
        union {
                struct coord_fault_step fault; /* COORD_STEP_FAULT */
                uint64_t wait_ms;              /* COORD_STEP_WAIT */
                struct coord_probe probe;      /* COORD_STEP_PROBE */
                struct coord_step_list group;  /* COORD_STEP_PARALLEL */
        };
};

/* Multi-window burn-rate rule (Google SRE workbook, ch. 5): breach when
 * the error ratio over BOTH windows burns the budget (1 - objective) at
 * least burn_rate times faster than allowed. */
struct coord_slo {
        double objective; /* e.g. 0.999 */
        uint64_t short_ms, long_ms;
        double burn_rate; /* e.g. 14.4 */
};

/* A condition checked continuously from the first fault to the last
 * revert. Every rule given must hold; with no window rule and no slo,
 * `failures` consecutive failed samples (default 1) breach. */
struct coord_guardrail {
        struct coord_probe probe; /* probe.name is the guardrail's name */
        uint64_t interval_ms;     /* between sample starts */
        uint32_t failures;        /* consecutive failed samples; 0 = rule off */
        uint64_t window_ms;       /* span of the window rules */
        uint32_t min_samples;     /* window rules judged from this many samples on */
        uint32_t min_success_bp;  /* success ratio floor, basis points; 0 = off */
        uint64_t max_p50_ms, max_p95_ms, max_p99_ms; /* 0 = off */
        bool has_slo;
        struct coord_slo slo;
        unsigned line, column;
};

struct coord_rto {
        bool has_target;
        uint64_t target_ms;
        uint64_t poll_ms;    /* hypothesis re-check period, default 200ms */
        uint64_t timeout_ms; /* give up after, default max(5 x target, 1m) */
};

struct coord_rpo {
        bool enabled;
        uint64_t target_ms;
        uint64_t interval_ms;      /* writer period, default 200ms */
        struct coord_probe writer; /* "{marker}" is replaced by the sequence number */
        struct coord_probe reader; /* output holds the newest surviving marker */
        char *marker_regex;        /* ERE, 1st group = marker; NULL = first integer */
};

struct coord_experiment {
        char *path; /* file it came from, or the name given to _load_buffer */
        uint32_t version;
        char *title;
        char *description; /* NULL if absent */
        char **tags;
        size_t n_tags;

        bool has_inventory;
        char *inventory_path; /* resolved path if it was a file reference, else NULL */
        struct coord_inventory inventory;

        struct coord_target *targets;
        size_t n_targets;

        struct coord_probe *steady_state; /* steady-state.probes */
        size_t n_steady_state;

        struct coord_step *method; /* >= 1 step */
        size_t n_method;

        struct coord_step *rollbacks; /* always run; wait and probe steps */
        size_t n_rollbacks;

        struct coord_guardrail *guardrails; /* v2 */
        size_t n_guardrails;

        bool has_failover;    /* a fault step has failover: true */
        struct coord_rto rto; /* drill.rto (measured whenever has_failover) */
        struct coord_rpo rpo; /* drill.rpo */
};

/* Called for every fault step after its own fields passed: lets the caller
 * reuse the agent's parameter validators. Return 0 if fine, < 0 with a
 * one-line reason in err to report an error at the step. */
struct coord_validate_hooks {
        void *userdata;
        int (*validate_fault)(void *ud, const char *kind, const struct fl_param *params, size_t n,
                              char *err, size_t errlen);
};

/* Load and validate. hooks may be NULL. Returns 0 and a filled *ret
 * (caller coord_experiment_free's it), or a negative errno with *ret
 * zeroed and every problem appended to diags: -EINVAL (invalid file),
 * -ENOENT/-EACCES/-EFBIG (could not read the file or its inventory),
 * -ENOMEM. An inventory path is relative to the experiment file's
 * directory. */
int coord_experiment_load(const char *path, const struct coord_validate_hooks *hooks,
                          struct coord_experiment *ret, struct coord_diags *diags);

/* Same from memory (tests, fuzzers, stdin). name is used in messages;
 * basedir resolves a relative inventory path (NULL: current directory). */
int coord_experiment_load_buffer(const char *name, const char *buf, size_t len, const char *basedir,
                                 const struct coord_validate_hooks *hooks,
                                 struct coord_experiment *ret, struct coord_diags *diags);

void coord_experiment_free(struct coord_experiment *e);

/* Target by name, or NULL. */
const struct coord_target *coord_experiment_find_target(const struct coord_experiment *e,
                                                        const char *name);

/* "fault", "wait", "probe", "parallel". */
const char *coord_step_kind_name(enum coord_step_kind k);

/* Deterministic shuffle (Fisher-Yates over splitmix64(seed)) used by
 * random targets; the same seed always picks the same agents. */
void coord_shuffle(const void **v, size_t n, uint64_t seed);
