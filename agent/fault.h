/* Fault registry contract. One file per fault under agent/faults/, each
 * ending in one `const struct fault_ops`; agent/registry.c names them all.
 *
 * Lifecycle of an APPLY (driven by agent/server.c, never by the fault):
 *   1. validate(): parse f->params into f->priv; pure, no side effects,
 *      no environment checks beyond what's needed to reject bad input.
 *   2. prepare(): resolve targets (pids, paths) and record everything revert
 *      will need into f->undo (a jansson object) and a human f->target.
 *      Refusals (protected pids, nothing matched) happen here. No change
 *      to the system yet.
 *   3. the agent writes f (kind, params, lease, deadline, undo) to the
 *      journal, fsync'd — only then:
 *   4. apply(): change the system. May add detail to f->undo (the journal
 *      is rewritten, without fsync): everything revert() needs must already
 *      be recorded by prepare(), because only that version is durable.
 *   5. verify(): read the effect back; non-zero means "did nothing" and the
 *      agent reverts and reports FL_ST_VERIFY.
 *   6. revert(): at TTL, lease loss, REVERT, ABORT, SIGTERM, or recovery
 *      after a crash. MUST work from f->params and f->undo alone (after a
 *      crash f->priv comes from validate() on the journaled params, and
 *      nothing prepare() or apply() kept in memory survives). Idempotent:
 *      a second revert, or a revert of a partly applied fault, is fine.
 *
 * All hooks return 0 or -errno and write a one-line reason into err on
 * failure. -EINVAL means bad parameters, -EPERM a refusal (protected
 * target), -ENOENT "nothing matched", other values a system failure. */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fl_wire.h"

struct agent_fault {
        char id[FL_ID_LEN];
        const struct fault_ops *ops;
        char lease[FL_ID_LEN];
        char requester[FL_NAME_LEN];
        uint64_t duration_ms;
        uint64_t started_wall_ms;
        uint64_t expires_wall_ms;
        uint64_t deadline_mono_ms;
        size_t n_params;
        struct fl_param *params;   /* owned */
        char target[FL_NAME_LEN];  /* filled by prepare() */
        char backend[FL_KIND_LEN]; /* filled by prepare()/apply() */
        void *priv;                /* owned by ops; released by ops->destroy */
        json_t *undo;              /* owned; a JSON object, never NULL after prepare */
        /* When ops->tick is next due (monotonic ms); 0 = never. Set by
         * apply() and by agent_tick from tick()'s answer. */
        uint64_t next_tick_mono_ms;
};

struct fault_ops {
        const char *kind;
        const char *help;        /* one line */
        const char *const *keys; /* accepted param keys, NULL-terminated */
        /* Returns NULL when usable on this host, else a reason the
         * coordinator shows. A NULL hook means "always supported". */
        const char *(*supported)(void);
        int (*validate)(struct agent_fault *f, char *err, size_t errlen);
        int (*prepare)(struct agent_fault *f, char *err, size_t errlen);
        int (*apply)(struct agent_fault *f, char *err, size_t errlen);
        int (*verify)(struct agent_fault *f, char *err, size_t errlen);
        int (*revert)(struct agent_fault *f, char *err, size_t errlen);
        void (*destroy)(struct agent_fault *f); /* free f->priv; may be NULL */
        /* Optional periodic work while the fault is active (process-kill
         * interval=). agent_tick calls it once now >= f->next_tick_mono_ms
         * (when that is non-zero) and before the deadline; it sets
         * *ret_next_ms to the next due time (monotonic ms), 0 for no more.
         * A failure is logged and the fault stays active until its end.
         * Must not block for long: the agent is single-threaded. Never
         * called after a crash (recovery only reverts). */
        int (*tick)(struct agent_fault *f, uint64_t now_mono_ms, uint64_t *ret_next_ms, char *err,
                    size_t errlen);
};

/* Every fault kind, once. Each agent/faults/<x>.c defines the matching
 * agent_fault_<x>; declaring them here lets the compiler check the
 * definitions. registry.c builds the table from this list. */
#define AGENT_FAULTS(X)                                                                            \
        X(process_kill)                                                                            \
        X(process_pause)                                                                           \
        X(disk_fill)                                                                               \
        X(cpu_stress)                                                                              \
        X(memory_stress)                                                                           \
        X(io_stress)                                                                               \
        X(cpu_throttle)                                                                            \
        X(memory_squeeze)                                                                          \
        X(io_throttle)                                                                             \
        X(net_delay)                                                                               \
        X(net_loss)                                                                                \
        X(net_corrupt)                                                                             \
        X(net_duplicate)                                                                           \
        X(net_reorder)                                                                             \
        X(net_bandwidth)                                                                           \
        X(net_partition)                                                                           \
        X(net_port_block)

#define AGENT_FAULT_DECLARE(n) extern const struct fault_ops agent_fault_##n;
AGENT_FAULTS(AGENT_FAULT_DECLARE)
#undef AGENT_FAULT_DECLARE

/* registry.c */
extern const struct fault_ops *const agent_fault_registry[];
extern const size_t agent_fault_registry_len;
const struct fault_ops *agent_fault_lookup(const char *kind); /* NULL if unknown */

/* Protection: processes a fault must never touch. Set by the agent at start
 * (its own pid, its parent, the policy's protected-processes names) plus
 * PID 1 always; faults call these. A process is protected when its pid or
 * its comm is (agent_proc_is_protected in proc.h checks both). */
int agent_pid_is_protected(pid_t pid);
void agent_protect_pid(pid_t pid);
int agent_name_is_protected(const char *comm); /* exact comm; 0 for NULL or "" */
void agent_protect_name(const char *comm);     /* names over 15 bytes are ignored */
