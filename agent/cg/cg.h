/* cgroup adapters: which generation runs which controller on this host,
 * the knobs the resource faults turn (one small vtable per generation,
 * v1.c and v2.c), the groups the agent creates for its own workers, and
 * the workers themselves.
 *
 * Paths: a "rel" path is a cgroup path relative to a hierarchy's root as
 * /proc/PID/cgroup shows it ("/system.slice/nginx.service"); a "dir" is an
 * absolute directory under a cgroup mount. v1 may place one process at
 * different rel paths in different hierarchies, so every lookup names the
 * controller it is for.
 *
 * Ownership: everything the agent creates lives in one directory per
 * hierarchy, <mount>/faultline/<fault-id>. Revert and crash recovery only
 * ever kill or remove directories of that shape (agent_cg_owned_dir_ok).
 *
 * All functions return 0 (or a count) on success and -errno on failure;
 * those with err/errlen write a one-line reason. Single-threaded, like the
 * rest of the agent. */
#pragma once

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_CG_PARENT    "faultline" /* the one directory the agent owns per hierarchy */
#define AGENT_CG_MAX_PROCS 4096        /* procs read from one cgroup (subtree) at most */

enum agent_cg_mode {
        AGENT_CG_MODE_NONE = 0, /* no cgroup filesystem mounted */
        AGENT_CG_MODE_V1,       /* only v1 hierarchies */
        AGENT_CG_MODE_HYBRID,   /* v1 hierarchies and a cgroup2 mount */
        AGENT_CG_MODE_V2,       /* unified: cgroup2 only */
};

enum agent_cg_ctrl {
        AGENT_CG_CPU = 0,
        AGENT_CG_CPUACCT, /* v1 cpuacct; on v2 cpu.stat, always there */
        AGENT_CG_MEMORY,
        AGENT_CG_IO,      /* v1 blkio, v2 io */
        AGENT_CG_FREEZER, /* v1 freezer; on v2 cgroup.freeze, always there */
        AGENT_CG_PIDS,
        AGENT_CG_CTRL_MAX,
};
#define AGENT_CG_BIT(c) (1u << (c))

struct agent_cg_host {
        enum agent_cg_mode mode;
        char v2[PATH_MAX];                    /* cgroup2 mount, "" if none */
        unsigned v2_ctrls;                    /* AGENT_CG_BIT()s in the v2 root's controllers */
        char v1[AGENT_CG_CTRL_MAX][PATH_MAX]; /* v1 mount per controller, "" if none */
        char v1_systemd[PATH_MAX];            /* v1 name=systemd hierarchy, "" if none */
};

/* --- detection (cg.c) ------------------------------------------------- */

/* Parse the text of /proc/self/mountinfo. v2_ctrls is left 0: the caller
 * reads <v2>/cgroup.controllers. Never fails on unrelated lines. */
int agent_cg_parse_mountinfo(const char *text, struct agent_cg_host *ret);
/* Parse a cgroup.controllers line ("cpu io memory pids") into bits. */
unsigned agent_cg_parse_controllers(const char *text);
/* Read /proc/self/mountinfo and the v2 root's cgroup.controllers. */
int agent_cg_detect(struct agent_cg_host *ret);
/* The host as detected on first use (logged once), cached. Never NULL. */
const struct agent_cg_host *agent_cg_host(void);

const char *agent_cg_mode_name(enum agent_cg_mode m); /* "v1", "v2", "hybrid", "none" */
const char *agent_cg_ctrl_name(enum agent_cg_ctrl c); /* v1 names: "cpu", "blkio", ... */
/* "cgroup hybrid: v1 cpu,cpuacct,memory,blkio,freezer,pids; v2 /sys/fs/cgroup/unified
 * (no controllers)" */
void agent_cg_describe(const struct agent_cg_host *h, char *buf, size_t size);
/* Generation serving c: 1, 2, or 0 when neither has it. A v1 mount wins
 * (a controller bound to v1 is absent from v2). */
int agent_cg_gen(const struct agent_cg_host *h, enum agent_cg_ctrl c);
/* NULL when every controller in mask is available on the detected host,
 * else a static reason for the first missing one, for supported(). */
const char *agent_cg_unsupported(unsigned mask);

/* --- paths and targets (cg.c) --------------------------------------- */

/* Absolute directory of rel in the hierarchy serving c. */
int agent_cg_dir(const struct agent_cg_host *h, enum agent_cg_ctrl c, const char *rel, char *buf,
                 size_t size);
/* Path of the cgroup a /proc/PID/cgroup text puts the process in for c. */
int agent_cg_parse_proc_cgroup(const char *text, const struct agent_cg_host *h,
                               enum agent_cg_ctrl c, char *buf, size_t size);
/* Same, for a live pid (-ESRCH when gone). */
int agent_cg_pid_rel(const struct agent_cg_host *h, pid_t pid, enum agent_cg_ctrl c, char *buf,
                     size_t size);

/* User input. unit=: a systemd unit name without '/' (".service" is
 * appended when no suffix is given, as systemctl does). cgroup=: an
 * absolute rel path without "." or ".." components. Pure. */
int agent_cg_parse_unit(const char *value, char *buf, size_t size, char *err, size_t errlen);
int agent_cg_parse_rel(const char *value, char *buf, size_t size, char *err, size_t errlen);

/* Resolve unit= or cgroup= (exactly one non-NULL) to the directory of the
 * hierarchy serving c. A unit is found by walking the cgroup tree (v2, the
 * v1 name=systemd hierarchy, then c's own) for a directory of that name;
 * when found outside c's hierarchy, the rel path comes from
 * /proc/<first pid>/cgroup. -ENOENT: no such unit or cgroup; -EPERM: the
 * unit has no cgroup of its own for c (it sits in the root). ret_rel gets
 * the rel path when non-NULL. */
int agent_cg_resolve(const struct agent_cg_host *h, const char *unit, const char *rel,
                     enum agent_cg_ctrl c, char *ret_dir, size_t dirlen, char *ret_rel,
                     size_t rellen, char *err, size_t errlen);

/* Refuse a target cgroup dir the agent must not squeeze, freeze or kill: a
 * hierarchy root, one holding the agent itself (an ancestor of its cgroup),
 * the agent's own worker groups, or any cgroup in whose subtree a
 * protected process runs (PID 1, the agent, its parent, a comm in the
 * policy's protected-processes). -EPERM with the reason. */
int agent_cg_check_target(const struct agent_cg_host *h, enum agent_cg_ctrl c, const char *dir,
                          char *err, size_t errlen);

/* The cgroup v2 directory of unit= or cgroup= (exactly one non-NULL), for
 * what needs no controller (cgroup.kill, cgroup.events) — also on a hybrid
 * host, whose v2 tree may hold the group: <v2 mount><rel>, or the first
 * directory named unit in the v2 tree. Then the checks of
 * agent_cg_check_target; without check_procs all but the per-process one
 * (for a caller that has checked every process of the group itself).
 * -EOPNOTSUPP: no v2 mount; -ENOENT: not in the v2 tree; -EPERM: refused. */
int agent_cg_v2_target(const struct agent_cg_host *h, const char *unit, const char *rel,
                       bool check_procs, char *ret_dir, size_t dirlen, char *err, size_t errlen);

/* Pids in dir/cgroup.procs, and with recursive in every descendant; sorted,
 * malloc'd into *ret (NULL when 0). -E2BIG past AGENT_CG_MAX_PROCS. */
int agent_cg_procs(const char *dir, bool recursive, pid_t **ret);

/* Small file helpers: read a knob (trailing newline stripped) / write one. */
int agent_cg_read(const char *dir, const char *file, char *buf, size_t size);
int agent_cg_write(const char *dir, const char *file, const char *text);
int agent_cg_read_u64(const char *dir, const char *file, uint64_t *ret);

/* --- knobs, one vtable per generation (v1.c, v2.c) -------------------- */

struct agent_cg_cpu_max {
        int64_t quota_us; /* -1: no limit */
        uint64_t period_us;
};

enum { AGENT_CG_RBPS = 0, AGENT_CG_WBPS, AGENT_CG_RIOPS, AGENT_CG_WIOPS, AGENT_CG_IO_MAX };
struct agent_cg_io_limit {
        uint64_t v[AGENT_CG_IO_MAX]; /* 0: no limit */
};

struct agent_cg_ops {
        int gen;
        const char *mem_soft_file; /* what memory-squeeze turns */
        int (*cpu_max_get)(const char *dir, struct agent_cg_cpu_max *ret);
        int (*cpu_max_set)(const char *dir, const struct agent_cg_cpu_max *v);
        int (*cpu_weight_max)(const char *dir); /* favour this group in contention */
        int (*cpu_usage_ns)(const char *dir, uint64_t *ret);
        int (*mem_limit_set)(const char *dir, uint64_t bytes); /* hard limit */
        int (*mem_usage)(const char *dir, uint64_t *ret);
        int (*io_get)(const char *dir, unsigned maj, unsigned min, struct agent_cg_io_limit *ret);
        int (*io_set)(const char *dir, unsigned maj, unsigned min,
                      const struct agent_cg_io_limit *v);
        int (*freeze_get)(const char *dir, bool *ret_frozen); /* fully frozen */
        int (*freeze_set)(const char *dir, bool frozen);
        /* Kill every process in dir at once; -EOPNOTSUPP when the kernel
         * has no such knob (then the caller signals pid by pid). */
        int (*kill_all)(const char *dir);
        /* Wait until dir's subtree holds no process (v2: cgroup.events
         * "populated 0"). -ETIMEDOUT after timeout_ms; -EOPNOTSUPP on v1. */
        int (*wait_empty)(const char *dir, int timeout_ms);
};

extern const struct agent_cg_ops agent_cg_v1_ops;
extern const struct agent_cg_ops agent_cg_v2_ops;
/* The ops for the generation serving c on h; NULL when c is missing. */
const struct agent_cg_ops *agent_cg_ops_for(const struct agent_cg_host *h, enum agent_cg_ctrl c);
const struct agent_cg_ops *agent_cg_ops_gen(int gen);

/* Text form of io limits for undo entries and messages. */
void agent_cg_io_format(const struct agent_cg_io_limit *l, char *buf, size_t size);

/* --- groups the agent owns (group.c) --------------------------------- */

struct agent_cg_group {
        unsigned mask; /* controllers the group has */
        size_t n;      /* distinct directories */
        char dir[AGENT_CG_CTRL_MAX][PATH_MAX];
        int gen[AGENT_CG_CTRL_MAX];
        int of[AGENT_CG_CTRL_MAX]; /* controller -> index into dir[], -1 if absent */
};

/* Plan <mount>/faultline/<id> in every hierarchy serving a controller of
 * mask (v2: one directory). No side effects. Controllers missing on the
 * host are skipped unless in required (then -EOPNOTSUPP). */
int agent_cg_group_plan(const struct agent_cg_host *h, unsigned mask, unsigned required,
                        const char *id, struct agent_cg_group *ret, char *err, size_t errlen);
/* Record the planned directories in undo as "cgroups":[dirs]. */
int agent_cg_group_record(const struct agent_cg_group *g, json_t *undo);
/* mkdir the parents (enabling v2 controllers for them) and the group. */
int agent_cg_group_create(const struct agent_cg_group *g, char *err, size_t errlen);
/* Directory of the group for c, or NULL. */
const char *agent_cg_group_dir(const struct agent_cg_group *g, enum agent_cg_ctrl c);
/* Move pid into every directory of the group. */
int agent_cg_group_attach(const struct agent_cg_group *g, pid_t pid, char *err, size_t errlen);

/* Is dir a group this agent may kill and remove: <cgroup mount>/faultline/<name>
 * with a plain name? Guards revert against a damaged journal. */
bool agent_cg_owned_dir_ok(const char *dir);
/* Kill everything in an owned dir, wait (bounded) until it is empty,
 * rmdir it, then try to rmdir its faultline parent. A missing dir is
 * success: revert is idempotent. */
int agent_cg_owned_destroy(const char *dir, char *err, size_t errlen);
/* Destroy every dir of undo's "cgroups" and reap undo's "workers". */
int agent_cg_undo_destroy(const json_t *undo, char *err, size_t errlen);

/* --- workers (worker.c) ---------------------------------------------- */

enum agent_worker_kind { AGENT_WORKER_CPU, AGENT_WORKER_MEM, AGENT_WORKER_IO };

struct agent_worker_spec {
        enum agent_worker_kind kind;
        uint64_t bytes;       /* MEM: bytes to hold; IO: file size */
        uint64_t ramp_ms;     /* MEM: spread the touching over this long */
        bool lock;            /* MEM: mlock (where allowed) */
        char path[PATH_MAX];  /* IO: the file, created by the caller */
        int ready_timeout_ms; /* how long spawn waits for the worker's ready byte */
};

/* Fork a worker: it dies with the agent (PR_SET_PDEATHSIG), is moved into
 * every directory of g before it runs any load, closes every inherited
 * descriptor and runs under a seccomp allow-list. Waits for its ready
 * byte (MEM: after all memory is touched, unless ramping). On success
 * *ret_pid is a child the caller reaps (agent_cg_undo_destroy does). */
int agent_worker_spawn(const struct agent_cg_group *g, const struct agent_worker_spec *w,
                       pid_t *ret_pid, char *err, size_t errlen);
/* Append pid to undo's "workers" array. */
int agent_worker_record(json_t *undo, pid_t pid);
/* Count of undo's "workers" still alive (not zombies) and in dir. */
int agent_worker_alive(const json_t *undo, const char *dir);

/* --- helpers the resource faults share (res.c) ------------------------- */

struct agent_fault;

/* Check f->params against f->ops->keys (unknown or repeated -> -EINVAL)
 * and point vals[i] at the value of f->ops->keys[i], NULL when absent. */
int agent_res_params(const struct agent_fault *f, const char **vals, size_t nvals, char *err,
                     size_t errlen);

/* unit= / cgroup=: exactly one, parsed. */
struct agent_res_target {
        char unit[256];     /* "" unless unit= */
        char rel[PATH_MAX]; /* "" unless cgroup= */
};
int agent_res_target_parse(const char *unit, const char *cgroup, struct agent_res_target *ret,
                           char *err, size_t errlen);
/* Resolve for c, refuse protected targets, record "dir" and "gen" in
 * undo, fill f->target ("cgroup=/x" or "unit=x.service (/system.slice/x.service)"). */
int agent_res_target_prepare(const struct agent_res_target *t, enum agent_cg_ctrl c,
                             struct agent_fault *f, char *err, size_t errlen);
/* The "dir" of a target recorded by agent_res_target_prepare, checked to
 * lie under a cgroup mount of its "gen" (a damaged journal cannot aim a
 * revert elsewhere). -ENOENT: no dir recorded. */
int agent_res_target_dir(const json_t *undo, const char **ret_dir,
                         const struct agent_cg_ops **ret_ops, char *err, size_t errlen);
/* Number of CPUs this process may run on. */
unsigned agent_res_ncpus(void);
/* MemTotal and MemAvailable from /proc/meminfo, in bytes. */
int agent_res_meminfo(uint64_t *ret_total, uint64_t *ret_avail);
