/* Unit tests for mutual TLS (common/fl_tls.c, the TLS parts of
 * common/fl_transport.c) and `faultline pki` (coordinator/pki.c), over
 * tls+tcp://127.0.0.1 with a PKI made in a mkdtemp directory.
 *
 *   - pki: files 0600, refuses to overwrite, refuses bad names;
 *   - identity loading: good, mismatched key, loose key mode, missing file,
 *     a certificate from another CA (loads with a warning: the peer refuses);
 *   - a round trip where the server sees the client's certificate name;
 *   - allowed-subjects: a listed and an unlisted client;
 *   - refusals with their reasons: wrong server name, other CA, expired.
 * Also the agent config's tls/insecure/audit-log/sandbox/allowed-paths keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "fl_tls.h"
#include "fl_transport.h"
#include "fl_util.h"
#include "pki.h"

static char dir[64], other[96];
static unsigned port_base;

static void path(char *buf, size_t size, const char *d, const char *name)
{
        snprintf(buf, size, "%s/%s", d, name);
}

static int setup_pki(void **state)
{
        struct coord_pki_opts o = {0}, exp = {.expired = true};
        char err[256];
        snprintf(dir, sizeof(dir), "/tmp/fl-tls-unit-XXXXXX");
        if (!mkdtemp(dir))
                return -1;
        snprintf(other, sizeof(other), "%s/other", dir);
        if (coord_pki_init(dir, "unit-ca", &o, err, sizeof(err)) < 0 ||
            coord_pki_issue(dir, "agent1", FL_TLS_SERVER, &o, err, sizeof(err)) < 0 ||
            coord_pki_issue(dir, "coordinator", FL_TLS_CLIENT, &o, err, sizeof(err)) < 0 ||
            coord_pki_issue(dir, "intern", FL_TLS_CLIENT, &o, err, sizeof(err)) < 0 ||
            coord_pki_issue(dir, "old", FL_TLS_CLIENT, &exp, err, sizeof(err)) < 0 ||
            coord_pki_init(other, "rogue-ca", &o, err, sizeof(err)) < 0 ||
            coord_pki_issue(other, "coordinator", FL_TLS_CLIENT, &o, err, sizeof(err)) < 0) {
                fprintf(stderr, "pki: %s\n", err);
                return -1;
        }
        port_base = 20000 + (unsigned)(getpid() % 20000);
        return 0;
}

static int teardown_pki(void **state)
{
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        return system(cmd) == 0 ? 0 : -1;
}

static struct fl_tls_identity *load(const char *d, const char *ca_dir, const char *name)
{
        char ca[160], crt[160], key[160], err[FL_MSG_LEN], n[64];
        path(ca, sizeof(ca), ca_dir, "ca.crt");
        snprintf(n, sizeof(n), "%s.crt", name);
        path(crt, sizeof(crt), d, n);
        snprintf(n, sizeof(n), "%s.key", name);
        path(key, sizeof(key), d, n);
        struct fl_tls_identity *id = NULL;
        int rv = fl_tls_identity_load(ca, crt, key, &id, err, sizeof(err));
        if (rv < 0)
                fail_msg("load %s/%s: %s", d, name, err);
        return id;
}

static void test_pki_files(void **state)
{
        static const char *const files[] = {"ca.crt",     "ca.key",          "agent1.crt",
                                            "agent1.key", "coordinator.crt", "coordinator.key"};
        for (size_t i = 0; i < FL_ARRAY_SIZE(files); i++) {
                char p[160];
                struct stat st;
                path(p, sizeof(p), dir, files[i]);
                assert_int_equal(stat(p, &st), 0);
                assert_int_equal(st.st_mode & 0777, 0600);
        }
        struct coord_pki_opts o = {0};
        char err[256];
        assert_int_equal(coord_pki_init(dir, "again", &o, err, sizeof(err)), -EEXIST);
        assert_int_equal(coord_pki_issue(dir, "agent1", FL_TLS_SERVER, &o, err, sizeof(err)),
                         -EEXIST);
        assert_int_equal(coord_pki_issue(dir, "bad/name", FL_TLS_SERVER, &o, err, sizeof(err)),
                         -EINVAL);
        assert_int_equal(coord_pki_issue(dir, "ca", FL_TLS_SERVER, &o, err, sizeof(err)), -EINVAL);
        assert_int_equal(
            coord_pki_issue("/nonexistent-dir", "x", FL_TLS_SERVER, &o, err, sizeof(err)), -EINVAL);
}

static void test_identity_errors(void **state)
{
        char ca[160], crt[160], key[160], loose[160], err[FL_MSG_LEN];
        struct fl_tls_identity *id = NULL;
        path(ca, sizeof(ca), dir, "ca.crt");
        path(crt, sizeof(crt), dir, "agent1.crt");
        path(key, sizeof(key), dir, "coordinator.key");
        assert_int_equal(fl_tls_identity_load(ca, crt, key, &id, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "does not belong to"));

        path(key, sizeof(key), dir, "agent1.key");
        path(loose, sizeof(loose), dir, "loose.key");
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && chmod 644 '%s'", key, loose, loose);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(fl_tls_identity_load(ca, crt, loose, &id, err, sizeof(err)), -EPERM);
        assert_non_null(strstr(err, "readable by group or others"));

        path(key, sizeof(key), dir, "missing.key");
        assert_int_equal(fl_tls_identity_load(ca, crt, key, &id, err, sizeof(err)), -ENOENT);

        /* Another CA's certificate loads (the peer decides) with a warning. */
        path(crt, sizeof(crt), other, "coordinator.crt");
        path(key, sizeof(key), other, "coordinator.key");
        assert_int_equal(fl_tls_identity_load(ca, crt, key, &id, err, sizeof(err)), 1);
        assert_non_null(strstr(err, "does not verify"));
        fl_tls_identity_free(id);

        id = load(dir, dir, "agent1");
        assert_string_equal(fl_tls_identity_name(id), "agent1");
        fl_tls_identity_free(id);
}

/* A server thread answering one request with the peer's subject as msg. */
struct srv {
        struct fl_server *s;
        struct fl_peer peer;
        int got;
};

static void *serve_one(void *arg)
{
        struct srv *sv = arg;
        void *buf = NULL;
        size_t len = 0;
        sv->got = fl_server_recv_peer(sv->s, &buf, &len, &sv->peer, 3000);
        if (sv->got == 1) {
                struct fl_request req;
                char err[FL_MSG_LEN];
                struct fl_reply rep = {.version = FL_PROTO_VERSION};
                if (fl_request_decode(buf, len, &req, err, sizeof(err)) == 0) {
                        rep.type = req.type;
                        rep.seq = req.seq;
                        rep.status = sv->peer.tls.allowed ? FL_ST_OK : FL_ST_REFUSED;
                        snprintf(rep.msg, sizeof(rep.msg), "%s", sv->peer.tls.subject);
                }
                fl_request_free(&req);
                void *out = NULL;
                size_t olen = 0;
                if (fl_reply_encode(&rep, &out, &olen) == 0)
                        fl_server_send(sv->s, out, olen);
                free(out);
                free(buf);
        }
        return NULL;
}

/* One call from client identity `client` to a server with `allowed`;
 * returns the call's result, fills reply and the server's view. */
static int call(struct fl_tls_identity *srv_id, const char *const *allowed, size_t n_allowed,
                struct fl_tls_identity *cli_id, const char *server_name, struct fl_reply *rep,
                struct srv *sv, char *why, size_t whylen)
{
        char url[64];
        snprintf(url, sizeof(url), "tls+tcp://127.0.0.1:%u", port_base++);
        memset(sv, 0, sizeof(*sv));
        fl_transport_set_tls(srv_id, allowed, n_allowed);
        assert_int_equal(fl_server_open(url, &sv->s), 0);
        pthread_t t;
        pthread_create(&t, NULL, serve_one, sv);
        fl_transport_set_tls(cli_id, NULL, 0);
        struct fl_conn *c = NULL;
        assert_int_equal(fl_conn_open_named(url, server_name, &c), 0);
        struct fl_request req = {.type = FL_MSG_LIST};
        int rv = fl_conn_call(c, &req, rep, 1500);
        fl_conn_error(c, why, whylen);
        fl_conn_close(c);
        fl_server_shutdown(sv->s);
        pthread_join(t, NULL);
        fl_server_close(sv->s);
        return rv;
}

static void test_round_trip_and_subjects(void **state)
{
        struct fl_tls_identity *agent = load(dir, dir, "agent1");
        struct fl_tls_identity *coord = load(dir, dir, "coordinator");
        struct fl_tls_identity *intern = load(dir, dir, "intern");
        struct fl_reply rep;
        struct srv sv;
        char why[FL_MSG_LEN];

        int rv0 = call(agent, NULL, 0, coord, "agent1", &rep, &sv, why, sizeof(why));
        if (rv0 != 0)
                fail_msg("call: %d (%s) server got %d", rv0, why, sv.got);
        assert_int_equal(rep.status, FL_ST_OK);
        assert_string_equal(rep.msg, "coordinator");
        assert_true(sv.peer.tls.tls && sv.peer.tls.verified && sv.peer.tls.allowed);
        assert_non_null(strstr(sv.peer.addr, "127.0.0.1:"));
        fl_reply_free(&rep);

        const char *const allowed[] = {"coordinator"};
        assert_int_equal(call(agent, allowed, 1, coord, "agent1", &rep, &sv, why, sizeof(why)), 0);
        assert_int_equal(rep.status, FL_ST_OK);
        fl_reply_free(&rep);
        assert_int_equal(call(agent, allowed, 1, intern, "agent1", &rep, &sv, why, sizeof(why)), 0);
        assert_int_equal(rep.status, FL_ST_REFUSED);
        assert_string_equal(rep.msg, "intern");
        assert_true(sv.peer.tls.verified && !sv.peer.tls.allowed);
        fl_reply_free(&rep);

        fl_tls_identity_free(agent);
        fl_tls_identity_free(coord);
        fl_tls_identity_free(intern);
}

static void test_refusals(void **state)
{
        struct fl_tls_identity *agent = load(dir, dir, "agent1");
        struct fl_tls_identity *coord = load(dir, dir, "coordinator");
        struct fl_tls_identity *old = load(dir, dir, "old");
        struct fl_tls_identity *rogue = load(other, dir, "coordinator");
        struct fl_tls_identity *agent_as_client = load(dir, dir, "agent1");
        struct fl_reply rep;
        struct srv sv;
        char why[FL_MSG_LEN];

        /* Wrong name: the client refuses the server, and says why. */
        assert_int_equal(call(agent, NULL, 0, coord, "agent9", &rep, &sv, why, sizeof(why)),
                         -EKEYREJECTED);
        assert_non_null(strstr(why, "server certificate rejected"));
        assert_int_not_equal(sv.got, 1);
        /* The server refuses these clients: no request ever reaches it. */
        struct fl_tls_identity *bad[] = {old, rogue, agent_as_client};
        for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
                int rv = call(agent, NULL, 0, bad[i], "agent1", &rep, &sv, why, sizeof(why));
                if (rv != -EKEYREJECTED)
                        fail_msg("client %zu: %d (%s)", i, rv, why);
                assert_int_not_equal(sv.got, 1);
        }
        fl_tls_identity_free(agent);
        fl_tls_identity_free(coord);
        fl_tls_identity_free(old);
        fl_tls_identity_free(rogue);
        fl_tls_identity_free(agent_as_client);
}

static void test_no_identity(void **state)
{
        struct fl_conn *c = NULL;
        struct fl_server *s = NULL;
        fl_transport_set_tls(NULL, NULL, 0);
        assert_int_equal(fl_conn_open("tls+tcp://127.0.0.1:1", &c), -ENOKEY);
        assert_int_equal(fl_server_open("tls+tcp://127.0.0.1:1", &s), -ENOKEY);
}

static int write_file(const char *p, const char *text)
{
        FILE *f = fopen(p, "w");
        if (!f)
                return -1;
        fputs(text, f);
        return fclose(f);
}

static void test_agent_config_keys(void **state)
{
        char p[160], err[FL_MSG_LEN];
        struct agent_config c;
        path(p, sizeof(p), dir, "agent.yaml");
        assert_int_equal(write_file(p, "tls:\n  ca: /a/ca.crt\n  cert: /a/h.crt\n  key: /a/h.key\n"
                                       "  allowed-subjects: [coordinator, ops-2]\n"
                                       "insecure: true\naudit-log: yes\nsandbox: off\n"
                                       "policy:\n  allowed-paths: [/srv, /var/lib/db]\n"),
                         0);
        agent_config_defaults(&c);
        assert_true(c.sandbox);
        assert_int_equal(agent_config_load(p, &c, err, sizeof(err)), 0);
        assert_string_equal(c.tls.ca, "/a/ca.crt");
        assert_int_equal(c.tls.n_allowed_subjects, 2);
        assert_string_equal(c.tls.allowed_subjects[1], "ops-2");
        assert_true(c.insecure && c.audit_log && !c.sandbox);
        assert_int_equal(c.policy.n_allowed_paths, 2);
        assert_string_equal(c.policy.allowed_paths[1], "/var/lib/db");

        static const struct {
                const char *yaml, *want;
        } bad[] = {
            {"tls:\n  ca: relative.crt\n", "tls.ca must be an absolute path"},
            {"tls:\n  bogus: 1\n", "unknown key \"tls.bogus\""},
            {"tls: [a]\n", "\"tls\" must be a mapping"},
            {"insecure: maybe\n", "is not true or false"},
            {"policy:\n  allowed-paths: [srv]\n", "is not an absolute path"},
            {"tls:\n  allowed-subjects: [a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q]\n", "at most 16"},
        };
        for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
                assert_int_equal(write_file(p, bad[i].yaml), 0);
                agent_config_defaults(&c);
                if (agent_config_load(p, &c, err, sizeof(err)) != -EINVAL ||
                    !strstr(err, bad[i].want))
                        fail_msg("%zu: \"%s\": got \"%s\"", i, bad[i].yaml, err);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_pki_files),
            cmocka_unit_test(test_identity_errors),
            cmocka_unit_test(test_round_trip_and_subjects),
            cmocka_unit_test(test_refusals),
            cmocka_unit_test(test_no_identity),
            cmocka_unit_test(test_agent_config_keys),
        };
        return cmocka_run_group_tests(tests, setup_pki, teardown_pki);
}
