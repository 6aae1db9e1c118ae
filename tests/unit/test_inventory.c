/* Inventory parsing, diagnostics and agent selection. */
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

#include "fl_util.h"
#include "inventory.h"

#define S(x) ((char *)(x))

static char tmpdir[64];

static int setup(void **state)
{
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/fl-inv-XXXXXX");
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

static const char valid_inventory[] = "# fleet\n"
                                      "agents:\n"
                                      "  - name: web-1\n"
                                      "    address: tcp://127.0.0.1:7070\n"
                                      "    tags: [web, primary]\n"
                                      "  - name: web-2\n"
                                      "    address: tls+tcp://[::1]:7071\n"
                                      "    tags: [web]\n"
                                      "  - name: db.1\n"
                                      "    address: tls+tcp://db-1.example:7072\n"
                                      "    tags: [db, primary]\n";

static void load_valid(struct coord_inventory *inv)
{
        char path[256];
        struct coord_diags d = {0};
        write_file("inv.yaml", valid_inventory, path, sizeof(path));
        int r = coord_inventory_load(path, inv, &d);
        if (r < 0)
                coord_diags_print(&d, stderr);
        assert_int_equal(r, 0);
        assert_int_equal(coord_diags_count(&d), 0);
        coord_diags_free(&d);
}

static void test_valid(void **state)
{
        struct coord_inventory inv;
        load_valid(&inv);
        assert_int_equal(inv.n_agents, 3);
        assert_string_equal(inv.agents[0].name, "web-1");
        assert_string_equal(inv.agents[0].address, "tcp://127.0.0.1:7070");
        assert_int_equal(inv.agents[0].n_tags, 2);
        assert_string_equal(inv.agents[0].tags[0], "web");
        assert_string_equal(inv.agents[0].tags[1], "primary");
        assert_int_equal(inv.agents[0].line, 3);
        assert_int_equal(inv.agents[0].column, 5);
        assert_string_equal(inv.agents[1].address, "tls+tcp://[::1]:7071");
        assert_string_equal(inv.agents[2].name, "db.1");
        assert_true(coord_agent_has_tag(&inv.agents[2], "db"));
        assert_false(coord_agent_has_tag(&inv.agents[2], "web"));
        assert_ptr_equal(coord_inventory_find(&inv, "web-2"), &inv.agents[1]);
        assert_null(coord_inventory_find(&inv, "web-3"));
        coord_inventory_free(&inv);
        assert_int_equal(inv.n_agents, 0);
        coord_inventory_free(&inv); /* idempotent */
}

struct bad_case {
        const char *what;
        const char *yaml;
        unsigned line, column;
        const char *msg;  /* substring of the first error */
        const char *hint; /* substring of its hint, or NULL */
        size_t n_errors;
};

static const struct bad_case bad_cases[] = {
    {"invalid yaml", "agents:\n  - name: [a\n", 3, 1, "invalid YAML", NULL, 1},
    {"tab indent", "agents:\n\t- name: a\n", 2, 1, "invalid YAML", NULL, 1},
    {"not a mapping", "- a\n- b\n", 1, 1, "inventory must be a mapping", NULL, 1},
    {"no agents key", "agent: []\n", 1, 1, "unknown key 'agent'", "did you mean 'agents'?", 2},
    {"empty agents", "agents: []\n", 1, 9, "inventory has no agents", NULL, 1},
    {"unknown agent key", "agents:\n  - name: a\n    address: tcp://127.0.0.1:1\n    tgas: [x]\n",
     4, 5, "unknown key 'tgas' in agent", "did you mean 'tags'?", 1},
    {"missing address", "agents:\n  - name: a\n", 2, 5, "agent has no 'address'", NULL, 1},
    {"duplicate name",
     "agents:\n"
     "  - {name: a, address: 'tcp://127.0.0.1:1'}\n"
     "  - {name: a, address: 'tcp://127.0.0.1:2'}\n",
     3, 12, "duplicate agent name 'a' (first at line 2)", NULL, 1},
    {"bad name", "agents:\n  - {name: 'web 1', address: 'tcp://127.0.0.1:1'}\n", 2, 12,
     "invalid agent name 'web 1'", NULL, 1},
    {"reserved name", "agents:\n  - {name: all, address: 'tcp://127.0.0.1:1'}\n", 2, 12,
     "agent name 'all' is reserved", NULL, 1},
    {"http url", "agents:\n  - {name: a, address: 'http://127.0.0.1:1'}\n", 2, 24,
     "must start with tcp:// or tls+tcp://", NULL, 1},
    {"no port", "agents:\n  - {name: a, address: 'tcp://127.0.0.1'}\n", 2, 24, "missing :PORT",
     NULL, 1},
    {"port range", "agents:\n  - {name: a, address: 'tcp://127.0.0.1:70000'}\n", 2, 24,
     "port must be a number 1-65535", NULL, 1},
    {"bad host", "agents:\n  - {name: a, address: 'tcp://a b:1'}\n", 2, 24,
     "invalid character ' ' in host", NULL, 1},
    {"bad tag", "agents:\n  - {name: a, address: 'tcp://h:1', tags: [ok, 'no!']}\n", 2, 48,
     "invalid name 'no!' in agent tags", NULL, 1},
    {"several errors",
     "agents:\n  - {name: a, address: 'udp://h:1'}\n  - {nam: b, address: 'tcp://h:1'}\n", 2, 24,
     "invalid agent address", NULL, 3},
    {"two documents", "agents: [{name: a, address: 'tcp://h:1'}]\n---\nagents: []\n", 3, 1,
     "more than one YAML document", NULL, 1},
    {"empty file", "", 0, 0, "empty document", NULL, 1},
};

static void test_bad(void **state)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(bad_cases); i++) {
                const struct bad_case *bc = &bad_cases[i];
                char path[256];
                struct coord_diags d = {0};
                struct coord_inventory inv = {.n_agents = 99};
                write_file("bad.yaml", bc->yaml, path, sizeof(path));
                int r = coord_inventory_load(path, &inv, &d);
                fprintf(stderr, "case '%s':\n", bc->what);
                coord_diags_print(&d, stderr);
                assert_int_equal(r, -EINVAL);
                assert_int_equal(inv.n_agents, 0);
                assert_null(inv.agents);
                assert_int_equal(coord_diags_count(&d), bc->n_errors);
                assert_string_equal(d.items[0].file, path);
                assert_int_equal(d.items[0].line, bc->line);
                assert_int_equal(d.items[0].column, bc->column);
                assert_non_null(strstr(d.items[0].message, bc->msg));
                if (bc->hint) {
                        assert_non_null(d.items[0].hint);
                        assert_non_null(strstr(d.items[0].hint, bc->hint));
                }
                coord_diags_free(&d);
        }
}

static void test_missing_file(void **state)
{
        struct coord_diags d = {0};
        struct coord_inventory inv;
        char path[256];
        snprintf(path, sizeof(path), "%s/nope.yaml", tmpdir);
        assert_int_equal(coord_inventory_load(path, &inv, &d), -ENOENT);
        assert_int_equal(coord_diags_count(&d), 1);
        assert_int_equal(d.items[0].line, 0);

        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        coord_diags_print(&d, f);
        fclose(f);
        char want[400];
        snprintf(want, sizeof(want), "%s: error: cannot open: No such file or directory\n", path);
        assert_string_equal(buf, want);
        free(buf);
        coord_diags_free(&d);
}

static void test_diag_format(void **state)
{
        struct coord_diags d = {0};
        coord_diags_add(&d, "x.yaml", 3, 7, "did you mean 'tags'?", "unknown key '%s'", "tgas");
        coord_diags_add(&d, "x.yaml", 4, 1, NULL, "plain");
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        coord_diags_print(&d, f);
        fclose(f);
        assert_string_equal(buf, "x.yaml:3:7: error: unknown key 'tgas' (hint: did you mean "
                                 "'tags'?)\nx.yaml:4:1: error: plain\n");
        free(buf);
        coord_diags_free(&d);

        for (int i = 0; i < COORD_DIAGS_MAX + 5; i++)
                coord_diags_add(&d, NULL, 1, 1, NULL, "e%d", i);
        assert_int_equal(d.n, COORD_DIAGS_MAX);
        assert_int_equal(coord_diags_count(&d), COORD_DIAGS_MAX + 5);
        coord_diags_free(&d);
}

static void test_address(void **state)
{
        static const struct {
                const char *url;
                int ret;
        } cases[] = {
            {"tcp://127.0.0.1:7070", 0}, {"tls+tcp://host.example:1", 0},
            {"tcp://[::1]:65535", 0},    {"tcp://h:0", -EINVAL},
            {"tcp://:1", -EINVAL},       {"tcp://[::1]", -EINVAL},
            {"tcp://[]:1", -EINVAL},     {"tcp://h:1x", -EINVAL},
            {"ipc:///tmp/x", -EINVAL},   {"tcp://h:", -EINVAL},
            {"tcp://h/x:1", -EINVAL},    {"tls+tcp://[fe80::zz]:1", -EINVAL},
        };
        for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
                char err[128] = "";
                int r = coord_address_check(cases[i].url, err, sizeof(err));
                if (r != cases[i].ret)
                        fail_msg("%s: got %d (%s)", cases[i].url, r, err);
        }
}

static void test_selector_parse(void **state)
{
        struct coord_selector s;
        char err[128];
        assert_int_equal(coord_selector_parse("web-1", &s, err, sizeof(err)), 0);
        assert_int_equal(s.n_names, 1);
        assert_string_equal(s.names[0], "web-1");
        assert_false(s.all);
        coord_selector_free(&s);

        assert_int_equal(coord_selector_parse("tag:web,primary", &s, err, sizeof(err)), 0);
        assert_int_equal(s.n_names, 0);
        assert_int_equal(s.n_tags, 2);
        assert_string_equal(s.tags[0], "web");
        assert_string_equal(s.tags[1], "primary");
        coord_selector_free(&s);

        assert_int_equal(coord_selector_parse("all", &s, err, sizeof(err)), 0);
        assert_true(s.all);
        coord_selector_free(&s);

        static const char *const bad[] = {"",      "tag:", "tag:web,", "tag:a,,b",
                                          "web 1", "x:y",  "tag:w!"};
        for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
                if (coord_selector_parse(bad[i], &s, err, sizeof(err)) != -EINVAL)
                        fail_msg("'%s' accepted", bad[i]);
                assert_null(s.names);
                assert_null(s.tags);
        }
}

static void test_select(void **state)
{
        struct coord_inventory inv;
        load_valid(&inv);

        static char *web[] = {S("web")}, *prim_web[] = {S("primary"), S("web")},
                    *none[] = {S("cache")};
        static char *names[] = {S("db.1"), S("web-1"), S("db.1")}, *unknown[] = {S("web-9")};
        static const struct {
                const char *what;
                struct coord_selector sel;
                int ret;
                const char *first;
                const char *err;
        } cases[] = {
            {"all", {.all = true}, 3, "web-1", NULL},
            {"names keep order, dedup", {.names = names, .n_names = 3}, 2, "db.1", NULL},
            {"tag", {.tags = web, .n_tags = 1}, 2, "web-1", NULL},
            {"all tags required", {.tags = prim_web, .n_tags = 2}, 1, "web-1", NULL},
            {"count", {.all = true, .count = 2}, 2, "web-1", NULL},
            {"count above size", {.tags = web, .n_tags = 1, .count = 9}, 2, "web-1", NULL},
            {"50% of 3 rounds up", {.all = true, .percent_bp = 5000}, 2, "web-1", NULL},
            {"1% keeps one", {.all = true, .percent_bp = 100}, 1, "web-1", NULL},
            {"100%", {.all = true, .percent_bp = 10000}, 3, "web-1", NULL},
            {"unknown name",
             {.names = unknown, .n_names = 1},
             -ENOENT,
             NULL,
             "agent 'web-9' is not in the inventory"},
            {"no tag match",
             {.tags = none, .n_tags = 1},
             -ENOENT,
             NULL,
             "no agent carries tag(s) cache"},
            {"nothing", {.count = 1}, -EINVAL, NULL, "exactly one of"},
            {"names+all",
             {.names = names, .n_names = 1, .all = true},
             -EINVAL,
             NULL,
             "exactly one of"},
            {"count+percent",
             {.all = true, .count = 1, .percent_bp = 100},
             -EINVAL,
             NULL,
             "mutually exclusive"},
        };
        for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
                const struct coord_agent **out = (const struct coord_agent **)1;
                char err[256] = "";
                int r = coord_inventory_select(&inv, &cases[i].sel, &out, err, sizeof(err));
                if (r != cases[i].ret)
                        fail_msg("%s: got %d (%s)", cases[i].what, r, err);
                if (r > 0) {
                        assert_non_null(out);
                        assert_string_equal(out[0]->name, cases[i].first);
                } else {
                        assert_null(out);
                        assert_non_null(strstr(err, cases[i].err));
                }
                free(out);
        }

        /* selector copy is deep */
        struct coord_selector cp;
        assert_int_equal(coord_selector_copy(&cases[1].sel, &cp), 0);
        assert_int_equal(cp.n_names, 3);
        assert_ptr_not_equal(cp.names[0], names[0]);
        assert_string_equal(cp.names[0], "db.1");
        coord_selector_free(&cp);

        coord_inventory_free(&inv);
}

static void test_did_you_mean(void **state)
{
        static const char *const keys[] = {"steady-state", "method", "rollbacks", "tags", NULL};
        assert_string_equal(coord_did_you_mean("steady_state", keys), "steady-state");
        assert_string_equal(coord_did_you_mean("methd", keys), "method");
        assert_string_equal(coord_did_you_mean("rollback", keys), "rollbacks");
        assert_null(coord_did_you_mean("zzz", keys));
        assert_null(coord_did_you_mean("a", keys));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_valid),        cmocka_unit_test(test_bad),
            cmocka_unit_test(test_missing_file), cmocka_unit_test(test_diag_format),
            cmocka_unit_test(test_address),      cmocka_unit_test(test_selector_parse),
            cmocka_unit_test(test_select),       cmocka_unit_test(test_did_you_mean),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
