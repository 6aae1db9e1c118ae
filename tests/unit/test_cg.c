/* cgroup adapters: mountinfo and /proc/PID/cgroup parsing, the unit= and
 * cgroup= inputs, the cgroup selectors of the process faults, and the
 * validation of the cgroup faults. No privileges: nothing here touches a
 * cgroup filesystem. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cg/cg.h"
#include "fault.h"
#include "fl_util.h"
#include "proc.h"

/* This build machine: v1 hierarchies plus systemd's empty v2 mount. */
static const char hybrid_mountinfo[] =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup "
    "rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n"
    "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
    "50 23 0:40 /sub /mnt/bind\\040dir rw - cgroup cgroup rw,pids\n";

static const char v2_mountinfo[] =
    "22 1 0:21 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
    "rw,nsdelegate,memory_recursiveprot\n"
    "23 1 0:22 / /proc rw - proc proc rw\n";

static void test_mountinfo_hybrid(void **state)
{
        struct agent_cg_host h;
        assert_int_equal(agent_cg_parse_mountinfo(hybrid_mountinfo, &h), 0);
        assert_int_equal(h.mode, AGENT_CG_MODE_HYBRID);
        assert_string_equal(h.v1[AGENT_CG_CPU], "/sys/fs/cgroup/cpu,cpuacct");
        assert_string_equal(h.v1[AGENT_CG_CPUACCT], "/sys/fs/cgroup/cpu,cpuacct");
        assert_string_equal(h.v1[AGENT_CG_MEMORY], "/sys/fs/cgroup/memory");
        assert_string_equal(h.v1[AGENT_CG_IO], "/sys/fs/cgroup/blkio");
        assert_string_equal(h.v1_systemd, "/sys/fs/cgroup/systemd");
        assert_string_equal(h.v2, "/sys/fs/cgroup/unified");
        /* A bind of a subtree is not a hierarchy root. */
        assert_string_equal(h.v1[AGENT_CG_PIDS], "");
        assert_int_equal(agent_cg_gen(&h, AGENT_CG_CPU), 1);
        assert_int_equal(agent_cg_gen(&h, AGENT_CG_FREEZER), 1);
        /* Empty v2 on a hybrid host: neither pids nor v2 core files count. */
        assert_int_equal(agent_cg_gen(&h, AGENT_CG_PIDS), 0);

        char desc[512];
        agent_cg_describe(&h, desc, sizeof desc);
        assert_non_null(strstr(desc, "cgroup hybrid: v1 cpu,cpuacct,memory,blkio,freezer"));
        assert_non_null(strstr(desc, "v2 /sys/fs/cgroup/unified (no controllers)"));
}

static void test_mountinfo_v2(void **state)
{
        struct agent_cg_host h;
        assert_int_equal(agent_cg_parse_mountinfo(v2_mountinfo, &h), 0);
        assert_int_equal(h.mode, AGENT_CG_MODE_V2);
        assert_string_equal(h.v2, "/sys/fs/cgroup");
        h.v2_ctrls = agent_cg_parse_controllers("cpuset cpu io memory hugetlb pids rdma misc\n");
        assert_int_equal(h.v2_ctrls, AGENT_CG_BIT(AGENT_CG_CPU) | AGENT_CG_BIT(AGENT_CG_IO) |
                                         AGENT_CG_BIT(AGENT_CG_MEMORY) |
                                         AGENT_CG_BIT(AGENT_CG_PIDS));
        for (int c = 0; c < AGENT_CG_CTRL_MAX; c++)
                assert_int_equal(agent_cg_gen(&h, (enum agent_cg_ctrl)c), 2);
        char dir[PATH_MAX];
        assert_int_equal(agent_cg_dir(&h, AGENT_CG_IO, "/system.slice/x.service", dir, sizeof dir),
                         0);
        assert_string_equal(dir, "/sys/fs/cgroup/system.slice/x.service");
        assert_int_equal(agent_cg_dir(&h, AGENT_CG_IO, "/", dir, sizeof dir), 0);
        assert_string_equal(dir, "/sys/fs/cgroup");

        h.v2_ctrls = 0;
        assert_int_equal(agent_cg_gen(&h, AGENT_CG_MEMORY), 0);
        assert_int_equal(agent_cg_gen(&h, AGENT_CG_FREEZER), 2);

        struct agent_cg_host none;
        assert_int_equal(agent_cg_parse_mountinfo("23 1 0:22 / /proc rw - proc proc rw\n", &none),
                         0);
        assert_int_equal(none.mode, AGENT_CG_MODE_NONE);
}

static void test_proc_cgroup(void **state)
{
        struct agent_cg_host h;
        agent_cg_parse_mountinfo(hybrid_mountinfo, &h);
        static const char text[] = "9:name=systemd:/system.slice/web.service\n"
                                   "4:memory:/system.slice/web.service\n"
                                   "2:cpu,cpuacct:/system.slice\n"
                                   "6:freezer:/\n"
                                   "0::/system.slice/web.service\n";
        char rel[256];
        assert_int_equal(agent_cg_parse_proc_cgroup(text, &h, AGENT_CG_CPU, rel, sizeof rel), 0);
        assert_string_equal(rel, "/system.slice");
        assert_int_equal(agent_cg_parse_proc_cgroup(text, &h, AGENT_CG_CPUACCT, rel, sizeof rel),
                         0);
        assert_string_equal(rel, "/system.slice");
        assert_int_equal(agent_cg_parse_proc_cgroup(text, &h, AGENT_CG_MEMORY, rel, sizeof rel), 0);
        assert_string_equal(rel, "/system.slice/web.service");
        assert_int_equal(agent_cg_parse_proc_cgroup(text, &h, AGENT_CG_IO, rel, sizeof rel),
                         -ENOENT);

        struct agent_cg_host v2;
        agent_cg_parse_mountinfo(v2_mountinfo, &v2);
        v2.v2_ctrls = AGENT_CG_BIT(AGENT_CG_CPU);
        assert_int_equal(agent_cg_parse_proc_cgroup(text, &v2, AGENT_CG_CPU, rel, sizeof rel), 0);
        assert_string_equal(rel, "/system.slice/web.service");
}

static void test_inputs(void **state)
{
        char buf[256], err[256];
        static const struct {
                const char *in, *out;
        } units[] = {
            {"nginx", "nginx.service"},
            {"nginx.service", "nginx.service"},
            {"user@1000.service", "user@1000.service"},
            {"session-3.scope", "session-3.scope"},
            {"system.slice", "system.slice"},
            {"foo.bar", "foo.bar.service"},
        };
        for (size_t i = 0; i < FL_ARRAY_SIZE(units); i++) {
                assert_int_equal(agent_cg_parse_unit(units[i].in, buf, sizeof buf, err, sizeof err),
                                 0);
                assert_string_equal(buf, units[i].out);
        }
        static const char *const bad_units[] = {"", "a/b", ".service", "a b", "../x"};
        for (size_t i = 0; i < FL_ARRAY_SIZE(bad_units); i++)
                assert_int_equal(
                    agent_cg_parse_unit(bad_units[i], buf, sizeof buf, err, sizeof err), -EINVAL);

        assert_int_equal(agent_cg_parse_rel("/a/b/", buf, sizeof buf, err, sizeof err), 0);
        assert_string_equal(buf, "/a/b");
        assert_int_equal(agent_cg_parse_rel("/", buf, sizeof buf, err, sizeof err), 0);
        assert_string_equal(buf, "/");
        static const char *const bad_rels[] = {"", "a/b", "/a/../b", "/a//b", "/.", "/a/.."};
        for (size_t i = 0; i < FL_ARRAY_SIZE(bad_rels); i++) {
                assert_int_equal(agent_cg_parse_rel(bad_rels[i], buf, sizeof buf, err, sizeof err),
                                 -EINVAL);
                assert_non_null(strstr(err, "cgroup="));
        }
}

static void test_selector_match(void **state)
{
        struct agent_proc_selector sel;
        char err[256];
        static const char text[] = "9:name=systemd:/system.slice/web.service/worker\n"
                                   "2:cpu,cpuacct:/\n"
                                   "0::/\n";
        assert_int_equal(agent_proc_selector_init(&sel, "unit", "web", err, sizeof err), 0);
        assert_int_equal(sel.kind, AGENT_PROC_SEL_UNIT);
        assert_true(agent_proc_cgroup_text_match(&sel, text));
        agent_proc_selector_done(&sel);
        assert_int_equal(agent_proc_selector_init(&sel, "unit", "we", err, sizeof err), 0);
        assert_false(agent_proc_cgroup_text_match(&sel, text));
        agent_proc_selector_done(&sel);

        assert_int_equal(agent_proc_selector_init(&sel, "cgroup", "/system.slice", err, sizeof err),
                         0);
        assert_true(agent_proc_cgroup_text_match(&sel, text));
        agent_proc_selector_done(&sel);
        assert_int_equal(agent_proc_selector_init(&sel, "cgroup", "/system.sl", err, sizeof err),
                         0);
        assert_false(agent_proc_cgroup_text_match(&sel, text));
        agent_proc_selector_done(&sel);
        /* Everything is under "/": refused outright. */
        assert_int_equal(agent_proc_selector_init(&sel, "cgroup", "/", err, sizeof err), -EINVAL);
}

/* validate() of every new fault: pure, table-driven. */
struct vcase {
        const char *kind;
        const char *kv[5];
        int want;
        const char *needle;
};

static const struct vcase vcases[] = {
    {"cpu-stress", {"percent=50"}, 0, NULL},
    {"cpu-stress", {"cores=1", "load=50"}, 0, NULL},
    {"cpu-stress", {"cores=2"}, 0, NULL},
    {"cpu-stress", {NULL}, -EINVAL, "exactly one"},
    {"cpu-stress", {"percent=50", "cores=1"}, -EINVAL, "exactly one"},
    {"cpu-stress", {"percent=50", "load=10"}, -EINVAL, "load="},
    {"cpu-stress", {"percent=0"}, -EINVAL, "percent="},
    {"cpu-stress", {"percent=101"}, -EINVAL, "percent="},
    {"cpu-stress", {"cores=0"}, -EINVAL, "cores="},
    {"cpu-stress", {"cores=1", "load=150"}, -EINVAL, "load="},
    {"cpu-stress", {"cores=1", "bogus=1"}, -EINVAL, "bogus"},
    {"memory-stress", {"bytes=256M"}, 0, NULL},
    {"memory-stress", {"percent=10", "ramp=5s", "lock=no"}, 0, NULL},
    {"memory-stress", {"bytes=1K"}, -EINVAL, "bytes="},
    {"memory-stress", {"bytes=1G", "percent=5"}, -EINVAL, "exactly one"},
    {"memory-stress", {"bytes=1G", "ramp=5"}, -EINVAL, "ramp="},
    {"memory-stress", {"bytes=1G", "lock=maybe"}, -EINVAL, "lock="},
    {"io-stress", {"path=/tmp"}, 0, NULL},
    {"io-stress", {"path=/tmp", "bytes=8M", "workers=4"}, 0, NULL},
    {"io-stress", {"path=tmp"}, -EINVAL, "absolute"},
    {"io-stress", {"path=/tmp", "workers=0"}, -EINVAL, "workers="},
    {"io-stress", {"path=/tmp", "bytes=4K"}, -EINVAL, "bytes="},
    {"cpu-throttle", {"cgroup=/x", "percent=20"}, 0, NULL},
    {"cpu-throttle", {"unit=nginx", "percent=20"}, 0, NULL},
    {"cpu-throttle", {"percent=20"}, -EINVAL, "unit= or cgroup="},
    {"cpu-throttle", {"unit=a", "cgroup=/b", "percent=20"}, -EINVAL, "exactly one"},
    {"cpu-throttle", {"cgroup=/x"}, -EINVAL, "percent="},
    {"cpu-throttle", {"cgroup=/x/../y", "percent=5"}, -EINVAL, "'..'"},
    {"memory-squeeze", {"cgroup=/x", "bytes=64M"}, 0, NULL},
    {"memory-squeeze", {"cgroup=/x"}, -EINVAL, "bytes="},
    {"io-throttle", {"cgroup=/x", "path=/", "wbps=1M"}, 0, NULL},
    {"io-throttle", {"unit=db", "path=/var", "riops=100", "wiops=50"}, 0, NULL},
    {"io-throttle", {"cgroup=/x", "path=/"}, -EINVAL, "at least one"},
    {"io-throttle", {"cgroup=/x", "wbps=1M"}, -EINVAL, "path="},
    {"io-throttle", {"cgroup=/x", "path=/", "wiops=0"}, -EINVAL, "wiops="},
    {"process-kill", {"unit=web", "interval=1s"}, 0, NULL},
    {"process-kill", {"cgroup=/x", "count=2", "interval=500ms"}, 0, NULL},
    {"process-kill", {"name=x", "interval=10ms"}, -EINVAL, "interval="},
    {"process-kill", {"cgroup=/"}, -EINVAL, "every process"},
    {"process-pause", {"cgroup=/x"}, 0, NULL},
    {"process-pause", {"unit=x", "cgroup=/x"}, -EINVAL, "exactly one"},
    {"disk-fill", {"path=/tmp", "reserve=1G"}, 0, NULL},
    {"disk-fill", {"path=/tmp", "inodes=90"}, 0, NULL},
    {"disk-fill", {"path=/tmp", "percent=80", "inodes=90"}, 0, NULL},
    {"disk-fill", {"path=/tmp", "reserve=1G", "bytes=1M"}, -EINVAL, "exactly one"},
    {"disk-fill", {"path=/tmp", "inodes=0"}, -EINVAL, "inodes="},
    {"disk-fill", {"path=/tmp", "reserve=lots"}, -EINVAL, "reserve="},
};

static void test_validate(void **state)
{
        int failures = 0;
        for (size_t i = 0; i < FL_ARRAY_SIZE(vcases); i++) {
                const struct vcase *c = &vcases[i];
                struct agent_fault f;
                memset(&f, 0, sizeof f);
                f.ops = agent_fault_lookup(c->kind);
                assert_non_null(f.ops);
                snprintf(f.id, sizeof f.id, "f-test");
                struct fl_param params[5];
                memset(params, 0, sizeof params);
                for (size_t k = 0; k < 5 && c->kv[k]; k++) {
                        const char *eq = strchr(c->kv[k], '=');
                        snprintf(params[k].key, sizeof params[k].key, "%.*s", (int)(eq - c->kv[k]),
                                 c->kv[k]);
                        snprintf(params[k].value, sizeof params[k].value, "%s", eq + 1);
                        f.n_params++;
                }
                f.params = params;
                char err[FL_MSG_LEN] = "";
                int r = f.ops->validate(&f, err, sizeof err);
                if (r != c->want || (c->needle && !strstr(err, c->needle))) {
                        print_error("case %zu (%s %s ...): got %d '%s', want %d '%s'\n", i, c->kind,
                                    c->kv[0] ? c->kv[0] : "", r, err, c->want,
                                    c->needle ? c->needle : "");
                        failures++;
                }
                if (f.ops->destroy)
                        f.ops->destroy(&f);
        }
        assert_int_equal(failures, 0);
}

static void test_io_format(void **state)
{
        struct agent_cg_io_limit l = {{0, 1048576, 0, 50}};
        char buf[128];
        agent_cg_io_format(&l, buf, sizeof buf);
        assert_string_equal(buf, "rbps=max wbps=1048576 riops=max wiops=50");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_mountinfo_hybrid), cmocka_unit_test(test_mountinfo_v2),
            cmocka_unit_test(test_proc_cgroup),      cmocka_unit_test(test_inputs),
            cmocka_unit_test(test_selector_match),   cmocka_unit_test(test_validate),
            cmocka_unit_test(test_io_format),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
