/* Unit tests for agent/journal.c and the fault table in agent/core.c.
 *
 * 1. Journal: init (creates <state>/faults 0700, refuses group/world
 *    writable or non-directory state dirs), write/load round trip of a
 *    disk-fill fault compared field by field, atomic replace, idempotent
 *    remove, the load scan (stray temp files removed, foreign files
 *    ignored, corrupt entries logged and left in place), and the JSON
 *    codec's refusals.
 * 2. Core: agent_new + agent_handle on a real config whose state dir is a
 *    fresh mkdtemp directory: HELLO, refusals, a real disk-fill of 4096
 *    bytes (apply, list, renew, revert), TTL and lease expiry through
 *    agent_tick, crash recovery from a hand-written journal, and
 *    agent_serve_frame on good and undecodable frames.
 *
 * No privileges needed. Temporary directories go to /dev/shm when it is
 * writable (a quiet tmpfs, so disk-fill's free-space read-back is not
 * disturbed by builds running next to us), else $TMPDIR or /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "fault.h"
#include "fl_log.h"
#include "fl_util.h"
#include "fl_wire.h"

/* ---- filesystem helpers ---------------------------------------------------- */

static const char *tmp_base(void)
{
        if (access("/dev/shm", W_OK | X_OK) == 0)
                return "/dev/shm";
        const char *t = getenv("TMPDIR");
        return t && t[0] == '/' ? t : "/tmp";
}

static void make_tmpdir(char *buf, size_t size)
{
        int n = snprintf(buf, size, "%s/fl-test-journal-XXXXXX", tmp_base());
        assert_true(n > 0 && (size_t)n < size);
        assert_non_null(mkdtemp(buf));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        if (flag == FTW_DP)
                chmod(path, 0700);
        return remove(path) < 0 && errno != ENOENT ? -1 : 0;
}

static void rm_rf(const char *path)
{
        if (path && path[0] == '/')
                nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void path_join(char *buf, size_t size, const char *a, const char *b)
{
        int n = snprintf(buf, size, "%s/%s", a, b);
        assert_true(n > 0 && (size_t)n < size);
}

static void write_file(const char *path, const void *data, size_t len)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        const char *p = data;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                assert_true(n > 0);
                p += n;
                len -= (size_t)n;
        }
        assert_int_equal(close(fd), 0);
}

static void write_str(const char *path, const char *s)
{
        write_file(path, s, strlen(s));
}

static bool exists(const char *path)
{
        struct stat st;
        return lstat(path, &st) == 0;
}

static off_t file_size(const char *path)
{
        struct stat st;
        assert_int_equal(lstat(path, &st), 0);
        return st.st_size;
}

/* Entries of dir other than "." and "..". */
static int count_entries(const char *dir)
{
        DIR *d = opendir(dir);
        assert_non_null(d);
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                        n++;
        closedir(d);
        return n;
}

static bool any_tmp_file(const char *dir)
{
        DIR *d = opendir(dir);
        assert_non_null(d);
        bool found = false;
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t n = strlen(de->d_name);
                if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0)
                        found = true;
        }
        closedir(d);
        return found;
}

/* ---- fault helpers --------------------------------------------------------- */

#define SAMPLE_ID      "f-0123456789abcdef"
#define SAMPLE_STARTED 1700000000123ull

static void fault_release(struct agent_fault *f)
{
        if (f->ops && f->ops->destroy)
                f->ops->destroy(f);
        free(f->params);
        json_decref(f->undo);
        memset(f, 0, sizeof(*f));
}

/* A disk-fill fault as the agent would journal it after apply. */
static void sample_fault(struct agent_fault *f, const char *id)
{
        memset(f, 0, sizeof(*f));
        snprintf(f->id, sizeof(f->id), "%s", id);
        f->ops = agent_fault_lookup("disk-fill");
        assert_non_null(f->ops);
        snprintf(f->lease, sizeof(f->lease), "lease-42");
        snprintf(f->requester, sizeof(f->requester), "coordinator@ops-1");
        f->duration_ms = 90000;
        f->started_wall_ms = SAMPLE_STARTED;
        f->expires_wall_ms = SAMPLE_STARTED + 90000;
        f->deadline_mono_ms = 777; /* not journaled */
        assert_int_equal(fl_params_add(&f->params, &f->n_params, "path", "/srv/data"), 0);
        assert_int_equal(fl_params_add(&f->params, &f->n_params, "bytes", "4096"), 0);
        snprintf(f->target, sizeof(f->target), "/srv/data +4096 bytes");
        snprintf(f->backend, sizeof(f->backend), "fallocate");
        f->undo = json_pack("{s:s, s:I, s:I}", "path", "/srv/data/.faultline-ballast-" SAMPLE_ID,
                            "bytes", (json_int_t)4096, "free_before", (json_int_t)123456789);
        assert_non_null(f->undo);
}

/* Every journaled field of b equals a's; what is not journaled is zero. */
static void assert_fault_equal(const struct agent_fault *a, const struct agent_fault *b)
{
        assert_string_equal(a->id, b->id);
        assert_ptr_equal(a->ops, b->ops);
        assert_string_equal(a->lease, b->lease);
        assert_string_equal(a->requester, b->requester);
        assert_int_equal(a->duration_ms, b->duration_ms);
        assert_int_equal(a->started_wall_ms, b->started_wall_ms);
        assert_int_equal(a->expires_wall_ms, b->expires_wall_ms);
        assert_string_equal(a->target, b->target);
        assert_string_equal(a->backend, b->backend);
        assert_int_equal(a->n_params, b->n_params);
        for (size_t i = 0; i < a->n_params; i++) {
                const char *v = fl_params_get(b->params, b->n_params, a->params[i].key);
                assert_non_null(v);
                assert_string_equal(v, a->params[i].value);
        }
        assert_non_null(b->undo);
        assert_true(json_equal(a->undo, b->undo));
        assert_int_equal(b->deadline_mono_ms, 0);
        assert_null(b->priv);
}

/* journal_load callback: keeps up to 8 faults (takes ownership). */
struct collected {
        struct agent_fault *f[8];
        char path[8][PATH_MAX];
        size_t n;
        int ret; /* what the callback returns */
};

static int collect_cb(struct agent_fault *f, const char *path, void *ud)
{
        struct collected *c = ud;
        if (c->ret != 0) {
                c->n++; /* counted; the journal frees f */
                return c->ret;
        }
        if (c->n == FL_ARRAY_SIZE(c->f))
                fail_msg("more journal entries than expected");
        snprintf(c->path[c->n], sizeof(c->path[c->n]), "%s", path);
        c->f[c->n++] = f;
        return 0;
}

static void collected_free(struct collected *c)
{
        for (size_t i = 0; i < c->n && i < FL_ARRAY_SIZE(c->f); i++) {
                if (!c->f[i])
                        continue;
                fault_release(c->f[i]);
                free(c->f[i]);
                c->f[i] = NULL;
        }
}

static char *entry_text(const struct agent_fault *f)
{
        json_t *j = agent_journal_to_json(f);
        assert_non_null(j);
        char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(j);
        assert_non_null(s);
        return s;
}

/* ---- journal: init ----------------------------------------------------------- */

struct jfx {
        char root[PATH_MAX];
        char faults[PATH_MAX];
};

static int jfx_setup(void **state)
{
        struct jfx *fx = calloc(1, sizeof(*fx));
        assert_non_null(fx);
        make_tmpdir(fx->root, sizeof(fx->root));
        path_join(fx->faults, sizeof(fx->faults), fx->root, "faults");
        *state = fx;
        return 0;
}

static int jfx_teardown(void **state)
{
        struct jfx *fx = *state;
        rm_rf(fx->root);
        free(fx);
        return 0;
}

static void test_init_creates_faults_dir(void **state)
{
        struct jfx *fx = *state;
        char err[FL_MSG_LEN] = "";
        struct stat st;

        assert_int_equal(agent_journal_init(fx->root, err, sizeof(err)), 0);
        assert_int_equal(stat(fx->faults, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(st.st_uid, geteuid());
        /* Again: an existing journal is fine. */
        assert_int_equal(agent_journal_init(fx->root, err, sizeof(err)), 0);

        /* A state dir that does not exist yet is created 0700. */
        char sub[PATH_MAX], subfaults[PATH_MAX];
        path_join(sub, sizeof(sub), fx->root, "state");
        path_join(subfaults, sizeof(subfaults), sub, "faults");
        assert_int_equal(agent_journal_init(sub, err, sizeof(err)), 0);
        assert_int_equal(stat(sub, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(stat(subfaults, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
}

enum init_setup {
        IS_STATE_MODE,     /* chmod the state dir to mode */
        IS_STATE_FILE,     /* the state dir path is a regular file */
        IS_FAULTS_MODE,    /* faults/ exists with mode */
        IS_FAULTS_FILE,    /* faults is a regular file */
        IS_STATE_NOPARENT, /* parent of the state dir is missing */
};

struct init_case {
        const char *name;
        enum init_setup setup;
        mode_t mode;
        int ret;
};

static const struct init_case init_cases[] = {
    {"state group-writable", IS_STATE_MODE, 0770, -EPERM},
    {"state world-writable", IS_STATE_MODE, 0707, -EPERM},
    {"state 0777", IS_STATE_MODE, 0777, -EPERM},
    {"state sticky 1777", IS_STATE_MODE, 01777, -EPERM},
    {"state group-readable is fine", IS_STATE_MODE, 0750, 0},
    {"state is a file", IS_STATE_FILE, 0, -ENOTDIR},
    {"faults group-writable", IS_FAULTS_MODE, 0720, -EPERM},
    {"faults world-writable", IS_FAULTS_MODE, 0703, -EPERM},
    {"faults is a file", IS_FAULTS_FILE, 0, -ENOTDIR},
    {"state parent missing", IS_STATE_NOPARENT, 0, -ENOENT},
};

static void test_init_refusals(void **state)
{
        struct jfx *fx = *state;

        for (size_t i = 0; i < FL_ARRAY_SIZE(init_cases); i++) {
                const struct init_case *tc = &init_cases[i];
                char dir[PATH_MAX], faults[PATH_MAX], name[32], err[FL_MSG_LEN] = "";

                snprintf(name, sizeof(name), "case%zu", i);
                path_join(dir, sizeof(dir), fx->root, name);
                switch (tc->setup) {
                case IS_STATE_MODE:
                        assert_int_equal(mkdir(dir, 0700), 0);
                        assert_int_equal(chmod(dir, tc->mode), 0);
                        break;
                case IS_STATE_FILE:
                        write_str(dir, "not a directory\n");
                        break;
                case IS_FAULTS_MODE:
                        assert_int_equal(mkdir(dir, 0700), 0);
                        path_join(faults, sizeof(faults), dir, "faults");
                        assert_int_equal(mkdir(faults, 0700), 0);
                        assert_int_equal(chmod(faults, tc->mode), 0);
                        break;
                case IS_FAULTS_FILE:
                        assert_int_equal(mkdir(dir, 0700), 0);
                        path_join(faults, sizeof(faults), dir, "faults");
                        write_str(faults, "x");
                        break;
                case IS_STATE_NOPARENT:
                        path_join(dir, sizeof(dir), fx->root, "missing/state");
                        break;
                }
                int rv = agent_journal_init(dir, err, sizeof(err));
                if (rv != tc->ret)
                        fail_msg("%s: agent_journal_init returned %d (%s), expected %d", tc->name,
                                 rv, err, tc->ret);
                if (tc->ret < 0) {
                        /* A reason naming the path. */
                        if (!strstr(err, dir))
                                fail_msg("%s: reason \"%s\" does not name %s", tc->name, err, dir);
                        if (tc->setup == IS_STATE_MODE || tc->setup == IS_STATE_FILE) {
                                /* Nothing was created inside a refused dir. */
                                path_join(faults, sizeof(faults), dir, "faults");
                                assert_false(exists(faults));
                        }
                }
        }
}

/* ---- journal: write / load / remove ------------------------------------------- */

static void test_write_load_round_trip(void **state)
{
        struct jfx *fx = *state;
        char err[FL_MSG_LEN] = "", path[PATH_MAX];
        struct agent_fault f;
        struct stat st;

        assert_int_equal(agent_journal_init(fx->root, err, sizeof(err)), 0);
        sample_fault(&f, SAMPLE_ID);
        assert_int_equal(agent_journal_write(fx->root, &f), 0);

        path_join(path, sizeof(path), fx->faults, SAMPLE_ID ".json");
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(count_entries(fx->faults), 1);

        struct collected c = {.ret = 0};
        assert_int_equal(agent_journal_load(fx->root, collect_cb, &c), 1);
        assert_int_equal(c.n, 1);
        assert_string_equal(c.path[0], path);
        assert_fault_equal(&f, c.f[0]);
        /* The journaled entry can drive a revert: validate accepts it. */
        assert_int_equal(c.f[0]->ops->validate(c.f[0], err, sizeof(err)), 0);

        collected_free(&c);
        fault_release(&f);
}

static void test_json_round_trip(void **state)
{
        (void)state;
        char err[FL_MSG_LEN] = "";
        struct agent_fault f, g;

        sample_fault(&f, SAMPLE_ID);
        json_t *j = agent_journal_to_json(&f);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
        assert_string_equal(json_string_value(json_object_get(j, "kind")), "disk-fill");
        assert_int_equal(agent_journal_from_json(j, &g, err, sizeof(err)), 0);
        assert_fault_equal(&f, &g);
        fault_release(&g);
        json_decref(j);

        /* No undo yet (fault journaled before prepare recorded any): loads
         * with an empty undo object, never NULL. */
        json_decref(f.undo);
        f.undo = NULL;
        j = agent_journal_to_json(&f);
        assert_non_null(j);
        assert_int_equal(agent_journal_from_json(j, &g, err, sizeof(err)), 0);
        assert_true(json_is_object(g.undo));
        assert_int_equal(json_object_size(g.undo), 0);
        fault_release(&g);
        json_decref(j);

        /* Longest fitting strings survive. */
        memset(f.id, 'i', sizeof(f.id) - 1);
        memset(f.lease, 'l', sizeof(f.lease) - 1);
        memset(f.requester, 'r', sizeof(f.requester) - 1);
        memset(f.target, 't', sizeof(f.target) - 1);
        memset(f.backend, 'b', sizeof(f.backend) - 1);
        f.undo = json_object();
        j = agent_journal_to_json(&f);
        assert_non_null(j);
        assert_int_equal(agent_journal_from_json(j, &g, err, sizeof(err)), 0);
        assert_fault_equal(&f, &g);
        fault_release(&g);
        json_decref(j);
        fault_release(&f);
}

static void test_write_twice_replaces(void **state)
{
        struct jfx *fx = *state;
        char err[FL_MSG_LEN] = "";
        struct agent_fault f;

        assert_int_equal(agent_journal_init(fx->root, err, sizeof(err)), 0);
        sample_fault(&f, SAMPLE_ID);
        assert_int_equal(agent_journal_write(fx->root, &f), 0);

        /* What apply() adds, then the rewrite. */
        snprintf(f.backend, sizeof(f.backend), "write");
        snprintf(f.lease, sizeof(f.lease), "lease-43");
        assert_int_equal(json_object_set_new(f.undo, "extra", json_string("after-apply")), 0);
        assert_int_equal(agent_journal_write(fx->root, &f), 0);

        assert_int_equal(count_entries(fx->faults), 1);
        assert_false(any_tmp_file(fx->faults));

        struct collected c = {.ret = 0};
        assert_int_equal(agent_journal_load(fx->root, collect_cb, &c), 1);
        assert_int_equal(c.n, 1);
        assert_fault_equal(&f, c.f[0]);
        assert_string_equal(c.f[0]->backend, "write");
        collected_free(&c);

        /* A second fault is a second file. */
        struct agent_fault g;
        sample_fault(&g, "f-second");
        assert_int_equal(agent_journal_write(fx->root, &g), 0);
        assert_int_equal(count_entries(fx->faults), 2);
        assert_false(any_tmp_file(fx->faults));
        fault_release(&g);
        fault_release(&f);
}

static void test_remove_idempotent(void **state)
{
        struct jfx *fx = *state;
        char err[FL_MSG_LEN] = "", path[PATH_MAX];
        struct agent_fault f;

        assert_int_equal(agent_journal_init(fx->root, err, sizeof(err)), 0);
        sample_fault(&f, SAMPLE_ID);
        assert_int_equal(agent_journal_write(fx->root, &f), 0);
        path_join(path, sizeof(path), fx->faults, SAMPLE_ID ".json");
        assert_true(exists(path));

        assert_int_equal(agent_journal_remove(fx->root, SAMPLE_ID), 0);
        assert_false(exists(path));
        assert_int_equal(agent_journal_remove(fx->root, SAMPLE_ID), 0);
        assert_int_equal(agent_journal_remove(fx->root, "f-never-written"), 0);
        assert_int_equal(count_entries(fx->faults), 0);

        struct collected c = {.ret = 0};
        assert_int_equal(agent_journal_load(fx->root, collect_cb, &c), 0);
        assert_int_equal(c.n, 0);
        fault_release(&f);
}

static void test_load_missing_dir(void **state)
{
        struct jfx *fx = *state;
        struct collected c = {.ret = 0};
        /* No faults/ yet: nothing to recover, not an error. */
        assert_int_equal(agent_journal_load(fx->root, collect_cb, &c), 0);
        assert_int_equal(c.n, 0);
}

/* Corrupt entries: each is counted as seen, logged, left in place, and
 * never reaches the callback. */
enum corrupt_kind {
        CK_GARBAGE,
        CK_TRUNCATED,
        CK_EMPTY,
        CK_VERSION,
        CK_UNKNOWN_KIND,
        CK_OVERSIZE,
        CK_ARRAY,
        CK_NONSTRING_PARAM,
};

struct corrupt_case {
        const char *file;
        enum corrupt_kind kind;
};

static const struct corrupt_case corrupt_cases[] = {
    {"garbage.json", CK_GARBAGE},
    {"truncated.json", CK_TRUNCATED},
    {"empty.json", CK_EMPTY},
    {"version2.json", CK_VERSION},
    {"unknown-kind.json", CK_UNKNOWN_KIND},
    {"oversize.json", CK_OVERSIZE},
    {"array.json", CK_ARRAY},
    {"param-int.json", CK_NONSTRING_PARAM},
};

#define ONE_MIB (1024 * 1024)

static void write_corrupt(const char *path, enum corrupt_kind kind)
{
        struct agent_fault f;
        sample_fault(&f, "f-corrupt");
        _cleanup_free_ char *good = entry_text(&f);
        fault_release(&f);
        json_error_t jerr;
        json_t *j = json_loads(good, 0, &jerr);
        assert_non_null(j);

        switch (kind) {
        case CK_GARBAGE:
                write_str(path, "\x01\x02 this is { not json");
                break;
        case CK_TRUNCATED:
                write_file(path, good, strlen(good) / 2);
                break;
        case CK_EMPTY:
                write_str(path, "");
                break;
        case CK_VERSION:
                json_object_set_new(j, "version", json_integer(2));
                assert_int_equal(json_dump_file(j, path, JSON_COMPACT), 0);
                break;
        case CK_UNKNOWN_KIND:
                json_object_set_new(j, "kind", json_string("warp-drive"));
                assert_int_equal(json_dump_file(j, path, JSON_COMPACT), 0);
                break;
        case CK_OVERSIZE: {
                /* A valid entry padded with whitespace to 1 MiB + 1 byte:
                 * only the size cap can refuse it. */
                size_t len = strlen(good);
                char *big = malloc(ONE_MIB + 1);
                assert_non_null(big);
                memcpy(big, good, len);
                memset(big + len, ' ', ONE_MIB + 1 - len);
                write_file(path, big, ONE_MIB + 1);
                free(big);
                break;
        }
        case CK_ARRAY:
                write_str(path, "[1,2,3]");
                break;
        case CK_NONSTRING_PARAM:
                json_object_set_new(json_object_get(j, "params"), "bytes", json_integer(4096));
                assert_int_equal(json_dump_file(j, path, JSON_COMPACT), 0);
                break;
        }
        json_decref(j);
}

static void test_load_scan(void **state)
{
        struct jfx *fx = *state;
        char err[FL_MSG_LEN] = "", path[PATH_MAX];
        struct agent_fault f;

        assert_int_equal(agent_journal_init(fx->root, err, sizeof(err)), 0);
        sample_fault(&f, SAMPLE_ID);
        assert_int_equal(agent_journal_write(fx->root, &f), 0);

        /* Crash mid-write leftovers: removed. */
        static const char *const stray_tmp[] = {"." SAMPLE_ID ".json.tmp", ".f-other.json.tmp"};
        for (size_t i = 0; i < FL_ARRAY_SIZE(stray_tmp); i++) {
                path_join(path, sizeof(path), fx->faults, stray_tmp[i]);
                write_str(path, "{\"version\": 1, \"id\": \"hal");
        }
        /* Not journal entries: ignored and left alone. */
        static const char *const foreign[] = {"README.txt", "notes.json~", "x.json.bak", ".hidden",
                                              "json"};
        for (size_t i = 0; i < FL_ARRAY_SIZE(foreign); i++) {
                path_join(path, sizeof(path), fx->faults, foreign[i]);
                write_str(path, "{not json at all");
        }
        for (size_t i = 0; i < FL_ARRAY_SIZE(corrupt_cases); i++) {
                path_join(path, sizeof(path), fx->faults, corrupt_cases[i].file);
                write_corrupt(path, corrupt_cases[i].kind);
        }

        struct collected c = {.ret = 0};
        int seen = agent_journal_load(fx->root, collect_cb, &c);
        /* Every *.json counts as seen, usable or not. */
        assert_int_equal(seen, 1 + (int)FL_ARRAY_SIZE(corrupt_cases));
        assert_int_equal(c.n, 1);
        assert_string_equal(c.f[0]->id, SAMPLE_ID);
        assert_fault_equal(&f, c.f[0]);
        collected_free(&c);

        for (size_t i = 0; i < FL_ARRAY_SIZE(stray_tmp); i++) {
                path_join(path, sizeof(path), fx->faults, stray_tmp[i]);
                if (exists(path))
                        fail_msg("stray temp file %s not removed", stray_tmp[i]);
        }
        for (size_t i = 0; i < FL_ARRAY_SIZE(foreign); i++) {
                path_join(path, sizeof(path), fx->faults, foreign[i]);
                if (!exists(path))
                        fail_msg("foreign file %s removed", foreign[i]);
        }
        for (size_t i = 0; i < FL_ARRAY_SIZE(corrupt_cases); i++) {
                path_join(path, sizeof(path), fx->faults, corrupt_cases[i].file);
                if (!exists(path))
                        fail_msg("corrupt entry %s removed", corrupt_cases[i].file);
        }
        path_join(path, sizeof(path), fx->faults, "oversize.json");
        assert_int_equal(file_size(path), ONE_MIB + 1);

        /* Second scan: same result, nothing else disappears. */
        c = (struct collected){.ret = 0};
        assert_int_equal(agent_journal_load(fx->root, collect_cb, &c),
                         1 + (int)FL_ARRAY_SIZE(corrupt_cases));
        assert_int_equal(c.n, 1);
        collected_free(&c);
        assert_int_equal(count_entries(fx->faults),
                         1 + (int)FL_ARRAY_SIZE(foreign) + (int)FL_ARRAY_SIZE(corrupt_cases));
        fault_release(&f);
}

/* Exactly 1 MiB is still accepted: the cap is "> 1 MiB". */
static void test_load_size_boundary(void **state)
{
        struct jfx *fx = *state;
        char err[FL_MSG_LEN] = "", path[PATH_MAX];
        struct agent_fault f;

        assert_int_equal(agent_journal_init(fx->root, err, sizeof(err)), 0);
        sample_fault(&f, SAMPLE_ID);
        _cleanup_free_ char *good = entry_text(&f);
        size_t len = strlen(good);
        char *big = malloc(ONE_MIB);
        assert_non_null(big);
        memcpy(big, good, len);
        memset(big + len, '\n', ONE_MIB - len);
        path_join(path, sizeof(path), fx->faults, SAMPLE_ID ".json");
        write_file(path, big, ONE_MIB);
        free(big);

        struct collected c = {.ret = 0};
        assert_int_equal(agent_journal_load(fx->root, collect_cb, &c), 1);
        assert_int_equal(c.n, 1);
        assert_fault_equal(&f, c.f[0]);
        collected_free(&c);
        fault_release(&f);
}

/* A callback refusing the fault leaves it to the journal to free (LSan
 * checks), and the entry stays on disk. */
static void test_load_callback_refuses(void **state)
{
        struct jfx *fx = *state;
        char err[FL_MSG_LEN] = "";
        struct agent_fault f, g;

        assert_int_equal(agent_journal_init(fx->root, err, sizeof(err)), 0);
        sample_fault(&f, SAMPLE_ID);
        sample_fault(&g, "f-second");
        assert_int_equal(agent_journal_write(fx->root, &f), 0);
        assert_int_equal(agent_journal_write(fx->root, &g), 0);

        struct collected c = {.ret = -1};
        assert_int_equal(agent_journal_load(fx->root, collect_cb, &c), 2);
        assert_int_equal(c.n, 2);
        assert_int_equal(count_entries(fx->faults), 2);
        fault_release(&g);
        fault_release(&f);
}

/* ---- journal: JSON refusals ------------------------------------------------------ */

enum json_mut {
        JM_DELETE,      /* remove key */
        JM_STRING,      /* set key to a string */
        JM_LONGSTRING,  /* set key to a string of len chars */
        JM_INT,         /* set key to an integer */
        JM_NULL,        /* set key to null */
        JM_PARAM,       /* params[key2] = string value */
        JM_PARAM_INT,   /* params[key2] = integer */
        JM_PARAM_NULL,  /* params[key2] = null */
        JM_MANY_PARAMS, /* FL_MAX_PARAMS + 1 params */
        JM_NOT_OBJECT,  /* the whole entry is an array */
};

struct json_case {
        const char *name;
        enum json_mut mut;
        const char *key;
        const char *str;
        size_t len;
        int ret;
};

static const struct json_case json_cases[] = {
    {"missing id", JM_DELETE, "id", NULL, 0, -EBADMSG},
    {"id 39 chars ok", JM_LONGSTRING, "id", NULL, FL_ID_LEN - 1, 0},
    {"id too long", JM_LONGSTRING, "id", NULL, FL_ID_LEN, -EBADMSG},
    {"id not a string", JM_INT, "id", NULL, 0, -EBADMSG},
    {"id null", JM_NULL, "id", NULL, 0, -EBADMSG},
    {"missing kind", JM_DELETE, "kind", NULL, 0, -EBADMSG},
    {"unknown kind", JM_STRING, "kind", "warp-drive", 0, -EBADMSG},
    {"kind too long", JM_LONGSTRING, "kind", NULL, FL_KIND_LEN, -EBADMSG},
    {"missing lease", JM_DELETE, "lease", NULL, 0, -EBADMSG},
    {"lease too long", JM_LONGSTRING, "lease", NULL, FL_ID_LEN, -EBADMSG},
    {"missing requester", JM_DELETE, "requester", NULL, 0, -EBADMSG},
    {"requester too long", JM_LONGSTRING, "requester", NULL, FL_NAME_LEN, -EBADMSG},
    {"missing target", JM_DELETE, "target", NULL, 0, -EBADMSG},
    {"target too long", JM_LONGSTRING, "target", NULL, FL_NAME_LEN, -EBADMSG},
    {"missing backend", JM_DELETE, "backend", NULL, 0, -EBADMSG},
    {"backend too long", JM_LONGSTRING, "backend", NULL, FL_KIND_LEN, -EBADMSG},
    {"missing version", JM_DELETE, "version", NULL, 0, -EBADMSG},
    {"version 2", JM_INT, "version", NULL, 2, -EBADMSG},
    {"version 0", JM_INT, "version", NULL, 0, -EBADMSG},
    {"version as string", JM_STRING, "version", "1", 0, -EBADMSG},
    {"non-string param", JM_PARAM_INT, "bytes", NULL, 4096, -EBADMSG},
    {"null param", JM_PARAM_NULL, "path", NULL, 0, -EBADMSG},
    {"param key too long", JM_PARAM, "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk", "v", 0, -EBADMSG},
    {"param value too long", JM_PARAM, "path", NULL, FL_VAL_LEN, -EBADMSG},
    {"param value 511 ok", JM_PARAM, "path", NULL, FL_VAL_LEN - 1, 0},
    {"empty param key", JM_PARAM, "", "v", 0, -EBADMSG},
    {"too many params", JM_MANY_PARAMS, NULL, NULL, 0, -EBADMSG},
    {"missing params ok", JM_DELETE, "params", NULL, 0, 0},
    {"missing undo ok", JM_DELETE, "undo", NULL, 0, 0},
    {"undo not object ok", JM_STRING, "undo", "x", 0, 0},
    {"not an object", JM_NOT_OBJECT, NULL, NULL, 0, -EBADMSG},
};

static json_t *mutate(const struct json_case *tc)
{
        struct agent_fault f;
        sample_fault(&f, SAMPLE_ID);
        json_t *j = agent_journal_to_json(&f);
        fault_release(&f);
        assert_non_null(j);
        json_t *params = json_object_get(j, "params");
        char longbuf[FL_NAME_LEN + FL_VAL_LEN + 1];
        if (tc->len < sizeof(longbuf)) {
                memset(longbuf, 'x', tc->len);
                longbuf[tc->len] = '\0';
        }
        const char *sval = tc->str ? tc->str : longbuf;

        switch (tc->mut) {
        case JM_DELETE:
                assert_int_equal(json_object_del(j, tc->key), 0);
                break;
        case JM_STRING:
        case JM_LONGSTRING:
                json_object_set_new(j, tc->key, json_string(sval));
                break;
        case JM_INT:
                json_object_set_new(j, tc->key, json_integer((json_int_t)tc->len));
                break;
        case JM_NULL:
                json_object_set_new(j, tc->key, json_null());
                break;
        case JM_PARAM:
                json_object_set_new(params, tc->key, json_string(sval));
                break;
        case JM_PARAM_INT:
                json_object_set_new(params, tc->key, json_integer((json_int_t)tc->len));
                break;
        case JM_PARAM_NULL:
                json_object_set_new(params, tc->key, json_null());
                break;
        case JM_MANY_PARAMS:
                for (int i = 0; i < FL_MAX_PARAMS + 1; i++) {
                        char k[16];
                        snprintf(k, sizeof(k), "k%02d", i);
                        json_object_set_new(params, k, json_string("v"));
                }
                break;
        case JM_NOT_OBJECT:
                json_decref(j);
                j = json_pack("[s, i]", "id", 1);
                break;
        }
        return j;
}

static void test_from_json_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < FL_ARRAY_SIZE(json_cases); i++) {
                const struct json_case *tc = &json_cases[i];
                char err[FL_MSG_LEN] = "";
                struct agent_fault f;

                json_t *j = mutate(tc);
                int rv = agent_journal_from_json(j, &f, err, sizeof(err));
                if (rv != tc->ret)
                        fail_msg("%s: agent_journal_from_json returned %d (%s), expected %d",
                                 tc->name, rv, err, tc->ret);
                if (rv < 0) {
                        assert_true(err[0] != '\0');
                        /* Nothing left allocated on failure. */
                        assert_null(f.params);
                        assert_null(f.undo);
                        assert_null(f.priv);
                } else {
                        assert_non_null(f.ops);
                        assert_true(json_is_object(f.undo));
                        fault_release(&f);
                }
                json_decref(j);
        }
}

/* ---- core ------------------------------------------------------------------------ */

struct cfx {
        char root[PATH_MAX];
        char state[PATH_MAX];
        char faults[PATH_MAX];
        char fill[PATH_MAX];
        struct agent_config cfg;
        struct agent *a;
};

static void cfx_new_agent(struct cfx *fx)
{
        agent_free(fx->a);
        fx->a = NULL;
        assert_int_equal(agent_new(&fx->cfg, &fx->a), 0);
        assert_non_null(fx->a);
}

static int cfx_setup(void **state)
{
        struct cfx *fx = calloc(1, sizeof(*fx));
        char err[FL_MSG_LEN] = "";
        assert_non_null(fx);
        make_tmpdir(fx->root, sizeof(fx->root));
        path_join(fx->state, sizeof(fx->state), fx->root, "state");
        path_join(fx->faults, sizeof(fx->faults), fx->state, "faults");
        path_join(fx->fill, sizeof(fx->fill), fx->root, "fill");
        assert_int_equal(mkdir(fx->fill, 0700), 0);
        assert_int_equal(agent_journal_init(fx->state, err, sizeof(err)), 0);
        agent_config_defaults(&fx->cfg);
        assert_int_equal(fl_strlcpy(fx->cfg.state_dir, fx->state, sizeof(fx->cfg.state_dir)), 0);
        cfx_new_agent(fx);
        *state = fx;
        return 0;
}

static int cfx_teardown(void **state)
{
        struct cfx *fx = *state;
        if (fx->a) {
                agent_revert_all(fx->a, "test-teardown");
                agent_free(fx->a);
        }
        rm_rf(fx->root);
        free(fx);
        return 0;
}

/* Build a request; kv are "key=value" strings, NULL-terminated. */
static void req_init(struct fl_request *r, enum fl_msg_type type)
{
        static uint64_t seq = 100;
        memset(r, 0, sizeof(*r));
        r->version = FL_PROTO_VERSION;
        r->type = type;
        r->seq = ++seq;
        snprintf(r->requester, sizeof(r->requester), "unit-test");
}

static void req_params(struct fl_request *r, const char *const *kv)
{
        size_t n = 0;
        while (kv && kv[n])
                n++;
        r->params = calloc(n ? n : 1, sizeof(*r->params));
        assert_non_null(r->params);
        /* Filled by hand: duplicates must reach the agent. */
        for (size_t i = 0; i < n; i++) {
                const char *eq = strchr(kv[i], '=');
                assert_non_null(eq);
                snprintf(r->params[i].key, sizeof(r->params[i].key), "%.*s", (int)(eq - kv[i]),
                         kv[i]);
                snprintf(r->params[i].value, sizeof(r->params[i].value), "%s", eq + 1);
        }
        r->n_params = n;
}

static enum fl_status handle(struct agent *a, struct fl_request *req, struct fl_reply *rep)
{
        agent_handle(a, req, rep);
        assert_int_equal(rep->version, FL_PROTO_VERSION);
        assert_int_equal(rep->type, req->type);
        assert_int_equal(rep->seq, req->seq);
        /* Every reply the agent builds for a real message type must be
         * encodable. */
        if (req->type > FL_MSG_INVALID && req->type < FL_MSG_TYPE_MAX) {
                void *buf = NULL;
                size_t len = 0;
                int rv = fl_reply_encode(rep, &buf, &len);
                if (rv != 0)
                        fail_msg("reply (%s: %s) does not encode: %d", fl_status_name(rep->status),
                                 rep->msg, rv);
                free(buf);
        }
        return rep->status;
}

static enum fl_status apply_once(struct agent *a, const char *kind, uint64_t dur_ms,
                                 const char *lease, uint64_t ttl_ms, const char *const *kv,
                                 struct fl_reply *rep)
{
        struct fl_request req;
        req_init(&req, FL_MSG_APPLY);
        snprintf(req.kind, sizeof(req.kind), "%s", kind);
        req.duration_ms = dur_ms;
        snprintf(req.lease, sizeof(req.lease), "%s", lease);
        req.lease_ttl_ms = ttl_ms;
        req_params(&req, kv);
        enum fl_status st = handle(a, &req, rep);
        fl_request_free(&req);
        return st;
}

/* A real disk-fill of 4096 bytes in fx->fill. The verify step compares
 * free space before and after; on a shared filesystem someone deleting
 * files at that moment can make it report FL_ST_VERIFY, so retry twice. */
static void apply_fill(struct cfx *fx, uint64_t dur_ms, const char *lease, uint64_t ttl_ms,
                       char *ret_id, size_t idlen)
{
        char pathkv[PATH_MAX + 8];
        snprintf(pathkv, sizeof(pathkv), "path=%s", fx->fill);
        const char *const kv[] = {pathkv, "bytes=4096", NULL};
        struct fl_reply rep;
        enum fl_status st = FL_ST_VERIFY;
        char msg[FL_MSG_LEN] = "";

        for (int attempt = 0; attempt < 3 && st == FL_ST_VERIFY; attempt++) {
                st = apply_once(fx->a, "disk-fill", dur_ms, lease, ttl_ms, kv, &rep);
                if (st != FL_ST_OK) {
                        snprintf(msg, sizeof(msg), "%s", rep.msg);
                        fl_reply_free(&rep);
                }
        }
        if (st != FL_ST_OK)
                fail_msg("disk-fill apply: status %s: %s", fl_status_name(st), msg);
        assert_int_equal(rep.n_faults, 1);
        const struct fl_fault_info *fi = &rep.faults[0];
        assert_string_equal(fi->kind, "disk-fill");
        assert_string_equal(fi->lease, lease);
        assert_string_equal(fi->state, "active");
        assert_true(strcmp(fi->backend, "fallocate") == 0 || strcmp(fi->backend, "write") == 0);
        assert_non_null(strstr(fi->target, "+4096 bytes"));
        assert_int_equal(fi->expires_ms - fi->started_ms, dur_ms);
        assert_string_equal(fl_params_get(fi->params, fi->n_params, "bytes"), "4096");
        assert_string_equal(fl_params_get(fi->params, fi->n_params, "path"), fx->fill);
        assert_true(strlen(fi->id) > 0);
        snprintf(ret_id, idlen, "%s", fi->id);
        fl_reply_free(&rep);
}

static void ballast_path(const struct cfx *fx, const char *id, char *buf, size_t size)
{
        int n = snprintf(buf, size, "%s/.faultline-ballast-%s", fx->fill, id);
        assert_true(n > 0 && (size_t)n < size);
}

static void entry_path(const struct cfx *fx, const char *id, char *buf, size_t size)
{
        int n = snprintf(buf, size, "%s/%s.json", fx->faults, id);
        assert_true(n > 0 && (size_t)n < size);
}

static void assert_fault_present(const struct cfx *fx, const char *id)
{
        char p[PATH_MAX];
        ballast_path(fx, id, p, sizeof(p));
        assert_true(exists(p));
        assert_int_equal(file_size(p), 4096);
        entry_path(fx, id, p, sizeof(p));
        assert_true(exists(p));
}

static void assert_fault_gone(const struct cfx *fx, const char *id)
{
        char p[PATH_MAX];
        ballast_path(fx, id, p, sizeof(p));
        if (exists(p))
                fail_msg("ballast %s still exists", p);
        entry_path(fx, id, p, sizeof(p));
        if (exists(p))
                fail_msg("journal entry %s still exists", p);
}

static void test_core_hello(void **state)
{
        struct cfx *fx = *state;
        struct fl_request req;
        struct fl_reply rep;

        req_init(&req, FL_MSG_HELLO);
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_OK);
        assert_int_equal(rep.proto_version, FL_PROTO_VERSION);
        assert_string_equal(rep.agent_version, FL_VERSION);
        assert_true(rep.hostname[0] != '\0');
        assert_int_equal(rep.count, 0);
        assert_int_equal(rep.n_caps, agent_fault_registry_len);
        for (size_t i = 0; i < agent_fault_registry_len; i++) {
                const struct fault_ops *ops = agent_fault_registry[i];
                const char *why = ops->supported ? ops->supported() : NULL;
                assert_string_equal(rep.caps[i].kind, ops->kind);
                assert_int_equal(rep.caps[i].available, why == NULL);
                assert_string_equal(rep.caps[i].reason, why ? why : "");
        }
        fl_reply_free(&rep);

        /* A policy allowing only disk-fill marks the others unavailable. */
        fx->cfg.policy.allow_all_kinds = false;
        snprintf(fx->cfg.policy.allowed_kinds[0], FL_KIND_LEN, "disk-fill");
        fx->cfg.policy.n_allowed_kinds = 1;
        cfx_new_agent(fx);
        req_init(&req, FL_MSG_HELLO);
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_OK);
        assert_int_equal(rep.n_caps, agent_fault_registry_len);
        for (size_t i = 0; i < rep.n_caps; i++) {
                const struct fault_ops *ops = agent_fault_registry[i];
                const char *why = ops->supported ? ops->supported() : NULL;
                bool allowed = strcmp(ops->kind, "disk-fill") == 0;
                assert_string_equal(rep.caps[i].kind, ops->kind);
                assert_int_equal(rep.caps[i].available, why == NULL && allowed);
                if (!why && !allowed)
                        assert_non_null(strstr(rep.caps[i].reason, "policy"));
        }
        fl_reply_free(&rep);
}

/* APPLY refusals: nothing active, nothing journaled, nothing on disk. */
enum cfg_tweak {
        CT_NONE,
        CT_ONLY_KILL,   /* allowed-faults: [process-kill] */
        CT_MAX_DUR_1S,  /* max-duration: 1s */
        CT_PROTECT_FOO, /* protected-processes: [foo] */
};

struct apply_case {
        const char *name;
        enum cfg_tweak tweak;
        const char *kind;
        uint64_t dur_ms;
        const char *lease;
        const char *kv[4]; /* "@" in a value is replaced by the fill dir */
        enum fl_status st;
};

static const struct apply_case apply_cases[] = {
    {"unknown kind", CT_NONE, "warp-drive", 1000, "L", {NULL}, FL_ST_UNKNOWN_KIND},
    {"empty kind", CT_NONE, "", 1000, "L", {NULL}, FL_ST_UNKNOWN_KIND},
    {"duration above default max",
     CT_NONE,
     "disk-fill",
     AGENT_DEFAULT_MAX_DURATION + 1,
     "L",
     {"path=@", "bytes=4096"},
     FL_ST_REFUSED},
    {"duration above 1s max",
     CT_MAX_DUR_1S,
     "disk-fill",
     1001,
     "L",
     {"path=@", "bytes=4096"},
     FL_ST_REFUSED},
    {"kind not allowed",
     CT_ONLY_KILL,
     "disk-fill",
     1000,
     "L",
     {"path=@", "bytes=4096"},
     FL_ST_REFUSED},
    {"unknown kind beats policy",
     CT_ONLY_KILL,
     "warp-drive",
     1000,
     "L",
     {NULL},
     FL_ST_UNKNOWN_KIND},
    {"zero duration", CT_NONE, "disk-fill", 0, "L", {"path=@", "bytes=4096"}, FL_ST_INVALID},
    {"no lease", CT_NONE, "disk-fill", 1000, "", {"path=@", "bytes=4096"}, FL_ST_INVALID},
    {"unknown param", CT_NONE, "disk-fill", 1000, "L", {"path=@", "size=4096"}, FL_ST_INVALID},
    {"param twice",
     CT_NONE,
     "disk-fill",
     1000,
     "L",
     {"path=@", "bytes=1", "bytes=2"},
     FL_ST_INVALID},
    {"validate: no bytes", CT_NONE, "disk-fill", 1000, "L", {"path=@"}, FL_ST_INVALID},
    {"validate: relative path",
     CT_NONE,
     "disk-fill",
     1000,
     "L",
     {"path=tmp", "bytes=1"},
     FL_ST_INVALID},
    {"prepare: path missing",
     CT_NONE,
     "disk-fill",
     1000,
     "L",
     {"path=/nonexistent-faultline-dir", "bytes=4096"},
     FL_ST_NOT_FOUND},
    {"prepare: more than free",
     CT_NONE,
     "disk-fill",
     1000,
     "L",
     {"path=@", "bytes=1000P"},
     FL_ST_INVALID},
    /* The protected-name refusal is tested apart, in a child process
     * (test_core_apply_protected_name). */
    {"other name not protected",
     CT_PROTECT_FOO,
     "process-kill",
     1000,
     "L",
     {"name=fl-no-such-proc"},
     FL_ST_NOT_FOUND},
};

static void test_core_apply_refusals(void **state)
{
        struct cfx *fx = *state;
        struct agent_config base = fx->cfg;

        for (size_t i = 0; i < FL_ARRAY_SIZE(apply_cases); i++) {
                const struct apply_case *tc = &apply_cases[i];
                fx->cfg = base;
                switch (tc->tweak) {
                case CT_NONE:
                        break;
                case CT_ONLY_KILL:
                        fx->cfg.policy.allow_all_kinds = false;
                        snprintf(fx->cfg.policy.allowed_kinds[0], FL_KIND_LEN, "process-kill");
                        fx->cfg.policy.n_allowed_kinds = 1;
                        break;
                case CT_MAX_DUR_1S:
                        fx->cfg.policy.max_duration_ms = 1000;
                        break;
                case CT_PROTECT_FOO:
                        snprintf(fx->cfg.policy.protected_names[0], 16, "foo");
                        fx->cfg.policy.n_protected_names = 1;
                        break;
                }
                cfx_new_agent(fx);

                char kvbuf[4][PATH_MAX + 16];
                const char *kv[5] = {NULL};
                for (size_t k = 0; k < 4 && tc->kv[k]; k++) {
                        const char *at = strchr(tc->kv[k], '@');
                        if (at)
                                snprintf(kvbuf[k], sizeof(kvbuf[k]), "%.*s%s",
                                         (int)(at - tc->kv[k]), tc->kv[k], fx->fill);
                        else
                                snprintf(kvbuf[k], sizeof(kvbuf[k]), "%s", tc->kv[k]);
                        kv[k] = kvbuf[k];
                }
                /* A kind this host cannot run answers "unsupported" first. */
                enum fl_status want = tc->st;
                const struct fault_ops *ops = agent_fault_lookup(tc->kind);
                if (ops && ops->supported && ops->supported())
                        want = FL_ST_UNSUPPORTED;
                struct fl_reply rep;
                enum fl_status st =
                    apply_once(fx->a, tc->kind, tc->dur_ms, tc->lease, 5000, kv, &rep);
                if (st != want)
                        fail_msg("%s: status %s (%s), expected %s", tc->name, fl_status_name(st),
                                 rep.msg, fl_status_name(want));
                assert_true(rep.msg[0] != '\0');
                assert_int_equal(rep.n_faults, 0);
                fl_reply_free(&rep);
                assert_int_equal(agent_active_count(fx->a), 0);
                assert_int_equal(count_entries(fx->faults), 0);
                assert_int_equal(count_entries(fx->fill), 0);
        }
        fx->cfg = base;
}

/* APPLY of a process fault naming a protected process: REFUSED, and the
 * reason names the process. Run in a child so that a memory error the
 * sanitizers catch there fails this test alone instead of aborting the
 * whole run; no cmocka asserts in the child. */
static void test_core_apply_protected_name(void **state)
{
        struct cfx *fx = *state;
        const struct fault_ops *ops = agent_fault_lookup("process-kill");
        assert_non_null(ops);
        if (ops->supported && ops->supported())
                skip();
        snprintf(fx->cfg.policy.protected_names[0], 16, "sshd");
        snprintf(fx->cfg.policy.protected_names[1], 16, "fl-guarded");
        fx->cfg.policy.n_protected_names = 2;
        cfx_new_agent(fx);

        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct fl_request req;
                struct fl_reply rep;
                int code = 0;
                memset(&req, 0, sizeof(req));
                req.version = FL_PROTO_VERSION;
                req.type = FL_MSG_APPLY;
                req.seq = 7;
                snprintf(req.kind, sizeof(req.kind), "process-kill");
                req.duration_ms = 1000;
                snprintf(req.lease, sizeof(req.lease), "L");
                req.lease_ttl_ms = 5000;
                if (fl_params_add(&req.params, &req.n_params, "name", "fl-guarded") < 0)
                        _exit(3);
                agent_handle(fx->a, &req, &rep);
                if (rep.status != FL_ST_REFUSED) {
                        fprintf(stderr, "protected name: status %s (%s), expected refused\n",
                                fl_status_name(rep.status), rep.msg);
                        code = 2;
                } else if (!strstr(rep.msg, "\"fl-guarded\" is protected")) {
                        fprintf(stderr, "protected name: reason \"%s\" does not name it\n",
                                rep.msg);
                        code = 2;
                } else if (agent_active_count(fx->a) != 0) {
                        code = 2;
                }
                fl_reply_free(&rep);
                fl_request_free(&req);
                _exit(code);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("APPLY process-kill name=<protected>: child %s %d (a sanitizer report "
                         "above names the memory error, if any)",
                         WIFEXITED(status) ? "exited" : "killed by signal",
                         WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        assert_int_equal(count_entries(fx->faults), 0);
}

static void test_core_empty_table(void **state)
{
        struct cfx *fx = *state;
        struct fl_request req;
        struct fl_reply rep;

        req_init(&req, FL_MSG_LIST);
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_OK);
        assert_int_equal(rep.n_faults, 0);
        assert_null(rep.faults);
        assert_int_equal(rep.count, 0);
        fl_reply_free(&rep);

        req_init(&req, FL_MSG_REVERT);
        snprintf(req.fault_id, sizeof(req.fault_id), "f-doesnotexist");
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_NOT_FOUND);
        assert_non_null(strstr(rep.msg, "f-doesnotexist"));
        assert_int_equal(rep.count, 0);
        fl_reply_free(&rep);

        req_init(&req, FL_MSG_RENEW);
        snprintf(req.lease, sizeof(req.lease), "lease-unknown");
        req.lease_ttl_ms = 5000;
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_NOT_FOUND);
        fl_reply_free(&rep);

        req_init(&req, FL_MSG_ABORT);
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_OK);
        assert_int_equal(rep.count, 0);
        fl_reply_free(&rep);

        req_init(&req, FL_MSG_INVALID);
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_UNKNOWN_TYPE);
        fl_reply_free(&rep);

        assert_int_equal(agent_tick(fx->a, 250), 250);
        assert_int_equal(agent_active_count(fx->a), 0);
}

static void test_core_disk_fill_cycle(void **state)
{
        struct cfx *fx = *state;
        struct fl_request req;
        struct fl_reply rep;
        char id[FL_ID_LEN];

        apply_fill(fx, 60000, "lease-a", 5000, id, sizeof(id));
        assert_int_equal(agent_active_count(fx->a), 1);
        assert_fault_present(fx, id);

        /* The journal entry holds what recovery needs. */
        struct collected c = {.ret = 0};
        assert_int_equal(agent_journal_load(fx->state, collect_cb, &c), 1);
        assert_string_equal(c.f[0]->id, id);
        assert_string_equal(c.f[0]->lease, "lease-a");
        assert_string_equal(c.f[0]->requester, "unit-test");
        char bp[PATH_MAX];
        ballast_path(fx, id, bp, sizeof(bp));
        assert_string_equal(json_string_value(json_object_get(c.f[0]->undo, "path")), bp);
        collected_free(&c);

        req_init(&req, FL_MSG_LIST);
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_OK);
        assert_int_equal(rep.n_faults, 1);
        assert_int_equal(rep.count, 1);
        assert_string_equal(rep.faults[0].id, id);
        assert_string_equal(rep.faults[0].kind, "disk-fill");
        assert_string_equal(rep.faults[0].lease, "lease-a");
        fl_reply_free(&rep);

        req_init(&req, FL_MSG_HELLO);
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_OK);
        assert_int_equal(rep.count, 1);
        fl_reply_free(&rep);

        req_init(&req, FL_MSG_RENEW);
        snprintf(req.lease, sizeof(req.lease), "lease-a");
        req.lease_ttl_ms = 5000;
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_OK);
        assert_int_equal(rep.count, 1);
        fl_reply_free(&rep);

        req_init(&req, FL_MSG_REVERT);
        snprintf(req.fault_id, sizeof(req.fault_id), "%s", id);
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_OK);
        assert_int_equal(rep.count, 1);
        fl_reply_free(&rep);
        assert_int_equal(agent_active_count(fx->a), 0);
        assert_fault_gone(fx, id);
        assert_int_equal(count_entries(fx->faults), 0);
        assert_int_equal(count_entries(fx->fill), 0);

        req_init(&req, FL_MSG_REVERT);
        snprintf(req.fault_id, sizeof(req.fault_id), "%s", id);
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_NOT_FOUND);
        fl_reply_free(&rep);

        /* The lease went with its last fault. */
        req_init(&req, FL_MSG_RENEW);
        snprintf(req.lease, sizeof(req.lease), "lease-a");
        req.lease_ttl_ms = 5000;
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_NOT_FOUND);
        fl_reply_free(&rep);
}

static void test_core_max_faults_and_abort(void **state)
{
        struct cfx *fx = *state;
        struct fl_request req;
        struct fl_reply rep;
        char id1[FL_ID_LEN], id2[FL_ID_LEN];

        fx->cfg.policy.max_faults = 2;
        cfx_new_agent(fx);
        apply_fill(fx, 60000, "lease-a", 5000, id1, sizeof(id1));
        apply_fill(fx, 60000, "lease-b", 5000, id2, sizeof(id2));
        assert_string_not_equal(id1, id2);
        assert_fault_present(fx, id1);
        assert_fault_present(fx, id2);

        char pathkv[PATH_MAX + 8];
        snprintf(pathkv, sizeof(pathkv), "path=%s", fx->fill);
        const char *const kv[] = {pathkv, "bytes=4096", NULL};
        assert_int_equal(apply_once(fx->a, "disk-fill", 1000, "lease-c", 5000, kv, &rep),
                         FL_ST_REFUSED);
        fl_reply_free(&rep);
        assert_int_equal(agent_active_count(fx->a), 2);
        assert_int_equal(count_entries(fx->faults), 2);

        /* ABORT of one lease reverts only its faults. */
        req_init(&req, FL_MSG_ABORT);
        snprintf(req.lease, sizeof(req.lease), "lease-a");
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_OK);
        assert_int_equal(rep.count, 1);
        fl_reply_free(&rep);
        assert_fault_gone(fx, id1);
        assert_fault_present(fx, id2);

        /* ABORT without a lease: everything. */
        req_init(&req, FL_MSG_ABORT);
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_OK);
        assert_int_equal(rep.count, 1);
        fl_reply_free(&rep);
        assert_fault_gone(fx, id2);
        assert_int_equal(agent_active_count(fx->a), 0);
        assert_int_equal(count_entries(fx->fill), 0);
}

/* A revert that fails keeps the fault in the table and its journal entry
 * on disk; once the cause is gone, the next REVERT succeeds. */
static void test_core_revert_failure_keeps_entry(void **state)
{
        struct cfx *fx = *state;
        struct fl_request req;
        struct fl_reply rep;
        char id[FL_ID_LEN];

        char bp[PATH_MAX];
        apply_fill(fx, 60000, "lease-f", 5000, id, sizeof(id));
        /* A directory where the ballast was: unlink() fails (EISDIR), even
         * for root. */
        ballast_path(fx, id, bp, sizeof(bp));
        assert_int_equal(unlink(bp), 0);
        assert_int_equal(mkdir(bp, 0700), 0);

        req_init(&req, FL_MSG_REVERT);
        snprintf(req.fault_id, sizeof(req.fault_id), "%s", id);
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_FAILED);
        fl_reply_free(&rep);
        assert_int_equal(agent_active_count(fx->a), 1);
        entry_path(fx, id, bp, sizeof(bp));
        assert_true(exists(bp));

        /* Nor does the TTL path drop it: a failed revert is retried. */
        assert_int_equal(agent_revert_all(fx->a, "test"), 0);
        assert_int_equal(agent_active_count(fx->a), 1);

        ballast_path(fx, id, bp, sizeof(bp));
        assert_int_equal(rmdir(bp), 0);

        req_init(&req, FL_MSG_REVERT);
        snprintf(req.fault_id, sizeof(req.fault_id), "%s", id);
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_OK);
        fl_reply_free(&rep);
        assert_int_equal(agent_active_count(fx->a), 0);
        assert_fault_gone(fx, id);
}

static void sleep_ms(unsigned ms)
{
        usleep(ms * 1000u);
}

static void test_core_ttl_expiry(void **state)
{
        struct cfx *fx = *state;
        char id[FL_ID_LEN];

        uint64_t t0 = fl_now_mono_ms();
        apply_fill(fx, 50, "lease-ttl", 5000, id, sizeof(id));
        int next = agent_tick(fx->a, 10000);
        if (fl_now_mono_ms() - t0 < 50) {
                assert_int_equal(agent_active_count(fx->a), 1);
                assert_true(next >= 0 && next <= 50);
        }
        sleep_ms(80);
        agent_tick(fx->a, 10000);
        assert_int_equal(agent_active_count(fx->a), 0);
        assert_fault_gone(fx, id);
        assert_int_equal(count_entries(fx->fill), 0);
        assert_int_equal(agent_tick(fx->a, 300), 300);
}

static void test_core_lease_lapse(void **state)
{
        struct cfx *fx = *state;
        char id[FL_ID_LEN];

        uint64_t t0 = fl_now_mono_ms();
        apply_fill(fx, 60000, "lease-short", 500, id, sizeof(id));
        int next = agent_tick(fx->a, 10000);
        if (fl_now_mono_ms() - t0 < 450) {
                assert_int_equal(agent_active_count(fx->a), 1);
                assert_true(next >= 0 && next <= 500);
        }
        sleep_ms(600);
        agent_tick(fx->a, 10000);
        assert_int_equal(agent_active_count(fx->a), 0);
        assert_fault_gone(fx, id);

        struct fl_request req;
        struct fl_reply rep;
        req_init(&req, FL_MSG_RENEW);
        snprintf(req.lease, sizeof(req.lease), "lease-short");
        req.lease_ttl_ms = 500;
        assert_int_equal(handle(fx->a, &req, &rep), FL_ST_NOT_FOUND);
        fl_reply_free(&rep);
}

/* A TTL below AGENT_MIN_LEASE_MS is raised to it: a 100 ms lease still
 * lives ~500 ms, and then lapses. */
static void test_core_lease_min_clamp(void **state)
{
        struct cfx *fx = *state;
        char id[FL_ID_LEN];

        uint64_t t0 = fl_now_mono_ms();
        apply_fill(fx, 60000, "lease-tiny", 100, id, sizeof(id));
        sleep_ms(250);
        agent_tick(fx->a, 10000);
        if (fl_now_mono_ms() - t0 < AGENT_MIN_LEASE_MS - 50)
                assert_int_equal(agent_active_count(fx->a), 1);
        uint64_t el = fl_now_mono_ms() - t0;
        if (el < AGENT_MIN_LEASE_MS + 150)
                sleep_ms((unsigned)(AGENT_MIN_LEASE_MS + 150 - el));
        agent_tick(fx->a, 10000);
        assert_int_equal(agent_active_count(fx->a), 0);
        assert_fault_gone(fx, id);
}

static void test_core_lease_renewed(void **state)
{
        struct cfx *fx = *state;
        struct fl_request req;
        struct fl_reply rep;
        char id[FL_ID_LEN];

        apply_fill(fx, 60000, "lease-r", 500, id, sizeof(id));
        sleep_ms(300);
        agent_tick(fx->a, 10000);
        req_init(&req, FL_MSG_RENEW);
        snprintf(req.lease, sizeof(req.lease), "lease-r");
        req.lease_ttl_ms = 500;
        uint64_t renewed = fl_now_mono_ms();
        enum fl_status st = handle(fx->a, &req, &rep);
        fl_reply_free(&rep);
        if (st == FL_ST_NOT_FOUND) {
                /* Only if this machine stalled past the 500 ms lease. */
                assert_int_equal(agent_active_count(fx->a), 0);
                skip();
        }
        assert_int_equal(st, FL_ST_OK);
        sleep_ms(300); /* 600 ms after apply, 300 after the renewal */
        agent_tick(fx->a, 10000);
        if (fl_now_mono_ms() - renewed < 450)
                assert_int_equal(agent_active_count(fx->a), 1);
        sleep_ms(350);
        agent_tick(fx->a, 10000);
        assert_int_equal(agent_active_count(fx->a), 0);
        assert_fault_gone(fx, id);
}

static void write_recover_entry(const struct cfx *fx, const char *id, const char *undo_path)
{
        char p[PATH_MAX];
        json_t *j = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:{s:s, s:s}, s:s, s:s, "
                              "s:{s:s, s:I}}",
                              "version", 1, "id", id, "kind", "disk-fill", "lease", "lease-old",
                              "requester", "before-crash", "duration_ms", (json_int_t)60000,
                              "started_ms", (json_int_t)SAMPLE_STARTED, "expires_ms",
                              (json_int_t)(SAMPLE_STARTED + 60000), "params", "path", fx->fill,
                              "bytes", "4096", "target", "fill +4096 bytes", "backend", "fallocate",
                              "undo", "path", undo_path, "bytes", (json_int_t)4096);
        assert_non_null(j);
        entry_path(fx, id, p, sizeof(p));
        assert_int_equal(json_dump_file(j, p, JSON_COMPACT), 0);
        json_decref(j);
}

static void test_core_recover(void **state)
{
        struct cfx *fx = *state;
        char ballast[PATH_MAX], entry[PATH_MAX];
        static char zeros[4096];

        ballast_path(fx, "f-crashed", ballast, sizeof(ballast));
        write_file(ballast, zeros, sizeof(zeros));
        write_recover_entry(fx, "f-crashed", ballast);
        entry_path(fx, "f-crashed", entry, sizeof(entry));
        assert_true(exists(entry));

        assert_int_equal(agent_recover(fx->a), 0);
        assert_false(exists(ballast));
        assert_false(exists(entry));
        assert_int_equal(count_entries(fx->faults), 0);
        /* Recovery reverts; it does not adopt the fault. */
        assert_int_equal(agent_active_count(fx->a), 0);

        /* Idempotent: the ballast already gone is fine too. */
        write_recover_entry(fx, "f-crashed", ballast);
        assert_int_equal(agent_recover(fx->a), 0);
        assert_false(exists(entry));

        /* Empty journal: clean. */
        assert_int_equal(agent_recover(fx->a), 0);
}

/* A hand-edited undo path that is not a ballast is never unlinked: the
 * revert refuses, the entry is kept, recovery reports one failure. */
static void test_core_recover_refuses_foreign_path(void **state)
{
        struct cfx *fx = *state;
        char victim[PATH_MAX], entry[PATH_MAX];

        path_join(victim, sizeof(victim), fx->fill, "precious");
        write_str(victim, "keep me");
        write_recover_entry(fx, "f-evil", victim);
        entry_path(fx, "f-evil", entry, sizeof(entry));

        assert_int_equal(agent_recover(fx->a), 1);
        assert_true(exists(victim));
        assert_true(exists(entry));
        /* Still there on the next start. */
        assert_int_equal(agent_recover(fx->a), 1);
        assert_true(exists(victim));
}

/* agent.h: agent_recover "Returns the number of entries that could NOT be
 * reverted (0 = clean)". An entry the journal cannot even parse was not
 * reverted either, and is kept on disk; a 0 here would let
 * `faultline-agent --recover` exit 0 ("clean") with a fault possibly still
 * in effect. */
static void test_core_recover_counts_unusable_entries(void **state)
{
        struct cfx *fx = *state;
        char entry[PATH_MAX];

        path_join(entry, sizeof(entry), fx->faults, "f-garbled.json");
        write_str(entry, "{\"version\": 1, \"id\": \"f-garbled\", \"kind\": ");
        assert_int_equal(agent_recover(fx->a), 1);
        assert_true(exists(entry));
}

/* agent_serve_frame: every input gets an encoded reply. */
enum frame_kind {
        FR_HELLO,        /* a valid HELLO */
        FR_GARBAGE,      /* bytes msgpack cannot parse */
        FR_EMPTY,        /* zero bytes */
        FR_NOT_A_MAP,    /* msgpack, but an array */
        FR_BAD_VERSION,  /* valid HELLO with "v": 2 */
        FR_UNKNOWN_TYPE, /* valid HELLO with "t": "hellp" */
        FR_OVERSIZE,     /* FL_MAX_FRAME + 1 bytes */
};

struct frame_case {
        const char *name;
        enum frame_kind kind;
        enum fl_status st;
        bool seq_echoed;
};

static const struct frame_case frame_cases[] = {
    {"valid hello", FR_HELLO, FL_ST_OK, true},
    {"garbage", FR_GARBAGE, FL_ST_BAD_REQUEST, false},
    {"empty", FR_EMPTY, FL_ST_BAD_REQUEST, false},
    {"array", FR_NOT_A_MAP, FL_ST_BAD_REQUEST, false},
    {"version 2", FR_BAD_VERSION, FL_ST_BAD_VERSION, true},
    {"unknown type", FR_UNKNOWN_TYPE, FL_ST_UNKNOWN_TYPE, true},
    {"oversize", FR_OVERSIZE, FL_ST_BAD_REQUEST, false},
};

/* Replace the first occurrence of pat (len n) in buf with rep (len n). */
static void patch_bytes(unsigned char *buf, size_t len, const void *pat, const void *rep, size_t n)
{
        for (size_t i = 0; i + n <= len; i++)
                if (memcmp(buf + i, pat, n) == 0) {
                        memcpy(buf + i, rep, n);
                        return;
                }
        fail_msg("pattern not found in the encoded frame");
}

static void test_core_serve_frame(void **state)
{
        struct cfx *fx = *state;

        for (size_t i = 0; i < FL_ARRAY_SIZE(frame_cases); i++) {
                const struct frame_case *tc = &frame_cases[i];
                unsigned char *frame = NULL;
                size_t flen = 0;
                struct fl_request req;
                req_init(&req, FL_MSG_HELLO);
                req.seq = 4242;

                switch (tc->kind) {
                case FR_HELLO:
                case FR_BAD_VERSION:
                case FR_UNKNOWN_TYPE: {
                        void *buf = NULL;
                        assert_int_equal(fl_request_encode(&req, &buf, &flen), 0);
                        frame = buf;
                        if (tc->kind == FR_BAD_VERSION)
                                patch_bytes(frame, flen, "\xa1v\x01", "\xa1v\x02", 3);
                        if (tc->kind == FR_UNKNOWN_TYPE)
                                patch_bytes(frame, flen, "hello", "hellp", 5);
                        break;
                }
                case FR_GARBAGE:
                        flen = 9;
                        frame = malloc(flen);
                        assert_non_null(frame);
                        memcpy(frame, "\xc1garbage!", flen);
                        break;
                case FR_EMPTY:
                        flen = 0;
                        frame = malloc(1);
                        assert_non_null(frame);
                        break;
                case FR_NOT_A_MAP:
                        flen = 4;
                        frame = malloc(flen);
                        assert_non_null(frame);
                        memcpy(frame, "\x93\x01\x02\x03", flen);
                        break;
                case FR_OVERSIZE:
                        flen = FL_MAX_FRAME + 1;
                        frame = calloc(1, flen);
                        assert_non_null(frame);
                        frame[0] = 0x80; /* an empty map, then far too much */
                        break;
                }

                void *out = NULL;
                size_t olen = 0;
                int rv = agent_serve_frame(fx->a, frame, flen, &out, &olen);
                free(frame);
                if (rv != 0)
                        fail_msg("%s: agent_serve_frame returned %d", tc->name, rv);
                assert_non_null(out);
                assert_true(olen > 0);

                struct fl_reply rep;
                char err[FL_MSG_LEN] = "";
                rv = fl_reply_decode(out, olen, &rep, err, sizeof(err));
                free(out);
                if (rv != 0)
                        fail_msg("%s: reply does not decode: %d %s", tc->name, rv, err);
                if (rep.status != tc->st)
                        fail_msg("%s: status %s (%s), expected %s", tc->name,
                                 fl_status_name(rep.status), rep.msg, fl_status_name(tc->st));
                assert_int_equal(rep.version, FL_PROTO_VERSION);
                if (tc->seq_echoed)
                        assert_int_equal(rep.seq, 4242);
                if (tc->st != FL_ST_OK)
                        assert_non_null(strstr(rep.msg, "rejected"));
                else
                        assert_int_equal(rep.n_caps, agent_fault_registry_len);
                fl_reply_free(&rep);
        }
        assert_int_equal(agent_active_count(fx->a), 0);
}

int main(void)
{
        /* The agent's log lines are part of what is tested (corrupt entries
         * are "logged"); keep them, they go to stderr. */
        const struct CMUnitTest journal_tests[] = {
            cmocka_unit_test_setup_teardown(test_init_creates_faults_dir, jfx_setup, jfx_teardown),
            cmocka_unit_test_setup_teardown(test_init_refusals, jfx_setup, jfx_teardown),
            cmocka_unit_test_setup_teardown(test_write_load_round_trip, jfx_setup, jfx_teardown),
            cmocka_unit_test(test_json_round_trip),
            cmocka_unit_test_setup_teardown(test_write_twice_replaces, jfx_setup, jfx_teardown),
            cmocka_unit_test_setup_teardown(test_remove_idempotent, jfx_setup, jfx_teardown),
            cmocka_unit_test_setup_teardown(test_load_missing_dir, jfx_setup, jfx_teardown),
            cmocka_unit_test_setup_teardown(test_load_scan, jfx_setup, jfx_teardown),
            cmocka_unit_test_setup_teardown(test_load_size_boundary, jfx_setup, jfx_teardown),
            cmocka_unit_test_setup_teardown(test_load_callback_refuses, jfx_setup, jfx_teardown),
            cmocka_unit_test(test_from_json_table),
        };
        const struct CMUnitTest core_tests[] = {
            cmocka_unit_test_setup_teardown(test_core_hello, cfx_setup, cfx_teardown),
            cmocka_unit_test_setup_teardown(test_core_apply_refusals, cfx_setup, cfx_teardown),
            cmocka_unit_test_setup_teardown(test_core_apply_protected_name, cfx_setup,
                                            cfx_teardown),
            cmocka_unit_test_setup_teardown(test_core_empty_table, cfx_setup, cfx_teardown),
            cmocka_unit_test_setup_teardown(test_core_disk_fill_cycle, cfx_setup, cfx_teardown),
            cmocka_unit_test_setup_teardown(test_core_max_faults_and_abort, cfx_setup,
                                            cfx_teardown),
            cmocka_unit_test_setup_teardown(test_core_revert_failure_keeps_entry, cfx_setup,
                                            cfx_teardown),
            cmocka_unit_test_setup_teardown(test_core_ttl_expiry, cfx_setup, cfx_teardown),
            cmocka_unit_test_setup_teardown(test_core_lease_lapse, cfx_setup, cfx_teardown),
            cmocka_unit_test_setup_teardown(test_core_lease_min_clamp, cfx_setup, cfx_teardown),
            cmocka_unit_test_setup_teardown(test_core_lease_renewed, cfx_setup, cfx_teardown),
            cmocka_unit_test_setup_teardown(test_core_recover, cfx_setup, cfx_teardown),
            cmocka_unit_test_setup_teardown(test_core_recover_refuses_foreign_path, cfx_setup,
                                            cfx_teardown),
            cmocka_unit_test_setup_teardown(test_core_recover_counts_unusable_entries, cfx_setup,
                                            cfx_teardown),
            cmocka_unit_test_setup_teardown(test_core_serve_frame, cfx_setup, cfx_teardown),
        };
        int failed = cmocka_run_group_tests_name("journal", journal_tests, NULL, NULL);
        failed += cmocka_run_group_tests_name("core", core_tests, NULL, NULL);
        return failed ? 1 : 0;
}
