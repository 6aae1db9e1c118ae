/* procfs and pidfd helpers for the process faults, plus the target set
 * both process faults share (selector, count/percent, seeded pick, the
 * {"targets":[...]} undo entry).
 *
 * A process is identified by (pid, start time): the start time is field 22
 * of /proc/PID/stat, in clock ticks since boot, and never repeats for a
 * pid in practice. Every signal goes through a pidfd that was checked
 * against the recorded start time *after* it was opened, so a pid the
 * kernel recycled since prepare() is never hit.
 *
 * All functions return 0 (or a count) on success and -errno on failure.
 * -ESRCH always means "that process (with that start time) is gone". */
#pragma once

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fault.h"

#define AGENT_PROC_COMM_LEN    16    /* TASK_COMM_LEN, incl. NUL */
#define AGENT_PROC_CMDLINE_MAX 65536 /* bytes of cmdline read for matching */
#define AGENT_PROC_MAX_MATCHES 4096  /* a selector matching more is refused */
#define AGENT_PROC_PF_KTHREAD  0x00200000u

struct agent_proc_stat {
        pid_t pid;
        char comm[AGENT_PROC_COMM_LEN];
        char state;     /* 'R', 'S', 'D', 'T', 't', 'Z', 'X', ... */
        unsigned flags; /* field 9, PF_* */
        uint64_t start; /* field 22, clock ticks since boot */
};

/* Parse the text of /proc/PID/stat. comm is whatever lies between the
 * first '(' and the LAST ')', so names holding spaces or parentheses are
 * fine. -EINVAL on any malformed field. */
int agent_proc_parse_stat(const char *buf, struct agent_proc_stat *ret);

/* Read and parse /proc/PID/stat. -ESRCH when the process does not exist. */
int agent_proc_read_stat(pid_t pid, struct agent_proc_stat *ret);

/* Read /proc/PID/cmdline into buf[size] with the NUL separators turned
 * into spaces and trailing separators dropped; longer command lines are
 * truncated to size-1 bytes. Returns the length (0 for kernel threads and
 * zombies), or -ESRCH. */
int agent_proc_read_cmdline(pid_t pid, char *buf, size_t size);

/* Open a pidfd for pid and check, after opening, that the process still
 * has the given start time. Returns the fd (O_CLOEXEC; caller closes) or
 * -ESRCH when the process is gone or the pid now names another process. */
int agent_proc_pidfd_open(pid_t pid, uint64_t start);

/* pidfd_send_signal(pidfd, sig, NULL, 0). */
int agent_proc_pidfd_signal(int pidfd, int sig);

/* Wait until the process behind pidfd has exited (it may still be an
 * unreaped zombie). Returns 0, or -ETIMEDOUT after timeout_ms. */
int agent_proc_pidfd_wait_exit(int pidfd, int timeout_ms);

/* Is the process protected: by pid (PID 1, the agent, its parent) or by
 * its comm (the policy's protected-processes)? */
bool agent_proc_is_protected(const struct agent_proc_stat *st);

/* State letter of (pid, start), or -ESRCH when gone or recycled. */
int agent_proc_state(pid_t pid, uint64_t start, char *ret_state);

/* --- selectors --------------------------------------------------------- */

enum agent_proc_sel_kind {
        AGENT_PROC_SEL_NONE = 0,
        AGENT_PROC_SEL_PID,     /* pid=N */
        AGENT_PROC_SEL_NAME,    /* name=exact comm */
        AGENT_PROC_SEL_CMDLINE, /* cmdline=POSIX ERE over the joined cmdline */
        AGENT_PROC_SEL_UNIT,    /* unit=systemd unit: its name is a component of the
                                   process's cgroup path in some hierarchy */
        AGENT_PROC_SEL_CGROUP,  /* cgroup=/rel: the process's cgroup is it or below it
                                   in some hierarchy */
};

struct agent_proc_selector {
        enum agent_proc_sel_kind kind;
        pid_t pid;
        char name[AGENT_PROC_COMM_LEN];
        regex_t re;
        bool re_set;
        char cg[FL_VAL_LEN];                /* unit name or cgroup rel path */
        char text[FL_KEY_LEN + FL_VAL_LEN]; /* "name=nginx", for messages */
};

/* Build a selector from one param. -EINVAL with a reason for a bad pid, a
 * name that can never equal a comm (empty or over 15 bytes) or a regex
 * that does not compile. On success the caller calls
 * agent_proc_selector_done(). */
int agent_proc_selector_init(struct agent_proc_selector *sel, const char *key, const char *value,
                             char *err, size_t errlen);
/* Release the regex; accepts a zeroed or already released selector. */
void agent_proc_selector_done(struct agent_proc_selector *sel);

/* Does a /proc/PID/cgroup text match a SEL_UNIT or SEL_CGROUP selector? */
bool agent_proc_cgroup_text_match(const struct agent_proc_selector *sel, const char *text);

/* Does the process in st (with its cmdline, for SEL_CMDLINE) match? The
 * cgroup selectors read /proc/PID/cgroup themselves. */
bool agent_proc_selector_match(const struct agent_proc_selector *sel,
                               const struct agent_proc_stat *st, const char *cmdline);

/* Scan /proc for live user-space processes matching sel: kernel threads
 * and zombies are skipped, nothing else is filtered (protection is the
 * caller's business). cgroup= reads the cgroup.procs files of that path in
 * every hierarchy mounted at its root instead of every /proc/PID/cgroup
 * (the same set, found faster). Returns the number of matches and a malloc'd array
 * sorted by pid in *ret (NULL when 0; caller frees), -E2BIG past
 * AGENT_PROC_MAX_MATCHES, or another -errno. */
int agent_proc_scan(const struct agent_proc_selector *sel, struct agent_proc_stat **ret);

/* --- the target set shared by process-kill and process-pause ------------ */

struct agent_proc_spec {
        struct agent_proc_selector sel;
        uint64_t count;      /* 0 when percent is used or all is set */
        uint32_t percent_bp; /* 0 when count is used; basis points */
        bool all;            /* the whole group: see agent_proc_spec_parse */
        bool has_seed;
        uint64_t seed;
};

/* Parse the shared params of a process fault into spec: checks every key
 * of f->params against f->ops->keys (unknown -> -EINVAL), rejects a key
 * given twice, requires exactly one of pid=/name=/cmdline=/unit=/cgroup=, at most one of
 * count=/percent=, optional seed=. Without count=/percent= a unit= or
 * cgroup= selector means the whole group (spec->all: every match, and a
 * protected match refuses the fault instead of being skipped); the other
 * selectors default to count=1. Keys this function does not own (e.g.
 * signal=) are left to the caller. On success the caller calls
 * agent_proc_spec_done(); on failure nothing is held. */
int agent_proc_spec_parse(struct agent_proc_spec *spec, const struct agent_fault *f, char *err,
                          size_t errlen);
void agent_proc_spec_done(struct agent_proc_spec *spec);

/* Resolve spec to live processes, drop protected ones, pick count (or
 * percent, rounded up, at least 1) of them — uniformly at random, and
 * reproducibly when a seed is given; all of them for spec->all — and
 * record them into f->undo as
 * {"targets":[{"pid":N,"start":T,"comm":"x","state":"S"}...],"seed":S},
 * creating f->undo if NULL. Fills f->target ("name=nginx pids=1,2").
 * Returns the number of targets (at least 1); -ENOENT nothing matched,
 * -EPERM an explicit pid (or every match, or for spec->all any match) is
 * protected or a kernel thread. */
int agent_proc_spec_resolve(const struct agent_proc_spec *spec, struct agent_fault *f, char *err,
                            size_t errlen);

/* How many of n matches count=/percent= asks for: count clamped to n, or
 * ceil(n * percent), at least 1. 0 only when n is 0. */
size_t agent_proc_pick_count(size_t n, uint64_t count, uint32_t percent_bp);

/* Choose k distinct indexes out of [0,n) uniformly (partial Fisher-Yates
 * driven by splitmix64 from seed). idx must hold n entries: on return
 * idx[0..k) are the chosen indexes in ascending order (the rest is
 * scratch). The same (n, k, seed) always gives the same answer. */
void agent_proc_pick(size_t n, size_t k, uint64_t seed, size_t *idx);

struct agent_proc_target {
        pid_t pid;
        uint64_t start;
        char comm[AGENT_PROC_COMM_LEN];
        char state; /* state when prepare() looked, or 0 if not recorded */
};

/* Read the "targets" array of an undo object. Returns the count and a
 * malloc'd array in *ret (NULL when 0; caller frees). A missing "targets"
 * key is 0 targets; a malformed one -EINVAL with a reason. */
int agent_proc_targets_load(const json_t *undo, struct agent_proc_target **ret, char *err,
                            size_t errlen);
