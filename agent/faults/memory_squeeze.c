/* memory-squeeze: lower a service's memory.high (v2) or memory soft limit
 * (v1) to bytes=, so the kernel reclaims from it (v2: throttles it)
 * while the fault lasts. The previous value is journaled verbatim ("max",
 * a number) and written back on revert. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg/cg.h"
#include "fault.h"
#include "fl_parse.h"
#include "fl_util.h"

enum { K_UNIT, K_CGROUP, K_BYTES, K_N };
static const char *const sq_keys[] = {"unit", "cgroup", "bytes", NULL};

struct sq_priv {
        struct agent_res_target t;
        uint64_t bytes;
};

static const char *sq_supported(void)
{
        return agent_cg_unsupported(AGENT_CG_BIT(AGENT_CG_MEMORY));
}

static void sq_destroy(struct agent_fault *f)
{
        free(f->priv);
        f->priv = NULL;
}

static int sq_validate(struct agent_fault *f, char *err, size_t errlen)
{
        const char *v[K_N];
        sq_destroy(f);
        int r = agent_res_params(f, v, K_N, err, errlen);
        if (r < 0)
                return r;
        _cleanup_free_ struct sq_priv *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        if ((r = agent_res_target_parse(v[K_UNIT], v[K_CGROUP], &p->t, err, errlen)) < 0)
                return r;
        if (!v[K_BYTES] || fl_parse_size(v[K_BYTES], &p->bytes) < 0 || p->bytes < 4096) {
                snprintf(err, errlen, "bytes= is required: a size of at least 4K");
                return -EINVAL;
        }
        f->priv = FL_TAKE_PTR(p);
        return 0;
}

static int sq_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct sq_priv *p = f->priv;
        int r = agent_res_target_prepare(&p->t, AGENT_CG_MEMORY, f, err, errlen);
        if (r < 0)
                return r;
        const char *dir;
        const struct agent_cg_ops *ops;
        if ((r = agent_res_target_dir(f->undo, &dir, &ops, err, errlen)) < 0)
                return r;
        char prev[64];
        if ((r = agent_cg_read(dir, ops->mem_soft_file, prev, sizeof prev)) < 0) {
                snprintf(err, errlen, "reading %s/%s: %s", dir, ops->mem_soft_file, strerror(-r));
                return r;
        }
        if (json_object_set_new(f->undo, "prev", json_string(prev)) < 0)
                return -ENOMEM;
        snprintf(f->backend, sizeof f->backend, "%s", ops->mem_soft_file);
        return 0;
}

static int sq_apply(struct agent_fault *f, char *err, size_t errlen)
{
        const struct sq_priv *p = f->priv;
        const char *dir;
        const struct agent_cg_ops *ops;
        int r = agent_res_target_dir(f->undo, &dir, &ops, err, errlen);
        if (r < 0)
                return r;
        char buf[32];
        snprintf(buf, sizeof buf, "%" PRIu64, p->bytes);
        if ((r = agent_cg_write(dir, ops->mem_soft_file, buf)) < 0)
                snprintf(err, errlen, "writing %s to %s/%s: %s", buf, dir, ops->mem_soft_file,
                         strerror(-r));
        return r;
}

static int sq_verify(struct agent_fault *f, char *err, size_t errlen)
{
        const struct sq_priv *p = f->priv;
        const char *dir;
        const struct agent_cg_ops *ops;
        int r = agent_res_target_dir(f->undo, &dir, &ops, err, errlen);
        if (r < 0)
                return r;
        uint64_t got = 0;
        /* The kernel keeps whole pages. */
        if ((r = agent_cg_read_u64(dir, ops->mem_soft_file, &got)) < 0 || got > p->bytes ||
            got + 65536 < p->bytes) {
                snprintf(err, errlen, "%s/%s reads back as %llu, wanted %llu", dir,
                         ops->mem_soft_file, (unsigned long long)got, (unsigned long long)p->bytes);
                return r < 0 ? r : -EIO;
        }
        return 0;
}

static int sq_revert(struct agent_fault *f, char *err, size_t errlen)
{
        const char *dir;
        const struct agent_cg_ops *ops;
        int r = f->undo ? agent_res_target_dir(f->undo, &dir, &ops, err, errlen) : -ENOENT;
        const char *prev = f->undo ? json_string_value(json_object_get(f->undo, "prev")) : NULL;
        if (r == -ENOENT || !prev)
                return 0;
        if (r < 0)
                return r;
        if (strspn(prev, "0123456789") != strlen(prev) && strcmp(prev, "max") != 0) {
                snprintf(err, errlen, "undo entry: previous value \"%s\" is not a limit", prev);
                return -EINVAL;
        }
        r = agent_cg_write(dir, ops->mem_soft_file, prev);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                snprintf(err, errlen, "restoring %s/%s to %s: %s", dir, ops->mem_soft_file, prev,
                         strerror(-r));
        return r;
}

const struct fault_ops agent_fault_memory_squeeze = {
    .kind = "memory-squeeze",
    .help = "lower a unit= or cgroup= memory.high (v2) / soft limit (v1) to bytes=; exact "
            "restore",
    .keys = sq_keys,
    .supported = sq_supported,
    .validate = sq_validate,
    .prepare = sq_prepare,
    .apply = sq_apply,
    .verify = sq_verify,
    .revert = sq_revert,
    .destroy = sq_destroy,
};
