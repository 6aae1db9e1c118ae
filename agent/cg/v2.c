/* cgroup v2 knobs: one tree, "max" for no limit, cpu.max as "QUOTA PERIOD",
 * io.max with one keyed line per device, cgroup.freeze / cgroup.events,
 * and cgroup.kill (Linux 5.14) to end a whole group at once. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cg.h"
#include "fl_util.h"

static int v2_cpu_max_get(const char *dir, struct agent_cg_cpu_max *ret)
{
        char buf[64], q[32];
        unsigned long long period;
        int r = agent_cg_read(dir, "cpu.max", buf, sizeof buf);
        if (r < 0)
                return r;
        if (sscanf(buf, "%31s %llu", q, &period) != 2)
                return -EINVAL;
        if (strcmp(q, "max") == 0) {
                ret->quota_us = -1;
        } else {
                char *end;
                long long v = strtoll(q, &end, 10);
                if (end == q || *end || v < 0)
                        return -EINVAL;
                ret->quota_us = v;
        }
        ret->period_us = period;
        return 0;
}

static int v2_cpu_max_set(const char *dir, const struct agent_cg_cpu_max *v)
{
        char buf[64];
        if (v->quota_us < 0)
                snprintf(buf, sizeof buf, "max %" PRIu64, v->period_us);
        else
                snprintf(buf, sizeof buf, "%" PRId64 " %" PRIu64, v->quota_us, v->period_us);
        return agent_cg_write(dir, "cpu.max", buf);
}

static int v2_cpu_weight_max(const char *dir)
{
        return agent_cg_write(dir, "cpu.weight", "10000");
}

static int v2_cpu_usage_ns(const char *dir, uint64_t *ret)
{
        char buf[1024];
        int r = agent_cg_read(dir, "cpu.stat", buf, sizeof buf);
        if (r < 0)
                return r;
        const char *p = strstr(buf, "usage_usec ");
        unsigned long long us;
        if (!p || sscanf(p, "usage_usec %llu", &us) != 1)
                return -EINVAL;
        *ret = (uint64_t)us * 1000u;
        return 0;
}

static int v2_mem_limit_set(const char *dir, uint64_t bytes)
{
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, bytes);
        /* Held means resident: no swap for the worker (absent without
         * swap accounting, which is fine). */
        (void)agent_cg_write(dir, "memory.swap.max", "0");
        return agent_cg_write(dir, "memory.max", buf);
}

static int v2_mem_usage(const char *dir, uint64_t *ret)
{
        return agent_cg_read_u64(dir, "memory.current", ret);
}

static const char *const io_keys[AGENT_CG_IO_MAX] = {"rbps", "wbps", "riops", "wiops"};

static int v2_io_get(const char *dir, unsigned maj, unsigned min, struct agent_cg_io_limit *ret)
{
        char buf[4096];
        memset(ret, 0, sizeof *ret);
        int r = agent_cg_read(dir, "io.max", buf, sizeof buf);
        if (r < 0)
                return r;
        char *save = NULL;
        for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                unsigned a, b;
                int off = 0;
                if (sscanf(l, "%u:%u%n", &a, &b, &off) != 2 || a != maj || b != min)
                        continue;
                char *s2 = NULL;
                for (char *kv = strtok_r(l + off, " ", &s2); kv; kv = strtok_r(NULL, " ", &s2)) {
                        char *eq = strchr(kv, '=');
                        if (!eq)
                                continue;
                        *eq = '\0';
                        for (int i = 0; i < AGENT_CG_IO_MAX; i++)
                                if (strcmp(kv, io_keys[i]) == 0)
                                        ret->v[i] = strcmp(eq + 1, "max") == 0
                                                        ? 0
                                                        : strtoull(eq + 1, NULL, 10);
                }
        }
        return 0;
}

static int v2_io_set(const char *dir, unsigned maj, unsigned min, const struct agent_cg_io_limit *v)
{
        char buf[256];
        size_t len = (size_t)snprintf(buf, sizeof buf, "%u:%u", maj, min);
        for (int i = 0; i < AGENT_CG_IO_MAX && len < sizeof buf; i++) {
                int w = v->v[i] ? snprintf(buf + len, sizeof buf - len, " %s=%" PRIu64, io_keys[i],
                                           v->v[i])
                                : snprintf(buf + len, sizeof buf - len, " %s=max", io_keys[i]);
                if (w > 0)
                        len += (size_t)w;
        }
        return agent_cg_write(dir, "io.max", buf);
}

static int v2_freeze_get(const char *dir, bool *ret_frozen)
{
        char buf[256];
        int r = agent_cg_read(dir, "cgroup.events", buf, sizeof buf);
        if (r < 0)
                return r;
        const char *p = strstr(buf, "frozen ");
        if (!p)
                return -EOPNOTSUPP;
        *ret_frozen = p[7] == '1';
        return 0;
}

static int v2_freeze_set(const char *dir, bool frozen)
{
        return agent_cg_write(dir, "cgroup.freeze", frozen ? "1" : "0");
}

static int v2_kill_all(const char *dir)
{
        int r = agent_cg_write(dir, "cgroup.kill", "1");
        return r == -ENOENT ? -EOPNOTSUPP : r;
}

/* "populated 0|1" from an open cgroup.events. */
static int events_populated(int fd, bool *ret)
{
        char buf[256];
        ssize_t n;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        do
                n = read(fd, buf, sizeof buf - 1);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return errno == ENODEV ? -ENOENT : -errno;
        buf[n] = '\0';
        const char *p = strstr(buf, "populated ");
        if (!p)
                return -EINVAL;
        *ret = p[10] == '1';
        return 0;
}

/* cgroup.events is a kernfs file that signals POLLPRI whenever it changes
 * (after it has been read once), so this sleeps until the last process
 * leaves instead of polling a file on a timer. The short poll cap is only
 * a safety net should a notification be missed. */
static int v2_wait_empty(const char *dir, int timeout_ms)
{
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/cgroup.events", dir) >= (int)sizeof path)
                return -ENAMETOOLONG;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno; /* removed: empty for good */
        uint64_t deadline = fl_now_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
        for (;;) {
                bool populated = true;
                int r = events_populated(fd, &populated);
                if (r == -ENOENT)
                        return 0;
                if (r < 0)
                        return r;
                if (!populated)
                        return 0;
                uint64_t now = fl_now_mono_ms();
                if (now >= deadline)
                        return -ETIMEDOUT;
                uint64_t left = deadline - now;
                struct pollfd pfd = {.fd = fd, .events = POLLPRI};
                if (poll(&pfd, 1, left < 20 ? (int)left : 20) < 0 && errno != EINTR)
                        return -errno;
        }
}

const struct agent_cg_ops agent_cg_v2_ops = {
    .gen = 2,
    .mem_soft_file = "memory.high",
    .cpu_max_get = v2_cpu_max_get,
    .cpu_max_set = v2_cpu_max_set,
    .cpu_weight_max = v2_cpu_weight_max,
    .cpu_usage_ns = v2_cpu_usage_ns,
    .mem_limit_set = v2_mem_limit_set,
    .mem_usage = v2_mem_usage,
    .io_get = v2_io_get,
    .io_set = v2_io_set,
    .freeze_get = v2_freeze_get,
    .freeze_set = v2_freeze_set,
    .kill_all = v2_kill_all,
    .wait_empty = v2_wait_empty,
};
