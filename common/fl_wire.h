/* faultline wire protocol: msgpack messages over nng req/rep.
 *
 * Every frame is one msgpack map. Requests carry "v" (protocol version),
 * "t" (message type name), "seq" and the type's fields; replies carry the
 * same "v"/"t"/"seq" plus "status" (enum fl_status) and "msg" (a human
 * message), then the type's fields. docs/protocol.md is the reference.
 *
 * Decoding is hostile-input safe: the frame is pre-scanned before msgpack-c
 * sees it (size, nesting, container counts, string lengths), unknown keys
 * are errors, every string is length-checked against the fixed buffers
 * below. Decoders never leave allocations behind on failure.
 *
 * Ownership: encoders return a malloc'd buffer in *ret_buf the caller
 * frees; on failure nothing is allocated. fl_request_free()/fl_reply_free()
 * release the dynamic arrays of a decoded or hand-built message (never the
 * struct itself) and accept zeroed structs. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FL_PROTO_VERSION 1

/* Hard caps. A frame above FL_MAX_FRAME is refused before decoding. */
#define FL_MAX_FRAME  (256 * 1024)
#define FL_MAX_DEPTH  4   /* map -> array -> map -> value */
#define FL_MAX_ARRAY  256 /* elements in any array or map */
#define FL_MAX_PARAMS 32
#define FL_MAX_FAULTS 256 /* entries in a LIST reply */
#define FL_MAX_CAPS   64
#define FL_ID_LEN     40  /* fault ids, lease ids, incl. NUL */
#define FL_KIND_LEN   32  /* fault kind names, incl. NUL */
#define FL_KEY_LEN    32  /* param keys, incl. NUL */
#define FL_VAL_LEN    512 /* param values, incl. NUL */
#define FL_NAME_LEN   256 /* hostnames, targets, requester, incl. NUL */
#define FL_MSG_LEN    512 /* human messages, reasons, incl. NUL */

enum fl_msg_type {
        FL_MSG_INVALID = 0,
        FL_MSG_HELLO,  /* "hello"  */
        FL_MSG_APPLY,  /* "apply"  */
        FL_MSG_REVERT, /* "revert" */
        FL_MSG_LIST,   /* "list"   */
        FL_MSG_RENEW,  /* "renew"  */
        FL_MSG_ABORT,  /* "abort"  */
        FL_MSG_TYPE_MAX,
};

/* Reply status codes (stable numbers: they are on the wire). */
enum fl_status {
        FL_ST_OK = 0,
        FL_ST_BAD_REQUEST = 1,  /* malformed msgpack, wrong shape, unknown field, oversize */
        FL_ST_BAD_VERSION = 2,  /* protocol version not spoken */
        FL_ST_UNKNOWN_TYPE = 3, /* message type not known */
        FL_ST_UNKNOWN_KIND = 4, /* fault kind not known */
        FL_ST_INVALID = 5,      /* parameter missing, out of range, bad cross-field rule */
        FL_ST_UNSUPPORTED = 6,  /* kind known but not available on this host */
        FL_ST_NOT_FOUND = 7,    /* fault id / lease not known */
        FL_ST_REFUSED = 8,      /* policy or protection refused (PID 1, agent itself, limits) */
        FL_ST_FAILED = 9,       /* apply/revert failed in the kernel or filesystem */
        FL_ST_VERIFY = 10,      /* applied but read-back showed no effect; reverted */
        FL_ST_INTERNAL = 11,    /* agent bug or resource exhaustion */
        FL_ST_MAX,
};

const char *fl_msg_type_name(enum fl_msg_type t);      /* "apply", or "invalid" */
enum fl_msg_type fl_msg_type_from_name(const char *s); /* FL_MSG_INVALID if unknown */
const char *fl_status_name(enum fl_status st);         /* "ok", "bad-request", ... */

struct fl_param {
        char key[FL_KEY_LEN];
        char value[FL_VAL_LEN];
};

/* One fault as the agent reports it (APPLY reply, LIST reply). */
struct fl_fault_info {
        char id[FL_ID_LEN];
        char kind[FL_KIND_LEN];
        char lease[FL_ID_LEN];
        char target[FL_NAME_LEN];  /* human summary of what was hit */
        char backend[FL_KIND_LEN]; /* mechanism used, e.g. "pidfd", "fallocate" */
        char state[16];            /* "active", "reverted", "failed" */
        uint64_t started_ms;       /* wall clock, UNIX ms */
        uint64_t expires_ms;       /* wall clock, UNIX ms */
        size_t n_params;
        struct fl_param *params; /* owned */
};

/* One fault kind in HELLO's capability list. */
struct fl_cap {
        char kind[FL_KIND_LEN];
        bool available;
        char reason[FL_MSG_LEN]; /* why not, or "" */
};

struct fl_request {
        uint32_t version;
        enum fl_msg_type type;
        uint64_t seq;
        char requester[FL_NAME_LEN]; /* who asks (coordinator name), optional */

        /* APPLY */
        char kind[FL_KIND_LEN];
        uint64_t duration_ms;
        size_t n_params;
        struct fl_param *params; /* owned */

        /* APPLY, RENEW, ABORT (ABORT: empty lease = everything) */
        char lease[FL_ID_LEN];
        uint64_t lease_ttl_ms; /* APPLY, RENEW */

        /* REVERT */
        char fault_id[FL_ID_LEN];
};

struct fl_reply {
        uint32_t version;
        enum fl_msg_type type;
        uint64_t seq;
        enum fl_status status;
        char msg[FL_MSG_LEN];

        /* HELLO */
        uint32_t proto_version;
        char agent_version[32];
        char hostname[FL_NAME_LEN];
        size_t n_caps;
        struct fl_cap *caps; /* owned */

        /* APPLY (1 entry), LIST (n entries) */
        size_t n_faults;
        struct fl_fault_info *faults; /* owned */

        /* REVERT, ABORT: faults reverted; RENEW: faults still held by the lease */
        uint32_t count;
};

void fl_request_free(struct fl_request *r);
void fl_reply_free(struct fl_reply *r);
void fl_fault_info_free(struct fl_fault_info *f);

/* Append a param, copying key/value. -ENAMETOOLONG if either does not fit,
 * -E2BIG past FL_MAX_PARAMS, -ENOMEM. */
int fl_params_add(struct fl_param **params, size_t *n, const char *key, const char *value);
/* Value of key, or NULL. */
const char *fl_params_get(const struct fl_param *params, size_t n, const char *key);

/* Encode. Returns 0 and a malloc'd buffer, or -EINVAL (struct violates the
 * caps or has an invalid type), -ENOMEM. */
int fl_request_encode(const struct fl_request *r, void **ret_buf, size_t *ret_len);
int fl_reply_encode(const struct fl_reply *r, void **ret_buf, size_t *ret_len);

/* Decode. On success fills *ret (which the caller must fl_*_free) and
 * returns 0. On failure returns a negative errno, fills err[errlen] with a
 * human reason, leaves *ret zeroed except that version/type/seq are filled
 * if they could be read (so the agent can answer in kind):
 *   -EMSGSIZE  frame larger than FL_MAX_FRAME, or a string/array over its cap
 *   -EBADMSG   not msgpack, truncated, trailing bytes, too deep, wrong types,
 *              missing required field, unknown field
 *   -EPROTO    version field != FL_PROTO_VERSION
 *   -ENOMSG    unknown message type
 * fl_status_from_decode_error() maps these to a reply status. */
int fl_request_decode(const void *buf, size_t len, struct fl_request *ret, char *err,
                      size_t errlen);
int fl_reply_decode(const void *buf, size_t len, struct fl_reply *ret, char *err, size_t errlen);
enum fl_status fl_status_from_decode_error(int negerrno);
