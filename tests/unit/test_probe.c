/* Probes against real processes and a tiny HTTP server this test runs in a
 * thread on 127.0.0.1 (ephemeral port). No traffic leaves loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fl_util.h"
#include "probe.h"

#define S(x) ((char *)(x))

/* ---- tiny HTTP server ------------------------------------------------- */

struct server {
        int fd;
        int port;
        pthread_t thread;
        atomic_bool stop;
};

static struct server srv;

static void reply(int c, int status, const char *body)
{
        char buf[8192];
        int n = snprintf(buf, sizeof(buf),
                         "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         status, strlen(body), body);
        if (n > 0)
                (void)!write(c, buf, (size_t)n);
}

/* Wait until the client goes away or the server stops (bounded: 5 s). */
static void hang(int c)
{
        for (int i = 0; i < 100 && !atomic_load(&srv.stop); i++) {
                struct pollfd pf = {.fd = c, .events = POLLIN};
                char b[256];
                if (poll(&pf, 1, 50) > 0 && read(c, b, sizeof(b)) <= 0)
                        return;
        }
}

static void serve(int c)
{
        char req[4096];
        size_t len = 0;
        while (len < sizeof(req) - 1) {
                struct pollfd pf = {.fd = c, .events = POLLIN};
                if (poll(&pf, 1, 2000) <= 0)
                        return;
                ssize_t k = read(c, req + len, sizeof(req) - 1 - len);
                if (k <= 0)
                        return;
                len += (size_t)k;
                req[len] = 0;
                if (strstr(req, "\r\n\r\n"))
                        break;
        }
        char method[16] = "", path[256] = "";
        if (sscanf(req, "%15s %255s", method, path) != 2)
                return;
        if (!strcmp(path, "/ok"))
                reply(c, 200, "hello ok\n");
        else if (!strcmp(path, "/500"))
                reply(c, 500, "boom\n");
        else if (!strcmp(path, "/slow")) {
                usleep(300 * 1000);
                reply(c, 200, "slow ok\n");
        } else if (!strcmp(path, "/hang"))
                hang(c);
        else if (!strcmp(path, "/echo"))
                reply(c, 200, req);
        else
                reply(c, 404, "not found\n");
}

static void *server_main(void *arg)
{
        while (!atomic_load(&srv.stop)) {
                struct pollfd pf = {.fd = srv.fd, .events = POLLIN};
                if (poll(&pf, 1, 50) <= 0)
                        continue;
                int c = accept4(srv.fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        continue;
                serve(c);
                close(c);
        }
        return NULL;
}

static int setup(void **state)
{
        curl_global_init(CURL_GLOBAL_DEFAULT);
        srv.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (srv.fd < 0)
                return -1;
        int one = 1;
        setsockopt(srv.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        if (bind(srv.fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(srv.fd, 16) < 0 ||
            getsockname(srv.fd, (struct sockaddr *)&a, &al) < 0)
                return -1;
        srv.port = ntohs(a.sin_port);
        atomic_store(&srv.stop, false);
        return pthread_create(&srv.thread, NULL, server_main, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
        atomic_store(&srv.stop, true);
        pthread_join(srv.thread, NULL);
        close(srv.fd);
        curl_global_cleanup();
        return 0;
}

/* ---- command probes --------------------------------------------------- */

struct cmd_case {
        const char *what;
        char *argv[4];
        struct coord_kv env[2];
        size_t n_env;
        uint64_t timeout_ms;
        int exit_code;
        const char *stdout_regex;
        int ret;
        bool ok;
        double value;
        const char *detail; /* prefix */
};

static const struct cmd_case cmd_cases[] = {
    {"true", {S("/bin/true")}, .ret = 0, .ok = true, .value = 0, .detail = "exit 0 in "},
    {"false",
     {S("/bin/false")},
     .ret = 0,
     .ok = false,
     .value = 1,
     .detail = "exit 1 (expected 0) in "},
    {"false expected",
     {S("/bin/false")},
     .exit_code = 1,
     .ret = 0,
     .ok = true,
     .value = 1,
     .detail = "exit 1 in "},
    {"bare name from PATH", {S("true")}, .ret = 0, .ok = true, .detail = "exit 0"},
    {"stdout regex match",
     {S("/bin/echo"), S("hello world")},
     .stdout_regex = "^hello w[a-z]+$",
     .ok = true,
     .detail = "exit 0"},
    {"stdout regex mismatch",
     {S("/bin/echo"), S("hello world")},
     .stdout_regex = "^bye",
     .ok = false,
     .detail = "exit 0 in "},
    {"env passed",
     {S("/usr/bin/env")},
     {{S("FL_PROBE_K"), S("v 1")}},
     1,
     .stdout_regex = "FL_PROBE_K=v 1",
     .ok = true},
    {"PATH fixed",
     {S("/usr/bin/env")},
     .stdout_regex = "(^|\n)PATH=/usr/sbin:/usr/bin:/sbin:/bin\n",
     .ok = true},
    {"coordinator env not inherited",
     {S("/usr/bin/env")},
     .stdout_regex = "FL_TEST_SECRET",
     .ok = false},
    {"no shell", {S("/bin/echo"), S("$HOME;`id`")}, .stdout_regex = "^\\$HOME;`id`$", .ok = true},
    {"not found", {S("fl-no-such-program")}, .ret = -ENOENT, .detail = "cannot execute"},
    {"not executable", {S("/dev/null")}, .ret = -EACCES, .detail = "cannot execute"},
    {"killed",
     {S("/bin/sh"), S("-c"), S("kill -9 $$")},
     .ok = false,
     .value = -9,
     .detail = "killed by signal KILL"},
};

static void test_command(void **state)
{
        setenv("FL_TEST_SECRET", "x", 1);
        for (size_t i = 0; i < FL_ARRAY_SIZE(cmd_cases); i++) {
                const struct cmd_case *cc = &cmd_cases[i];
                struct coord_probe p = {.kind = COORD_PROBE_COMMAND};
                size_t argc = 0;
                while (argc < 4 && cc->argv[argc])
                        argc++;
                p.command.argv = (char **)cc->argv;
                p.command.argc = argc;
                p.command.env = (struct coord_kv *)cc->env;
                p.command.n_env = cc->n_env;
                p.command.timeout_ms = cc->timeout_ms ? cc->timeout_ms : 5000;
                p.expect.exit_code = cc->exit_code;
                p.expect.stdout_regex = (char *)cc->stdout_regex;
                struct coord_probe_result res;
                int r = coord_probe_run(&p, &res);
                fprintf(stderr, "case '%s': %d ok=%d '%s'\n", cc->what, r, res.ok, res.detail);
                if (r != cc->ret)
                        fail_msg("%s: returned %d", cc->what, r);
                assert_int_equal(res.ok, cc->ok);
                if (r == 0)
                        assert_true(res.value == cc->value);
                if (cc->detail)
                        assert_int_equal(strncmp(res.detail, cc->detail, strlen(cc->detail)), 0);
                assert_true(res.started_wall_ms > 1600000000000ull);
        }
        unsetenv("FL_TEST_SECRET");
}

static void test_command_timeout(void **state)
{
        char *argv[] = {S("/bin/sleep"), S("5"), NULL};
        struct coord_probe p = {.kind = COORD_PROBE_COMMAND,
                                .command = {.argv = argv, .argc = 2, .timeout_ms = 200}};
        struct coord_probe_result res;
        uint64_t t0 = fl_now_mono_ms();
        assert_int_equal(coord_probe_run(&p, &res), 0);
        uint64_t took = fl_now_mono_ms() - t0;
        fprintf(stderr, "timeout: '%s' in %llu ms\n", res.detail, (unsigned long long)took);
        assert_false(res.ok);
        assert_true(res.timed_out);
        assert_string_equal(res.detail, "timeout after 200ms");
        assert_true(took >= 190 && took < 2000);
        assert_true(res.latency_us >= 190000);
}

/* A grandchild holding stdout open must neither stall the probe nor
 * survive it. */
static void test_command_background_child(void **state)
{
        char *argv[] = {S("/bin/sh"), S("-c"), S("/bin/sleep 30 & echo started"), NULL};
        struct coord_probe p = {.kind = COORD_PROBE_COMMAND,
                                .command = {.argv = argv, .argc = 3, .timeout_ms = 3000},
                                .expect = {.stdout_regex = S("^started")}};
        struct coord_probe_result res;
        uint64_t t0 = fl_now_mono_ms();
        assert_int_equal(coord_probe_run(&p, &res), 0);
        fprintf(stderr, "background: '%s'\n", res.detail);
        assert_true(res.ok);
        assert_true(fl_now_mono_ms() - t0 < 2000);
}

static void test_command_latency(void **state)
{
        char *argv[] = {S("/bin/sleep"), S("0.2"), NULL};
        struct coord_probe p = {.kind = COORD_PROBE_COMMAND,
                                .command = {.argv = argv, .argc = 2, .timeout_ms = 3000},
                                .expect = {.max_latency_ms = 50}};
        struct coord_probe_result res;
        assert_int_equal(coord_probe_run(&p, &res), 0);
        assert_false(res.ok);
        assert_non_null(strstr(res.detail, ", slower than max 50ms"));
}

static void test_command_bad_spec(void **state)
{
        struct coord_probe_result res;
        struct coord_probe p = {.kind = COORD_PROBE_COMMAND};
        assert_int_equal(coord_probe_run(&p, &res), -EINVAL);
        char *argv[] = {S("/bin/true"), NULL};
        p.command.argv = argv;
        p.command.argc = 1;
        p.expect.stdout_regex = S("a(");
        assert_int_equal(coord_probe_run(&p, &res), -EINVAL);
        assert_non_null(strstr(res.detail, "invalid regex"));
        struct coord_probe q = {.kind = 0};
        assert_int_equal(coord_probe_run(&q, &res), -EINVAL);
}

/* ---- HTTP probes ------------------------------------------------------ */

struct http_case {
        const char *what;
        const char *path; /* NULL: refused port */
        const char *method;
        struct coord_kv headers[1];
        size_t n_headers;
        uint64_t timeout_ms;
        int status;
        uint64_t max_latency_ms;
        const char *body_regex;
        bool ok;
        double value;
        const char *detail;
        uint64_t min_latency_us;
        bool timed_out;
};

static const struct http_case http_cases[] = {
    {"200", "/ok", .ok = true, .value = 200, .detail = "status 200 in "},
    {"500 vs 200", "/500", .ok = false, .value = 500, .detail = "status 500 (expected 200)"},
    {"500 expected", "/500", .status = 500, .ok = true, .value = 500, .detail = "status 500 in"},
    {"body regex", "/ok", .body_regex = "^hello (ok|fine)", .ok = true, .value = 200},
    {"body regex mismatch", "/ok", .body_regex = "^nope", .ok = false, .value = 200,
     .detail = "status 200 in "},
    {"method", "/echo", "DELETE", .body_regex = "^DELETE /echo HTTP/1.1\r$", .ok = true,
     .value = 200},
    {"headers",
     "/echo",
     NULL,
     {{S("X-Fl-Test"), S("abc")}},
     1,
     .body_regex = "^X-Fl-Test: abc\r$",
     .ok = true,
     .value = 200},
    {"regex is line-anchored", "/echo", .body_regex = "^Host: 127", .ok = true, .value = 200},
    {"slow over max-latency", "/slow", .max_latency_ms = 100, .ok = false, .value = 200,
     .min_latency_us = 290000},
    {"slow within limit", "/slow", .max_latency_ms = 1500, .ok = true, .value = 200,
     .min_latency_us = 290000},
    {"timeout", "/hang", .timeout_ms = 200, .ok = false, .value = 0,
     .detail = "timeout after 200ms", .timed_out = true},
    {"refused", NULL, .ok = false, .value = 0, .detail = "connection refused"},
};

static int refused_port(void)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(a);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
        close(fd); /* bound, never listened: connecting is refused */
        return ntohs(a.sin_port);
}

static void test_http(void **state)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(http_cases); i++) {
                const struct http_case *hc = &http_cases[i];
                char url[128];
                if (hc->path)
                        snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", srv.port, hc->path);
                else
                        snprintf(url, sizeof(url), "http://127.0.0.1:%d/", refused_port());
                struct coord_probe p = {
                    .kind = COORD_PROBE_HTTP,
                    .http = {.url = url,
                             .method = (char *)hc->method,
                             .headers = (struct coord_kv *)hc->headers,
                             .n_headers = hc->n_headers,
                             .timeout_ms = hc->timeout_ms ? hc->timeout_ms : 3000},
                    .expect = {.status = hc->status,
                               .max_latency_ms = hc->max_latency_ms,
                               .body_regex = (char *)hc->body_regex},
                };
                struct coord_probe_result res;
                uint64_t t0 = fl_now_mono_ms();
                int r = coord_probe_run(&p, &res);
                uint64_t took = fl_now_mono_ms() - t0;
                fprintf(stderr, "case '%s': %d ok=%d '%s' %llu us\n", hc->what, r, res.ok,
                        res.detail, (unsigned long long)res.latency_us);
                assert_int_equal(r, 0);
                if (res.ok != hc->ok)
                        fail_msg("%s: ok=%d", hc->what, res.ok);
                assert_true(res.value == hc->value);
                assert_int_equal(res.timed_out, hc->timed_out);
                if (hc->detail && strncmp(res.detail, hc->detail, strlen(hc->detail)))
                        fail_msg("%s: detail '%s'", hc->what, res.detail);
                assert_true(res.latency_us >= hc->min_latency_us);
                assert_true(took < 2000);
        }
}

/* Several probes at once from several threads (the contract in probe.h). */
struct par {
        char url[128];
        int ok;
};

static void *par_main(void *arg)
{
        struct par *pp = arg;
        for (int i = 0; i < 5; i++) {
                struct coord_probe_result res;
                struct coord_probe h = {.kind = COORD_PROBE_HTTP,
                                        .http = {.url = pp->url, .timeout_ms = 3000}};
                if (coord_probe_run(&h, &res) == 0 && res.ok)
                        pp->ok++;
                else
                        fprintf(stderr, "thread http: %s\n", res.detail);
                char *argv[] = {S("/bin/echo"), S("x"), NULL};
                struct coord_probe c = {.kind = COORD_PROBE_COMMAND,
                                        .command = {.argv = argv, .argc = 2, .timeout_ms = 3000},
                                        .expect = {.stdout_regex = S("^x$")}};
                if (coord_probe_run(&c, &res) == 0 && res.ok)
                        pp->ok++;
                else
                        fprintf(stderr, "thread command: %s\n", res.detail);
        }
        return NULL;
}

static void test_threads(void **state)
{
        pthread_t t[4];
        struct par p[4];
        for (int i = 0; i < 4; i++) {
                snprintf(p[i].url, sizeof(p[i].url), "http://127.0.0.1:%d/ok", srv.port);
                p[i].ok = 0;
                assert_int_equal(pthread_create(&t[i], NULL, par_main, &p[i]), 0);
        }
        for (int i = 0; i < 4; i++) {
                pthread_join(t[i], NULL);
                assert_int_equal(p[i].ok, 10);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_command),
            cmocka_unit_test(test_command_timeout),
            cmocka_unit_test(test_command_background_child),
            cmocka_unit_test(test_command_latency),
            cmocka_unit_test(test_command_bad_spec),
            cmocka_unit_test(test_http),
            cmocka_unit_test(test_threads),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
