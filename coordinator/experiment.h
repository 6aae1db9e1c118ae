/* Experiment files (format version 1): parse, validate, and hand the
 * sequencer plain C structs. docs/experiment-format.md is the user-facing
 * reference; this header is the contract for code.
 *
 * Parsing uses libyaml's document API so every problem is reported as
 * "FILE:LINE:COL: error: message (hint: ...)". Validation collects ALL
 * errors in one pass (struct coord_diags) instead of stopping at the first.
 *
 * Growth: a step is a tagged union (enum coord_step_kind); a future
 * COORD_STEP_PARALLEL will carry its own `struct coord_step *steps`, and
 * background faults / guardrails / RTO-RPO targets get their own arrays in
 * struct coord_experiment, so v1 consumers keep compiling.
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

#define COORD_EXPERIMENT_VERSION 1
#define COORD_MAX_STEPS          1024 /* per list (method, rollbacks) */

/* A named set of agents, resolved against the inventory at run time
 * (and checked against it at load time). */
struct coord_target {
        char *name;
        struct coord_selector sel;
        unsigned line, column;
};

enum coord_step_kind {
        COORD_STEP_FAULT = 1,
        COORD_STEP_WAIT,
        COORD_STEP_PROBE,
        /* planned: COORD_STEP_PARALLEL { struct coord_step *steps; size_t n_steps; } */
};

struct coord_fault_step {
        char *target;            /* name of a struct coord_target in the experiment */
        char *kind;              /* agent fault kind, < FL_KIND_LEN */
        struct fl_param *params; /* values as strings; lists joined with "," */
        size_t n_params;
        uint64_t duration_ms; /* > 0: the agent-side TTL */
};

struct coord_step {
        enum coord_step_kind kind;
        unsigned line, column; /* of the list item */
        union {
                struct coord_fault_step fault; /* COORD_STEP_FAULT */
                uint64_t wait_ms;              /* COORD_STEP_WAIT */
                struct coord_probe probe;      /* COORD_STEP_PROBE */
        };
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

/* "fault", "wait", "probe". */
const char *coord_step_kind_name(enum coord_step_kind k);
