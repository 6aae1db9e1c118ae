/* cpu-throttle: squeeze a service's cgroup (unit= or cgroup=) to percent=
 * of one CPU through its CFS bandwidth (cpu.max on v2, cfs_quota_us on
 * v1). prepare() journals the exact previous quota and period; revert
 * writes them back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg/cg.h"
#include "fault.h"
#include "fl_parse.h"
#include "fl_util.h"

enum { K_UNIT, K_CGROUP, K_PERCENT, K_N };
static const char *const thr_keys[] = {"unit", "cgroup", "percent", NULL};

struct thr_priv {
        struct agent_res_target t;
        uint32_t percent_bp;
};

static const char *thr_supported(void)
{
        return agent_cg_unsupported(AGENT_CG_BIT(AGENT_CG_CPU));
}

static void thr_destroy(struct agent_fault *f)
{
        free(f->priv);
        f->priv = NULL;
}

static int thr_validate(struct agent_fault *f, char *err, size_t errlen)
{
        const char *v[K_N];
        thr_destroy(f);
        int r = agent_res_params(f, v, K_N, err, errlen);
        if (r < 0)
                return r;
        _cleanup_free_ struct thr_priv *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        if ((r = agent_res_target_parse(v[K_UNIT], v[K_CGROUP], &p->t, err, errlen)) < 0)
                return r;
        if (!v[K_PERCENT] || fl_parse_percent(v[K_PERCENT], &p->percent_bp) < 0 ||
            p->percent_bp == 0) {
                snprintf(err, errlen, "percent= is required: a share of one CPU in (0,100]");
                return -EINVAL;
        }
        f->priv = FL_TAKE_PTR(p);
        return 0;
}

static int thr_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct thr_priv *p = f->priv;
        int r = agent_res_target_prepare(&p->t, AGENT_CG_CPU, f, err, errlen);
        if (r < 0)
                return r;
        const char *dir;
        const struct agent_cg_ops *ops;
        if ((r = agent_res_target_dir(f->undo, &dir, &ops, err, errlen)) < 0)
                return r;
        struct agent_cg_cpu_max prev;
        if ((r = ops->cpu_max_get(dir, &prev)) < 0) {
                snprintf(err, errlen, "reading the CPU quota of %s: %s", dir, strerror(-r));
                return r;
        }
        if (json_object_set_new(f->undo, "prev_quota_us", json_integer(prev.quota_us)) < 0 ||
            json_object_set_new(f->undo, "prev_period_us",
                                json_integer((json_int_t)prev.period_us)) < 0)
                return -ENOMEM;
        return 0;
}

static int new_max(const struct agent_fault *f, struct agent_cg_cpu_max *ret)
{
        const struct thr_priv *p = f->priv;
        ret->period_us = (uint64_t)json_integer_value(json_object_get(f->undo, "prev_period_us"));
        if (!ret->period_us)
                return -EINVAL;
        uint64_t q = ret->period_us * p->percent_bp / 10000;
        ret->quota_us = (int64_t)(q < 1000 ? 1000 : q);
        return 0;
}

static int thr_apply(struct agent_fault *f, char *err, size_t errlen)
{
        const char *dir;
        const struct agent_cg_ops *ops;
        struct agent_cg_cpu_max max;
        int r = agent_res_target_dir(f->undo, &dir, &ops, err, errlen);
        if (r < 0 || (r = new_max(f, &max)) < 0)
                return r;
        if ((r = ops->cpu_max_set(dir, &max)) < 0) {
                snprintf(err, errlen, "setting the CPU quota of %s to %lld/%llu us: %s", dir,
                         (long long)max.quota_us, (unsigned long long)max.period_us, strerror(-r));
                return r;
        }
        return 0;
}

static int thr_verify(struct agent_fault *f, char *err, size_t errlen)
{
        const char *dir;
        const struct agent_cg_ops *ops;
        struct agent_cg_cpu_max want, got;
        int r = agent_res_target_dir(f->undo, &dir, &ops, err, errlen);
        if (r < 0 || (r = new_max(f, &want)) < 0)
                return r;
        if ((r = ops->cpu_max_get(dir, &got)) < 0 || got.quota_us != want.quota_us ||
            got.period_us != want.period_us) {
                snprintf(err, errlen, "CPU quota of %s reads back as %lld/%llu us", dir,
                         (long long)got.quota_us, (unsigned long long)got.period_us);
                return r < 0 ? r : -EIO;
        }
        return 0;
}

static int thr_revert(struct agent_fault *f, char *err, size_t errlen)
{
        const char *dir;
        const struct agent_cg_ops *ops;
        int r = f->undo ? agent_res_target_dir(f->undo, &dir, &ops, err, errlen) : -ENOENT;
        json_t *q = f->undo ? json_object_get(f->undo, "prev_quota_us") : NULL;
        if (r == -ENOENT || !q)
                return 0; /* prepare() never got as far as reading the old value */
        if (r < 0)
                return r;
        struct agent_cg_cpu_max prev = {
            .quota_us = json_integer_value(q),
            .period_us = (uint64_t)json_integer_value(json_object_get(f->undo, "prev_period_us")),
        };
        r = ops->cpu_max_set(dir, &prev);
        if (r == -ENOENT)
                return 0; /* the cgroup is gone (service stopped): nothing to restore */
        if (r < 0)
                snprintf(err, errlen, "restoring the CPU quota of %s: %s", dir, strerror(-r));
        return r;
}

const struct fault_ops agent_fault_cpu_throttle = {
    .kind = "cpu-throttle",
    .help = "squeeze a unit= or cgroup= to percent= of one CPU (CFS quota); exact restore",
    .keys = thr_keys,
    .supported = thr_supported,
    .validate = thr_validate,
    .prepare = thr_prepare,
    .apply = thr_apply,
    .verify = thr_verify,
    .revert = thr_revert,
    .destroy = thr_destroy,
};
