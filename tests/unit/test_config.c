/* Unit tests for agent/config.c: defaults, the shipped packaging/agent.yaml,
 * a table of good files, and a table of bad files that must each be
 * refused whole (-EINVAL, "FILE:LINE:COL: message" pointing at the bad
 * node, the struct untouched).
 *
 * Bad-file texts mark the node the error must point at with '^'; the
 * marker is removed before the file is written and its position gives the
 * expected LINE:COL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "agent.h"
#include "fl_util.h"

/* ---- helpers ----------------------------------------------------------------- */

struct tfx {
        char dir[PATH_MAX];
        char path[PATH_MAX + 16]; /* the config file under test */
};

static int tfx_setup(void **state)
{
        struct tfx *fx = calloc(1, sizeof(*fx));
        assert_non_null(fx);
        const char *t = getenv("TMPDIR");
        snprintf(fx->dir, sizeof(fx->dir), "%s/fl-test-config-XXXXXX",
                 t && t[0] == '/' ? t : "/tmp");
        assert_non_null(mkdtemp(fx->dir));
        snprintf(fx->path, sizeof(fx->path), "%s/agent.yaml", fx->dir);
        *state = fx;
        return 0;
}

static int tfx_teardown(void **state)
{
        struct tfx *fx = *state;
        unlink(fx->path);
        rmdir(fx->dir);
        free(fx);
        return 0;
}

static void write_text(const char *path, const char *text, size_t len)
{
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        assert_int_equal(fwrite(text, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
}

/* A config that differs from the defaults in every field, so that a file
 * applied halfway would show. */
static void odd_config(struct agent_config *c)
{
        memset(c, 0, sizeof(*c));
        agent_config_defaults(c);
        snprintf(c->listen, sizeof(c->listen), "ipc:///run/odd.sock");
        snprintf(c->state_dir, sizeof(c->state_dir), "/srv/odd");
        c->log_level = LOG_DEBUG;
        c->policy.max_duration_ms = 12345;
        c->policy.max_faults = 7;
        c->policy.max_lease_ms = 777;
        c->policy.allow_all_kinds = false;
        snprintf(c->policy.allowed_kinds[0], FL_KIND_LEN, "process-pause");
        c->policy.n_allowed_kinds = 1;
        snprintf(c->policy.protected_names[0], 16, "oddproc");
        c->policy.n_protected_names = 1;
}

static void assert_defaults(const struct agent_config *c)
{
        assert_string_equal(c->listen, AGENT_DEFAULT_LISTEN);
        assert_string_equal(c->listen, "tcp://127.0.0.1:7070");
        assert_string_equal(c->state_dir, AGENT_DEFAULT_STATE_DIR);
        assert_string_equal(c->state_dir, "/var/lib/faultline");
        assert_int_equal(c->log_level, LOG_INFO);
        assert_int_equal(c->policy.max_duration_ms, 3600u * 1000u);
        assert_int_equal(c->policy.max_faults, 64);
        assert_int_equal(c->policy.max_lease_ms, 5000);
        assert_true(c->policy.allow_all_kinds);
        assert_int_equal(c->policy.n_allowed_kinds, 0);
        assert_int_equal(c->policy.n_protected_names, 0);
}

/* ---- defaults, packaging file, empty, missing ----------------------------------- */

static void test_defaults(void **state)
{
        (void)state;
        struct agent_config c;
        memset(&c, 0xa5, sizeof(c));
        agent_config_defaults(&c);
        assert_defaults(&c);
        /* Nothing else left over from before. */
        struct agent_config z;
        memset(&z, 0, sizeof(z));
        assert_memory_equal(c.policy.allowed_kinds, z.policy.allowed_kinds,
                            sizeof(z.policy.allowed_kinds));
        assert_memory_equal(c.policy.protected_names, z.policy.protected_names,
                            sizeof(z.policy.protected_names));
}

/* packaging/agent.yaml, found from this source file's own path. */
static void packaging_path(char *buf, size_t size)
{
        const char *self = __FILE__;
        const char *slash = strrchr(self, '/');
        if (!slash) {
                snprintf(buf, size, "../../packaging/agent.yaml");
                return;
        }
        int n = snprintf(buf, size, "%.*s/../../packaging/agent.yaml", (int)(slash - self), self);
        assert_true(n > 0 && (size_t)n < size);
}

static void test_packaging_file(void **state)
{
        (void)state;
        char path[PATH_MAX], err[FL_MSG_LEN] = "";
        struct agent_config c;

        packaging_path(path, sizeof(path));
        odd_config(&c);
        int rv = agent_config_load(path, &c, err, sizeof(err));
        if (rv != 0)
                fail_msg("%s: %d: %s", path, rv, err);
        assert_string_equal(c.listen, "tcp://127.0.0.1:7070");
        assert_string_equal(c.state_dir, "/var/lib/faultline");
        assert_int_equal(c.log_level, LOG_INFO);
        assert_int_equal(c.policy.max_duration_ms, 3600000);
        assert_int_equal(c.policy.max_faults, 64);
        assert_int_equal(c.policy.max_lease_ms, 5000);
        assert_false(c.policy.allow_all_kinds);
        /* The packaged policy allows every kind but the two that write to
         * disk (the unit's ProtectSystem=strict would stop them anyway;
         * packaging/agent.yaml says how to enable them). */
        assert_int_equal(c.policy.n_allowed_kinds, 15);
        assert_string_equal(c.policy.allowed_kinds[0], "process-kill");
        assert_string_equal(c.policy.allowed_kinds[1], "process-pause");
        for (size_t i = 0; i < c.policy.n_allowed_kinds; i++) {
                assert_non_null(agent_fault_lookup(c.policy.allowed_kinds[i]));
                assert_string_not_equal(c.policy.allowed_kinds[i], "disk-fill");
                assert_string_not_equal(c.policy.allowed_kinds[i], "io-stress");
        }
        assert_int_equal(c.policy.n_protected_names, 3);
        assert_string_equal(c.policy.protected_names[0], "sshd");
        assert_string_equal(c.policy.protected_names[1], "systemd-journal");
        assert_string_equal(c.policy.protected_names[2], "faultline-agent");

        /* Loaded over the defaults, the same values (compared as strings:
         * bytes after a NUL may still hold what was there before). */
        struct agent_config d;
        agent_config_defaults(&d);
        assert_int_equal(agent_config_load(path, &d, err, sizeof(err)), 0);
        assert_string_equal(c.listen, d.listen);
        assert_string_equal(c.state_dir, d.state_dir);
        assert_int_equal(c.log_level, d.log_level);
        assert_int_equal(c.policy.max_duration_ms, d.policy.max_duration_ms);
        assert_int_equal(c.policy.max_faults, d.policy.max_faults);
        assert_int_equal(c.policy.max_lease_ms, d.policy.max_lease_ms);
        assert_int_equal(c.policy.allow_all_kinds, d.policy.allow_all_kinds);
        assert_int_equal(c.policy.n_allowed_kinds, d.policy.n_allowed_kinds);
        for (size_t i = 0; i < d.policy.n_allowed_kinds; i++)
                assert_string_equal(c.policy.allowed_kinds[i], d.policy.allowed_kinds[i]);
        assert_int_equal(c.policy.n_protected_names, d.policy.n_protected_names);
        for (size_t i = 0; i < d.policy.n_protected_names; i++)
                assert_string_equal(c.policy.protected_names[i], d.policy.protected_names[i]);
}

static void test_empty_and_comment_only(void **state)
{
        struct tfx *fx = *state;
        static const char *const texts[] = {"", "\n\n", "# nothing here\n# at all\n", "   \n"};

        for (size_t i = 0; i < FL_ARRAY_SIZE(texts); i++) {
                char err[FL_MSG_LEN] = "";
                struct agent_config c;
                agent_config_defaults(&c);
                write_text(fx->path, texts[i], strlen(texts[i]));
                int rv = agent_config_load(fx->path, &c, err, sizeof(err));
                if (rv != 0)
                        fail_msg("text %zu: %d: %s", i, rv, err);
                assert_defaults(&c);

                /* Over a non-default config: nothing changes either. */
                struct agent_config o, before;
                odd_config(&o);
                memcpy(&before, &o, sizeof(o));
                assert_int_equal(agent_config_load(fx->path, &o, err, sizeof(err)), 0);
                assert_memory_equal(&o, &before, sizeof(o));
        }
}

static void test_missing_file(void **state)
{
        struct tfx *fx = *state;
        char path[PATH_MAX + 32], err[FL_MSG_LEN] = "";
        struct agent_config c, before;

        snprintf(path, sizeof(path), "%s/does-not-exist.yaml", fx->dir);
        odd_config(&c);
        memcpy(&before, &c, sizeof(c));
        assert_int_equal(agent_config_load(path, &c, err, sizeof(err)), -ENOENT);
        assert_non_null(strstr(err, path));
        assert_memory_equal(&c, &before, sizeof(c));
}

/* ---- good files ------------------------------------------------------------------ */

enum field {
        F_LISTEN,
        F_STATE_DIR,
        F_LOG_LEVEL,
        F_MAX_DURATION,
        F_LEASE,
        F_MAX_FAULTS,
        F_ALLOWED,   /* n_allowed_kinds; allow_all_kinds false */
        F_PROTECTED, /* n_protected_names */
};

struct good_case {
        const char *text;
        enum field field;
        uint64_t num;    /* numeric fields and counts */
        const char *str; /* string fields; the last list entry for lists */
};

static const struct good_case good_cases[] = {
    {"listen: tcp://0.0.0.0:9090\n", F_LISTEN, 0, "tcp://0.0.0.0:9090"},
    {"listen: \"ipc:///run/faultline.sock\"\n", F_LISTEN, 0, "ipc:///run/faultline.sock"},
    {"state-dir: /srv/faultline\n", F_STATE_DIR, 0, "/srv/faultline"},
    {"log-level: debug\n", F_LOG_LEVEL, LOG_DEBUG, NULL},
    {"log-level: notice\n", F_LOG_LEVEL, LOG_NOTICE, NULL},
    {"log-level: warning\n", F_LOG_LEVEL, LOG_WARNING, NULL},
    {"log-level: err\n", F_LOG_LEVEL, LOG_ERR, NULL},
    {"policy:\n  max-duration: 1h30m\n", F_MAX_DURATION, 5400000, NULL},
    {"policy:\n  max-duration: 1ms\n", F_MAX_DURATION, 1, NULL},
    {"policy:\n  lease-timeout: 500ms\n", F_LEASE, 500, NULL},
    {"policy:\n  lease-timeout: 10m\n", F_LEASE, 600000, NULL},
    {"policy:\n  max-concurrent-faults: 1\n", F_MAX_FAULTS, 1, NULL},
    {"policy:\n  max-concurrent-faults: 4096\n", F_MAX_FAULTS, 4096, NULL},
    {"policy:\n  allowed-faults:\n    - disk-fill\n", F_ALLOWED, 1, "disk-fill"},
    {"policy:\n  allowed-faults: []\n", F_ALLOWED, 0, NULL},
    {"policy:\n  protected-processes: [abcdefghijklmno]\n", F_PROTECTED, 1, "abcdefghijklmno"},
    {"policy:\n  protected-processes: [p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, "
     "p13, p14, p15, p16, p17, p18, p19, p20, p21, p22, p23, p24, p25, p26, p27, p28, p29, p30, "
     "p31]\n",
     F_PROTECTED, AGENT_MAX_PROTECTED_NAMES, "p31"},
};

static void test_good_table(void **state)
{
        struct tfx *fx = *state;

        for (size_t i = 0; i < FL_ARRAY_SIZE(good_cases); i++) {
                const struct good_case *tc = &good_cases[i];
                char err[FL_MSG_LEN] = "";
                struct agent_config c, expect;

                agent_config_defaults(&c);
                memcpy(&expect, &c, sizeof(c));
                write_text(fx->path, tc->text, strlen(tc->text));
                int rv = agent_config_load(fx->path, &c, err, sizeof(err));
                if (rv != 0)
                        fail_msg("good case %zu: %d: %s", i, rv, err);
                switch (tc->field) {
                case F_LISTEN:
                        snprintf(expect.listen, sizeof(expect.listen), "%s", tc->str);
                        break;
                case F_STATE_DIR:
                        snprintf(expect.state_dir, sizeof(expect.state_dir), "%s", tc->str);
                        break;
                case F_LOG_LEVEL:
                        expect.log_level = (int)tc->num;
                        break;
                case F_MAX_DURATION:
                        expect.policy.max_duration_ms = tc->num;
                        break;
                case F_LEASE:
                        expect.policy.max_lease_ms = tc->num;
                        break;
                case F_MAX_FAULTS:
                        expect.policy.max_faults = (uint32_t)tc->num;
                        break;
                case F_ALLOWED:
                        expect.policy.allow_all_kinds = false;
                        expect.policy.n_allowed_kinds = tc->num;
                        if (tc->num)
                                snprintf(expect.policy.allowed_kinds[tc->num - 1], FL_KIND_LEN,
                                         "%s", tc->str);
                        break;
                case F_PROTECTED:
                        expect.policy.n_protected_names = tc->num;
                        for (size_t k = 0; k < tc->num; k++) {
                                char name[32];
                                snprintf(name, sizeof(name), "p%zu", k);
                                assert_int_equal(
                                    fl_strlcpy(expect.policy.protected_names[k], name, 16), 0);
                        }
                        if (tc->num == 1)
                                snprintf(expect.policy.protected_names[0], 16, "%s", tc->str);
                        break;
                }
                if (memcmp(&c, &expect, sizeof(c)) != 0)
                        fail_msg("good case %zu (%s): loaded config differs from expected", i,
                                 tc->text);
        }
}

/* ---- bad files ------------------------------------------------------------------- */

struct bad_case {
        const char *name;
        const char *text; /* '^' marks the node the error must point at */
        const char *msg;  /* substring of the message */
};

static const struct bad_case bad_cases[] = {
    /* top level */
    {"unknown top key", "listen: tcp://127.0.0.1:7171\n^bogus: 1\n", "unknown key \"bogus\""},
    {"top level list", "^- listen\n- policy\n", "top level must be a mapping"},
    {"top level scalar", "^just a string\n", "top level must be a mapping"},
    {"non-scalar key", "? ^[a, b]\n: 1\n", "keys must be strings"},
    {"listen not scalar", "listen: ^[a, b]\n", "\"listen\" must be a scalar"},
    {"state-dir relative", "state-dir: ^var/lib/faultline\n", "absolute"},
    {"state-dir empty", "state-dir: ^\"\"\n", "absolute"},
    {"log-level bogus", "log-level: ^bogus\n", "log-level"},
    {"log-level number", "log-level: ^7\n", "log-level"},
    {"log-level list", "log-level: ^[info]\n", "must be a scalar"},
    /* policy */
    {"policy scalar", "policy: ^5\n", "\"policy\" must be a mapping"},
    {"policy list", "policy:\n  ^- max-duration\n", "\"policy\" must be a mapping"},
    {"unknown policy key", "policy:\n  max-duration: 10m\n  ^frobnicate: 3\n",
     "unknown key \"policy.frobnicate\""},
    {"policy key not scalar", "policy:\n  ? ^[x]\n  : 1\n", "keys must be strings"},
    {"max-duration no unit", "policy:\n  max-duration: ^5\n", "max-duration"},
    {"max-duration quoted no unit", "policy:\n  max-duration: ^\"5\"\n", "max-duration"},
    {"max-duration zero", "policy:\n  max-duration: ^0s\n", "max-duration"},
    {"max-duration above 30d", "policy:\n  max-duration: ^31d\n", "max-duration"},
    {"max-duration negative", "policy:\n  max-duration: ^-5m\n", "max-duration"},
    {"max-duration mapping", "policy:\n  max-duration: ^{a: 1}\n", "must be a scalar"},
    {"lease-timeout 100ms", "policy:\n  lease-timeout: ^100ms\n", "lease-timeout"},
    {"lease-timeout 499ms", "policy:\n  lease-timeout: ^499ms\n", "lease-timeout"},
    {"lease-timeout 11m", "policy:\n  lease-timeout: ^11m\n", "lease-timeout"},
    {"lease-timeout no unit", "policy:\n  lease-timeout: ^5000\n", "lease-timeout"},
    {"max-concurrent-faults 0", "policy:\n  max-concurrent-faults: ^0\n", "max-concurrent-faults"},
    {"max-concurrent-faults 99999", "policy:\n  max-concurrent-faults: ^99999\n",
     "max-concurrent-faults"},
    {"max-concurrent-faults 4097", "policy:\n  max-concurrent-faults: ^4097\n",
     "max-concurrent-faults"},
    {"max-concurrent-faults negative", "policy:\n  max-concurrent-faults: ^-1\n",
     "max-concurrent-faults"},
    {"max-concurrent-faults word", "policy:\n  max-concurrent-faults: ^ten\n",
     "max-concurrent-faults"},
    {"allowed-faults not a list", "policy:\n  allowed-faults: ^disk-fill\n", "must be a list"},
    {"allowed-faults empty entry", "policy:\n  allowed-faults: [disk-fill, ^\"\"]\n", "non-empty"},
    {"allowed-faults nested list", "policy:\n  allowed-faults: [^[disk-fill]]\n", "non-empty"},
    {"allowed-faults too long",
     "policy:\n  allowed-faults: [^aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n", "too long"},
    {"protected-processes 16 chars", "policy:\n  protected-processes: [sshd, ^abcdefghijklmnop]\n",
     "too long (max 15)"},
    {"protected-processes 33 entries",
     "policy:\n  protected-processes: [p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, p12, "
     "p13, p14, p15, p16, p17, p18, p19, p20, p21, p22, p23, p24, p25, p26, p27, p28, p29, p30, "
     "p31, ^p32]\n",
     "at most 32"},
    {"protected-processes scalar", "policy:\n  protected-processes: ^sshd\n", "must be a list"},
    /* everything good before the bad key is dropped too */
    {"good keys then bad",
     "listen: tcp://10.0.0.1:1\nstate-dir: /srv/fl\nlog-level: debug\npolicy:\n  max-duration: "
     "2h\n  allowed-faults: [disk-fill]\n  protected-processes: [a]\n  ^bogus: 1\n",
     "policy.bogus"},
    {"bad top key after policy",
     "policy:\n  max-concurrent-faults: 3\n  lease-timeout: 1s\n^polcy: {}\n",
     "unknown key \"polcy\""},
};

/* An unknown kind in allowed-faults: the error must point at the entry,
 * like every other list-entry error does, not at the start of the list. */
static const struct bad_case bad_kind_cases[] = {
    {"allowed-faults unknown kind (flow)", "policy:\n  allowed-faults: [disk-fill, ^warp-drive]\n",
     "unknown fault kind \"warp-drive\""},
    {"allowed-faults unknown kind (block)",
     "policy:\n  allowed-faults:\n    - disk-fill\n    - ^warp-drive\n",
     "unknown fault kind \"warp-drive\""},
    {"allowed-faults unknown kind first (block)",
     "policy:\n  allowed-faults:\n    - ^warp-drive\n    - disk-fill\n",
     "unknown fault kind \"warp-drive\""},
};

/* Strip the '^' marker; return its 1-based line and column. */
static void unmark(const char *text, char *out, size_t size, size_t *line, size_t *col)
{
        size_t l = 1, c = 1, o = 0;
        *line = *col = 0;
        for (const char *p = text; *p; p++) {
                if (*p == '^' && *line == 0) {
                        *line = l;
                        *col = c;
                        continue;
                }
                assert_true(o + 1 < size);
                out[o++] = *p;
                if (*p == '\n') {
                        l++;
                        c = 1;
                } else {
                        c++;
                }
        }
        out[o] = '\0';
        assert_true(*line > 0);
}

static int run_bad_cases(struct tfx *fx, const struct bad_case *cases, size_t n)
{
        int failures = 0;

        for (size_t i = 0; i < n; i++) {
                const struct bad_case *tc = &cases[i];
                char text[1024], err[FL_MSG_LEN], want[PATH_MAX + 64];
                size_t line, col;
                struct agent_config c, before;

                unmark(tc->text, text, sizeof(text), &line, &col);
                write_text(fx->path, text, strlen(text));
                odd_config(&c);
                memcpy(&before, &c, sizeof(c));
                memset(err, 0, sizeof(err));

                int rv = agent_config_load(fx->path, &c, err, sizeof(err));
                snprintf(want, sizeof(want), "%s:%zu:%zu: ", fx->path, line, col);
                if (rv != -EINVAL) {
                        print_error("bad case \"%s\": returned %d, expected -EINVAL (%s)\n",
                                    tc->name, rv, err);
                        failures++;
                } else if (strncmp(err, want, strlen(want)) != 0) {
                        print_error("bad case \"%s\": error \"%s\" does not start with \"%s\"\n",
                                    tc->name, err, want);
                        failures++;
                } else if (!strstr(err, tc->msg)) {
                        print_error("bad case \"%s\": error \"%s\" lacks \"%s\"\n", tc->name, err,
                                    tc->msg);
                        failures++;
                }
                if (memcmp(&c, &before, sizeof(c)) != 0) {
                        print_error("bad case \"%s\": config changed by a refused file\n",
                                    tc->name);
                        failures++;
                }
        }
        return failures;
}

static void test_bad_table(void **state)
{
        int failures = run_bad_cases(*state, bad_cases, FL_ARRAY_SIZE(bad_cases));
        if (failures)
                fail_msg("%d bad-config case(s) failed (listed above)", failures);
}

static void test_bad_allowed_kind_points_at_entry(void **state)
{
        int failures = run_bad_cases(*state, bad_kind_cases, FL_ARRAY_SIZE(bad_kind_cases));
        if (failures)
                fail_msg("%d bad-config case(s) failed (listed above)", failures);
}

/* Invalid YAML: the parser's own position, in the same FILE:LINE:COL form. */
static const char *const invalid_yaml[] = {
    "listen: [unclosed\n",
    "a: b: c\n",
    "policy:\n  max-duration: 1h\n max-concurrent-faults: 3\n",
    "listen: \"unterminated\n",
    "key: value\n\tother: 1\n",
    "- a\nb: c\n",
    "{a: 1\n",
};

static void test_invalid_yaml(void **state)
{
        struct tfx *fx = *state;

        for (size_t i = 0; i < FL_ARRAY_SIZE(invalid_yaml); i++) {
                char err[FL_MSG_LEN] = "", prefix[PATH_MAX + 32];
                struct agent_config c, before;
                size_t line = 0, col = 0;
                int consumed = 0;

                write_text(fx->path, invalid_yaml[i], strlen(invalid_yaml[i]));
                odd_config(&c);
                memcpy(&before, &c, sizeof(c));
                int rv = agent_config_load(fx->path, &c, err, sizeof(err));
                if (rv != -EINVAL)
                        fail_msg("invalid YAML %zu: returned %d (%s)", i, rv, err);
                snprintf(prefix, sizeof(prefix), "%s:", fx->path);
                assert_true(strncmp(err, prefix, strlen(prefix)) == 0);
                if (sscanf(err + strlen(prefix), "%zu:%zu: %n", &line, &col, &consumed) != 2 ||
                    consumed == 0)
                        fail_msg("invalid YAML %zu: no LINE:COL in \"%s\"", i, err);
                assert_true(line >= 1);
                assert_true(col >= 1);
                assert_non_null(strstr(err, "invalid YAML"));
                assert_memory_equal(&c, &before, sizeof(c));
        }
}

/* Values that overflow the fixed buffers are refused, not truncated. */
static void test_too_long_values(void **state)
{
        struct tfx *fx = *state;
        static const char *const keys[] = {"listen", "state-dir"};

        for (size_t i = 0; i < FL_ARRAY_SIZE(keys); i++) {
                char text[FL_VAL_LEN + 64], err[FL_MSG_LEN] = "", want[PATH_MAX + 32];
                int n = snprintf(text, sizeof(text), "%s: /", keys[i]);
                memset(text + n, 'x', FL_VAL_LEN);
                snprintf(text + n + FL_VAL_LEN, sizeof(text) - (size_t)n - FL_VAL_LEN, "\n");
                struct agent_config c, before;
                odd_config(&c);
                memcpy(&before, &c, sizeof(c));
                write_text(fx->path, text, strlen(text));
                assert_int_equal(agent_config_load(fx->path, &c, err, sizeof(err)), -EINVAL);
                snprintf(want, sizeof(want), "%s:1:%d: ", fx->path, n); /* at the '/' */
                if (strncmp(err, want, strlen(want)) != 0)
                        fail_msg("%s: error \"%s\" does not start with \"%s\"", keys[i], err, want);
                assert_memory_equal(&c, &before, sizeof(c));

                /* FL_VAL_LEN - 1 characters fit. */
                text[n + FL_VAL_LEN - 2] = '\n';
                text[n + FL_VAL_LEN - 1] = '\0';
                write_text(fx->path, text, strlen(text));
                assert_int_equal(agent_config_load(fx->path, &c, err, sizeof(err)), 0);
                assert_int_equal(strlen(i == 0 ? c.listen : c.state_dir), FL_VAL_LEN - 1);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_defaults),
            cmocka_unit_test(test_packaging_file),
            cmocka_unit_test_setup_teardown(test_empty_and_comment_only, tfx_setup, tfx_teardown),
            cmocka_unit_test_setup_teardown(test_missing_file, tfx_setup, tfx_teardown),
            cmocka_unit_test_setup_teardown(test_good_table, tfx_setup, tfx_teardown),
            cmocka_unit_test_setup_teardown(test_bad_table, tfx_setup, tfx_teardown),
            cmocka_unit_test_setup_teardown(test_bad_allowed_kind_points_at_entry, tfx_setup,
                                            tfx_teardown),
            cmocka_unit_test_setup_teardown(test_invalid_yaml, tfx_setup, tfx_teardown),
            cmocka_unit_test_setup_teardown(test_too_long_values, tfx_setup, tfx_teardown),
        };
        return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
