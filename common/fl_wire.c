/* faultline wire codec: msgpack-c underneath, table-driven schema on top.
 *
 * One table per struct (request, reply, fault entry, capability entry)
 * lists every wire key, its msgpack type, where it lives in the struct,
 * which message types may carry it and which must. The decoder, the
 * encoder and the encoder's validation all walk the same tables, so what
 * one side sends the other side accepts by construction. docs/protocol.md
 * is the human version of these tables; keep them in step.
 *
 * Decoding runs in three stages:
 *   1. prescan(): a bounds check over the raw bytes. msgpack-c allocates
 *      from the counts a frame declares, before it knows whether the
 *      elements are there, so a 5-byte "array of 2^32-1 elements" would
 *      make it ask for tens of GB. We refuse such frames first.
 *   2. msgpack_unpack_next() into a msgpack_unpacked (zone freed by cleanup).
 *   3. The table walk: envelope ("v", "t", "seq") first so the caller can
 *      answer in kind even when the rest is rejected, then every key.
 * Results go into a private copy of the struct, moved into *ret only on
 * success, so a failure leaves nothing allocated and *ret zeroed. */
#include "fl_wire.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "fl_util.h"

#define TYPE_BIT(t) (1u << (unsigned)(t))
#define ALL_TYPES   0xffffffffu
/* FL_MSG_INVALID is bit 0: fields allowed there are the ones an error reply
 * to an unreadable request may carry. */

static const char *const msg_type_names[FL_MSG_TYPE_MAX] = {
    [FL_MSG_INVALID] = "invalid", [FL_MSG_HELLO] = "hello", [FL_MSG_APPLY] = "apply",
    [FL_MSG_REVERT] = "revert",   [FL_MSG_LIST] = "list",   [FL_MSG_RENEW] = "renew",
    [FL_MSG_ABORT] = "abort",
};

static const char *const status_names[FL_ST_MAX] = {
    [FL_ST_OK] = "ok",
    [FL_ST_BAD_REQUEST] = "bad-request",
    [FL_ST_BAD_VERSION] = "bad-version",
    [FL_ST_UNKNOWN_TYPE] = "unknown-type",
    [FL_ST_UNKNOWN_KIND] = "unknown-kind",
    [FL_ST_INVALID] = "invalid",
    [FL_ST_UNSUPPORTED] = "unsupported",
    [FL_ST_NOT_FOUND] = "not-found",
    [FL_ST_REFUSED] = "refused",
    [FL_ST_FAILED] = "failed",
    [FL_ST_VERIFY] = "verify-failed",
    [FL_ST_INTERNAL] = "internal",
};

const char *fl_msg_type_name(enum fl_msg_type t)
{
        if ((unsigned)t >= FL_MSG_TYPE_MAX)
                return "invalid";
        return msg_type_names[t];
}

enum fl_msg_type fl_msg_type_from_name(const char *s)
{
        if (!s)
                return FL_MSG_INVALID;
        /* Start at 1: "invalid" names no message a peer may send. */
        for (unsigned t = 1; t < FL_MSG_TYPE_MAX; t++)
                if (strcmp(s, msg_type_names[t]) == 0)
                        return (enum fl_msg_type)t;
        return FL_MSG_INVALID;
}

const char *fl_status_name(enum fl_status st)
{
        if ((unsigned)st >= FL_ST_MAX)
                return "unknown";
        return status_names[st];
}

enum fl_status fl_status_from_decode_error(int negerrno)
{
        switch (negerrno) {
        case 0:
                return FL_ST_OK;
        case -EMSGSIZE:
        case -EBADMSG:
                return FL_ST_BAD_REQUEST;
        case -EPROTO:
                return FL_ST_BAD_VERSION;
        case -ENOMSG:
                return FL_ST_UNKNOWN_TYPE;
        default:
                /* -ENOMEM or anything the decoder should not have returned:
                 * the peer's frame may be fine, the fault is ours. */
                return FL_ST_INTERNAL;
        }
}

/* ---- freeing and params ------------------------------------------------ */

void fl_fault_info_free(struct fl_fault_info *f)
{
        if (!f)
                return;
        free(f->params);
        f->params = NULL;
        f->n_params = 0;
}

void fl_request_free(struct fl_request *r)
{
        if (!r)
                return;
        free(r->params);
        r->params = NULL;
        r->n_params = 0;
}

void fl_reply_free(struct fl_reply *r)
{
        if (!r)
                return;
        free(r->caps);
        r->caps = NULL;
        r->n_caps = 0;
        if (r->faults)
                for (size_t i = 0; i < r->n_faults; i++)
                        fl_fault_info_free(&r->faults[i]);
        free(r->faults);
        r->faults = NULL;
        r->n_faults = 0;
}

const char *fl_params_get(const struct fl_param *params, size_t n, const char *key)
{
        if (!params || !key)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (strcmp(params[i].key, key) == 0)
                        return params[i].value;
        return NULL;
}

/* The decoder refuses empty and duplicate keys, so refuse them here too
 * (-EINVAL, -EEXIST) rather than build a message nobody can read. */
int fl_params_add(struct fl_param **params, size_t *n, const char *key, const char *value)
{
        struct fl_param *p;

        if (!params || !n || !key || !value || key[0] == '\0')
                return -EINVAL;
        if (strlen(key) >= FL_KEY_LEN || strlen(value) >= FL_VAL_LEN)
                return -ENAMETOOLONG;
        if (*n >= FL_MAX_PARAMS)
                return -E2BIG;
        if (fl_params_get(*params, *n, key))
                return -EEXIST;

        /* At most FL_MAX_PARAMS entries: growing one at a time is cheap. */
        p = realloc(*params, (*n + 1) * sizeof(*p));
        if (!p)
                return -ENOMEM;
        memset(&p[*n], 0, sizeof(*p));
        memcpy(p[*n].key, key, strlen(key) + 1);
        memcpy(p[*n].value, value, strlen(value) + 1);
        *params = p;
        (*n)++;
        return 0;
}

/* ---- schema tables ----------------------------------------------------- */

enum field_kind {
        FK_STR,    /* msgpack str -> char[size]; "required" means non-empty */
        FK_U64,    /* positive int -> uint64_t; "required" means non-zero */
        FK_U32,    /* positive int <= UINT32_MAX -> uint32_t; idem */
        FK_STATUS, /* positive int < FL_ST_MAX -> enum fl_status; always sent */
        FK_BOOL,   /* msgpack bool -> bool; always sent, absent reads false */
        FK_PARAMS, /* map str->str -> struct fl_param *, count at aux */
        FK_LIST,   /* array of maps described by sub -> pointer, count at aux */
};

struct field;

struct sublist {
        const struct field *fields;
        size_t n_fields;
        size_t elem_size;
        size_t max;
};

struct field {
        const char *key;
        enum field_kind kind;
        size_t off;  /* the value, or the array pointer */
        size_t size; /* FK_STR: buffer size incl. NUL */
        size_t aux;  /* FK_PARAMS/FK_LIST: offset of the size_t count */
        unsigned allowed;
        unsigned required;
        const struct sublist *sub;
};

/* clang-format off */
#define F_STR(st, k, m, al, rq) \
        { .key = (k), .kind = FK_STR, .off = offsetof(st, m), \
          .size = sizeof(((st *)0)->m), .allowed = (al), .required = (rq) }
#define F_NUM(st, kd, k, m, al, rq) \
        { .key = (k), .kind = (kd), .off = offsetof(st, m), .allowed = (al), .required = (rq) }
#define F_ARR(st, kd, k, m, cnt, al, rq, sb) \
        { .key = (k), .kind = (kd), .off = offsetof(st, m), .aux = offsetof(st, cnt), \
          .allowed = (al), .required = (rq), .sub = (sb) }
/* clang-format on */

#define T_HELLO  TYPE_BIT(FL_MSG_HELLO)
#define T_APPLY  TYPE_BIT(FL_MSG_APPLY)
#define T_REVERT TYPE_BIT(FL_MSG_REVERT)
#define T_LIST   TYPE_BIT(FL_MSG_LIST)
#define T_RENEW  TYPE_BIT(FL_MSG_RENEW)
#define T_ABORT  TYPE_BIT(FL_MSG_ABORT)

/* Requests. "v", "t" and "seq" are the envelope, handled apart. */
static const struct field request_fields[] = {
    F_STR(struct fl_request, "from", requester, ALL_TYPES, 0),
    F_STR(struct fl_request, "kind", kind, T_APPLY, T_APPLY),
    F_NUM(struct fl_request, FK_U64, "dur", duration_ms, T_APPLY, T_APPLY),
    F_ARR(struct fl_request, FK_PARAMS, "params", params, n_params, T_APPLY, 0, NULL),
    F_STR(struct fl_request, "lease", lease, T_APPLY | T_RENEW | T_ABORT, T_APPLY | T_RENEW),
    F_NUM(struct fl_request, FK_U64, "ttl", lease_ttl_ms, T_APPLY | T_RENEW, T_APPLY | T_RENEW),
    F_STR(struct fl_request, "id", fault_id, T_REVERT, T_REVERT),
};

/* Entries of a reply's "caps" array. */
static const struct field cap_fields[] = {
    F_STR(struct fl_cap, "kind", kind, ALL_TYPES, ALL_TYPES),
    F_NUM(struct fl_cap, FK_BOOL, "ok", available, ALL_TYPES, 0),
    F_STR(struct fl_cap, "why", reason, ALL_TYPES, 0),
};

/* Entries of a reply's "faults" array. */
static const struct field fault_fields[] = {
    F_STR(struct fl_fault_info, "id", id, ALL_TYPES, ALL_TYPES),
    F_STR(struct fl_fault_info, "kind", kind, ALL_TYPES, ALL_TYPES),
    F_STR(struct fl_fault_info, "lease", lease, ALL_TYPES, 0),
    F_STR(struct fl_fault_info, "target", target, ALL_TYPES, 0),
    F_STR(struct fl_fault_info, "backend", backend, ALL_TYPES, 0),
    F_STR(struct fl_fault_info, "state", state, ALL_TYPES, 0),
    F_NUM(struct fl_fault_info, FK_U64, "start", started_ms, ALL_TYPES, 0),
    F_NUM(struct fl_fault_info, FK_U64, "exp", expires_ms, ALL_TYPES, 0),
    F_ARR(struct fl_fault_info, FK_PARAMS, "params", params, n_params, ALL_TYPES, 0, NULL),
};

static const struct sublist caps_list = {
    cap_fields,
    FL_ARRAY_SIZE(cap_fields),
    sizeof(struct fl_cap),
    FL_MAX_CAPS,
};
static const struct sublist faults_list = {
    fault_fields,
    FL_ARRAY_SIZE(fault_fields),
    sizeof(struct fl_fault_info),
    FL_MAX_FAULTS,
};

/* Replies. "required" applies only when status is ok: an error reply is
 * just the envelope plus status and msg. "status" is checked apart. */
static const struct field reply_fields[] = {
    F_NUM(struct fl_reply, FK_STATUS, "status", status, ALL_TYPES, 0),
    F_STR(struct fl_reply, "msg", msg, ALL_TYPES, 0),
    F_NUM(struct fl_reply, FK_U32, "proto", proto_version, T_HELLO, T_HELLO),
    F_STR(struct fl_reply, "agent", agent_version, T_HELLO, T_HELLO),
    F_STR(struct fl_reply, "host", hostname, T_HELLO, T_HELLO),
    F_ARR(struct fl_reply, FK_LIST, "caps", caps, n_caps, T_HELLO, 0, &caps_list),
    F_ARR(struct fl_reply, FK_LIST, "faults", faults, n_faults, T_APPLY | T_LIST, 0, &faults_list),
    /* HELLO and LIST: faults active on the agent (LIST may hold more than
     * the FL_MAX_FAULTS entries it can carry). */
    F_NUM(struct fl_reply, FK_U32, "count", count, T_HELLO | T_LIST | T_REVERT | T_RENEW | T_ABORT,
          0),
};
#define REPLY_STATUS_IDX 0

/* Every table is addressed with a 32-bit "seen" mask. */
_Static_assert(FL_ARRAY_SIZE(request_fields) <= 32, "seen mask too small");
_Static_assert(FL_ARRAY_SIZE(reply_fields) <= 32, "seen mask too small");
_Static_assert(FL_ARRAY_SIZE(fault_fields) <= 32, "seen mask too small");
_Static_assert(FL_MSG_TYPE_MAX <= 32, "type mask too small");

static void *field_ptr(const struct field *f, const void *base)
{
        return (char *)base + f->off;
}
static size_t *field_count(const struct field *f, const void *base)
{
        return (size_t *)((char *)base + f->aux);
}

/* ---- error reporting --------------------------------------------------- */

struct ctx {
        char *err;
        size_t errlen;
};

static int fail(struct ctx *c, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct ctx *c, int r, const char *fmt, ...)
{
        va_list ap;

        if (c && c->err && c->errlen > 0) {
                va_start(ap, fmt);
                vsnprintf(c->err, c->errlen, fmt, ap);
                va_end(ap);
        }
        return r;
}

/* A key from the wire may be long or binary; show a safe, bounded form. */
static const char *key_repr(const msgpack_object_str *s, char *buf, size_t size)
{
        size_t n = 0, max = size - 4; /* room for "..." and NUL */

        for (uint32_t i = 0; i < s->size && n < max; i++) {
                unsigned char ch = (unsigned char)s->ptr[i];
                buf[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
        }
        if (s->size > max)
                memcpy(buf + n, "...", 4);
        else
                buf[n] = '\0';
        return buf;
}

static bool str_eq(const msgpack_object_str *s, const char *lit)
{
        size_t n = strlen(lit);
        return s->size == n && memcmp(s->ptr, lit, n) == 0;
}

/* ---- stage 1: raw pre-scan --------------------------------------------- */

static uint64_t read_be(const uint8_t *p, size_t n)
{
        uint64_t v = 0;
        for (size_t i = 0; i < n; i++)
                v = (v << 8) | p[i];
        return v;
}

/* Walk the msgpack encoding without building anything: pending[d] counts the
 * objects still expected at nesting level d (level 0 holds the single
 * top-level object). Depth counts containers, so the deepest legal shape,
 * reply map -> faults array -> fault map -> params map, is exactly
 * FL_MAX_DEPTH. Every element needs at least one byte, so a count larger
 * than the bytes left is a lie we can catch before msgpack-c believes it. */
static int prescan(struct ctx *c, const uint8_t *p, size_t len)
{
        uint64_t pending[FL_MAX_DEPTH + 1];
        unsigned depth = 0;
        size_t pos = 0;

        if (len == 0)
                return fail(c, -EBADMSG, "empty frame");
        if (len > FL_MAX_FRAME)
                return fail(c, -EMSGSIZE, "frame of %zu bytes exceeds the %d byte limit", len,
                            FL_MAX_FRAME);

        pending[0] = 1;
        for (;;) {
                uint64_t count = 0, skip = 0;
                size_t lenbytes = 0, avail;
                bool container = false, map = false;
                uint8_t b;

                while (pending[depth] == 0) {
                        if (depth == 0)
                                goto done;
                        depth--;
                }
                pending[depth]--;

                if (pos >= len)
                        return fail(c, -EBADMSG, "truncated frame (%zu bytes)", len);
                b = p[pos++];

                if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
                        continue; /* fixint, nil, bool: no payload */
                } else if (b <= 0x8f) {
                        container = map = true;
                        count = b & 0x0f;
                } else if (b <= 0x9f) {
                        container = true;
                        count = b & 0x0f;
                } else if (b <= 0xbf) {
                        skip = b & 0x1f;
                } else {
                        switch (b) {
                        case 0xc4: /* bin 8 */
                        case 0xd9: /* str 8 */
                                lenbytes = 1;
                                break;
                        case 0xc5:
                        case 0xda:
                                lenbytes = 2;
                                break;
                        case 0xc6:
                        case 0xdb:
                                lenbytes = 4;
                                break;
                        case 0xcc: /* uint 8 */
                        case 0xd0: /* int 8 */
                                skip = 1;
                                break;
                        case 0xcd:
                        case 0xd1:
                                skip = 2;
                                break;
                        case 0xca: /* float 32 */
                        case 0xce:
                        case 0xd2:
                                skip = 4;
                                break;
                        case 0xcb: /* float 64 */
                        case 0xcf:
                        case 0xd3:
                                skip = 8;
                                break;
                        case 0xdc: /* array 16 */
                                container = true;
                                lenbytes = 2;
                                break;
                        case 0xdd:
                                container = true;
                                lenbytes = 4;
                                break;
                        case 0xde: /* map 16 */
                                container = map = true;
                                lenbytes = 2;
                                break;
                        case 0xdf:
                                container = map = true;
                                lenbytes = 4;
                                break;
                        case 0xc7: /* ext 8/16/32, fixext 1..16 */
                        case 0xc8:
                        case 0xc9:
                        case 0xd4:
                        case 0xd5:
                        case 0xd6:
                        case 0xd7:
                        case 0xd8:
                                return fail(c, -EBADMSG,
                                            "msgpack extension type at offset %zu is not allowed",
                                            pos - 1);
                        default: /* 0xc1 is never used */
                                return fail(c, -EBADMSG,
                                            "invalid msgpack byte 0x%02x at offset %zu", b,
                                            pos - 1);
                        }
                }

                avail = len - pos;
                if (lenbytes > 0) {
                        if (avail < lenbytes)
                                return fail(c, -EBADMSG, "truncated frame (%zu bytes)", len);
                        if (container)
                                count = read_be(p + pos, lenbytes);
                        else
                                skip = read_be(p + pos, lenbytes);
                        pos += lenbytes;
                        avail -= lenbytes;
                }

                if (container) {
                        uint64_t elems = map ? count * 2 : count;

                        if (count > FL_MAX_ARRAY)
                                return fail(c, -EMSGSIZE,
                                            "%s of %" PRIu64 " elements exceeds the limit of %d",
                                            map ? "map" : "array", count, FL_MAX_ARRAY);
                        if (depth + 1 > FL_MAX_DEPTH)
                                return fail(c, -EBADMSG, "nesting deeper than %d levels",
                                            FL_MAX_DEPTH);
                        if (elems > avail)
                                return fail(c, -EBADMSG,
                                            "%s declares %" PRIu64
                                            " elements but only %zu bytes remain",
                                            map ? "map" : "array", count, avail);
                        pending[++depth] = elems;
                } else {
                        if (skip > avail)
                                return fail(c, -EBADMSG,
                                            "value of %" PRIu64 " bytes but only %zu bytes remain",
                                            skip, avail);
                        pos += skip;
                }
        }
done:
        if (pos != len)
                return fail(c, -EBADMSG, "%zu trailing bytes after the message", len - pos);
        return 0;
}

/* ---- stage 2: unpack ----------------------------------------------------- */

static void unpacked_destroyp(msgpack_unpacked *u)
{
        msgpack_unpacked_destroy(u);
}
#define _cleanup_unpacked_ __attribute__((cleanup(unpacked_destroyp)))

static int unpack_frame(struct ctx *c, const void *buf, size_t len, msgpack_unpacked *u)
{
        size_t off = 0;
        msgpack_unpack_return ur;
        int r;

        if (!buf && len > 0)
                return -EINVAL;
        r = prescan(c, buf, len);
        if (r < 0)
                return r;

        ur = msgpack_unpack_next(u, buf, len, &off);
        if (ur == MSGPACK_UNPACK_NOMEM_ERROR)
                return fail(c, -ENOMEM, "out of memory decoding frame");
        /* The pre-scan accepted the frame, so anything but a clean success
         * means it and msgpack-c disagree: refuse rather than guess. */
        if (ur != MSGPACK_UNPACK_SUCCESS || off != len)
                return fail(c, -EBADMSG, "malformed msgpack");
        if (u->data.type != MSGPACK_OBJECT_MAP)
                return fail(c, -EBADMSG, "top-level object must be a map");
        return 0;
}

/* ---- stage 3: schema walk ------------------------------------------------ */

static int decode_str(struct ctx *c, const char *prefix, const char *key, const msgpack_object *o,
                      char *buf, size_t size)
{
        if (o->type != MSGPACK_OBJECT_STR)
                return fail(c, -EBADMSG, "field '%s%s' must be a string", prefix, key);
        if (o->via.str.size >= size)
                return fail(c, -EMSGSIZE, "field '%s%s' is %" PRIu32 " bytes, max %zu", prefix, key,
                            o->via.str.size, size - 1);
        /* Our buffers are C strings: an embedded NUL would silently cut the
         * value short (a lease "a\0b" matching lease "a"). */
        if (memchr(o->via.str.ptr, '\0', o->via.str.size))
                return fail(c, -EBADMSG, "field '%s%s' contains a NUL byte", prefix, key);
        memcpy(buf, o->via.str.ptr, o->via.str.size);
        buf[o->via.str.size] = '\0';
        return 0;
}

static int decode_params(struct ctx *c, const char *prefix, const char *key,
                         const msgpack_object *o, struct fl_param **pp, size_t *pn)
{
        char name[FL_KEY_LEN + 64];
        uint32_t n;
        int r;

        if (o->type != MSGPACK_OBJECT_MAP)
                return fail(c, -EBADMSG, "field '%s%s' must be a map of strings", prefix, key);
        n = o->via.map.size;
        if (n > FL_MAX_PARAMS)
                return fail(c, -EMSGSIZE, "field '%s%s' has %" PRIu32 " entries, max %d", prefix,
                            key, n, FL_MAX_PARAMS);
        if (n == 0)
                return 0;

        /* Attach before filling, so the caller's free covers a partial array. */
        *pp = calloc(n, sizeof(**pp));
        if (!*pp)
                return fail(c, -ENOMEM, "out of memory");
        *pn = 0;

        for (uint32_t i = 0; i < n; i++) {
                const msgpack_object_kv *kv = &o->via.map.ptr[i];
                struct fl_param *p = &(*pp)[i];

                snprintf(name, sizeof(name), "%s%s key", prefix, key);
                r = decode_str(c, "", name, &kv->key, p->key, sizeof(p->key));
                if (r < 0)
                        return r;
                if (p->key[0] == '\0')
                        return fail(c, -EBADMSG, "field '%s%s' has an empty key", prefix, key);
                if (fl_params_get(*pp, i, p->key))
                        return fail(c, -EBADMSG, "field '%s%s' repeats key '%s'", prefix, key,
                                    p->key);
                snprintf(name, sizeof(name), "%s%s.%s", prefix, key, p->key);
                r = decode_str(c, "", name, &kv->val, p->value, sizeof(p->value));
                if (r < 0)
                        return r;
                (*pn)++;
        }
        return 0;
}

static int decode_map(struct ctx *c, const msgpack_object *o, const struct field *fields,
                      size_t n_fields, void *base, unsigned type_bit, bool skip_envelope,
                      const char *prefix, const char *what, uint32_t *ret_seen);

static int decode_list(struct ctx *c, const char *prefix, const struct field *f,
                       const msgpack_object *o, void *base)
{
        const struct sublist *sub = f->sub;
        void **pp = field_ptr(f, base);
        size_t *pn = field_count(f, base);
        char elem_prefix[64], elem_what[64];
        uint32_t n, seen;
        int r;

        if (o->type != MSGPACK_OBJECT_ARRAY)
                return fail(c, -EBADMSG, "field '%s%s' must be an array", prefix, f->key);
        n = o->via.array.size;
        if (n > sub->max)
                return fail(c, -EMSGSIZE, "field '%s%s' has %" PRIu32 " entries, max %zu", prefix,
                            f->key, n, sub->max);
        if (n == 0)
                return 0;

        /* Zeroed elements with the count set up front: fl_reply_free() can
         * then release whatever a failing element left behind. */
        *pp = calloc(n, sub->elem_size);
        if (!*pp)
                return fail(c, -ENOMEM, "out of memory");
        *pn = n;

        for (uint32_t i = 0; i < n; i++) {
                const msgpack_object *e = &o->via.array.ptr[i];

                snprintf(elem_prefix, sizeof(elem_prefix), "%s%s[%" PRIu32 "].", prefix, f->key, i);
                snprintf(elem_what, sizeof(elem_what), "%s%s[%" PRIu32 "]", prefix, f->key, i);
                if (e->type != MSGPACK_OBJECT_MAP)
                        return fail(c, -EBADMSG, "'%s' must be a map", elem_what);
                r = decode_map(c, e, sub->fields, sub->n_fields, (char *)*pp + i * sub->elem_size,
                               ALL_TYPES, false, elem_prefix, elem_what, &seen);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int decode_value(struct ctx *c, const char *prefix, const struct field *f,
                        const msgpack_object *o, void *base)
{
        void *p = field_ptr(f, base);

        switch (f->kind) {
        case FK_STR:
                return decode_str(c, prefix, f->key, o, p, f->size);
        case FK_U64:
        case FK_U32:
        case FK_STATUS:
                if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                        return fail(c, -EBADMSG, "field '%s%s' must be an unsigned integer", prefix,
                                    f->key);
                if (f->kind == FK_U64) {
                        *(uint64_t *)p = o->via.u64;
                        return 0;
                }
                if (o->via.u64 > UINT32_MAX)
                        return fail(c, -EBADMSG, "field '%s%s' is out of range", prefix, f->key);
                if (f->kind == FK_U32) {
                        *(uint32_t *)p = (uint32_t)o->via.u64;
                        return 0;
                }
                if (o->via.u64 >= FL_ST_MAX)
                        return fail(c, -EBADMSG, "field '%s%s' has unknown status %" PRIu64, prefix,
                                    f->key, o->via.u64);
                *(enum fl_status *)p = (enum fl_status)o->via.u64;
                return 0;
        case FK_BOOL:
                if (o->type != MSGPACK_OBJECT_BOOLEAN)
                        return fail(c, -EBADMSG, "field '%s%s' must be a boolean", prefix, f->key);
                *(bool *)p = o->via.boolean;
                return 0;
        case FK_PARAMS:
                return decode_params(c, prefix, f->key, o, p, field_count(f, base));
        case FK_LIST:
                return decode_list(c, prefix, f, o, base);
        }
        return fail(c, -EBADMSG, "internal: bad field kind");
}

static bool is_envelope_key(const msgpack_object_str *s)
{
        return str_eq(s, "v") || str_eq(s, "t") || str_eq(s, "seq");
}

/* Decode every key of map o against fields. Unknown keys, keys the message
 * type does not carry and repeated keys are refused: a typo in a field name
 * must never turn into "parameter silently ignored". */
static int decode_map(struct ctx *c, const msgpack_object *o, const struct field *fields,
                      size_t n_fields, void *base, unsigned type_bit, bool skip_envelope,
                      const char *prefix, const char *what, uint32_t *ret_seen)
{
        uint32_t seen = 0;
        char kbuf[48];
        int r;

        for (uint32_t i = 0; i < o->via.map.size; i++) {
                const msgpack_object_kv *kv = &o->via.map.ptr[i];
                const struct field *f = NULL;
                size_t idx;

                if (kv->key.type != MSGPACK_OBJECT_STR)
                        return fail(c, -EBADMSG, "%s has a key that is not a string", what);
                if (skip_envelope && is_envelope_key(&kv->key.via.str))
                        continue;
                for (idx = 0; idx < n_fields; idx++)
                        if (str_eq(&kv->key.via.str, fields[idx].key)) {
                                f = &fields[idx];
                                break;
                        }
                if (!f)
                        return fail(c, -EBADMSG, "unknown field '%s%s' in %s", prefix,
                                    key_repr(&kv->key.via.str, kbuf, sizeof(kbuf)), what);
                if (!(f->allowed & type_bit))
                        return fail(c, -EBADMSG, "field '%s%s' is not valid in %s", prefix, f->key,
                                    what);
                if (seen & (1u << idx))
                        return fail(c, -EBADMSG, "duplicate field '%s%s' in %s", prefix, f->key,
                                    what);
                seen |= 1u << idx;
                r = decode_value(c, prefix, f, &kv->val, base);
                if (r < 0)
                        return r;
        }
        *ret_seen = seen;
        return 0;
}

/* Read "v", "t" and "seq" before anything else and fill what is readable,
 * so that even a refused frame can be answered with the right type and
 * sequence number. Checked in this order: version (it decides how the rest
 * is read), sequence, type. For replies "t" may be absent: that is the
 * answer to a request whose type could not be read. */
static int decode_envelope(struct ctx *c, const msgpack_object *o, bool is_reply, uint32_t *version,
                           enum fl_msg_type *type, uint64_t *seq)
{
        static const char *const keys[3] = {"v", "t", "seq"};
        const msgpack_object *found[3] = {NULL, NULL, NULL};
        const msgpack_object *ov, *ot, *os;
        const char *dup = NULL;
        char tbuf[48];

        for (uint32_t i = 0; i < o->via.map.size; i++) {
                const msgpack_object_kv *kv = &o->via.map.ptr[i];

                if (kv->key.type != MSGPACK_OBJECT_STR)
                        continue; /* refused by the full walk */
                for (size_t k = 0; k < FL_ARRAY_SIZE(keys); k++) {
                        if (!str_eq(&kv->key.via.str, keys[k]))
                                continue;
                        if (found[k])
                                dup = keys[k];
                        else
                                found[k] = &kv->val;
                }
        }
        ov = found[0];
        ot = found[1];
        os = found[2];

        if (ov && ov->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                *version = ov->via.u64 > UINT32_MAX ? UINT32_MAX : (uint32_t)ov->via.u64;
        if (os && os->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                *seq = os->via.u64;
        /* A NUL inside "t" must not turn "apply\0junk" into "apply". */
        if (ot && ot->type == MSGPACK_OBJECT_STR && ot->via.str.size < 16 &&
            !memchr(ot->via.str.ptr, '\0', ot->via.str.size)) {
                char name[16];
                memcpy(name, ot->via.str.ptr, ot->via.str.size);
                name[ot->via.str.size] = '\0';
                *type = fl_msg_type_from_name(name);
        }

        if (dup)
                return fail(c, -EBADMSG, "duplicate field '%s'", dup);
        if (!ov)
                return fail(c, -EBADMSG, "missing field 'v' (protocol version)");
        if (ov->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return fail(c, -EBADMSG, "field 'v' must be an unsigned integer");
        if (ov->via.u64 != FL_PROTO_VERSION)
                return fail(c, -EPROTO,
                            "protocol version %" PRIu64 " not spoken; this peer speaks %d",
                            ov->via.u64, FL_PROTO_VERSION);
        if (!os)
                return fail(c, -EBADMSG, "missing field 'seq'");
        if (os->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return fail(c, -EBADMSG, "field 'seq' must be an unsigned integer");
        if (!ot) {
                if (is_reply)
                        return 0;
                return fail(c, -EBADMSG, "missing field 't' (message type)");
        }
        if (ot->type != MSGPACK_OBJECT_STR)
                return fail(c, -EBADMSG, "field 't' must be a string");
        if (*type == FL_MSG_INVALID)
                return fail(c, -ENOMSG, "unknown message type '%s'",
                            key_repr(&ot->via.str, tbuf, sizeof(tbuf)));
        return 0;
}

/* ---- validation shared by encoder and decoder --------------------------- */

/* Check a struct against a table: strings terminated inside their buffers,
 * counts within caps, required fields non-empty / non-zero. The encoder runs
 * it with code -EINVAL on what the caller built; the decoder with -EBADMSG
 * on what it decoded (where only the "required" rules can still fail).
 * have_seen: the decoder knows which keys were on the wire and can say
 * "missing" instead of "empty". */
static int validate_fields(struct ctx *c, int code, const struct field *fields, size_t n_fields,
                           const void *base, unsigned type_bit, bool enforce_required,
                           bool have_seen, uint32_t seen, const char *prefix, const char *what)
{
        char elem_prefix[64], elem_what[64];
        int r;

        for (size_t i = 0; i < n_fields; i++) {
                const struct field *f = &fields[i];
                const void *p = field_ptr(f, base);
                bool required = enforce_required && (f->required & type_bit);
                bool empty = false;

                if (!(f->allowed & type_bit))
                        continue;

                switch (f->kind) {
                case FK_STR:
                        if (strnlen(p, f->size) >= f->size)
                                return fail(c, code, "field '%s%s' is longer than %zu bytes",
                                            prefix, f->key, f->size - 1);
                        empty = ((const char *)p)[0] == '\0';
                        break;
                case FK_U64:
                        empty = *(const uint64_t *)p == 0;
                        break;
                case FK_U32:
                        empty = *(const uint32_t *)p == 0;
                        break;
                case FK_STATUS:
                        if ((unsigned)*(const enum fl_status *)p >= FL_ST_MAX)
                                return fail(c, code, "field '%s%s' has unknown status %u", prefix,
                                            f->key, (unsigned)*(const enum fl_status *)p);
                        break;
                case FK_BOOL:
                        break;
                case FK_PARAMS: {
                        const struct fl_param *params = *(struct fl_param *const *)p;
                        size_t n = *field_count(f, base);

                        if (n > FL_MAX_PARAMS)
                                return fail(c, code, "field '%s%s' has %zu entries, max %d", prefix,
                                            f->key, n, FL_MAX_PARAMS);
                        if (n > 0 && !params)
                                return fail(c, code, "field '%s%s' has a count but no array",
                                            prefix, f->key);
                        for (size_t j = 0; j < n; j++) {
                                if (strnlen(params[j].key, FL_KEY_LEN) >= FL_KEY_LEN ||
                                    strnlen(params[j].value, FL_VAL_LEN) >= FL_VAL_LEN)
                                        return fail(c, code, "field '%s%s' entry %zu too long",
                                                    prefix, f->key, j);
                                if (params[j].key[0] == '\0')
                                        return fail(c, code, "field '%s%s' has an empty key",
                                                    prefix, f->key);
                                if (fl_params_get(params, j, params[j].key))
                                        return fail(c, code, "field '%s%s' repeats key '%s'",
                                                    prefix, f->key, params[j].key);
                        }
                        empty = n == 0;
                        break;
                }
                case FK_LIST: {
                        const struct sublist *sub = f->sub;
                        const char *arr = *(const char *const *)p;
                        size_t n = *field_count(f, base);

                        if (n > sub->max)
                                return fail(c, code, "field '%s%s' has %zu entries, max %zu",
                                            prefix, f->key, n, sub->max);
                        if (n > 0 && !arr)
                                return fail(c, code, "field '%s%s' has a count but no array",
                                            prefix, f->key);
                        for (size_t j = 0; j < n; j++) {
                                snprintf(elem_prefix, sizeof(elem_prefix), "%s%s[%zu].", prefix,
                                         f->key, j);
                                snprintf(elem_what, sizeof(elem_what), "%s%s[%zu]", prefix, f->key,
                                         j);
                                /* Entries are always complete, whatever the status. */
                                r = validate_fields(c, code, sub->fields, sub->n_fields,
                                                    arr + j * sub->elem_size, ALL_TYPES, true,
                                                    false, 0, elem_prefix, elem_what);
                                if (r < 0)
                                        return r;
                        }
                        empty = n == 0;
                        break;
                }
                }

                if (required && empty) {
                        if (have_seen && !(seen & (1u << i)))
                                return fail(c, code, "missing field '%s%s' in %s", prefix, f->key,
                                            what);
                        if (f->kind == FK_U64 || f->kind == FK_U32)
                                return fail(c, code, "field '%s%s' must be greater than 0 in %s",
                                            prefix, f->key, what);
                        return fail(c, code, "field '%s%s' is missing or empty in %s", prefix,
                                    f->key, what);
                }
        }
        return 0;
}

/* Rules that span fields of a reply. */
static int validate_reply_rules(struct ctx *c, int code, const struct fl_reply *r, const char *what)
{
        if (r->type == FL_MSG_INVALID && r->status == FL_ST_OK)
                return fail(c, code, "a reply without a message type must carry an error status");
        if (r->type == FL_MSG_APPLY) {
                if (r->n_faults > 1)
                        return fail(c, code, "%s carries %zu faults, max 1", what, r->n_faults);
                if (r->status == FL_ST_OK && r->n_faults != 1)
                        return fail(c, code, "%s with status ok must carry the applied fault",
                                    what);
        }
        return 0;
}

static void describe(char *buf, size_t size, enum fl_msg_type t, bool is_reply)
{
        if (t == FL_MSG_INVALID)
                snprintf(buf, size, "%s", is_reply ? "reply" : "request");
        else
                snprintf(buf, size, "%s %s", fl_msg_type_name(t), is_reply ? "reply" : "request");
}

/* ---- decoders ------------------------------------------------------------ */

int fl_request_decode(const void *buf, size_t len, struct fl_request *ret, char *err, size_t errlen)
{
        _cleanup_unpacked_ msgpack_unpacked u = {0};
        struct ctx c = {err, errlen};
        struct fl_request tmp = {0};
        char what[32];
        uint32_t seen = 0;
        int r;

        if (!ret)
                return -EINVAL;
        memset(ret, 0, sizeof(*ret));
        fail(&c, 0, "%s", "");

        r = unpack_frame(&c, buf, len, &u);
        if (r < 0)
                return r;
        r = decode_envelope(&c, &u.data, false, &tmp.version, &tmp.type, &tmp.seq);
        if (r < 0)
                goto fail;
        describe(what, sizeof(what), tmp.type, false);
        r = decode_map(&c, &u.data, request_fields, FL_ARRAY_SIZE(request_fields), &tmp,
                       TYPE_BIT(tmp.type), true, "", what, &seen);
        if (r < 0)
                goto fail;
        r = validate_fields(&c, -EBADMSG, request_fields, FL_ARRAY_SIZE(request_fields), &tmp,
                            TYPE_BIT(tmp.type), true, true, seen, "", what);
        if (r < 0)
                goto fail;

        *ret = tmp;
        return 0;
fail:
        ret->version = tmp.version;
        ret->type = tmp.type;
        ret->seq = tmp.seq;
        fl_request_free(&tmp);
        return r;
}

int fl_reply_decode(const void *buf, size_t len, struct fl_reply *ret, char *err, size_t errlen)
{
        _cleanup_unpacked_ msgpack_unpacked u = {0};
        struct ctx c = {err, errlen};
        struct fl_reply tmp = {0};
        char what[32];
        uint32_t seen = 0;
        int r;

        if (!ret)
                return -EINVAL;
        memset(ret, 0, sizeof(*ret));
        fail(&c, 0, "%s", "");

        r = unpack_frame(&c, buf, len, &u);
        if (r < 0)
                return r;
        r = decode_envelope(&c, &u.data, true, &tmp.version, &tmp.type, &tmp.seq);
        if (r < 0)
                goto fail;
        describe(what, sizeof(what), tmp.type, true);
        r = decode_map(&c, &u.data, reply_fields, FL_ARRAY_SIZE(reply_fields), &tmp,
                       TYPE_BIT(tmp.type), true, "", what, &seen);
        if (r < 0)
                goto fail;
        /* Absent would read as 0, which is "ok": an error must never be
         * mistaken for success, so status has to be on the wire. */
        if (!(seen & (1u << REPLY_STATUS_IDX))) {
                r = fail(&c, -EBADMSG, "missing field 'status' in %s", what);
                goto fail;
        }
        if (tmp.type == FL_MSG_INVALID && tmp.status == FL_ST_OK) {
                r = fail(&c, -EBADMSG, "missing field 't' (message type)");
                goto fail;
        }
        r = validate_fields(&c, -EBADMSG, reply_fields, FL_ARRAY_SIZE(reply_fields), &tmp,
                            TYPE_BIT(tmp.type), tmp.status == FL_ST_OK, true, seen, "", what);
        if (r < 0)
                goto fail;
        r = validate_reply_rules(&c, -EBADMSG, &tmp, what);
        if (r < 0)
                goto fail;

        *ret = tmp;
        return 0;
fail:
        ret->version = tmp.version;
        ret->type = tmp.type;
        ret->seq = tmp.seq;
        fl_reply_free(&tmp);
        return r;
}

/* ---- encoders ------------------------------------------------------------ */

static void sbuffer_destroyp(msgpack_sbuffer *sb)
{
        msgpack_sbuffer_destroy(sb);
}
#define _cleanup_sbuffer_ __attribute__((cleanup(sbuffer_destroyp)))

/* The encoder leaves out empty optional values (the decoder reads absent
 * as empty), and always sends status and booleans, whose zero value means
 * something. */
static bool field_on_wire(const struct field *f, const void *base)
{
        const void *p = field_ptr(f, base);

        switch (f->kind) {
        case FK_STR:
                return ((const char *)p)[0] != '\0';
        case FK_U64:
                return *(const uint64_t *)p != 0;
        case FK_U32:
                return *(const uint32_t *)p != 0;
        case FK_STATUS:
        case FK_BOOL:
                return true;
        case FK_PARAMS:
        case FK_LIST:
                return *field_count(f, base) > 0;
        }
        return false;
}

static int pack_cstr(msgpack_packer *pk, const char *s)
{
        size_t n = strlen(s);

        if (msgpack_pack_str(pk, n) != 0 || msgpack_pack_str_body(pk, s, n) != 0)
                return -ENOMEM;
        return 0;
}

static int pack_key_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
        if (pack_cstr(pk, key) < 0 || msgpack_pack_uint64(pk, v) != 0)
                return -ENOMEM;
        return 0;
}

static size_t count_on_wire(const struct field *fields, size_t n_fields, const void *base,
                            unsigned type_bit)
{
        size_t n = 0;

        for (size_t i = 0; i < n_fields; i++)
                if ((fields[i].allowed & type_bit) && field_on_wire(&fields[i], base))
                        n++;
        return n;
}

/* Emit the key/value pairs of the fields that go on the wire; the caller
 * has already packed the map header (count_on_wire() + its own pairs). */
static int encode_fields(msgpack_packer *pk, const struct field *fields, size_t n_fields,
                         const void *base, unsigned type_bit)
{
        int r;

        for (size_t i = 0; i < n_fields; i++) {
                const struct field *f = &fields[i];
                const void *p = field_ptr(f, base);

                if (!(f->allowed & type_bit) || !field_on_wire(f, base))
                        continue;
                if (pack_cstr(pk, f->key) < 0)
                        return -ENOMEM;

                switch (f->kind) {
                case FK_STR:
                        r = pack_cstr(pk, p);
                        break;
                case FK_U64:
                        r = msgpack_pack_uint64(pk, *(const uint64_t *)p) ? -ENOMEM : 0;
                        break;
                case FK_U32:
                        r = msgpack_pack_uint64(pk, *(const uint32_t *)p) ? -ENOMEM : 0;
                        break;
                case FK_STATUS: {
                        unsigned st = (unsigned)*(const enum fl_status *)p;

                        r = msgpack_pack_uint64(pk, st) ? -ENOMEM : 0;
                        break;
                }
                case FK_BOOL:
                        if (*(const bool *)p)
                                r = msgpack_pack_true(pk) ? -ENOMEM : 0;
                        else
                                r = msgpack_pack_false(pk) ? -ENOMEM : 0;
                        break;
                case FK_PARAMS: {
                        const struct fl_param *params = *(struct fl_param *const *)p;
                        size_t n = *field_count(f, base);

                        r = msgpack_pack_map(pk, n) ? -ENOMEM : 0;
                        for (size_t j = 0; r == 0 && j < n; j++) {
                                r = pack_cstr(pk, params[j].key);
                                if (r == 0)
                                        r = pack_cstr(pk, params[j].value);
                        }
                        break;
                }
                case FK_LIST: {
                        const struct sublist *sub = f->sub;
                        const char *arr = *(const char *const *)p;
                        size_t n = *field_count(f, base);

                        r = msgpack_pack_array(pk, n) ? -ENOMEM : 0;
                        for (size_t j = 0; r == 0 && j < n; j++) {
                                const void *elem = arr + j * sub->elem_size;
                                size_t m =
                                    count_on_wire(sub->fields, sub->n_fields, elem, ALL_TYPES);

                                r = msgpack_pack_map(pk, m) ? -ENOMEM : 0;
                                if (r == 0)
                                        r = encode_fields(pk, sub->fields, sub->n_fields, elem,
                                                          ALL_TYPES);
                        }
                        break;
                }
                default:
                        r = -EINVAL;
                        break;
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Hand the packed frame to the caller, unless it is larger than any peer
 * would accept (a LIST with many large params can get there). */
static int finish_frame(msgpack_sbuffer *sb, void **ret_buf, size_t *ret_len)
{
        if (sb->size > FL_MAX_FRAME)
                return -EINVAL;
        *ret_len = sb->size;
        *ret_buf = msgpack_sbuffer_release(sb);
        return 0;
}

int fl_request_encode(const struct fl_request *r, void **ret_buf, size_t *ret_len)
{
        _cleanup_sbuffer_ msgpack_sbuffer sb;
        msgpack_packer pk;
        unsigned bit;
        size_t n;
        int k;

        msgpack_sbuffer_init(&sb);
        if (!r || !ret_buf || !ret_len)
                return -EINVAL;
        if (r->type <= FL_MSG_INVALID || r->type >= FL_MSG_TYPE_MAX)
                return -EINVAL;
        /* 0 means "the version we speak"; we speak only one. */
        if (r->version != 0 && r->version != FL_PROTO_VERSION)
                return -EINVAL;
        bit = TYPE_BIT(r->type);
        k = validate_fields(NULL, -EINVAL, request_fields, FL_ARRAY_SIZE(request_fields), r, bit,
                            true, false, 0, "", "request");
        if (k < 0)
                return k;

        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        n = 3 + count_on_wire(request_fields, FL_ARRAY_SIZE(request_fields), r, bit);
        if (msgpack_pack_map(&pk, n) != 0 || pack_key_u64(&pk, "v", FL_PROTO_VERSION) < 0 ||
            pack_cstr(&pk, "t") < 0 || pack_cstr(&pk, fl_msg_type_name(r->type)) < 0 ||
            pack_key_u64(&pk, "seq", r->seq) < 0)
                return -ENOMEM;
        k = encode_fields(&pk, request_fields, FL_ARRAY_SIZE(request_fields), r, bit);
        if (k < 0)
                return k;
        return finish_frame(&sb, ret_buf, ret_len);
}

int fl_reply_encode(const struct fl_reply *r, void **ret_buf, size_t *ret_len)
{
        _cleanup_sbuffer_ msgpack_sbuffer sb;
        msgpack_packer pk;
        bool with_type;
        unsigned bit;
        size_t n;
        int k;

        msgpack_sbuffer_init(&sb);
        if (!r || !ret_buf || !ret_len)
                return -EINVAL;
        if ((unsigned)r->type >= FL_MSG_TYPE_MAX)
                return -EINVAL;
        if (r->version != 0 && r->version != FL_PROTO_VERSION)
                return -EINVAL;
        bit = TYPE_BIT(r->type);
        k = validate_fields(NULL, -EINVAL, reply_fields, FL_ARRAY_SIZE(reply_fields), r, bit,
                            r->status == FL_ST_OK, false, 0, "", "reply");
        if (k < 0)
                return k;
        k = validate_reply_rules(NULL, -EINVAL, r, "reply");
        if (k < 0)
                return k;

        /* An error reply to a request whose type could not be read has no
         * type to echo: it goes out without "t". */
        with_type = r->type != FL_MSG_INVALID;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        n = 2 + with_type + count_on_wire(reply_fields, FL_ARRAY_SIZE(reply_fields), r, bit);
        if (msgpack_pack_map(&pk, n) != 0 || pack_key_u64(&pk, "v", FL_PROTO_VERSION) < 0)
                return -ENOMEM;
        if (with_type && (pack_cstr(&pk, "t") < 0 || pack_cstr(&pk, fl_msg_type_name(r->type)) < 0))
                return -ENOMEM;
        if (pack_key_u64(&pk, "seq", r->seq) < 0)
                return -ENOMEM;
        k = encode_fields(&pk, reply_fields, FL_ARRAY_SIZE(reply_fields), r, bit);
        if (k < 0)
                return k;
        return finish_frame(&sb, ret_buf, ret_len);
}
