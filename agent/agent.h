/* faultline-agent internals: configuration, the table of active faults
 * with their TTLs and leases, the on-disk journal, request dispatch.
 *
 * Threading: the agent is single-threaded; nng runs its own I/O threads
 * but every request is handled on the main loop, so nothing here locks. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fault.h"
#include "fl_tls.h"
#include "fl_transport.h"
#include "fl_wire.h"

#define AGENT_DEFAULT_LISTEN       "tcp://127.0.0.1:7070"
#define AGENT_DEFAULT_STATE_DIR    "/var/lib/faultline"
#define AGENT_DEFAULT_LEASE_MS     5000u
#define AGENT_MIN_LEASE_MS         500u
#define AGENT_DEFAULT_MAX_DURATION (3600u * 1000u)
#define AGENT_DEFAULT_MAX_FAULTS   64u
#define AGENT_MAX_PROTECTED_NAMES  32

struct agent_policy {
        uint64_t max_duration_ms; /* longest fault accepted */
        uint32_t max_faults;      /* concurrent active faults */
        uint64_t max_lease_ms;    /* lease timeout cap; a lapsed lease reverts */
        bool allow_all_kinds;
        char allowed_kinds[16][FL_KIND_LEN];
        size_t n_allowed_kinds;
        char protected_names[AGENT_MAX_PROTECTED_NAMES][16]; /* comm names never hit */
        size_t n_protected_names;
        /* Network faults never touch these (besides the control port). */
        uint16_t protected_ports[16]; /* default: 22 */
        size_t n_protected_ports;
        char protected_cidrs[16][64];
        size_t n_protected_cidrs;
        /* disk-fill and io-stress only under these directories (checked
         * after resolving symlinks); none = anywhere. */
        char allowed_paths[16][FL_VAL_LEN];
        size_t n_allowed_paths;
};

/* Mutual TLS for a tls+tcp:// listen URL (docs/security.md). */
struct agent_tls {
        char ca[FL_VAL_LEN];
        char cert[FL_VAL_LEN];
        char key[FL_VAL_LEN];
        /* Coordinator certificate names (CN or DNS SAN) that get service;
         * none = any certificate the CA signed. */
        char allowed_subjects[FL_TLS_MAX_SUBJECTS][FL_NAME_LEN];
        size_t n_allowed_subjects;
};

struct agent_config {
        char listen[FL_VAL_LEN];
        char state_dir[FL_VAL_LEN];
        int log_level;
        struct agent_policy policy;
        struct agent_tls tls;
        bool insecure;  /* plain tcp:// on a non-loopback address */
        bool audit_log; /* also append audit records to <state-dir>/audit.log */
        bool sandbox;   /* seccomp + capability drop after setup (default on) */
};

/* config.c */
void agent_config_defaults(struct agent_config *c);
/* Parse a YAML config file over the defaults already in *c. On error fills
 * err ("FILE:LINE:COL: message") and returns -EINVAL (or -errno for I/O);
 * *c is then unchanged. */
int agent_config_load(const char *path, struct agent_config *c, char *err, size_t errlen);

/* journal.c — one JSON file per fault in <state>/faults, written with
 * write-to-temp + fsync + rename + fsync(dir) so a crash leaves either the
 * old or the new entry, never half of one. */
int agent_journal_init(const char *state_dir, char *err, size_t errlen);
int agent_journal_write(const char *state_dir, const struct agent_fault *f);
/* durable=false skips both fsyncs (the rename stays atomic): for the
 * post-apply rewrite, whose extra detail revert does not depend on. */
int agent_journal_write_mode(const char *state_dir, const struct agent_fault *f, bool durable);
int agent_journal_remove(const char *state_dir, const char *id);
/* Load every entry; calls cb for each (cb takes ownership of f on return 0;
 * the journal frees it otherwise). Unreadable entries are logged, counted
 * in the return value's negative space is not used: returns entries seen. */
int agent_journal_load(const char *state_dir,
                       int (*cb)(struct agent_fault *f, const char *path, void *ud), void *ud);
/* Serialize / parse a fault journal entry (exposed for tests). */
json_t *agent_journal_to_json(const struct agent_fault *f);
int agent_journal_from_json(json_t *j, struct agent_fault *ret, char *err, size_t errlen);

/* core.c — the fault table. */
struct agent;
int agent_new(const struct agent_config *cfg, struct agent **ret);
void agent_free(struct agent *a);
/* Revert everything the journal holds from a previous run. Returns the
 * number of entries that could NOT be reverted (0 = clean). */
int agent_recover(struct agent *a);
/* Handle one decoded request, fill reply (caller frees it). */
void agent_handle(struct agent *a, const struct fl_request *req, struct fl_reply *reply);
/* Expire faults whose TTL passed and leases that lapsed. Returns ms until
 * the next deadline (capped at cap_ms). */
int agent_tick(struct agent *a, int cap_ms);
/* Revert every active fault (SIGTERM path). Returns faults reverted. */
int agent_revert_all(struct agent *a, const char *why);
size_t agent_active_count(const struct agent *a);

/* server.c — decode a frame, dispatch, encode the reply. Always produces
 * a reply frame (an error reply for undecodable input). */
int agent_serve_frame(struct agent *a, const void *buf, size_t len, void **ret_buf,
                      size_t *ret_len);
/* Same for a frame from peer (NULL: a local caller). A TLS peer whose
 * certificate is not verified or not in tls.allowed-subjects gets a
 * FL_ST_REFUSED reply and nothing else; every APPLY, REVERT and ABORT is
 * audited with the peer's identity. */
int agent_serve_frame_peer(struct agent *a, const struct fl_peer *peer, const void *buf, size_t len,
                           void **ret_buf, size_t *ret_len);

/* policy.c — rules beyond kind/duration/count that need the parameters.
 * 0, or -EPERM with the reason in err. */
int agent_policy_check_params(const struct agent_policy *p, const struct fault_ops *ops,
                              const struct fl_param *params, size_t n, char *err, size_t errlen);

/* audit.c — one record per fault applied, reverted or refused: a log line
 * starting "AUDIT " and, when enabled, a JSON line in
 * <state-dir>/audit.log. The actor is who the current request came from
 * (set by the server around each request; "agent" for the agent's own
 * timers, lease expiry and shutdown). */
int agent_audit_open(const char *state_dir, char *err, size_t errlen);
void agent_audit_set_actor(const char *who); /* NULL: the agent itself */
const char *agent_audit_actor(void);
/* action: "apply", "revert", "abort"...; result: "ok", "refused",
 * "failed"...; any string may be NULL. */
void agent_audit(const char *action, const char *kind, const char *id, const char *target,
                 const char *lease, const char *result, const char *detail);

/* sandbox.c — least privilege after setup (docs/security.md).
 *
 * Step 1, before any thread exists (capabilities are per thread and
 * inherited by threads created later): keep only the capabilities faults
 * need, empty the bounding and ambient sets, set PR_SET_NO_NEW_PRIVS.
 * Step 2, once set-up is done: install the seccomp allow-list on every
 * thread (TSYNC). Both return 0 or -errno with the step in err. */
int agent_sandbox_drop_privileges(char *err, size_t errlen);
int agent_sandbox_install_filter(char *err, size_t errlen);
/* Does the allow-list admit this syscall name? 1 allowed, 0 denied with
 * EPERM, -1 kills the process, -ENOENT unknown name (for tests/docs). */
int agent_sandbox_verdict(const char *syscall_name);
