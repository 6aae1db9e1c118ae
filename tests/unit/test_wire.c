/* Unit tests for common/fl_wire.c.
 *
 * 1. Round trips: every request and reply type, built as a struct, encoded,
 *    decoded, compared field by field (including max-size strings, full
 *    param/cap/fault lists).
 * 2. Malformed frames: messages are described as small key/value tables
 *    (struct tf) that the test packs itself with msgpack-c, so a case is
 *    "base message + one override" (set a key to another value, delete it,
 *    add one). The systematic loops walk every field of every base message:
 *    each wrong msgpack type, each oversize string, each missing required
 *    field, each key the message type must not carry. Raw byte cases cover
 *    what a well-formed packer cannot produce (truncation, bogus counts,
 *    nesting, ext types, trailing bytes).
 * 3. Encoder refusals: structs that break a cap or a rule give -EINVAL and
 *    allocate nothing.
 * Every decode gets an exact-size heap copy of the frame, so ASan catches a
 * decoder reading one byte too far. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <msgpack.h>

#include "fl_util.h"
#include "fl_wire.h"

/* ---- helpers ------------------------------------------------------------- */

static void fill(char *buf, size_t size, char ch)
{
        memset(buf, ch, size - 1);
        buf[size - 1] = '\0';
}

/* Decode a copy of buf that is exactly len bytes long; free what a success
 * returns; on failure check nothing dynamic was left in *ret. */
static int decode_req_copy(const void *buf, size_t len, struct fl_request *ret, char *err,
                           size_t errlen)
{
        void *copy = malloc(len ? len : 1);
        int r;

        assert_non_null(copy);
        if (len)
                memcpy(copy, buf, len);
        r = fl_request_decode(copy, len, ret, err, errlen);
        free(copy);
        if (r < 0) {
                assert_null(ret->params);
                assert_int_equal(ret->n_params, 0);
        }
        return r;
}

static int decode_rep_copy(const void *buf, size_t len, struct fl_reply *ret, char *err,
                           size_t errlen)
{
        void *copy = malloc(len ? len : 1);
        int r;

        assert_non_null(copy);
        if (len)
                memcpy(copy, buf, len);
        r = fl_reply_decode(copy, len, ret, err, errlen);
        free(copy);
        if (r < 0) {
                assert_null(ret->caps);
                assert_null(ret->faults);
                assert_int_equal(ret->n_caps, 0);
                assert_int_equal(ret->n_faults, 0);
        }
        return r;
}

static int decode_any(bool reply, const void *buf, size_t len, char *err, size_t errlen)
{
        int r;

        if (reply) {
                struct fl_reply rep;
                r = decode_rep_copy(buf, len, &rep, err, errlen);
                fl_reply_free(&rep);
        } else {
                struct fl_request req;
                r = decode_req_copy(buf, len, &req, err, errlen);
                fl_request_free(&req);
        }
        return r;
}

/* ---- struct comparison --------------------------------------------------- */

static void assert_params_equal(const struct fl_param *a, size_t na, const struct fl_param *b,
                                size_t nb)
{
        assert_int_equal(na, nb);
        for (size_t i = 0; i < na; i++) {
                assert_string_equal(a[i].key, b[i].key);
                assert_string_equal(a[i].value, b[i].value);
        }
}

static void assert_request_equal(const struct fl_request *in, const struct fl_request *out)
{
        assert_int_equal(out->version, FL_PROTO_VERSION);
        assert_int_equal(in->type, out->type);
        assert_int_equal(in->seq, out->seq);
        assert_string_equal(in->requester, out->requester);
        assert_string_equal(in->kind, out->kind);
        assert_int_equal(in->duration_ms, out->duration_ms);
        assert_params_equal(in->params, in->n_params, out->params, out->n_params);
        assert_string_equal(in->lease, out->lease);
        assert_int_equal(in->lease_ttl_ms, out->lease_ttl_ms);
        assert_string_equal(in->fault_id, out->fault_id);
}

static void assert_fault_equal(const struct fl_fault_info *a, const struct fl_fault_info *b)
{
        assert_string_equal(a->id, b->id);
        assert_string_equal(a->kind, b->kind);
        assert_string_equal(a->lease, b->lease);
        assert_string_equal(a->target, b->target);
        assert_string_equal(a->backend, b->backend);
        assert_string_equal(a->state, b->state);
        assert_int_equal(a->started_ms, b->started_ms);
        assert_int_equal(a->expires_ms, b->expires_ms);
        assert_params_equal(a->params, a->n_params, b->params, b->n_params);
}

static void assert_reply_equal(const struct fl_reply *in, const struct fl_reply *out)
{
        assert_int_equal(out->version, FL_PROTO_VERSION);
        assert_int_equal(in->type, out->type);
        assert_int_equal(in->seq, out->seq);
        assert_int_equal(in->status, out->status);
        assert_string_equal(in->msg, out->msg);
        assert_int_equal(in->proto_version, out->proto_version);
        assert_string_equal(in->agent_version, out->agent_version);
        assert_string_equal(in->hostname, out->hostname);
        assert_int_equal(in->n_caps, out->n_caps);
        for (size_t i = 0; i < in->n_caps; i++) {
                assert_string_equal(in->caps[i].kind, out->caps[i].kind);
                assert_int_equal(in->caps[i].available, out->caps[i].available);
                assert_string_equal(in->caps[i].reason, out->caps[i].reason);
        }
        assert_int_equal(in->n_faults, out->n_faults);
        for (size_t i = 0; i < in->n_faults; i++)
                assert_fault_equal(&in->faults[i], &out->faults[i]);
        assert_int_equal(in->count, out->count);
}

static void roundtrip_request(const struct fl_request *in)
{
        struct fl_request out;
        char err[256];
        void *buf = NULL;
        size_t len = 0;

        assert_int_equal(fl_request_encode(in, &buf, &len), 0);
        assert_non_null(buf);
        assert_true(len > 0 && len <= FL_MAX_FRAME);
        if (decode_req_copy(buf, len, &out, err, sizeof(err)) != 0)
                fail_msg("decode of encoded %s request failed: %s", fl_msg_type_name(in->type),
                         err);
        assert_request_equal(in, &out);
        fl_request_free(&out);
        free(buf);
}

static void roundtrip_reply(const struct fl_reply *in)
{
        struct fl_reply out;
        char err[256];
        void *buf = NULL;
        size_t len = 0;

        assert_int_equal(fl_reply_encode(in, &buf, &len), 0);
        assert_non_null(buf);
        assert_true(len > 0 && len <= FL_MAX_FRAME);
        if (decode_rep_copy(buf, len, &out, err, sizeof(err)) != 0)
                fail_msg("decode of encoded %s reply failed: %s", fl_msg_type_name(in->type), err);
        assert_reply_equal(in, &out);
        fl_reply_free(&out);
        free(buf);
}

/* ---- struct builders ----------------------------------------------------- */

static void add_params(struct fl_param **p, size_t *n, size_t count, bool max)
{
        for (size_t i = 0; i < count; i++) {
                char key[FL_KEY_LEN], value[FL_VAL_LEN];

                if (max) {
                        fill(key, sizeof(key), 'k');
                        fill(value, sizeof(value), 'v');
                        /* keys must differ: stamp the index at the front */
                        key[0] = (char)('A' + i % 26);
                        key[1] = (char)('A' + i / 26);
                } else {
                        snprintf(key, sizeof(key), "key%zu", i);
                        snprintf(value, sizeof(value), "value %zu with spaces/:=", i);
                }
                assert_int_equal(fl_params_add(p, n, key, value), 0);
        }
}

static void make_fault(struct fl_fault_info *f, size_t i, bool max)
{
        memset(f, 0, sizeof(*f));
        if (max) {
                fill(f->id, sizeof(f->id), 'i');
                fill(f->kind, sizeof(f->kind), 'k');
                fill(f->lease, sizeof(f->lease), 'l');
                fill(f->target, sizeof(f->target), 't');
                fill(f->backend, sizeof(f->backend), 'b');
                fill(f->state, sizeof(f->state), 's');
                f->started_ms = UINT64_MAX - 1;
                f->expires_ms = UINT64_MAX;
                add_params(&f->params, &f->n_params, 4, true);
        } else {
                snprintf(f->id, sizeof(f->id), "f-%zu", i);
                snprintf(f->kind, sizeof(f->kind), "network.delay");
                snprintf(f->lease, sizeof(f->lease), "lease-1");
                snprintf(f->target, sizeof(f->target), "eth0 egress dst 10.0.0.0/8");
                snprintf(f->backend, sizeof(f->backend), "netem");
                snprintf(f->state, sizeof(f->state), "active");
                f->started_ms = 1763892000123ULL + i;
                f->expires_ms = 1763892060123ULL + i;
                add_params(&f->params, &f->n_params, i % 3, false);
        }
}

/* ---- round trips --------------------------------------------------------- */

static void test_roundtrip_requests(void **state)
{
        struct fl_request r;
        (void)state;

        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_HELLO;
        r.seq = 1;
        snprintf(r.requester, sizeof(r.requester), "coord@bastion");
        roundtrip_request(&r);

        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_HELLO; /* nothing optional at all, seq 0 */
        roundtrip_request(&r);

        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_APPLY;
        r.version = FL_PROTO_VERSION;
        r.seq = 42;
        snprintf(r.requester, sizeof(r.requester), "coord");
        snprintf(r.kind, sizeof(r.kind), "network.delay");
        r.duration_ms = 30000;
        add_params(&r.params, &r.n_params, 3, false);
        snprintf(r.lease, sizeof(r.lease), "lease-abc");
        r.lease_ttl_ms = 15000;
        roundtrip_request(&r);
        fl_request_free(&r);

        /* Every string at its maximum, every param at its maximum. */
        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_APPLY;
        r.seq = UINT64_MAX;
        fill(r.requester, sizeof(r.requester), 'r');
        fill(r.kind, sizeof(r.kind), 'k');
        r.duration_ms = UINT64_MAX;
        add_params(&r.params, &r.n_params, FL_MAX_PARAMS, true);
        fill(r.lease, sizeof(r.lease), 'l');
        r.lease_ttl_ms = UINT64_MAX;
        roundtrip_request(&r);
        fl_request_free(&r);

        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_REVERT;
        r.seq = 3;
        fill(r.fault_id, sizeof(r.fault_id), 'f');
        roundtrip_request(&r);

        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_LIST;
        r.seq = 4;
        snprintf(r.requester, sizeof(r.requester), "cron");
        roundtrip_request(&r);

        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_RENEW;
        r.seq = 5;
        snprintf(r.lease, sizeof(r.lease), "lease-abc");
        r.lease_ttl_ms = 1;
        roundtrip_request(&r);

        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_ABORT; /* everything */
        r.seq = 6;
        roundtrip_request(&r);

        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_ABORT; /* one lease */
        r.seq = 7;
        snprintf(r.lease, sizeof(r.lease), "lease-abc");
        roundtrip_request(&r);
}

static void test_roundtrip_replies(void **state)
{
        struct fl_reply r;
        (void)state;

        /* HELLO with a few caps, one unavailable. */
        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_HELLO;
        r.seq = 1;
        snprintf(r.msg, sizeof(r.msg), "hello");
        r.proto_version = FL_PROTO_VERSION;
        snprintf(r.agent_version, sizeof(r.agent_version), "0.1.0");
        snprintf(r.hostname, sizeof(r.hostname), "db-1.example");
        r.n_caps = 3;
        r.caps = calloc(r.n_caps, sizeof(*r.caps));
        assert_non_null(r.caps);
        snprintf(r.caps[0].kind, FL_KIND_LEN, "network.delay");
        r.caps[0].available = true;
        snprintf(r.caps[1].kind, FL_KIND_LEN, "network.loss");
        r.caps[1].available = true;
        snprintf(r.caps[2].kind, FL_KIND_LEN, "resource.cpu");
        snprintf(r.caps[2].reason, FL_MSG_LEN, "no cgroup v2 cpu controller");
        r.count = 3; /* active faults */
        roundtrip_reply(&r);
        fl_reply_free(&r);

        /* HELLO at every cap. */
        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_HELLO;
        r.seq = UINT64_MAX;
        fill(r.msg, sizeof(r.msg), 'm');
        r.proto_version = UINT32_MAX;
        fill(r.agent_version, sizeof(r.agent_version), 'a');
        fill(r.hostname, sizeof(r.hostname), 'h');
        r.n_caps = FL_MAX_CAPS;
        r.caps = calloc(r.n_caps, sizeof(*r.caps));
        assert_non_null(r.caps);
        for (size_t i = 0; i < r.n_caps; i++) {
                fill(r.caps[i].kind, FL_KIND_LEN, 'k');
                r.caps[i].available = i % 2;
                fill(r.caps[i].reason, FL_MSG_LEN, 'r');
        }
        roundtrip_reply(&r);
        fl_reply_free(&r);

        /* APPLY ok: exactly the applied fault. */
        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_APPLY;
        r.seq = 2;
        r.n_faults = 1;
        r.faults = calloc(1, sizeof(*r.faults));
        assert_non_null(r.faults);
        make_fault(&r.faults[0], 2, false);
        roundtrip_reply(&r);
        fl_reply_free(&r);

        /* APPLY refused: no fault, a reason. */
        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_APPLY;
        r.seq = 3;
        r.status = FL_ST_REFUSED;
        snprintf(r.msg, sizeof(r.msg), "target pid 1 is protected");
        roundtrip_reply(&r);

        /* LIST with max-size faults, depth 4 (reply/faults/fault/params). */
        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_LIST;
        r.seq = 4;
        r.n_faults = 8;
        r.faults = calloc(r.n_faults, sizeof(*r.faults));
        assert_non_null(r.faults);
        for (size_t i = 0; i < r.n_faults; i++)
                make_fault(&r.faults[i], i, i % 2);
        roundtrip_reply(&r);
        fl_reply_free(&r);

        /* LIST at FL_MAX_FAULTS entries. */
        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_LIST;
        r.seq = 5;
        r.n_faults = FL_MAX_FAULTS;
        r.faults = calloc(r.n_faults, sizeof(*r.faults));
        assert_non_null(r.faults);
        for (size_t i = 0; i < r.n_faults; i++)
                make_fault(&r.faults[i], i, false);
        r.count = 300; /* more active than one reply can list */
        roundtrip_reply(&r);
        fl_reply_free(&r);

        /* LIST with nothing active. */
        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_LIST;
        r.seq = 6;
        roundtrip_reply(&r);

        static const enum fl_msg_type counted[] = {FL_MSG_REVERT, FL_MSG_RENEW, FL_MSG_ABORT};
        for (size_t i = 0; i < FL_ARRAY_SIZE(counted); i++) {
                memset(&r, 0, sizeof(r));
                r.type = counted[i];
                r.seq = 10 + i;
                r.count = (uint32_t)i * 7;
                roundtrip_reply(&r);
                r.count = UINT32_MAX;
                roundtrip_reply(&r);
        }

        /* Every status, on every type, as a bare error/ok envelope where the
         * type allows it. */
        for (int st = 1; st < FL_ST_MAX; st++)
                for (int t = FL_MSG_INVALID; t < FL_MSG_TYPE_MAX; t++) {
                        memset(&r, 0, sizeof(r));
                        r.type = (enum fl_msg_type)t;
                        r.seq = (uint64_t)(st * 100 + t);
                        r.status = (enum fl_status)st;
                        snprintf(r.msg, sizeof(r.msg), "%s", fl_status_name(r.status));
                        roundtrip_reply(&r);
                }
}

/* ---- message descriptions for the malformed-frame tests ------------------ */

enum tv_kind {
        TV_UINT,
        TV_NEG,
        TV_STR,
        TV_ASTR, /* u bytes of 'a' */
        TV_STRNUL,
        TV_BOOL,
        TV_NIL,
        TV_FLOAT,
        TV_BIN,
        TV_ARR0,
        TV_MAP0,
        TV_PARAMS, /* u entries; s names a variant */
        TV_MAPS,   /* array of u maps described by sub */
};

struct tf;
struct tv {
        enum tv_kind k;
        uint64_t u;
        const char *s;
        const struct tf *sub;
};
struct tf {
        const char *key; /* NULL ends a table */
        struct tv v;
        bool req;   /* decoding without it must fail */
        size_t cap; /* string buffer size incl. NUL, 0 if not a string */
};

enum op { OP_NONE, OP_SET, OP_DEL, OP_ADD };
/* path: keys from the top; an override on a key inside an array of maps
 * applies to every element. */
struct ovr {
        const char *path[3];
        enum op op;
        struct tv v;
};

/* One-line initializer macros: clang-format would spread each over 4 lines. */
/* clang-format off */
#define U(x)         {TV_UINT, (x), NULL, NULL}
#define S(x)         {TV_STR, 0, (x), NULL}
#define A(n)         {TV_ASTR, (n), NULL, NULL}
#define BOOLV(x)     {TV_BOOL, (x), NULL, NULL}
#define PARAMS(n, s) {TV_PARAMS, (n), (s), NULL}
#define MAPS(n, sub) {TV_MAPS, (n), NULL, (sub)}
#define V_NEG        {TV_NEG, 0, NULL, NULL}
#define V_NIL        {TV_NIL, 0, NULL, NULL}
#define V_FLOAT      {TV_FLOAT, 0, NULL, NULL}
#define V_BIN        {TV_BIN, 0, NULL, NULL}
#define V_ARR0       {TV_ARR0, 0, NULL, NULL}
#define V_MAP0       {TV_MAP0, 0, NULL, NULL}
#define V_STRNUL     {TV_STRNUL, 0, NULL, NULL}

#define ENV(type)  {"v", U(1), true, 0}, {"t", S(type), true, 0}, {"seq", U(7), true, 0}
#define RENV(type) ENV(type), {"status", U(0), true, 0}, {"msg", S("fine"), false, FL_MSG_LEN}
#define END        {NULL, U(0), false, 0}
/* clang-format on */

static const struct tf req_hello[] = {ENV("hello"), {"from", S("coord"), false, FL_NAME_LEN}, END};
static const struct tf req_apply[] = {
    ENV("apply"),
    {"from", S("coord"), false, FL_NAME_LEN},
    {"kind", S("network.delay"), true, FL_KIND_LEN},
    {"dur", U(5000), true, 0},
    {"params", PARAMS(2, NULL), false, 0},
    {"lease", S("lease-1"), true, FL_ID_LEN},
    {"ttl", U(10000), true, 0},
    END,
};
static const struct tf req_revert[] = {
    ENV("revert"),
    {"from", S("coord"), false, FL_NAME_LEN},
    {"id", S("f-1"), true, FL_ID_LEN},
    END,
};
static const struct tf req_list[] = {ENV("list"), {"from", S("coord"), false, FL_NAME_LEN}, END};
static const struct tf req_renew[] = {
    ENV("renew"),
    {"from", S("coord"), false, FL_NAME_LEN},
    {"lease", S("lease-1"), true, FL_ID_LEN},
    {"ttl", U(10000), true, 0},
    END,
};
static const struct tf req_abort[] = {
    ENV("abort"),
    {"from", S("coord"), false, FL_NAME_LEN},
    {"lease", S("lease-1"), false, FL_ID_LEN},
    END,
};

static const struct tf fault_map[] = {
    {"id", S("f-1"), true, FL_ID_LEN},
    {"kind", S("process.kill"), true, FL_KIND_LEN},
    {"lease", S("lease-1"), false, FL_ID_LEN},
    {"target", S("pid 1234 (nginx)"), false, FL_NAME_LEN},
    {"backend", S("pidfd"), false, FL_KIND_LEN},
    {"state", S("active"), false, 16},
    {"start", U(1763892000123ULL), false, 0},
    {"exp", U(1763892060123ULL), false, 0},
    {"params", PARAMS(1, NULL), false, 0},
    END,
};
static const struct tf cap_map[] = {
    {"kind", S("network.delay"), true, FL_KIND_LEN},
    {"ok", BOOLV(false), false, 0},
    {"why", S("no sch_netem"), false, FL_MSG_LEN},
    END,
};

static const struct tf rep_hello[] = {
    RENV("hello"),
    {"proto", U(1), true, 0},
    {"agent", S("0.1.0"), true, 32},
    {"host", S("db-1"), true, FL_NAME_LEN},
    {"caps", MAPS(2, cap_map), false, 0},
    {"count", U(4), false, 0},
    END,
};
static const struct tf rep_apply[] = {RENV("apply"), {"faults", MAPS(1, fault_map), true, 0}, END};
static const struct tf rep_revert[] = {RENV("revert"), {"count", U(1), false, 0}, END};
static const struct tf rep_list[] = {
    RENV("list"),
    {"faults", MAPS(2, fault_map), false, 0},
    {"count", U(2), false, 0},
    END,
};
static const struct tf rep_renew[] = {RENV("renew"), {"count", U(2), false, 0}, END};
static const struct tf rep_abort[] = {RENV("abort"), {"count", U(3), false, 0}, END};

static const struct {
        const char *name;
        bool reply;
        const struct tf *fields;
} bases[] = {
    {"hello request", false, req_hello},   {"apply request", false, req_apply},
    {"revert request", false, req_revert}, {"list request", false, req_list},
    {"renew request", false, req_renew},   {"abort request", false, req_abort},
    {"hello reply", true, rep_hello},      {"apply reply", true, rep_apply},
    {"revert reply", true, rep_revert},    {"list reply", true, rep_list},
    {"renew reply", true, rep_renew},      {"abort reply", true, rep_abort},
};

/* ---- packing descriptions ------------------------------------------------ */

static void pack_str_n(msgpack_packer *pk, const char *s, size_t n)
{
        assert_int_equal(msgpack_pack_str(pk, n), 0);
        assert_int_equal(msgpack_pack_str_body(pk, s, n), 0);
}
static void pack_cstr(msgpack_packer *pk, const char *s)
{
        pack_str_n(pk, s, strlen(s));
}

static void pack_params(msgpack_packer *pk, uint64_t n, const char *variant)
{
        const char *v = variant ? variant : "";
        char key[FL_KEY_LEN + 8], value[FL_VAL_LEN + 8];

        assert_int_equal(msgpack_pack_map(pk, n), 0);
        for (uint64_t i = 0; i < n; i++) {
                snprintf(key, sizeof(key), "k%llu", (unsigned long long)i);
                snprintf(value, sizeof(value), "v%llu", (unsigned long long)i);
                if (i == 0 && strcmp(v, "longkey") == 0)
                        fill(key, FL_KEY_LEN + 1, 'k'); /* FL_KEY_LEN bytes */
                if (i == 0 && strcmp(v, "maxkey") == 0)
                        fill(key, FL_KEY_LEN, 'k');
                if (i == 0 && strcmp(v, "longval") == 0)
                        fill(value, FL_VAL_LEN + 1, 'v');
                if (i == 0 && strcmp(v, "maxval") == 0)
                        fill(value, FL_VAL_LEN, 'v');
                if (i == 0 && strcmp(v, "emptykey") == 0)
                        key[0] = '\0';
                if (i == 1 && strcmp(v, "dupkey") == 0)
                        snprintf(key, sizeof(key), "k0");

                if (i == 0 && strcmp(v, "intkey") == 0)
                        assert_int_equal(msgpack_pack_uint64(pk, 5), 0);
                else
                        pack_cstr(pk, key);
                if (i == 0 && strcmp(v, "intval") == 0)
                        assert_int_equal(msgpack_pack_uint64(pk, 5), 0);
                else if (i == 0 && strcmp(v, "nulval") == 0)
                        pack_str_n(pk, "a\0b", 3);
                else
                        pack_cstr(pk, value);
        }
}

static void pack_map_fields(msgpack_packer *pk, const struct tf *fields, const struct ovr *o,
                            unsigned lvl);

static void pack_value(msgpack_packer *pk, const struct tv *v, const struct ovr *o, unsigned lvl)
{
        switch (v->k) {
        case TV_UINT:
                assert_int_equal(msgpack_pack_uint64(pk, v->u), 0);
                break;
        case TV_NEG:
                assert_int_equal(msgpack_pack_int64(pk, -1), 0);
                break;
        case TV_STR:
                pack_cstr(pk, v->s);
                break;
        case TV_ASTR: {
                char *s = malloc(v->u + 1);
                assert_non_null(s);
                memset(s, 'a', v->u);
                pack_str_n(pk, s, v->u);
                free(s);
                break;
        }
        case TV_STRNUL:
                pack_str_n(pk, "ab\0cd", 5);
                break;
        case TV_BOOL:
                assert_int_equal(v->u ? msgpack_pack_true(pk) : msgpack_pack_false(pk), 0);
                break;
        case TV_NIL:
                assert_int_equal(msgpack_pack_nil(pk), 0);
                break;
        case TV_FLOAT:
                assert_int_equal(msgpack_pack_double(pk, 1.5), 0);
                break;
        case TV_BIN:
                assert_int_equal(msgpack_pack_bin(pk, 3), 0);
                assert_int_equal(msgpack_pack_bin_body(pk, "abc", 3), 0);
                break;
        case TV_ARR0:
                assert_int_equal(msgpack_pack_array(pk, 0), 0);
                break;
        case TV_MAP0:
                assert_int_equal(msgpack_pack_map(pk, 0), 0);
                break;
        case TV_PARAMS:
                pack_params(pk, v->u, v->s);
                break;
        case TV_MAPS:
                assert_int_equal(msgpack_pack_array(pk, v->u), 0);
                for (uint64_t i = 0; i < v->u; i++)
                        pack_map_fields(pk, v->sub, o, lvl);
                break;
        }
}

static void pack_map_fields(msgpack_packer *pk, const struct tf *fields, const struct ovr *o,
                            unsigned lvl)
{
        /* The override acts at this level if its path ends here. */
        const struct ovr *here = (o && o->path[lvl] && !o->path[lvl + 1]) ? o : NULL;
        size_t n = 0;

        for (const struct tf *f = fields; f->key; f++)
                if (!(here && here->op == OP_DEL && strcmp(f->key, here->path[lvl]) == 0))
                        n++;
        if (here && here->op == OP_ADD)
                n++;

        assert_int_equal(msgpack_pack_map(pk, n), 0);
        for (const struct tf *f = fields; f->key; f++) {
                bool match = here && strcmp(f->key, here->path[lvl]) == 0;

                if (match && here->op == OP_DEL)
                        continue;
                pack_cstr(pk, f->key);
                if (match && here->op == OP_SET)
                        pack_value(pk, &here->v, NULL, 0);
                else if (o && o->path[lvl] && o->path[lvl + 1] && strcmp(f->key, o->path[lvl]) == 0)
                        pack_value(pk, &f->v, o, lvl + 1);
                else
                        pack_value(pk, &f->v, NULL, 0);
        }
        if (here && here->op == OP_ADD) {
                pack_cstr(pk, here->path[lvl]);
                pack_value(pk, &here->v, NULL, 0);
        }
}

/* Pack fields with override o into a malloc'd frame. */
static void *build(const struct tf *fields, const struct ovr *o, size_t *ret_len)
{
        msgpack_sbuffer sb;
        msgpack_packer pk;

        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        pack_map_fields(&pk, fields, o, 0);
        *ret_len = sb.size;
        return msgpack_sbuffer_release(&sb);
}

static int build_and_decode(bool reply, const struct tf *fields, const struct ovr *o, char *err,
                            size_t errlen)
{
        size_t len;
        void *buf = build(fields, o, &len);
        int r = decode_any(reply, buf, len, err, errlen);

        free(buf);
        return r;
}

static void expect(const char *what, bool reply, const struct tf *fields, const struct ovr *o,
                   int want)
{
        char err[512] = "";
        int r = build_and_decode(reply, fields, o, err, sizeof(err));

        if (r != want)
                fail_msg("%s: override %s%s%s op %d: got %d, want %d (%s)", what,
                         o && o->path[0] ? o->path[0] : "-", o && o->path[1] ? "." : "",
                         o && o->path[1] ? o->path[1] : "", o ? (int)o->op : 0, r, want, err);
        /* Every refusal says why. */
        if (r < 0)
                assert_true(err[0] != '\0');
}

/* ---- systematic malformed-frame tests ------------------------------------ */

static void test_bases_decode(void **state)
{
        (void)state;
        for (size_t i = 0; i < FL_ARRAY_SIZE(bases); i++)
                expect(bases[i].name, bases[i].reply, bases[i].fields, NULL, 0);
}

static char category(enum tv_kind k)
{
        switch (k) {
        case TV_UINT:
                return 'u';
        case TV_STR:
        case TV_ASTR:
                return 's';
        case TV_BOOL:
                return 'b';
        case TV_PARAMS:
        case TV_MAP0:
                return 'm';
        case TV_MAPS:
        case TV_ARR0:
                return 'a';
        default:
                return (char)('0' + (int)k); /* unique */
        }
}

static const struct tv wrong_values[] = {
    U(1), V_NEG, S("x"), BOOLV(true), V_NIL, V_FLOAT, V_BIN, V_ARR0, V_MAP0,
};

/* For one table (top level, or nested under prefix): every field gets every
 * wrong msgpack type, strings get one byte over their cap and exactly their
 * cap, required fields get deleted. */
static void mutate_fields(const char *name, bool reply, const struct tf *top, const char *prefix,
                          const struct tf *fields)
{
        for (const struct tf *f = fields; f->key; f++) {
                struct ovr o = {{NULL, NULL, NULL}, OP_SET, U(0)};
                char what[128];

                if (prefix) {
                        o.path[0] = prefix;
                        o.path[1] = f->key;
                } else {
                        o.path[0] = f->key;
                }
                snprintf(what, sizeof(what), "%s", name);

                for (size_t w = 0; w < FL_ARRAY_SIZE(wrong_values); w++) {
                        if (category(wrong_values[w].k) == category(f->v.k))
                                continue;
                        o.op = OP_SET;
                        o.v = wrong_values[w];
                        expect(what, reply, top, &o, -EBADMSG);
                }

                if (f->cap) {
                        o.op = OP_SET;
                        o.v = (struct tv)A(f->cap);
                        expect(what, reply, top, &o, -EMSGSIZE);
                        o.v = (struct tv)A(f->cap - 1);
                        expect(what, reply, top, &o, 0);
                        o.v = (struct tv)V_STRNUL;
                        expect(what, reply, top, &o, -EBADMSG);
                }

                if (f->req) {
                        o.op = OP_DEL;
                        expect(what, reply, top, &o, -EBADMSG);
                } else {
                        o.op = OP_DEL;
                        expect(what, reply, top, &o, 0);
                }

                /* The same key twice. */
                o.op = OP_ADD;
                o.v = f->v;
                expect(what, reply, top, &o, -EBADMSG);
        }
}

static void test_wrong_type_oversize_missing(void **state)
{
        (void)state;
        for (size_t i = 0; i < FL_ARRAY_SIZE(bases); i++)
                mutate_fields(bases[i].name, bases[i].reply, bases[i].fields, NULL,
                              bases[i].fields);
        mutate_fields("hello reply caps[]", true, rep_hello, "caps", cap_map);
        mutate_fields("list reply faults[]", true, rep_list, "faults", fault_map);
        mutate_fields("apply reply faults[]", true, rep_apply, "faults", fault_map);
}

/* Unknown keys, and keys valid in some message but not in this one. */
static void test_unknown_and_foreign_keys(void **state)
{
        static const char *const all_keys[] = {
            "from",  "kind", "dur",  "params", "lease", "ttl",   "id", "status", "msg",  "proto",
            "agent", "host", "caps", "faults", "count", "bogus", "V",  "",       "seq2",
        };
        (void)state;

        for (size_t i = 0; i < FL_ARRAY_SIZE(bases); i++)
                for (size_t k = 0; k < FL_ARRAY_SIZE(all_keys); k++) {
                        bool present = false;
                        struct ovr o = {{all_keys[k], NULL, NULL}, OP_ADD, S("x")};

                        for (const struct tf *f = bases[i].fields; f->key; f++)
                                present |= strcmp(f->key, all_keys[k]) == 0;
                        if (present)
                                continue;
                        expect(bases[i].name, bases[i].reply, bases[i].fields, &o, -EBADMSG);
                }

        struct ovr o = {{"faults", "bogus", NULL}, OP_ADD, S("x")};
        expect("list reply", true, rep_list, &o, -EBADMSG);
        o.path[0] = "caps";
        expect("hello reply", true, rep_hello, &o, -EBADMSG);
        o.path[1] = "params"; /* a request key inside a cap */
        expect("hello reply", true, rep_hello, &o, -EBADMSG);

        /* The error names the key. */
        char err[256];
        struct ovr ob = {{"flavour", NULL, NULL}, OP_ADD, S("x")};
        assert_int_equal(build_and_decode(false, req_apply, &ob, err, sizeof(err)), -EBADMSG);
        assert_non_null(strstr(err, "flavour"));
        struct ovr ot = {{"dur", NULL, NULL}, OP_SET, S("5s")};
        assert_int_equal(build_and_decode(false, req_apply, &ot, err, sizeof(err)), -EBADMSG);
        assert_non_null(strstr(err, "dur"));
        struct ovr os = {{"lease", NULL, NULL}, OP_SET, A(FL_ID_LEN)};
        assert_int_equal(build_and_decode(false, req_apply, &os, err, sizeof(err)), -EMSGSIZE);
        assert_non_null(strstr(err, "lease"));
        struct ovr om = {{"kind", NULL, NULL}, OP_DEL, U(0)};
        assert_int_equal(build_and_decode(false, req_apply, &om, err, sizeof(err)), -EBADMSG);
        assert_non_null(strstr(err, "kind"));
}

/* Hand-picked cases: values of the right type that are still wrong. */
static void test_value_rules(void **state)
{
        static const struct {
                const char *name;
                bool reply;
                const struct tf *base;
                struct ovr o;
                int want;
        } cases[] = {
            {"dur 0", false, req_apply, {{"dur"}, OP_SET, U(0)}, -EBADMSG},
            {"ttl 0", false, req_apply, {{"ttl"}, OP_SET, U(0)}, -EBADMSG},
            {"renew ttl 0", false, req_renew, {{"ttl"}, OP_SET, U(0)}, -EBADMSG},
            {"empty kind", false, req_apply, {{"kind"}, OP_SET, S("")}, -EBADMSG},
            {"empty lease", false, req_apply, {{"lease"}, OP_SET, S("")}, -EBADMSG},
            {"empty id", false, req_revert, {{"id"}, OP_SET, S("")}, -EBADMSG},
            {"abort empty lease", false, req_abort, {{"lease"}, OP_SET, S("")}, 0},
            {"v as string", false, req_hello, {{"v"}, OP_SET, S("1")}, -EBADMSG},
            {"v negative", false, req_hello, {{"v"}, OP_SET, V_NEG}, -EBADMSG},
            {"32 params", false, req_apply, {{"params"}, OP_SET, PARAMS(32, NULL)}, 0},
            {"33 params", false, req_apply, {{"params"}, OP_SET, PARAMS(33, NULL)}, -EMSGSIZE},
            {"0 params", false, req_apply, {{"params"}, OP_SET, PARAMS(0, NULL)}, 0},
            {"param key cap", false, req_apply, {{"params"}, OP_SET, PARAMS(1, "maxkey")}, 0},
            {"param key over",
             false,
             req_apply,
             {{"params"}, OP_SET, PARAMS(1, "longkey")},
             -EMSGSIZE},
            {"param value cap", false, req_apply, {{"params"}, OP_SET, PARAMS(1, "maxval")}, 0},
            {"param value over",
             false,
             req_apply,
             {{"params"}, OP_SET, PARAMS(1, "longval")},
             -EMSGSIZE},
            {"param empty key",
             false,
             req_apply,
             {{"params"}, OP_SET, PARAMS(1, "emptykey")},
             -EBADMSG},
            {"param dup key",
             false,
             req_apply,
             {{"params"}, OP_SET, PARAMS(2, "dupkey")},
             -EBADMSG},
            {"param int key",
             false,
             req_apply,
             {{"params"}, OP_SET, PARAMS(2, "intkey")},
             -EBADMSG},
            {"param int value",
             false,
             req_apply,
             {{"params"}, OP_SET, PARAMS(2, "intval")},
             -EBADMSG},
            {"param NUL value",
             false,
             req_apply,
             {{"params"}, OP_SET, PARAMS(2, "nulval")},
             -EBADMSG},
            {"fault params over",
             true,
             rep_list,
             {{"faults", "params"}, OP_SET, PARAMS(33, NULL)},
             -EMSGSIZE},
            {"64 caps", true, rep_hello, {{"caps"}, OP_SET, MAPS(64, cap_map)}, 0},
            {"65 caps", true, rep_hello, {{"caps"}, OP_SET, MAPS(65, cap_map)}, -EMSGSIZE},
            {"256 faults", true, rep_list, {{"faults"}, OP_SET, MAPS(256, fault_map)}, 0},
            {"257 faults", true, rep_list, {{"faults"}, OP_SET, MAPS(257, fault_map)}, -EMSGSIZE},
            {"apply reply 2 faults",
             true,
             rep_apply,
             {{"faults"}, OP_SET, MAPS(2, fault_map)},
             -EBADMSG},
            {"apply reply 0 faults", true, rep_apply, {{"faults"}, OP_SET, V_ARR0}, -EBADMSG},
            {"status max", true, rep_revert, {{"status"}, OP_SET, U(FL_ST_MAX)}, -EBADMSG},
            {"status 2^33", true, rep_revert, {{"status"}, OP_SET, U(1ULL << 33)}, -EBADMSG},
            {"count 2^32", true, rep_revert, {{"count"}, OP_SET, U(1ULL << 32)}, -EBADMSG},
            {"count in apply reply", true, rep_apply, {{"count"}, OP_ADD, U(1)}, -EBADMSG},
            {"proto 2^32", true, rep_hello, {{"proto"}, OP_SET, U(1ULL << 32)}, -EBADMSG},
            {"proto 0", true, rep_hello, {{"proto"}, OP_SET, U(0)}, -EBADMSG},
            {"hello empty host", true, rep_hello, {{"host"}, OP_SET, S("")}, -EBADMSG},
            {"error hello without fields", true, rep_hello, {{"status"}, OP_SET, U(11)}, 0},
            {"error apply", true, rep_apply, {{"status"}, OP_SET, U(8)}, 0},
            {"cap ok true", true, rep_hello, {{"caps", "ok"}, OP_SET, BOOLV(true)}, 0},
            {"frame over limit", false, req_list, {{"from"}, OP_SET, A(FL_MAX_FRAME)}, -EMSGSIZE},
            {"type unknown", false, req_hello, {{"t"}, OP_SET, S("explode")}, -ENOMSG},
            {"type invalid", false, req_hello, {{"t"}, OP_SET, S("invalid")}, -ENOMSG},
            {"type empty", false, req_hello, {{"t"}, OP_SET, S("")}, -ENOMSG},
            {"type case", false, req_hello, {{"t"}, OP_SET, S("HELLO")}, -ENOMSG},
            {"type long", false, req_hello, {{"t"}, OP_SET, A(300)}, -ENOMSG},
            {"type with NUL", false, req_hello, {{"t"}, OP_SET, V_STRNUL}, -ENOMSG},
            {"reply type unknown", true, rep_revert, {{"t"}, OP_SET, S("explode")}, -ENOMSG},
            {"version 2", false, req_hello, {{"v"}, OP_SET, U(2)}, -EPROTO},
            {"version 0", false, req_hello, {{"v"}, OP_SET, U(0)}, -EPROTO},
            {"version 2^40", false, req_hello, {{"v"}, OP_SET, U(1ULL << 40)}, -EPROTO},
            {"reply version 2", true, rep_list, {{"v"}, OP_SET, U(2)}, -EPROTO},
            /* version is judged before type */
            {"version and type", false, req_apply, {{"v"}, OP_SET, U(9)}, -EPROTO},
        };
        (void)state;

        for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++)
                expect(cases[i].name, cases[i].reply, cases[i].base, &cases[i].o, cases[i].want);
}

/* A refused frame still yields version/type/seq, so the agent can answer. */
static void test_envelope_filled_on_failure(void **state)
{
        struct fl_request req;
        struct fl_reply rep;
        char err[256];
        size_t len;
        void *buf;
        (void)state;

        struct ovr ov = {{"v"}, OP_SET, U(2)};
        buf = build(req_apply, &ov, &len);
        assert_int_equal(decode_req_copy(buf, len, &req, err, sizeof(err)), -EPROTO);
        free(buf);
        assert_int_equal(req.version, 2);
        assert_int_equal(req.type, FL_MSG_APPLY);
        assert_int_equal(req.seq, 7);
        assert_string_equal(req.kind, ""); /* nothing else */
        assert_int_equal(req.duration_ms, 0);
        assert_non_null(strstr(err, "2"));
        assert_non_null(strstr(err, "1")); /* the version we speak */
        assert_int_equal(fl_status_from_decode_error(-EPROTO), FL_ST_BAD_VERSION);

        struct ovr ot = {{"t"}, OP_SET, S("explode")};
        buf = build(req_apply, &ot, &len);
        assert_int_equal(decode_req_copy(buf, len, &req, err, sizeof(err)), -ENOMSG);
        free(buf);
        assert_int_equal(req.version, 1);
        assert_int_equal(req.type, FL_MSG_INVALID);
        assert_int_equal(req.seq, 7);
        assert_non_null(strstr(err, "explode"));

        /* A failure late in the frame: envelope still there. */
        struct ovr od = {{"dur"}, OP_SET, U(0)};
        buf = build(req_apply, &od, &len);
        assert_int_equal(decode_req_copy(buf, len, &req, err, sizeof(err)), -EBADMSG);
        free(buf);
        assert_int_equal(req.type, FL_MSG_APPLY);
        assert_int_equal(req.seq, 7);
        assert_string_equal(req.kind, "");
        assert_non_null(strstr(err, "dur"));

        struct ovr op = {{"params"}, OP_SET, PARAMS(3, "dupkey")};
        buf = build(req_apply, &op, &len);
        assert_int_equal(decode_req_copy(buf, len, &req, err, sizeof(err)), -EBADMSG);
        free(buf);
        assert_int_equal(req.type, FL_MSG_APPLY);

        struct ovr os = {{"seq"}, OP_SET, S("seven")};
        buf = build(req_apply, &os, &len);
        assert_int_equal(decode_req_copy(buf, len, &req, err, sizeof(err)), -EBADMSG);
        free(buf);
        assert_int_equal(req.type, FL_MSG_APPLY);
        assert_int_equal(req.seq, 0);

        struct ovr of = {{"faults", "kind"}, OP_SET, U(1)};
        buf = build(rep_list, &of, &len);
        assert_int_equal(decode_rep_copy(buf, len, &rep, err, sizeof(err)), -EBADMSG);
        free(buf);
        assert_int_equal(rep.type, FL_MSG_LIST);
        assert_int_equal(rep.seq, 7);
        assert_int_equal(rep.status, FL_ST_OK);
        assert_non_null(strstr(err, "faults[0].kind"));

        /* No error buffer at all is fine. */
        buf = build(req_apply, &ov, &len);
        assert_int_equal(decode_req_copy(buf, len, &req, NULL, 0), -EPROTO);
        assert_int_equal(decode_req_copy(buf, len, &req, err, 1), -EPROTO);
        assert_string_equal(err, "");
        free(buf);
}

/* An error reply to a frame whose type could not be read carries no "t". */
static void test_untyped_error_reply(void **state)
{
        static const struct tf untyped[] = {
            {"v", U(1), true, 0},
            {"seq", U(0), true, 0},
            {"status", U(FL_ST_BAD_REQUEST), true, 0},
            {"msg", S("not msgpack"), false, FL_MSG_LEN},
            END,
        };
        struct fl_reply rep;
        char err[256];
        size_t len;
        void *buf;
        (void)state;

        buf = build(untyped, NULL, &len);
        assert_int_equal(decode_rep_copy(buf, len, &rep, err, sizeof(err)), 0);
        free(buf);
        assert_int_equal(rep.type, FL_MSG_INVALID);
        assert_int_equal(rep.status, FL_ST_BAD_REQUEST);
        assert_string_equal(rep.msg, "not msgpack");
        fl_reply_free(&rep);

        struct ovr ok = {{"status"}, OP_SET, U(0)};
        expect("untyped ok", true, untyped, &ok, -EBADMSG);
        struct ovr cnt = {{"count"}, OP_ADD, U(1)};
        expect("untyped with count", true, untyped, &cnt, -EBADMSG);
        struct ovr nost = {{"status"}, OP_DEL, U(0)};
        expect("untyped without status", true, untyped, &nost, -EBADMSG);
        /* A request must always say what it is. */
        expect("untyped request", false, untyped, NULL, -EBADMSG);
}

/* ---- raw byte cases ------------------------------------------------------ */

struct raw_case {
        const char *name;
        const uint8_t *bytes;
        size_t len;
        int want;
};

#define RAW(name, want, ...)                                                                       \
        {                                                                                          \
                name, (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}), want \
        }

static void test_raw_frames(void **state)
{
        const struct raw_case cases[] = {
            {"empty", (const uint8_t *)"", 0, -EBADMSG},
            RAW("never-used byte", -EBADMSG, 0xc1),
            RAW("garbage text", -EBADMSG, 'h', 'e', 'l', 'l', 'o'),
            RAW("top-level nil", -EBADMSG, 0xc0),
            RAW("top-level int", -EBADMSG, 0x05),
            RAW("top-level string", -EBADMSG, 0xa1, 'x'),
            RAW("top-level array", -EBADMSG, 0x91, 0x80),
            RAW("top-level empty map", -EBADMSG, 0x80),
            RAW("two maps", -EBADMSG, 0x80, 0x80),
            RAW("non-string key", -EBADMSG, 0x84, 0xa1, 'v', 0x01, 0xa1, 't', 0xa4, 'l', 'i', 's',
                't', 0xa3, 's', 'e', 'q', 0x01, 0x05, 0x01),
            RAW("nil key", -EBADMSG, 0x84, 0xa1, 'v', 0x01, 0xa1, 't', 0xa4, 'l', 'i', 's', 't',
                0xa3, 's', 'e', 'q', 0x01, 0xc0, 0x01),
            RAW("array 2^32-1", -EMSGSIZE, 0xdd, 0xff, 0xff, 0xff, 0xff),
            RAW("array 2^32-1 in map", -EMSGSIZE, 0x81, 0xa1, 'v', 0xdd, 0xff, 0xff, 0xff, 0xff),
            RAW("map 2^32-1", -EMSGSIZE, 0xdf, 0xff, 0xff, 0xff, 0xff),
            RAW("map16 257", -EMSGSIZE, 0xde, 0x01, 0x01),
            RAW("array16 256 in 3 bytes", -EBADMSG, 0xdc, 0x01, 0x00),
            RAW("fixarray 15 in 2 bytes", -EBADMSG, 0x81, 0xa1, 'v', 0x9f, 0x01),
            RAW("str32 2^32-1", -EBADMSG, 0x81, 0xa1, 'v', 0xdb, 0xff, 0xff, 0xff, 0xff),
            RAW("bin32 2^32-1", -EBADMSG, 0x81, 0xa1, 'v', 0xc6, 0xff, 0xff, 0xff, 0xff),
            RAW("str8 short", -EBADMSG, 0x81, 0xa1, 'v', 0xd9, 0x05, 'a'),
            RAW("length field cut", -EBADMSG, 0x81, 0xa1, 'v', 0xda, 0x00),
            RAW("uint64 cut", -EBADMSG, 0x81, 0xa1, 'v', 0xcf, 0x00, 0x00),
            RAW("fixext", -EBADMSG, 0x81, 0xa1, 'v', 0xd4, 0x01, 0x00),
            RAW("ext8", -EBADMSG, 0x81, 0xa1, 'v', 0xc7, 0x01, 0x01, 0x00),
            RAW("timestamp ext", -EBADMSG, 0x81, 0xa1, 'v', 0xd6, 0xff, 0, 0, 0, 0),
            RAW("depth 5", -EBADMSG, 0x81, 0xa1, 'a', 0x81, 0xa1, 'a', 0x81, 0xa1, 'a', 0x81, 0xa1,
                'a', 0x81, 0xa1, 'a', 0x01),
            RAW("depth 5 empty", -EBADMSG, 0x91, 0x91, 0x91, 0x91, 0x90),
        };
        (void)state;

        for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++)
                for (int reply = 0; reply < 2; reply++) {
                        char err[256] = "";
                        int r = decode_any(reply, cases[i].bytes, cases[i].len, err, sizeof(err));

                        if (r != cases[i].want)
                                fail_msg("%s (%s): got %d, want %d (%s)", cases[i].name,
                                         reply ? "reply" : "request", r, cases[i].want, err);
                        assert_true(err[0] != '\0');
                }

        /* Nesting 100 deep. */
        uint8_t deep[101];
        memset(deep, 0x91, 100);
        deep[100] = 0xc0;
        assert_int_equal(decode_any(false, deep, sizeof(deep), NULL, 0), -EBADMSG);
        assert_int_equal(decode_any(true, deep, sizeof(deep), NULL, 0), -EBADMSG);

        /* Above FL_MAX_FRAME, whatever the content. */
        size_t big = FL_MAX_FRAME + 1;
        uint8_t *p = calloc(1, big);
        assert_non_null(p);
        assert_int_equal(decode_any(false, p, big, NULL, 0), -EMSGSIZE);
        assert_int_equal(decode_any(true, p, big, NULL, 0), -EMSGSIZE);
        free(p);
}

/* Every proper prefix of a valid frame is refused cleanly, and a trailing
 * byte after a valid frame too. */
static void check_prefixes(bool reply, const struct tf *fields)
{
        size_t len;
        uint8_t *buf = build(fields, NULL, &len);
        uint8_t *longer;

        assert_int_equal(decode_any(reply, buf, len, NULL, 0), 0);
        for (size_t n = 0; n < len; n++) {
                char err[256] = "";
                int r = decode_any(reply, buf, n, err, sizeof(err));

                if (r != -EBADMSG)
                        fail_msg("prefix %zu/%zu: got %d (%s)", n, len, r, err);
        }

        longer = malloc(len + 1);
        assert_non_null(longer);
        memcpy(longer, buf, len);
        longer[len] = 0xc0;
        assert_int_equal(decode_any(reply, longer, len + 1, NULL, 0), -EBADMSG);
        free(longer);
        free(buf);
}

static void test_truncated_and_trailing(void **state)
{
        (void)state;
        for (size_t i = 0; i < FL_ARRAY_SIZE(bases); i++)
                check_prefixes(bases[i].reply, bases[i].fields);
}

/* Cheap in-process fuzzing: random byte edits of valid frames must give one
 * of the documented results, never a crash or leak (ASan/LSan judge). */
static void test_mutations(void **state)
{
        static const int allowed[] = {0, -EMSGSIZE, -EBADMSG, -EPROTO, -ENOMSG};
        uint64_t rng = 0x9e3779b97f4a7c15ULL;
        (void)state;

        for (size_t i = 0; i < FL_ARRAY_SIZE(bases); i++) {
                size_t len;
                uint8_t *orig = build(bases[i].fields, NULL, &len);
                uint8_t *buf = malloc(len);

                assert_non_null(buf);
                for (int iter = 0; iter < 1500; iter++) {
                        int edits, r;
                        bool ok = false;

                        memcpy(buf, orig, len);
                        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                        edits = 1 + (int)(rng % 3);
                        for (int e = 0; e < edits; e++) {
                                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                                buf[(rng >> 8) % len] = (uint8_t)rng;
                        }
                        r = decode_any(bases[i].reply, buf, len - (iter % 7 == 0), NULL, 0);
                        for (size_t a = 0; a < FL_ARRAY_SIZE(allowed); a++)
                                ok |= r == allowed[a];
                        if (!ok)
                                fail_msg("%s mutation %d: unexpected %d", bases[i].name, iter, r);
                }
                free(buf);
                free(orig);
        }
}

/* ---- encoder refusals ---------------------------------------------------- */

static void expect_req_einval(const char *name, const struct fl_request *r)
{
        void *buf = (void *)0x1;
        size_t len = 12345;
        int k = fl_request_encode(r, &buf, &len);

        if (k != -EINVAL)
                fail_msg("%s: encode returned %d, want -EINVAL", name, k);
        /* Nothing allocated, nothing written. */
        assert_ptr_equal(buf, (void *)0x1);
        assert_int_equal(len, 12345);
}

static void expect_rep_einval(const char *name, const struct fl_reply *r)
{
        void *buf = (void *)0x1;
        size_t len = 12345;
        int k = fl_reply_encode(r, &buf, &len);

        if (k != -EINVAL)
                fail_msg("%s: encode returned %d, want -EINVAL", name, k);
        assert_ptr_equal(buf, (void *)0x1);
        assert_int_equal(len, 12345);
}

static void valid_apply(struct fl_request *r)
{
        memset(r, 0, sizeof(*r));
        r->type = FL_MSG_APPLY;
        snprintf(r->kind, sizeof(r->kind), "disk.fill");
        r->duration_ms = 1000;
        snprintf(r->lease, sizeof(r->lease), "L");
        r->lease_ttl_ms = 1000;
}

static void test_encoder_refuses_requests(void **state)
{
        struct fl_request r;
        struct fl_param params[FL_MAX_PARAMS + 1];
        void *buf;
        size_t len;
        (void)state;

        memset(params, 0, sizeof(params));
        for (size_t i = 0; i < FL_ARRAY_SIZE(params); i++) {
                snprintf(params[i].key, FL_KEY_LEN, "k%zu", i);
                snprintf(params[i].value, FL_VAL_LEN, "v");
        }

        valid_apply(&r);
        assert_int_equal(fl_request_encode(&r, &buf, &len), 0);
        free(buf);
        assert_int_equal(fl_request_encode(NULL, &buf, &len), -EINVAL);
        assert_int_equal(fl_request_encode(&r, NULL, &len), -EINVAL);
        assert_int_equal(fl_request_encode(&r, &buf, NULL), -EINVAL);

        valid_apply(&r), r.type = FL_MSG_INVALID;
        expect_req_einval("type invalid", &r);
        valid_apply(&r), r.type = FL_MSG_TYPE_MAX;
        expect_req_einval("type max", &r);
        valid_apply(&r), r.type = (enum fl_msg_type)99;
        expect_req_einval("type 99", &r);
        valid_apply(&r), r.version = 2;
        expect_req_einval("version 2", &r);
        valid_apply(&r), r.duration_ms = 0;
        expect_req_einval("dur 0", &r);
        valid_apply(&r), r.lease_ttl_ms = 0;
        expect_req_einval("ttl 0", &r);
        valid_apply(&r), r.kind[0] = '\0';
        expect_req_einval("no kind", &r);
        valid_apply(&r), r.lease[0] = '\0';
        expect_req_einval("no lease", &r);
        valid_apply(&r), memset(r.kind, 'k', sizeof(r.kind));
        expect_req_einval("kind unterminated", &r);
        valid_apply(&r), memset(r.requester, 'r', sizeof(r.requester));
        expect_req_einval("requester unterminated", &r);
        valid_apply(&r), r.params = params, r.n_params = FL_MAX_PARAMS + 1;
        expect_req_einval("33 params", &r);
        valid_apply(&r), r.params = NULL, r.n_params = 1;
        expect_req_einval("count without array", &r);
        valid_apply(&r), r.params = params, r.n_params = 2;
        snprintf(params[1].key, FL_KEY_LEN, "k0");
        expect_req_einval("duplicate param", &r);
        snprintf(params[1].key, FL_KEY_LEN, "k1");
        params[1].key[0] = '\0';
        expect_req_einval("empty param key", &r);
        snprintf(params[1].key, FL_KEY_LEN, "k1");
        memset(params[1].value, 'v', FL_VAL_LEN);
        expect_req_einval("param value unterminated", &r);
        snprintf(params[1].value, FL_VAL_LEN, "v");
        memset(params[1].key, 'k', FL_KEY_LEN);
        expect_req_einval("param key unterminated", &r);
        snprintf(params[1].key, FL_KEY_LEN, "k1");
        r.n_params = FL_MAX_PARAMS;
        assert_int_equal(fl_request_encode(&r, &buf, &len), 0);
        free(buf);

        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_REVERT;
        expect_req_einval("revert without id", &r);
        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_RENEW;
        r.lease_ttl_ms = 5;
        expect_req_einval("renew without lease", &r);
        snprintf(r.lease, sizeof(r.lease), "L");
        r.lease_ttl_ms = 0;
        expect_req_einval("renew without ttl", &r);

        /* Fields the type does not carry are not sent, so not judged. */
        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_LIST;
        memset(r.kind, 'k', sizeof(r.kind));
        assert_int_equal(fl_request_encode(&r, &buf, &len), 0);
        free(buf);
}

static void test_encoder_refuses_replies(void **state)
{
        struct fl_reply r;
        struct fl_cap caps[FL_MAX_CAPS + 1];
        struct fl_fault_info *faults;
        void *buf;
        size_t len;
        (void)state;

        memset(caps, 0, sizeof(caps));
        for (size_t i = 0; i < FL_ARRAY_SIZE(caps); i++)
                snprintf(caps[i].kind, FL_KIND_LEN, "k%zu", i);
        faults = calloc(FL_MAX_FAULTS + 1, sizeof(*faults));
        assert_non_null(faults);
        for (size_t i = 0; i < FL_MAX_FAULTS + 1; i++)
                make_fault(&faults[i], i, false);

        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_REVERT;
        r.status = FL_ST_MAX;
        expect_rep_einval("status max", &r);
        r.status = (enum fl_status) - 1;
        expect_rep_einval("status -1", &r);

        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_TYPE_MAX;
        r.status = FL_ST_BAD_REQUEST;
        expect_rep_einval("type max", &r);
        r.type = FL_MSG_INVALID;
        r.status = FL_ST_OK;
        expect_rep_einval("untyped ok", &r);
        r.status = FL_ST_BAD_REQUEST;
        assert_int_equal(fl_reply_encode(&r, &buf, &len), 0);
        free(buf);
        r.version = 3;
        expect_rep_einval("version 3", &r);

        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_HELLO;
        r.proto_version = 1;
        snprintf(r.agent_version, sizeof(r.agent_version), "0.1");
        snprintf(r.hostname, sizeof(r.hostname), "h");
        r.caps = caps;
        r.n_caps = FL_MAX_CAPS;
        assert_int_equal(fl_reply_encode(&r, &buf, &len), 0);
        free(buf);
        r.n_caps = FL_MAX_CAPS + 1;
        expect_rep_einval("65 caps", &r);
        r.n_caps = 2;
        caps[1].kind[0] = '\0';
        expect_rep_einval("cap without kind", &r);
        snprintf(caps[1].kind, FL_KIND_LEN, "k1");
        memset(caps[1].reason, 'r', FL_MSG_LEN);
        expect_rep_einval("cap reason unterminated", &r);
        caps[1].reason[0] = '\0';
        r.proto_version = 0;
        expect_rep_einval("hello without proto", &r);
        r.proto_version = 1;
        r.hostname[0] = '\0';
        expect_rep_einval("hello without host", &r);
        r.status = FL_ST_INTERNAL; /* an error reply need not fill them */
        assert_int_equal(fl_reply_encode(&r, &buf, &len), 0);
        free(buf);
        memset(r.msg, 'm', sizeof(r.msg));
        expect_rep_einval("msg unterminated", &r);

        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_APPLY;
        expect_rep_einval("apply ok without fault", &r);
        r.faults = faults;
        r.n_faults = 2;
        expect_rep_einval("apply with two faults", &r);
        r.status = FL_ST_FAILED;
        expect_rep_einval("failed apply with two faults", &r);

        memset(&r, 0, sizeof(r));
        r.type = FL_MSG_LIST;
        r.faults = faults;
        r.n_faults = FL_MAX_FAULTS + 1;
        expect_rep_einval("257 faults", &r);
        r.n_faults = 3;
        faults[2].id[0] = '\0';
        expect_rep_einval("fault without id", &r);
        snprintf(faults[2].id, FL_ID_LEN, "x");
        memset(faults[2].state, 's', sizeof(faults[2].state));
        expect_rep_einval("fault state unterminated", &r);
        snprintf(faults[2].state, sizeof(faults[2].state), "active");
        assert_int_equal(fl_reply_encode(&r, &buf, &len), 0);
        free(buf);

        for (size_t i = 0; i < FL_MAX_FAULTS + 1; i++)
                fl_fault_info_free(&faults[i]);

        /* Within every cap, yet too big for one frame: refused, not sent. */
        for (size_t i = 0; i < FL_MAX_FAULTS; i++) {
                make_fault(&faults[i], i, false);
                add_params(&faults[i].params, &faults[i].n_params,
                           FL_MAX_PARAMS - faults[i].n_params, true);
        }
        r.n_faults = FL_MAX_FAULTS;
        expect_rep_einval("frame too large", &r);
        for (size_t i = 0; i < FL_MAX_FAULTS + 1; i++)
                fl_fault_info_free(&faults[i]);
        free(faults);
}

/* ---- small API pieces ---------------------------------------------------- */

static void test_params_api(void **state)
{
        struct fl_param *p = NULL;
        size_t n = 0;
        char key[FL_KEY_LEN + 1], value[FL_VAL_LEN + 1];
        (void)state;

        assert_int_equal(fl_params_add(&p, &n, "delay", "100ms"), 0);
        assert_int_equal(fl_params_add(&p, &n, "jitter", ""), 0);
        assert_int_equal(n, 2);
        assert_string_equal(fl_params_get(p, n, "delay"), "100ms");
        assert_string_equal(fl_params_get(p, n, "jitter"), "");
        assert_null(fl_params_get(p, n, "loss"));
        assert_null(fl_params_get(NULL, 0, "delay"));

        assert_int_equal(fl_params_add(&p, &n, "delay", "1s"), -EEXIST);
        assert_int_equal(fl_params_add(&p, &n, "", "x"), -EINVAL);
        assert_int_equal(fl_params_add(&p, &n, NULL, "x"), -EINVAL);
        fill(key, sizeof(key), 'k'); /* FL_KEY_LEN chars: one too many */
        assert_int_equal(fl_params_add(&p, &n, key, "x"), -ENAMETOOLONG);
        fill(value, sizeof(value), 'v');
        assert_int_equal(fl_params_add(&p, &n, "k", value), -ENAMETOOLONG);
        key[FL_KEY_LEN - 1] = '\0';
        value[FL_VAL_LEN - 1] = '\0';
        assert_int_equal(fl_params_add(&p, &n, key, value), 0);
        assert_int_equal(n, 3);

        while (n < FL_MAX_PARAMS) {
                char k[16];
                snprintf(k, sizeof(k), "p%zu", n);
                assert_int_equal(fl_params_add(&p, &n, k, "v"), 0);
        }
        assert_int_equal(fl_params_add(&p, &n, "one-more", "v"), -E2BIG);
        assert_int_equal(n, FL_MAX_PARAMS);

        struct fl_request req = {.params = p, .n_params = n};
        fl_request_free(&req);
        assert_null(req.params);
        assert_int_equal(req.n_params, 0);
        fl_request_free(&req); /* twice is fine */
        fl_request_free(NULL);
        fl_reply_free(NULL);
        fl_fault_info_free(NULL);
        struct fl_reply rep = {0};
        fl_reply_free(&rep);
}

static void test_names(void **state)
{
        (void)state;
        for (int t = FL_MSG_HELLO; t < FL_MSG_TYPE_MAX; t++)
                assert_int_equal(fl_msg_type_from_name(fl_msg_type_name((enum fl_msg_type)t)), t);
        assert_string_equal(fl_msg_type_name(FL_MSG_APPLY), "apply");
        assert_string_equal(fl_msg_type_name(FL_MSG_INVALID), "invalid");
        assert_string_equal(fl_msg_type_name((enum fl_msg_type)99), "invalid");
        assert_int_equal(fl_msg_type_from_name("invalid"), FL_MSG_INVALID);
        assert_int_equal(fl_msg_type_from_name("nope"), FL_MSG_INVALID);
        assert_int_equal(fl_msg_type_from_name(NULL), FL_MSG_INVALID);

        assert_string_equal(fl_status_name(FL_ST_OK), "ok");
        assert_string_equal(fl_status_name(FL_ST_BAD_REQUEST), "bad-request");
        assert_string_equal(fl_status_name(FL_ST_INTERNAL), "internal");
        assert_string_equal(fl_status_name(FL_ST_MAX), "unknown");
        for (int st = 0; st < FL_ST_MAX; st++)
                assert_string_not_equal(fl_status_name((enum fl_status)st), "unknown");

        assert_int_equal(fl_status_from_decode_error(0), FL_ST_OK);
        assert_int_equal(fl_status_from_decode_error(-EMSGSIZE), FL_ST_BAD_REQUEST);
        assert_int_equal(fl_status_from_decode_error(-EBADMSG), FL_ST_BAD_REQUEST);
        assert_int_equal(fl_status_from_decode_error(-EPROTO), FL_ST_BAD_VERSION);
        assert_int_equal(fl_status_from_decode_error(-ENOMSG), FL_ST_UNKNOWN_TYPE);
        assert_int_equal(fl_status_from_decode_error(-ENOMEM), FL_ST_INTERNAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_roundtrip_requests),
            cmocka_unit_test(test_roundtrip_replies),
            cmocka_unit_test(test_bases_decode),
            cmocka_unit_test(test_wrong_type_oversize_missing),
            cmocka_unit_test(test_unknown_and_foreign_keys),
            cmocka_unit_test(test_value_rules),
            cmocka_unit_test(test_envelope_filled_on_failure),
            cmocka_unit_test(test_untyped_error_reply),
            cmocka_unit_test(test_raw_frames),
            cmocka_unit_test(test_truncated_and_trailing),
            cmocka_unit_test(test_mutations),
            cmocka_unit_test(test_encoder_refuses_requests),
            cmocka_unit_test(test_encoder_refuses_replies),
            cmocka_unit_test(test_params_api),
            cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
