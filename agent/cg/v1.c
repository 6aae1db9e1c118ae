/* cgroup v1 knobs: one hierarchy per controller (or a few co-mounted),
 * CFS bandwidth in two files, blkio throttle files with one "MAJ:MIN VALUE"
 * line per device, the freezer's three-state file. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"

static int v1_cpu_max_get(const char *dir, struct agent_cg_cpu_max *ret)
{
        char buf[64];
        int r = agent_cg_read(dir, "cpu.cfs_quota_us", buf, sizeof buf);
        if (r < 0)
                return r;
        char *end;
        long long q = strtoll(buf, &end, 10);
        if (end == buf || *end)
                return -EINVAL;
        uint64_t period;
        r = agent_cg_read_u64(dir, "cpu.cfs_period_us", &period);
        if (r < 0)
                return r;
        ret->quota_us = q < 0 ? -1 : q;
        ret->period_us = period;
        return 0;
}

/* Lift the quota first: the kernel checks every (quota, period) pair it
 * passes through against the parent's, and "unlimited" always passes. */
static int v1_cpu_max_set(const char *dir, const struct agent_cg_cpu_max *v)
{
        char buf[32];
        int r = agent_cg_write(dir, "cpu.cfs_quota_us", "-1");
        if (r < 0)
                return r;
        snprintf(buf, sizeof buf, "%" PRIu64, v->period_us);
        if ((r = agent_cg_write(dir, "cpu.cfs_period_us", buf)) < 0)
                return r;
        if (v->quota_us < 0)
                return 0;
        snprintf(buf, sizeof buf, "%" PRId64, v->quota_us);
        return agent_cg_write(dir, "cpu.cfs_quota_us", buf);
}

static int v1_cpu_weight_max(const char *dir)
{
        return agent_cg_write(dir, "cpu.shares", "262144");
}

static int v1_cpu_usage_ns(const char *dir, uint64_t *ret)
{
        return agent_cg_read_u64(dir, "cpuacct.usage", ret);
}

static int v1_mem_limit_set(const char *dir, uint64_t bytes)
{
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, bytes);
        /* Keep the worker's pages in RAM; swap-less hosts refuse nothing. */
        (void)agent_cg_write(dir, "memory.swappiness", "0");
        return agent_cg_write(dir, "memory.limit_in_bytes", buf);
}

static int v1_mem_usage(const char *dir, uint64_t *ret)
{
        return agent_cg_read_u64(dir, "memory.usage_in_bytes", ret);
}

static const char *const io_files[AGENT_CG_IO_MAX] = {
    [AGENT_CG_RBPS] = "blkio.throttle.read_bps_device",
    [AGENT_CG_WBPS] = "blkio.throttle.write_bps_device",
    [AGENT_CG_RIOPS] = "blkio.throttle.read_iops_device",
    [AGENT_CG_WIOPS] = "blkio.throttle.write_iops_device",
};

static int v1_io_get(const char *dir, unsigned maj, unsigned min, struct agent_cg_io_limit *ret)
{
        memset(ret, 0, sizeof *ret);
        for (int i = 0; i < AGENT_CG_IO_MAX; i++) {
                char buf[4096];
                int r = agent_cg_read(dir, io_files[i], buf, sizeof buf);
                if (r < 0)
                        return r;
                char *save = NULL;
                for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                        unsigned a, b;
                        unsigned long long v;
                        if (sscanf(l, "%u:%u %llu", &a, &b, &v) == 3 && a == maj && b == min)
                                ret->v[i] = v;
                }
        }
        return 0;
}

/* "MAJ:MIN 0" removes the device's rule, i.e. restores "no limit". */
static int v1_io_set(const char *dir, unsigned maj, unsigned min, const struct agent_cg_io_limit *v)
{
        int first = 0;
        for (int i = 0; i < AGENT_CG_IO_MAX; i++) {
                char buf[64];
                snprintf(buf, sizeof buf, "%u:%u %" PRIu64, maj, min, v->v[i]);
                int r = agent_cg_write(dir, io_files[i], buf);
                if (r < 0 && !first)
                        first = r;
        }
        return first;
}

static int v1_freeze_get(const char *dir, bool *ret_frozen)
{
        char buf[32];
        int r = agent_cg_read(dir, "freezer.state", buf, sizeof buf);
        if (r < 0)
                return r;
        *ret_frozen = strcmp(buf, "FROZEN") == 0;
        return 0;
}

static int v1_freeze_set(const char *dir, bool frozen)
{
        return agent_cg_write(dir, "freezer.state", frozen ? "FROZEN" : "THAWED");
}

/* v1 has neither cgroup.kill nor a populated notification (only the
 * release agent): callers signal through pidfds and wait on them. */
static int v1_kill_all(const char *dir)
{
        return -EOPNOTSUPP;
}

static int v1_wait_empty(const char *dir, int timeout_ms)
{
        return -EOPNOTSUPP;
}

const struct agent_cg_ops agent_cg_v1_ops = {
    .gen = 1,
    .mem_soft_file = "memory.soft_limit_in_bytes",
    .cpu_max_get = v1_cpu_max_get,
    .cpu_max_set = v1_cpu_max_set,
    .cpu_weight_max = v1_cpu_weight_max,
    .cpu_usage_ns = v1_cpu_usage_ns,
    .mem_limit_set = v1_mem_limit_set,
    .mem_usage = v1_mem_usage,
    .io_get = v1_io_get,
    .io_set = v1_io_set,
    .freeze_get = v1_freeze_get,
    .freeze_set = v1_freeze_set,
    .kill_all = v1_kill_all,
    .wait_empty = v1_wait_empty,
};
