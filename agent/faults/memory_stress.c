/* memory-stress: take N bytes (or a percentage of RAM) away from the host.
 * One worker maps, touches and (where allowed) mlocks the memory and holds
 * it; it runs in a memory cgroup of its own whose hard limit is the request
 * plus a small allowance, so an overshoot ends the worker, never anything
 * else, and prepare() refuses requests that would leave the host short. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cg/cg.h"
#include "fault.h"
#include "fl_parse.h"
#include "fl_util.h"

#define MEM_ALLOWANCE (32ull << 20)  /* worker's own pages beyond the request */
#define MEM_KEEP_MIN  (256ull << 20) /* never leave the host less available than this */
#define MEM_VERIFY_MS 2000

enum { K_BYTES, K_PERCENT, K_RAMP, K_LOCK, K_N };
static const char *const mem_keys[] = {"bytes", "percent", "ramp", "lock", NULL};

struct mem_priv {
        uint64_t bytes;
        uint32_t percent_bp;
        uint64_t ramp_ms;
        bool lock;
};

static const char *mem_supported(void)
{
        return agent_cg_unsupported(AGENT_CG_BIT(AGENT_CG_MEMORY));
}

static void mem_destroy(struct agent_fault *f)
{
        free(f->priv);
        f->priv = NULL;
}

static int mem_validate(struct agent_fault *f, char *err, size_t errlen)
{
        const char *v[K_N];
        mem_destroy(f);
        int r = agent_res_params(f, v, K_N, err, errlen);
        if (r < 0)
                return r;
        _cleanup_free_ struct mem_priv *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        if (!v[K_BYTES] == !v[K_PERCENT]) {
                snprintf(err, errlen, "exactly one of bytes= or percent= (of RAM) is required");
                return -EINVAL;
        }
        if (v[K_BYTES] && (fl_parse_size(v[K_BYTES], &p->bytes) < 0 || p->bytes < 4096)) {
                snprintf(err, errlen, "bytes=%s: expected a size of at least 4K (\"512M\", \"2G\")",
                         v[K_BYTES]);
                return -EINVAL;
        }
        if (v[K_PERCENT] &&
            (fl_parse_percent(v[K_PERCENT], &p->percent_bp) < 0 || p->percent_bp == 0)) {
                snprintf(err, errlen, "percent=%s: expected a percentage of RAM in (0,100]",
                         v[K_PERCENT]);
                return -EINVAL;
        }
        if (v[K_RAMP] && fl_parse_duration_ms(v[K_RAMP], &p->ramp_ms) < 0) {
                snprintf(err, errlen, "ramp=%s: expected a duration like 30s", v[K_RAMP]);
                return -EINVAL;
        }
        p->lock = true;
        if (v[K_LOCK] && fl_parse_bool(v[K_LOCK], &p->lock) < 0) {
                snprintf(err, errlen, "lock=%s: expected yes or no", v[K_LOCK]);
                return -EINVAL;
        }
        f->priv = FL_TAKE_PTR(p);
        return 0;
}

static int mem_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct mem_priv *p = f->priv;
        uint64_t total, avail;
        int r = agent_res_meminfo(&total, &avail);
        if (r < 0) {
                snprintf(err, errlen, "reading /proc/meminfo: %s", strerror(-r));
                return r;
        }
        uint64_t bytes = p->bytes;
        if (p->percent_bp)
                bytes = (uint64_t)((unsigned __int128)total * p->percent_bp / 10000);
        bytes = (bytes + 4095) & ~4095ull;
        uint64_t keep = total / 20 > MEM_KEEP_MIN ? total / 20 : MEM_KEEP_MIN;
        if (bytes + MEM_ALLOWANCE + keep > avail) {
                snprintf(err, errlen,
                         "refused: holding %llu bytes would leave less than %llu of the %llu "
                         "bytes available (the host OOM killer could pick other processes)",
                         (unsigned long long)bytes, (unsigned long long)keep,
                         (unsigned long long)avail);
                return -EPERM;
        }
        struct agent_cg_group g;
        r = agent_cg_group_plan(agent_cg_host(), AGENT_CG_BIT(AGENT_CG_MEMORY),
                                AGENT_CG_BIT(AGENT_CG_MEMORY), f->id, &g, err, errlen);
        if (r < 0)
                return r;
        if (!f->undo)
                f->undo = json_object();
        if (!f->undo || agent_cg_group_record(&g, f->undo) < 0 ||
            json_object_set_new(f->undo, "bytes", json_integer((json_int_t)bytes)) < 0) {
                snprintf(err, errlen, "out of memory recording the worker group");
                return -ENOMEM;
        }
        snprintf(f->target, sizeof f->target, "%llu bytes%s held in /" AGENT_CG_PARENT "/%s",
                 (unsigned long long)bytes, p->lock ? " (mlocked)" : "", f->id);
        snprintf(f->backend, sizeof f->backend, "cgroup-v%d", g.gen[0]);
        return 0;
}

static int mem_apply(struct agent_fault *f, char *err, size_t errlen)
{
        struct mem_priv *p = f->priv;
        struct agent_cg_group g;
        int r = agent_cg_group_plan(agent_cg_host(), AGENT_CG_BIT(AGENT_CG_MEMORY),
                                    AGENT_CG_BIT(AGENT_CG_MEMORY), f->id, &g, err, errlen);
        if (r < 0 || (r = agent_cg_group_create(&g, err, errlen)) < 0)
                return r;
        uint64_t bytes = (uint64_t)json_integer_value(json_object_get(f->undo, "bytes"));
        const struct agent_cg_ops *ops = agent_cg_ops_gen(g.gen[0]);
        if ((r = ops->mem_limit_set(g.dir[0], bytes + MEM_ALLOWANCE)) < 0) {
                snprintf(err, errlen, "setting the memory limit of %s: %s", g.dir[0], strerror(-r));
                return r;
        }
        /* Touching runs at some GB/s; give it time, bounded. */
        uint64_t t = 5000 + bytes / (100u << 10);
        struct agent_worker_spec w = {
            .kind = AGENT_WORKER_MEM,
            .bytes = bytes,
            .ramp_ms = p->ramp_ms,
            .lock = p->lock,
            .ready_timeout_ms = (int)(t > 120000 ? 120000 : t),
        };
        pid_t pid;
        if ((r = agent_worker_spawn(&g, &w, &pid, err, errlen)) < 0)
                return r;
        return agent_worker_record(f->undo, pid);
}

static int mem_verify(struct agent_fault *f, char *err, size_t errlen)
{
        struct mem_priv *p = f->priv;
        struct agent_cg_group g;
        int r = agent_cg_group_plan(agent_cg_host(), AGENT_CG_BIT(AGENT_CG_MEMORY),
                                    AGENT_CG_BIT(AGENT_CG_MEMORY), f->id, &g, err, errlen);
        if (r < 0)
                return r;
        if (agent_worker_alive(f->undo, g.dir[0]) != 1) {
                snprintf(err, errlen, "memory worker not running in %s", g.dir[0]);
                return -ESRCH;
        }
        if (p->ramp_ms)
                return 0;
        uint64_t bytes = (uint64_t)json_integer_value(json_object_get(f->undo, "bytes")), used = 0;
        const struct agent_cg_ops *ops = agent_cg_ops_gen(g.gen[0]);
        if ((r = ops->mem_usage(g.dir[0], &used)) < 0) {
                snprintf(err, errlen, "reading memory usage of %s: %s", g.dir[0], strerror(-r));
                return r;
        }
        if (used < bytes - bytes / 50) {
                snprintf(err, errlen, "worker group holds %llu of %llu bytes",
                         (unsigned long long)used, (unsigned long long)bytes);
                return -EIO;
        }
        return 0;
}

static int mem_revert(struct agent_fault *f, char *err, size_t errlen)
{
        return f->undo ? agent_cg_undo_destroy(f->undo, err, errlen) : 0;
}

const struct fault_ops agent_fault_memory_stress = {
    .kind = "memory-stress",
    .help = "hold bytes= (or percent= of RAM) of touched, mlocked memory in a limited cgroup; "
            "optional ramp=",
    .keys = mem_keys,
    .supported = mem_supported,
    .validate = mem_validate,
    .prepare = mem_prepare,
    .apply = mem_apply,
    .verify = mem_verify,
    .revert = mem_revert,
    .destroy = mem_destroy,
};
