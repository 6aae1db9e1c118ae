/* Unit tests for common/fl_transport.c over ipc:// sockets in a private
 * mkdtemp directory.
 *
 * Servers are real fl_server instances, each on its own thread, answering
 * with fl_reply_encode'd replies; a per-server mode makes one misbehave
 * (never answer, answer late, wrong seq, wrong type, undecodable bytes).
 * Every wait is bounded: calls use timeouts of a few hundred ms and the
 * tests assert how long they took, so a hang shows as a failure, not as a
 * ctest timeout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fl_transport.h"
#include "fl_util.h"
#include "fl_wire.h"

/* ---- scratch directory --------------------------------------------------------- */

static char g_dir[128];
static unsigned g_url_counter;

static void make_url(char *buf, size_t size)
{
        int n = snprintf(buf, size, "ipc://%s/s%u.ipc", g_dir, g_url_counter++);
        assert_true(n > 0 && (size_t)n < size);
}

static void remove_url_file(const char *url)
{
        if (strncmp(url, "ipc://", 6) == 0)
                unlink(url + 6);
}

/* ---- test server ------------------------------------------------------------- */

enum srv_mode {
        M_ANSWER,      /* a valid reply echoing type and seq */
        M_SILENT,      /* receive, never answer */
        M_WRONG_SEQ,   /* valid reply, seq + 1 */
        M_WRONG_TYPE,  /* valid OK reply of another type */
        M_ERROR_OTHER, /* error reply (bad-request) typed HELLO for any request */
        M_GARBAGE,     /* bytes that are not a reply */
        M_SLOW_FIRST,  /* first request answered after 400 ms, then M_ANSWER */
};

struct srv {
        char url[160];
        int index;
        enum srv_mode mode;
        struct fl_server *s;
        pthread_t th;
        atomic_bool stop;
        atomic_int requests;
        atomic_int errors; /* anything unexpected on the server side */
};

static void srv_answer(struct srv *sv, const struct fl_request *req)
{
        struct fl_reply rep;
        struct fl_cap cap;
        memset(&rep, 0, sizeof(rep));
        memset(&cap, 0, sizeof(cap));
        rep.version = FL_PROTO_VERSION;
        rep.type = req->type;
        rep.seq = req->seq;
        rep.status = FL_ST_OK;
        snprintf(rep.msg, sizeof(rep.msg), "hello from %d", sv->index);
        if (req->type == FL_MSG_HELLO) {
                rep.proto_version = FL_PROTO_VERSION;
                snprintf(rep.agent_version, sizeof(rep.agent_version), "test-agent");
                snprintf(rep.hostname, sizeof(rep.hostname), "srv-%d", sv->index);
                snprintf(cap.kind, sizeof(cap.kind), "disk-fill");
                cap.available = true;
                rep.caps = &cap;
                rep.n_caps = 1;
        }
        switch (sv->mode) {
        case M_WRONG_SEQ:
                rep.seq = req->seq + 1;
                break;
        case M_WRONG_TYPE:
                rep.type = req->type == FL_MSG_LIST ? FL_MSG_ABORT : FL_MSG_LIST;
                rep.caps = NULL;
                rep.n_caps = 0;
                break;
        case M_ERROR_OTHER:
                memset(&rep, 0, sizeof(rep));
                rep.version = FL_PROTO_VERSION;
                rep.type = req->type == FL_MSG_HELLO ? FL_MSG_LIST : FL_MSG_HELLO;
                rep.seq = req->seq;
                rep.status = FL_ST_BAD_REQUEST;
                snprintf(rep.msg, sizeof(rep.msg), "rejected: test");
                break;
        default:
                break;
        }
        void *buf = NULL;
        size_t len = 0;
        if (fl_reply_encode(&rep, &buf, &len) != 0) {
                atomic_fetch_add(&sv->errors, 1);
                return;
        }
        if (fl_server_send(sv->s, buf, len) != 0)
                atomic_fetch_add(&sv->errors, 1);
        free(buf);
}

static void *srv_thread(void *arg)
{
        struct srv *sv = arg;
        while (!atomic_load(&sv->stop)) {
                void *buf = NULL;
                size_t len = 0;
                int rv = fl_server_recv(sv->s, &buf, &len, 20);
                if (rv == 0)
                        continue;
                if (rv < 0) {
                        if (!atomic_load(&sv->stop))
                                atomic_fetch_add(&sv->errors, 1);
                        usleep(1000);
                        continue;
                }
                int n = atomic_fetch_add(&sv->requests, 1);
                struct fl_request req;
                char err[FL_MSG_LEN];
                if (fl_request_decode(buf, len, &req, err, sizeof(err)) != 0) {
                        atomic_fetch_add(&sv->errors, 1);
                        free(buf);
                        continue;
                }
                free(buf);
                switch (sv->mode) {
                case M_SILENT:
                        break;
                case M_GARBAGE:
                        if (fl_server_send(sv->s, "\xc1\xc1 not a reply", 15) != 0)
                                atomic_fetch_add(&sv->errors, 1);
                        break;
                case M_SLOW_FIRST:
                        if (n == 0)
                                usleep(400 * 1000);
                        srv_answer(sv, &req);
                        break;
                default:
                        srv_answer(sv, &req);
                        break;
                }
                fl_request_free(&req);
        }
        return NULL;
}

static void srv_start(struct srv *sv, int index, enum srv_mode mode)
{
        memset(sv, 0, sizeof(*sv));
        make_url(sv->url, sizeof(sv->url));
        sv->index = index;
        sv->mode = mode;
        int rv = fl_server_open(sv->url, &sv->s);
        if (rv != 0)
                fail_msg("fl_server_open(%s): %d", sv->url, rv);
        assert_int_equal(pthread_create(&sv->th, NULL, srv_thread, sv), 0);
}

static void srv_stop(struct srv *sv)
{
        if (!sv->s)
                return;
        atomic_store(&sv->stop, true);
        pthread_join(sv->th, NULL);
        fl_server_close(sv->s);
        sv->s = NULL;
        remove_url_file(sv->url);
        assert_int_equal(atomic_load(&sv->errors), 0);
}

static void hello_req(struct fl_request *req)
{
        memset(req, 0, sizeof(*req));
        req->type = FL_MSG_HELLO;
        snprintf(req->requester, sizeof(req->requester), "unit-test");
}

static bool reply_is_zero(const struct fl_reply *r)
{
        return r->caps == NULL && r->faults == NULL && r->n_caps == 0 && r->n_faults == 0 &&
               r->seq == 0 && r->status == FL_ST_OK && r->msg[0] == '\0';
}

/* ---- URLs ------------------------------------------------------------------------ */

static const char *const bad_urls[] = {
    "http://x",
    "",
    "tcp",
    "tcp:",
    "tcp:/127.0.0.1:1",
    "ws://127.0.0.1:7070",
    "udp://127.0.0.1:7070",
    "TCP//127.0.0.1:7070",
    "inproc:",
    " tcp://127.0.0.1:7070",
};

static void test_bad_url_schemes(void **state)
{
        (void)state;
        for (size_t i = 0; i < FL_ARRAY_SIZE(bad_urls); i++) {
                struct fl_conn *c = NULL;
                struct fl_server *s = NULL;
                int rv = fl_conn_open(bad_urls[i], &c);
                if (rv != -EINVAL)
                        fail_msg("fl_conn_open(\"%s\") = %d, expected -EINVAL", bad_urls[i], rv);
                assert_null(c);
                rv = fl_server_open(bad_urls[i], &s);
                if (rv != -EINVAL)
                        fail_msg("fl_server_open(\"%s\") = %d, expected -EINVAL", bad_urls[i], rv);
                assert_null(s);
        }
        struct fl_conn *c = NULL;
        struct fl_server *s = NULL;
        assert_int_equal(fl_conn_open(NULL, &c), -EINVAL);
        assert_int_equal(fl_server_open(NULL, &s), -EINVAL);

        /* Too long for the URL buffer. */
        char longurl[FL_VAL_LEN + 16];
        int n = snprintf(longurl, sizeof(longurl), "tcp://");
        memset(longurl + n, 'h', sizeof(longurl) - (size_t)n - 1);
        longurl[sizeof(longurl) - 1] = '\0';
        assert_int_equal(fl_conn_open(longurl, &c), -EINVAL);
        assert_null(c);
        assert_int_equal(fl_server_open(longurl, &s), -EINVAL);
        assert_null(s);

        /* Known schemes open (dial is non-blocking: nobody needs to listen). */
        static const char *const good[] = {"tcp://127.0.0.1:1", "tcp4://127.0.0.1:1",
                                           "inproc://fl-test-nobody"};
        for (size_t i = 0; i < FL_ARRAY_SIZE(good); i++) {
                int rv = fl_conn_open(good[i], &c);
                if (rv != 0)
                        fail_msg("fl_conn_open(\"%s\") = %d", good[i], rv);
                assert_string_equal(fl_conn_url(c), good[i]);
                fl_conn_close(c);
                c = NULL;
        }
        fl_conn_close(NULL);
        fl_server_close(NULL);
}

/* ---- one round trip ------------------------------------------------------------- */

static void test_round_trip(void **state)
{
        (void)state;
        struct srv sv;
        struct fl_conn *c = NULL;
        struct fl_request req;
        struct fl_reply rep;

        srv_start(&sv, 3, M_ANSWER);
        assert_int_equal(fl_conn_open(sv.url, &c), 0);
        assert_string_equal(fl_conn_url(c), sv.url);

        uint64_t prev_seq = 0;
        for (int i = 0; i < 3; i++) {
                hello_req(&req);
                int rv = fl_conn_call(c, &req, &rep, 2000);
                if (rv != 0)
                        fail_msg("call %d: %d", i, rv);
                assert_int_equal(req.version, FL_PROTO_VERSION);
                assert_true(req.seq != 0);
                assert_true(req.seq != prev_seq);
                prev_seq = req.seq;
                assert_int_equal(rep.status, FL_ST_OK);
                assert_int_equal(rep.type, FL_MSG_HELLO);
                assert_int_equal(rep.seq, req.seq);
                assert_int_equal(rep.proto_version, FL_PROTO_VERSION);
                assert_string_equal(rep.hostname, "srv-3");
                assert_string_equal(rep.agent_version, "test-agent");
                assert_int_equal(rep.n_caps, 1);
                assert_string_equal(rep.caps[0].kind, "disk-fill");
                assert_true(rep.caps[0].available);
                fl_reply_free(&rep);
        }

        /* Another type round-trips as well. */
        memset(&req, 0, sizeof(req));
        req.type = FL_MSG_LIST;
        assert_int_equal(fl_conn_call(c, &req, &rep, 2000), 0);
        assert_int_equal(rep.type, FL_MSG_LIST);
        assert_int_equal(rep.seq, req.seq);
        fl_reply_free(&rep);

        fl_conn_close(c);
        assert_int_equal(atomic_load(&sv.requests), 4);
        srv_stop(&sv);
}

/* ---- timeouts ------------------------------------------------------------------- */

#define TIMEOUT_MS 300

static void assert_bounded_timeout(struct fl_conn *c, int timeout_ms)
{
        struct fl_request req;
        struct fl_reply rep;
        hello_req(&req);
        memset(&rep, 0xa5, sizeof(rep));
        uint64_t t0 = fl_now_mono_ms();
        int rv = fl_conn_call(c, &req, &rep, timeout_ms);
        uint64_t el = fl_now_mono_ms() - t0;
        if (rv != -ETIMEDOUT)
                fail_msg("fl_conn_call = %d, expected -ETIMEDOUT", rv);
        if (el + 20 < (uint64_t)timeout_ms || el >= 4 * (uint64_t)timeout_ms)
                fail_msg("timeout of %d ms took %llu ms", timeout_ms, (unsigned long long)el);
        assert_true(reply_is_zero(&rep));
}

static void test_timeout_silent_server(void **state)
{
        (void)state;
        struct srv sv;
        struct fl_conn *c = NULL;

        srv_start(&sv, 0, M_SILENT);
        assert_int_equal(fl_conn_open(sv.url, &c), 0);
        assert_bounded_timeout(c, TIMEOUT_MS);
        assert_bounded_timeout(c, TIMEOUT_MS);
        fl_conn_close(c);
        assert_int_equal(atomic_load(&sv.requests), 2);
        srv_stop(&sv);
}

static void test_timeout_nobody_listening(void **state)
{
        (void)state;
        char url[160];
        struct fl_conn *c = NULL;

        make_url(url, sizeof(url));
        assert_int_equal(fl_conn_open(url, &c), 0);
        assert_bounded_timeout(c, TIMEOUT_MS);
        fl_conn_close(c);
}

/* A reply arriving after its call timed out must not be taken for the
 * next call's reply. */
static void test_late_reply_discarded(void **state)
{
        (void)state;
        struct srv sv;
        struct fl_conn *c = NULL;
        struct fl_request req;
        struct fl_reply rep;

        srv_start(&sv, 1, M_SLOW_FIRST);
        assert_int_equal(fl_conn_open(sv.url, &c), 0);
        assert_bounded_timeout(c, 150);
        hello_req(&req);
        assert_int_equal(fl_conn_call(c, &req, &rep, 2000), 0);
        assert_int_equal(rep.seq, req.seq);
        assert_int_equal(rep.status, FL_ST_OK);
        fl_reply_free(&rep);
        fl_conn_close(c);
        srv_stop(&sv);
}

/* ---- bad replies ------------------------------------------------------------------ */

struct reply_case {
        const char *name;
        enum srv_mode mode;
        int rv;
        enum fl_status status; /* when rv == 0 */
};

static const struct reply_case reply_cases[] = {
    {"valid", M_ANSWER, 0, FL_ST_OK},
    {"wrong seq", M_WRONG_SEQ, -EPROTO, 0},
    {"wrong type, ok status", M_WRONG_TYPE, -EPROTO, 0},
    {"undecodable", M_GARBAGE, -EBADMSG, 0},
    {"error reply of another type", M_ERROR_OTHER, 0, FL_ST_BAD_REQUEST},
};

static void test_reply_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < FL_ARRAY_SIZE(reply_cases); i++) {
                const struct reply_case *tc = &reply_cases[i];
                struct srv sv;
                struct fl_conn *c = NULL;
                struct fl_request req;
                struct fl_reply rep;

                srv_start(&sv, (int)i, tc->mode);
                assert_int_equal(fl_conn_open(sv.url, &c), 0);
                hello_req(&req);
                uint64_t t0 = fl_now_mono_ms();
                int rv = fl_conn_call(c, &req, &rep, 2000);
                uint64_t el = fl_now_mono_ms() - t0;
                if (rv != tc->rv)
                        fail_msg("%s: fl_conn_call = %d, expected %d", tc->name, rv, tc->rv);
                assert_true(el < 2000); /* an answer came; no timeout involved */
                if (rv == 0) {
                        assert_int_equal(rep.status, tc->status);
                        assert_int_equal(rep.seq, req.seq);
                } else {
                        assert_true(reply_is_zero(&rep));
                }
                fl_reply_free(&rep);
                fl_conn_close(c);
                srv_stop(&sv);
        }
}

/* ---- broadcast ------------------------------------------------------------------ */

#define N_SRV     8
#define SILENT_AT 5

static void run_many(struct fl_conn **conns, int timeout_ms, int dead)
{
        struct fl_request req;
        struct fl_reply replies[N_SRV];
        int rcs[N_SRV];

        hello_req(&req);
        uint64_t t0 = fl_now_mono_ms();
        int answered = fl_conn_call_many(conns, N_SRV, &req, replies, rcs, timeout_ms);
        uint64_t el = fl_now_mono_ms() - t0;

        for (int i = 0; i < N_SRV; i++) {
                if (i == dead) {
                        if (rcs[i] != -ETIMEDOUT)
                                fail_msg("conn %d: rc %d, expected -ETIMEDOUT", i, rcs[i]);
                        assert_true(reply_is_zero(&replies[i]));
                        continue;
                }
                if (rcs[i] != 0)
                        fail_msg("conn %d: rc %d, expected 0", i, rcs[i]);
                char host[32];
                snprintf(host, sizeof(host), "srv-%d", i);
                assert_string_equal(replies[i].hostname, host);
                assert_int_equal(replies[i].seq, req.seq);
                assert_int_equal(replies[i].status, FL_ST_OK);
        }
        for (int i = 0; i < N_SRV; i++)
                fl_reply_free(&replies[i]);
        assert_int_equal(answered, N_SRV - 1);
        /* Concurrent: about one timeout in all, not one per agent (8x).
         * The upper bound leaves room for a loaded 2-core CI machine. */
        if (el + 20 < (uint64_t)timeout_ms || el >= 4 * (uint64_t)timeout_ms)
                fail_msg("broadcast with one dead agent took %llu ms (timeout %d ms)",
                         (unsigned long long)el, timeout_ms);
}

static void test_call_many_one_silent(void **state)
{
        (void)state;
        struct srv sv[N_SRV];
        struct fl_conn *conns[N_SRV];

        for (int i = 0; i < N_SRV; i++) {
                srv_start(&sv[i], i, i == SILENT_AT ? M_SILENT : M_ANSWER);
                assert_int_equal(fl_conn_open(sv[i].url, &conns[i]), 0);
        }
        run_many(conns, 500, SILENT_AT);
        /* The same conns work again (the silent one's late state is gone). */
        run_many(conns, 500, SILENT_AT);
        for (int i = 0; i < N_SRV; i++) {
                fl_conn_close(conns[i]);
                assert_int_equal(atomic_load(&sv[i].requests), 2);
                srv_stop(&sv[i]);
        }
}

static void test_call_many_one_unreachable(void **state)
{
        (void)state;
        struct srv sv[N_SRV];
        struct fl_conn *conns[N_SRV];
        char nobody[160];

        make_url(nobody, sizeof(nobody));
        for (int i = 0; i < N_SRV; i++) {
                if (i == SILENT_AT) {
                        memset(&sv[i], 0, sizeof(sv[i]));
                        assert_int_equal(fl_conn_open(nobody, &conns[i]), 0);
                        continue;
                }
                srv_start(&sv[i], i, M_ANSWER);
                assert_int_equal(fl_conn_open(sv[i].url, &conns[i]), 0);
        }
        run_many(conns, 500, SILENT_AT);
        for (int i = 0; i < N_SRV; i++) {
                fl_conn_close(conns[i]);
                srv_stop(&sv[i]);
        }
}

static void test_call_many_empty(void **state)
{
        (void)state;
        struct fl_request req;
        hello_req(&req);
        assert_int_equal(fl_conn_call_many(NULL, 0, &req, NULL, NULL, 100), 0);
}

/* ---- server side ---------------------------------------------------------------- */

static void test_server_recv_timeout_and_addr_in_use(void **state)
{
        (void)state;
        char url[160];
        struct fl_server *s = NULL, *s2 = NULL;
        void *buf = NULL;
        size_t len = 0;

        make_url(url, sizeof(url));
        assert_int_equal(fl_server_open(url, &s), 0);
        for (int i = 0; i < 2; i++) {
                uint64_t t0 = fl_now_mono_ms();
                assert_int_equal(fl_server_recv(s, &buf, &len, 100), 0);
                uint64_t el = fl_now_mono_ms() - t0;
                assert_true(el + 20 >= 100 && el < 200);
                assert_null(buf);
        }
        assert_int_equal(fl_server_open(url, &s2), -EADDRINUSE);
        assert_null(s2);
        fl_server_close(s);
        remove_url_file(url);
}

/* ---- nng error mapping ------------------------------------------------------------ */

struct nng_case {
        int nng;
        int rv;
};

static const struct nng_case nng_cases[] = {
    {0, 0},
    {NNG_ETIMEDOUT, -ETIMEDOUT},
    {NNG_ECONNREFUSED, -ECONNREFUSED},
    {NNG_ECLOSED, -EBADF},
    {NNG_ENOMEM, -ENOMEM},
    {NNG_EINVAL, -EINVAL},
    {NNG_EADDRINVAL, -EINVAL},
    {NNG_EADDRINUSE, -EADDRINUSE},
    {NNG_EPROTO, -EPROTO},
    {NNG_EMSGSIZE, -EMSGSIZE},
    {NNG_ECONNRESET, -ECONNRESET},
    {NNG_ECONNSHUT, -ECONNRESET},
    {NNG_EPEERAUTH, -EACCES},
    {NNG_ENOTSUP, -EOPNOTSUPP},
    {NNG_ESYSERR | ENOSPC, -ENOSPC},
    {NNG_ESYSERR | EHOSTDOWN, -EHOSTDOWN},
    {NNG_ETRANERR | 5, -EIO},
    {NNG_EINTERNAL, -EIO},
    {12345, -EIO},
};

static void test_errno_from_nng(void **state)
{
        (void)state;
        for (size_t i = 0; i < FL_ARRAY_SIZE(nng_cases); i++) {
                int rv = fl_errno_from_nng(nng_cases[i].nng);
                if (rv != nng_cases[i].rv)
                        fail_msg("fl_errno_from_nng(%#x) = %d, expected %d", nng_cases[i].nng, rv,
                                 nng_cases[i].rv);
        }
}

/* ---- main ----------------------------------------------------------------------- */

static int group_setup(void **state)
{
        (void)state;
        const char *t = getenv("TMPDIR");
        /* sun_path holds 108 bytes: stay short. */
        if (!t || t[0] != '/' || strlen(t) > 48)
                t = "/tmp";
        snprintf(g_dir, sizeof(g_dir), "%s/fl-tr-XXXXXX", t);
        return mkdtemp(g_dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
        (void)state;
        for (unsigned i = 0; i < g_url_counter; i++) {
                char p[192];
                snprintf(p, sizeof(p), "%s/s%u.ipc", g_dir, i);
                unlink(p);
        }
        rmdir(g_dir);
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_bad_url_schemes),
            cmocka_unit_test(test_round_trip),
            cmocka_unit_test(test_timeout_silent_server),
            cmocka_unit_test(test_timeout_nobody_listening),
            cmocka_unit_test(test_late_reply_discarded),
            cmocka_unit_test(test_reply_table),
            cmocka_unit_test(test_call_many_one_silent),
            cmocka_unit_test(test_call_many_one_unreachable),
            cmocka_unit_test(test_call_many_empty),
            cmocka_unit_test(test_server_recv_timeout_and_addr_in_use),
            cmocka_unit_test(test_errno_from_nng),
        };
        int failed = cmocka_run_group_tests_name("transport", tests, group_setup, group_teardown);
        nng_fini();
        return failed ? 1 : 0;
}
