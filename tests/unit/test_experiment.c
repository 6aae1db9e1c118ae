/* Experiment parser and validator: a full valid file parses to the
 * expected structs; a table of bad files each yields the expected error at
 * the expected LINE:COL. Leaks are caught by the ASan build. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "experiment.h"
#include "fl_util.h"

static char tmpdir[64];

static int setup(void **state)
{
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/fl-exp-XXXXXX");
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const char *text, char *path, size_t size)
{
        snprintf(path, size, "%s/%s", tmpdir, name);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static const char inventory_yaml[] = "agents:\n"
                                     "  - {name: web-1, address: 'tcp://127.0.0.1:7070', tags: "
                                     "[web, primary]}\n"
                                     "  - {name: web-2, address: 'tcp://127.0.0.1:7071', tags: "
                                     "[web]}\n"
                                     "  - {name: db-1, address: 'tcp://127.0.0.1:7072', tags: "
                                     "[db]}\n";

static const char valid_yaml[] =
    "version: 1\n"                                                          /* 1 */
    "title: Demo game day\n"                                                /* 2 */
    "description: |\n"                                                      /* 3 */
    "  Pause the web server.\n"                                             /* 4 */
    "tags: [demo, web]\n"                                                   /* 5 */
    "inventory: inv.yaml\n"                                                 /* 6 */
    "targets:\n"                                                            /* 7 */
    "  web: {names: [web-1]}\n"                                             /* 8 */
    "  some-web: {tags: [web], count: 1}\n"                                 /* 9 */
    "  half: {tags: [web], percent: 50}\n"                                  /* 10 */
    "  everyone: {all: true}\n"                                             /* 11 */
    "steady-state:\n"                                                       /* 12 */
    "  probes:\n"                                                           /* 13 */
    "    - name: homepage\n"                                                /* 14 */
    "      http:\n"                                                         /* 15 */
    "        url: \"http://127.0.0.1:8080/\"\n"                             /* 16 */
    "        method: GET\n"                                                 /* 17 */
    "        timeout: 2s\n"                                                 /* 18 */
    "        headers: {X-A: b}\n"                                           /* 19 */
    "        body: \"\"\n"                                                  /* 20 */
    "      expect: {status: 200, max-latency: 500ms, body-regex: \"ok\"}\n" /* 21 */
    "    - name: disk-ok\n"                                                 /* 22 */
    "      command: {argv: [/bin/true, -x], timeout: 5s, env: {K: V}}\n"    /* 23 */
    "      expect: {exit-code: 0, stdout-regex: \"^$\"}\n"                  /* 24 */
    "method:\n"                                                             /* 25 */
    "  - fault: {target: web, kind: process-pause, duration: 5s, params: {name: "
    "fl-demo-httpd, ports: [80, 443]}}\n"                                 /* 26 */
    "  - wait: 1m30s\n"                                                   /* 27 */
    "  - probe:\n"                                                        /* 28 */
    "      name: during\n"                                                /* 29 */
    "      command: {argv: [true]}\n"                                     /* 30 */
    "rollbacks:\n"                                                        /* 31 */
    "  - wait: 250ms\n"                                                   /* 32 */
    "  - probe: {name: after, http: {url: 'http://127.0.0.1:8080/x'}}\n"; /* 33 */

struct hook_log {
        int calls;
        char kind[64];
        size_t n;
        char first_key[64];
        char first_val[64];
        char second_val[64];
        bool fail;
};

static int hook(void *ud, const char *kind, const struct fl_param *params, size_t n, char *err,
                size_t errlen)
{
        struct hook_log *h = ud;
        h->calls++;
        snprintf(h->kind, sizeof(h->kind), "%s", kind);
        h->n = n;
        if (n > 0) {
                snprintf(h->first_key, sizeof(h->first_key), "%s", params[0].key);
                snprintf(h->first_val, sizeof(h->first_val), "%.60s", params[0].value);
        }
        if (n > 1)
                snprintf(h->second_val, sizeof(h->second_val), "%.60s", params[1].value);
        if (h->fail) {
                snprintf(err, errlen, "unknown param 'nme'");
                return -EINVAL;
        }
        return 0;
}

static void test_valid(void **state)
{
        char inv[256], path[256];
        write_file("inv.yaml", inventory_yaml, inv, sizeof(inv));
        write_file("exp.yaml", valid_yaml, path, sizeof(path));

        struct hook_log log = {0};
        struct coord_validate_hooks hooks = {.userdata = &log, .validate_fault = hook};
        struct coord_experiment e;
        struct coord_diags d = {0};
        int r = coord_experiment_load(path, &hooks, &e, &d);
        coord_diags_print(&d, stderr);
        assert_int_equal(r, 0);
        assert_int_equal(coord_diags_count(&d), 0);

        assert_string_equal(e.path, path);
        assert_int_equal(e.version, 1);
        assert_string_equal(e.title, "Demo game day");
        assert_string_equal(e.description, "Pause the web server.\n");
        assert_int_equal(e.n_tags, 2);
        assert_string_equal(e.tags[1], "web");

        assert_true(e.has_inventory);
        assert_string_equal(e.inventory_path, inv);
        assert_int_equal(e.inventory.n_agents, 3);

        assert_int_equal(e.n_targets, 4);
        assert_string_equal(e.targets[0].name, "web");
        assert_int_equal(e.targets[0].sel.n_names, 1);
        assert_string_equal(e.targets[0].sel.names[0], "web-1");
        assert_int_equal(e.targets[0].line, 8);
        assert_int_equal(e.targets[1].sel.n_tags, 1);
        assert_int_equal(e.targets[1].sel.count, 1);
        assert_int_equal(e.targets[2].sel.percent_bp, 5000);
        assert_true(e.targets[3].sel.all);
        assert_ptr_equal(coord_experiment_find_target(&e, "half"), &e.targets[2]);

        assert_int_equal(e.n_steady_state, 2);
        const struct coord_probe *p = &e.steady_state[0];
        assert_string_equal(p->name, "homepage");
        assert_int_equal(p->kind, COORD_PROBE_HTTP);
        assert_string_equal(p->http.url, "http://127.0.0.1:8080/");
        assert_string_equal(p->http.method, "GET");
        assert_int_equal(p->http.timeout_ms, 2000);
        assert_int_equal(p->http.n_headers, 1);
        assert_string_equal(p->http.headers[0].key, "X-A");
        assert_string_equal(p->http.headers[0].value, "b");
        assert_string_equal(p->http.body, "");
        assert_int_equal(p->expect.status, 200);
        assert_int_equal(p->expect.max_latency_ms, 500);
        assert_string_equal(p->expect.body_regex, "ok");
        assert_int_equal(p->line, 14);
        assert_int_equal(p->column, 7);

        p = &e.steady_state[1];
        assert_int_equal(p->kind, COORD_PROBE_COMMAND);
        assert_int_equal(p->command.argc, 2);
        assert_string_equal(p->command.argv[0], "/bin/true");
        assert_string_equal(p->command.argv[1], "-x");
        assert_null(p->command.argv[2]);
        assert_int_equal(p->command.timeout_ms, 5000);
        assert_int_equal(p->command.n_env, 1);
        assert_string_equal(p->command.env[0].key, "K");
        assert_string_equal(p->command.env[0].value, "V");
        assert_int_equal(p->expect.exit_code, 0);
        assert_string_equal(p->expect.stdout_regex, "^$");

        assert_int_equal(e.n_method, 3);
        const struct coord_step *s = &e.method[0];
        assert_int_equal(s->kind, COORD_STEP_FAULT);
        assert_int_equal(s->line, 26);
        assert_int_equal(s->column, 5);
        assert_string_equal(s->fault.target, "web");
        assert_string_equal(s->fault.kind, "process-pause");
        assert_int_equal(s->fault.duration_ms, 5000);
        assert_int_equal(s->fault.n_params, 2);
        assert_string_equal(s->fault.params[0].key, "name");
        assert_string_equal(s->fault.params[0].value, "fl-demo-httpd");
        assert_string_equal(s->fault.params[1].key, "ports");
        assert_string_equal(s->fault.params[1].value, "80,443");
        assert_int_equal(e.method[1].kind, COORD_STEP_WAIT);
        assert_int_equal(e.method[1].wait_ms, 90000);
        assert_int_equal(e.method[2].kind, COORD_STEP_PROBE);
        assert_string_equal(e.method[2].probe.name, "during");
        assert_string_equal(e.method[2].probe.command.argv[0], "true");
        assert_int_equal(e.method[2].probe.command.timeout_ms, COORD_PROBE_COMMAND_TIMEOUT_MS);

        assert_int_equal(e.n_rollbacks, 2);
        assert_int_equal(e.rollbacks[0].wait_ms, 250);
        assert_int_equal(e.rollbacks[1].probe.http.timeout_ms, COORD_PROBE_HTTP_TIMEOUT_MS);
        assert_int_equal(e.rollbacks[1].probe.expect.status, 200);
        assert_string_equal(coord_step_kind_name(e.rollbacks[1].kind), "probe");

        assert_int_equal(log.calls, 1);
        assert_string_equal(log.kind, "process-pause");
        assert_int_equal(log.n, 2);
        assert_string_equal(log.first_key, "name");
        assert_string_equal(log.first_val, "fl-demo-httpd");
        assert_string_equal(log.second_val, "80,443");

        coord_experiment_free(&e);
        assert_null(e.title);
        coord_experiment_free(&e);
        coord_diags_free(&d);
}

#define PRE                                                                                        \
        "version: 1\n"                                                                             \
        "title: t\n"                                                                               \
        "inventory:\n"                                                                             \
        "  agents:\n"                                                                              \
        "    - {name: web-1, address: 'tcp://127.0.0.1:7070', tags: [web]}\n"                      \
        "targets:\n"                                                                               \
        "  web: {names: [web-1]}\n"
/* PRE is 7 lines; the case text starts on line 8. */
#define FAULT "  - fault: {target: web, kind: k, duration: 5s}\n"

/* Same as PRE, format version 2. */
#define V2                                                                                         \
        "version: 2\n"                                                                             \
        "title: t\n"                                                                               \
        "inventory:\n"                                                                             \
        "  agents:\n"                                                                              \
        "    - {name: web-1, address: 'tcp://127.0.0.1:7070', tags: [web]}\n"                      \
        "targets:\n"                                                                               \
        "  web: {names: [web-1]}\n"
/* Version 2 with two web agents (selection tests). */
#define V2T                                                                                        \
        "version: 2\n"                                                                             \
        "title: t\n"                                                                               \
        "inventory:\n"                                                                             \
        "  agents:\n"                                                                              \
        "    - {name: web-1, address: 'tcp://127.0.0.1:7070', tags: [web]}\n"                      \
        "    - {name: web-2, address: 'tcp://127.0.0.1:7071', tags: [web]}\n"                      \
        "targets:\n"

struct bad_case {
        const char *what;
        const char *yaml;
        unsigned line, column;
        const char *msg;
        const char *hint;
        size_t n_errors;
};

static const struct bad_case bad_cases[] = {
    {"invalid yaml", PRE "method:\n  - wait: [1s\n", 10, 1, "invalid YAML", NULL, 1},
    {"not a mapping", "[1, 2]\n", 1, 1, "experiment must be a mapping", NULL, 1},
    {"unknown top key", PRE "steady_state: {}\nmethod:\n" FAULT, 8, 1,
     "unknown key 'steady_state' in experiment", "did you mean 'steady-state'?", 1},
    {"unknown key, no near miss", PRE "zzzzzz: 1\nmethod:\n" FAULT, 8, 1, "unknown key 'zzzzzz'",
     "expected one of: version", 1},
    {"unknown fault key", PRE "method:\n  - fault: {target: web, kind: k, duraton: 5s}\n", 9, 35,
     "unknown key 'duraton' in fault", "did you mean 'duration'?", 2},
    {"unknown target", PRE "method:\n  - fault: {target: webb, kind: k, duration: 5s}\n", 9, 21,
     "unknown target 'webb'", "did you mean 'web'?", 1},
    {"missing duration", PRE "method:\n  - fault: {target: web, kind: k}\n", 9, 12,
     "fault has no 'duration'", "e.g. duration: 30s", 1},
    {"duration without unit", PRE "method:\n  - fault: {target: web, kind: k, duration: 5}\n", 9,
     45, "duration '5' has no unit", "durations need a unit", 1},
    {"negative duration", PRE "method:\n  - fault: {target: web, kind: k, duration: -5s}\n", 9, 45,
     "duration must not be negative", NULL, 1},
    {"zero duration", PRE "method:\n  - fault: {target: web, kind: k, duration: 0s}\n", 9, 45,
     "duration must be greater than zero", NULL, 1},
    {"garbage wait", PRE "method:\n  - wait: soon\n", 9, 11, "invalid wait 'soon'", NULL, 1},
    {"missing kind", PRE "method:\n  - fault: {target: web, duration: 1s}\n", 9, 12,
     "fault has no 'kind'", NULL, 1},
    {"version 3", "version: 3\ntitle: t\nmethod:\n  - wait: 1s\n", 1, 10,
     "unsupported experiment version 3", "versions 1 and 2", 1},
    {"version missing", "title: t\nmethod:\n  - wait: 1s\n", 1, 1, "missing 'version'", NULL, 1},
    {"title missing", "version: 1\nmethod:\n  - wait: 1s\n", 1, 1, "missing 'title'", NULL, 1},
    {"empty method", PRE "method: []\n", 8, 9, "method is empty", NULL, 1},
    {"null method", PRE "method:\n", 8, 8, "method is empty", NULL, 1},
    {"missing method", PRE, 1, 1, "missing 'method'", NULL, 1},
    {"bad agent url",
     "version: 1\ntitle: t\ninventory:\n  agents:\n    - {name: a, address: "
     "'http://127.0.0.1:1'}\nmethod:\n  - wait: 1s\n",
     5, 26, "invalid agent address 'http://127.0.0.1:1'", "tls+tcp://", 1},
    {"percent 150",
     "version: 1\ntitle: t\ninventory:\n  agents:\n    - {name: a, address: "
     "'tcp://127.0.0.1:1', tags: [web]}\ntargets:\n  w: {tags: [web], percent: 150}\n"
     "method:\n  - wait: 1s\n",
     7, 29, "percent must be in (0, 100], not '150'", NULL, 1},
    {"count and percent", PRE "  w2: {tags: [web], count: 1, percent: 5}\nmethod:\n" FAULT, 8, 40,
     "count and percent are mutually exclusive", NULL, 1},
    {"selector needs one", PRE "  w2: {count: 1}\nmethod:\n" FAULT, 8, 7,
     "target 'w2' needs exactly one of names, tags, all: true", NULL, 1},
    {"target agent unknown", PRE "  w2: {names: [web-9]}\nmethod:\n" FAULT, 8, 7,
     "target 'w2': agent 'web-9' is not in the inventory", NULL, 1},
    {"target tag matches nothing", PRE "  w2: {tags: [db]}\nmethod:\n" FAULT, 8, 7,
     "target 'w2': no agent carries tag(s) db", NULL, 1},
    {"targets without inventory",
     "version: 1\ntitle: t\ntargets:\n  w: {all: true}\nmethod:\n  - wait: 1s\n", 4, 3,
     "targets need an inventory", NULL, 1},
    {"duplicate probe names",
     PRE "steady-state:\n  probes:\n    - {name: p, command: {argv: [/bin/true]}}\n"
         "method:\n  - probe: {name: p, command: {argv: [/bin/true]}}\n",
     12, 19, "duplicate probe name 'p' (first at line 10)", "unique", 1},
    {"probe without kind", PRE "method:\n  - probe: {name: p}\n", 9, 12,
     "probe needs one of 'http', 'command', 'tcp' or 'prometheus'", NULL, 1},
    {"probe http and command",
     PRE "method:\n  - probe: {name: p, http: {url: 'http://x/'}, command: {argv: [a]}}\n", 9, 57,
     "exactly one of 'http', 'command', 'tcp', 'prometheus'", NULL, 1},
    {"bad url scheme", PRE "method:\n  - probe: {name: p, http: {url: 'ftp://x/'}}\n", 9, 34,
     "url must start with http:// or https://", NULL, 1},
    {"bad regex",
     PRE "method:\n  - probe: {name: p, http: {url: 'http://x/'}, expect: {body-regex: "
         "'a('}}\n",
     9, 69, "invalid body-regex 'a('", NULL, 1},
    {"status out of range",
     PRE "method:\n  - probe: {name: p, http: {url: 'http://x/'}, expect: {status: 99}}\n", 9, 65,
     "status must be an integer from 100 to 599", NULL, 1},
    {"expect key of other kind",
     PRE "method:\n  - probe: {name: p, http: {url: 'http://x/'}, expect: {exit-code: 0}}\n", 9, 68,
     "'exit-code' applies to command probes only", NULL, 1},
    {"relative program", PRE "method:\n  - probe: {name: p, command: {argv: [bin/x]}}\n", 9, 39,
     "invalid program 'bin/x'", "absolute path", 1},
    {"empty argv", PRE "method:\n  - probe: {name: p, command: {argv: []}}\n", 9, 38,
     "argv must not be empty", NULL, 1},
    {"env PATH", PRE "method:\n  - probe: {name: p, command: {argv: [a], env: {PATH: /x}}}\n", 9,
     49, "invalid name 'PATH' in env", "PATH is fixed", 1},
    {"two step kinds", PRE "method:\n  - {wait: 1s, probe: {name: p}}\n", 9, 5,
     "exactly one of fault, wait, probe", NULL, 1},
    {"fault in rollbacks", PRE "method:\n" FAULT "rollbacks:\n" FAULT, 11, 5,
     "fault steps are not allowed in rollbacks", NULL, 1},
    {"param value a mapping",
     PRE "method:\n  - fault: {target: web, kind: k, duration: 1s, params: {a: {b: c}}}\n", 9, 61,
     "param 'a' must be a scalar or a list of scalars", NULL, 1},
    {"many errors at once",
     "version: 3\ntitle: t\nmethod:\n  - wait: 5\n  - wait: -1s\n  - fault: {target: x, "
     "kind: k, duration: 1s}\n",
     1, 10, "unsupported experiment version 3", NULL, 4},
    /* ---- format version 2 ---- */
    {"v2 key in v1 file", PRE "method:\n  - parallel: [{wait: 1s}]\n", 9, 15,
     "parallel needs format version 2", "version: 2", 1},
    {"guardrails in v1", PRE "guardrails: []\nmethod:\n  - wait: 1s\n", 8, 13,
     "guardrails needs format version 2", NULL, 1},
    {"background in v1",
     PRE "method:\n  - fault: {target: web, kind: k, duration: 1s, background: true}\n", 9, 61,
     "background needs format version 2", NULL, 1},
    {"tcp probe in v1", PRE "method:\n  - probe: {name: p, tcp: {host: h, port: 1}}\n", 9, 27,
     "a tcp probe needs format version 2", NULL, 1},
    {"empty parallel", V2 "method:\n  - parallel: []\n", 9, 15, "parallel group is empty", NULL, 1},
    {"fault in parallel rollbacks",
     V2 "method:\n  - wait: 1s\nrollbacks:\n  - parallel:\n      - fault: {target: web, kind: k, "
        "duration: 1s}\n",
     12, 9, "fault steps are not allowed in rollbacks", NULL, 1},
    {"bad background value",
     V2 "method:\n  - fault: {target: web, kind: k, duration: 1s, background: "
        "maybe}\n",
     9, 61, "background must be true or false", NULL, 1},
    {"two failovers",
     V2 "method:\n  - fault: {target: web, kind: k, duration: 1s, failover: true}\n"
        "  - fault: {target: web, kind: k, duration: 1s, failover: true}\n",
     10, 59, "only one fault step may have failover: true", NULL, 1},
    {"drill without failover",
     V2 "steady-state:\n  probes: [{name: s, command: {argv: [/bin/true]}}]\n"
        "drill:\n  rto: {target: 5s}\nmethod:\n  - wait: 1s\n",
     11, 3, "drill needs a fault step with failover: true", NULL, 1},
    {"rto without steady state",
     V2 "drill:\n  rto: {target: 5s}\nmethod:\n  - fault: {target: web, kind: k, duration: 1s, "
        "failover: true}\n",
     9, 8, "rto needs steady-state probes", NULL, 1},
    {"rpo marker regex without group",
     V2 "drill:\n  rpo:\n    target: 1s\n    writer: {name: w, command: {argv: [/bin/true]}}\n"
        "    reader: {name: r, command: {argv: [/bin/true]}}\n    marker-regex: 'seq'\n"
        "method:\n  - fault: {target: web, kind: k, duration: 1s, failover: true}\n",
     13, 19, "marker-regex needs a group", NULL, 1},
    {"guardrail bad success ratio",
     V2 "guardrails:\n  - {name: g, http: {url: 'http://x/'}, success-ratio: 120%}\nmethod:\n  - "
        "wait: "
        "1s\n",
     9, 56, "success-ratio must be in (0, 100]", NULL, 1},
    {"guardrail interval too short",
     V2 "guardrails:\n  - {name: g, http: {url: 'http://x/'}, interval: 10ms}\nmethod:\n  - wait: "
        "1s\n",
     9, 51, "interval must be at least 50ms", NULL, 1},
    {"guardrail unknown key",
     V2 "guardrails:\n  - {name: g, http: {url: 'http://x/'}, intervall: 1s}\nmethod:\n  - wait: "
        "1s\n",
     9, 41, "unknown key 'intervall' in guardrail", "did you mean 'interval'?", 1},
    {"slo objective 100%",
     V2
     "guardrails:\n  - name: g\n    http: {url: 'http://x/'}\n    slo: {objective: 100%, windows: "
     "[5m, 1h], burn-rate: 14.4}\nmethod:\n  - wait: 1s\n",
     11, 22, "objective must be below 100%", NULL, 1},
    {"slo windows reversed",
     V2
     "guardrails:\n  - name: g\n    http: {url: 'http://x/'}\n    slo: {objective: 99.9%, windows: "
     "[1h, 5m], burn-rate: 14.4}\nmethod:\n  - wait: 1s\n",
     11, 38, "the short window must be shorter than the long one", NULL, 1},
    {"slo missing burn rate",
     V2
     "guardrails:\n  - name: g\n    http: {url: 'http://x/'}\n    slo: {objective: 99.9%, windows: "
     "[5m, 1h]}\nmethod:\n  - wait: 1s\n",
     11, 10, "slo has no 'burn-rate'", NULL, 1},
    {"prometheus value and min",
     V2
     "method:\n  - probe: {name: p, prometheus: {url: 'http://x:9090', query: up}, expect: {value: "
     "1, min-value: 0}}\n",
     9, 85, "value and min-value/max-value are mutually exclusive", NULL, 1},
    {"prometheus without query",
     V2 "method:\n  - probe: {name: p, prometheus: {url: 'http://x:9090'}}\n", 9, 34,
     "prometheus probe has no 'query'", NULL, 1},
    {"tcp bad port", V2 "method:\n  - probe: {name: p, tcp: {host: h, port: 70000}}\n", 9, 43,
     "port must be an integer from 1 to 65535", NULL, 1},
    {"reply-regex on http",
     V2 "method:\n  - probe: {name: p, http: {url: 'http://x/'}, expect: {reply-regex: x}}\n", 9,
     70, "'reply-regex' applies to tcp probes only", NULL, 1},
    {"seed without random", V2T "  w2: {tags: [web], seed: 7}\nmethod:\n  - wait: 1s\n", 8, 27,
     "seed without random: true", "random: true", 1},
    {"max blast radius exceeded",
     V2T "  w2: {tags: [web], max-blast-radius: 1}\nmethod:\n  - wait: 1s\n", 8, 7,
     "selects 2 agents, more than max-blast-radius 1", NULL, 1},
    {"inventory file missing",
     "version: 1\ntitle: t\ninventory: nope.yaml\nmethod:\n  - wait: 1s\n", 0, 0,
     "cannot open: No such file or directory", NULL, 2},
};

static void test_bad(void **state)
{
        int failures = 0;
        for (size_t i = 0; i < FL_ARRAY_SIZE(bad_cases); i++) {
                const struct bad_case *bc = &bad_cases[i];
                char path[256];
                struct coord_diags d = {0};
                struct coord_experiment e = {.n_method = 99};
                write_file("bad.yaml", bc->yaml, path, sizeof(path));
                int r = coord_experiment_load(path, NULL, &e, &d);
                fprintf(stderr, "case '%s':\n", bc->what);
                coord_diags_print(&d, stderr);
                assert_true(r < 0);
                assert_int_equal(e.n_method, 0);
                assert_null(e.method);
                assert_non_null(d.items);
                if (coord_diags_count(&d) != bc->n_errors && ++failures)
                        print_error("%s: %zu errors, expected %zu\n", bc->what,
                                    coord_diags_count(&d), bc->n_errors);
                if ((d.items[0].line != bc->line || d.items[0].column != bc->column) && ++failures)
                        print_error("%s: at %u:%u, expected %u:%u\n", bc->what, d.items[0].line,
                                    d.items[0].column, bc->line, bc->column);
                if (!strstr(d.items[0].message, bc->msg) && ++failures)
                        print_error("%s: message '%s'\n", bc->what, d.items[0].message);
                if (bc->hint && (!d.items[0].hint || !strstr(d.items[0].hint, bc->hint)) &&
                    ++failures)
                        print_error("%s: hint '%s'\n", bc->what,
                                    d.items[0].hint ? d.items[0].hint : "(none)");
                coord_diags_free(&d);
        }
        assert_int_equal(failures, 0);
}

static void test_hook_error(void **state)
{
        static const char yaml[] = PRE "method:\n"
                                       "  - wait: 1s\n"
                                       "  - fault: {target: web, kind: process-kill, duration: "
                                       "5s, params: {nme: x}}\n";
        struct hook_log log = {.fail = true};
        struct coord_validate_hooks hooks = {.userdata = &log, .validate_fault = hook};
        struct coord_experiment e;
        struct coord_diags d = {0};
        assert_int_equal(
            coord_experiment_load_buffer("mem.yaml", yaml, strlen(yaml), NULL, &hooks, &e, &d),
            -EINVAL);
        assert_int_equal(log.calls, 1);
        assert_int_equal(coord_diags_count(&d), 1);
        assert_string_equal(d.items[0].file, "mem.yaml");
        assert_int_equal(d.items[0].line, 10);
        assert_int_equal(d.items[0].column, 5);
        assert_string_equal(d.items[0].message, "fault 'process-kill': unknown param 'nme'");
        coord_diags_free(&d);

        /* A fault that already failed our own checks is not passed on. */
        static const char yaml2[] =
            PRE "method:\n  - fault: {target: web, kind: process-kill, duration: 5}\n";
        log.calls = 0;
        assert_int_equal(
            coord_experiment_load_buffer("mem.yaml", yaml2, strlen(yaml2), NULL, &hooks, &e, &d),
            -EINVAL);
        assert_int_equal(log.calls, 0);
        assert_int_equal(coord_diags_count(&d), 1);
        coord_diags_free(&d);
}

static void test_inline_inventory_buffer(void **state)
{
        static const char yaml[] = PRE "method:\n" FAULT;
        struct coord_experiment e;
        struct coord_diags d = {0};
        assert_int_equal(
            coord_experiment_load_buffer("mem.yaml", yaml, strlen(yaml), NULL, NULL, &e, &d), 0);
        assert_true(e.has_inventory);
        assert_null(e.inventory_path);
        assert_int_equal(e.inventory.n_agents, 1);
        assert_string_equal(e.inventory.agents[0].name, "web-1");
        assert_int_equal(e.n_method, 1);
        assert_int_equal(e.n_rollbacks, 0);
        assert_int_equal(e.n_steady_state, 0);
        assert_null(e.description);
        coord_experiment_free(&e);
        coord_diags_free(&d);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_valid),
            cmocka_unit_test(test_bad),
            cmocka_unit_test(test_hook_error),
            cmocka_unit_test(test_inline_inventory_buffer),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
