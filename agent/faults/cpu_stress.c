/* cpu-stress: load the host's CPUs to an exact level. Busy workers run in
 * a cgroup the agent creates (<mount>/faultline/<id>) whose CFS bandwidth
 * (cpu.max on v2, cfs_quota_us on v1) lets them use exactly the requested
 * share: the kernel holds the level, not a duty cycle guessed in user
 * space. The group also gets the highest weight, so a competing load
 * cannot push it below its quota. */
#include <limits.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg/cg.h"
#include "fault.h"
#include "fl_parse.h"
#include "fl_util.h"

#define CPU_PERIOD_US   100000u /* 1 s windows hold exactly ten periods */
#define CPU_MIN_QUOTA   1000u   /* the kernel's floor */
#define CPU_MAX_WORKERS 1024u

enum { K_PERCENT, K_CORES, K_LOAD, K_N };
static const char *const cpu_keys[] = {"percent", "cores", "load", NULL};

struct cpu_priv {
        uint32_t percent_bp; /* of all CPUs; 0 when cores= is used */
        uint64_t cores;
        uint32_t load_bp; /* per core */
};

static const char *cpu_supported(void)
{
        return agent_cg_unsupported(AGENT_CG_BIT(AGENT_CG_CPU));
}

static void cpu_destroy(struct agent_fault *f)
{
        free(f->priv);
        f->priv = NULL;
}

static int cpu_validate(struct agent_fault *f, char *err, size_t errlen)
{
        const char *v[K_N];
        cpu_destroy(f);
        int r = agent_res_params(f, v, K_N, err, errlen);
        if (r < 0)
                return r;
        _cleanup_free_ struct cpu_priv *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        if (!v[K_PERCENT] == !v[K_CORES]) {
                snprintf(err, errlen,
                         "exactly one of percent= (of all CPUs) or cores= is required");
                return -EINVAL;
        }
        if (v[K_PERCENT] && v[K_LOAD]) {
                snprintf(err, errlen, "load= goes with cores=, not with percent=");
                return -EINVAL;
        }
        if (v[K_PERCENT] &&
            (fl_parse_percent(v[K_PERCENT], &p->percent_bp) < 0 || p->percent_bp == 0)) {
                snprintf(err, errlen, "percent=%s: expected a percentage in (0,100]", v[K_PERCENT]);
                return -EINVAL;
        }
        if (v[K_CORES] && (fl_parse_u64(v[K_CORES], &p->cores) < 0 || p->cores == 0 ||
                           p->cores > CPU_MAX_WORKERS)) {
                snprintf(err, errlen, "cores=%s: expected a whole number in 1..%u", v[K_CORES],
                         CPU_MAX_WORKERS);
                return -EINVAL;
        }
        p->load_bp = 10000;
        if (v[K_LOAD] && (fl_parse_percent(v[K_LOAD], &p->load_bp) < 0 || p->load_bp == 0)) {
                snprintf(err, errlen, "load=%s: expected a per-core percentage in (0,100]",
                         v[K_LOAD]);
                return -EINVAL;
        }
        f->priv = FL_TAKE_PTR(p);
        return 0;
}

static int cpu_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct cpu_priv *p = f->priv;
        const struct agent_cg_host *h = agent_cg_host();
        unsigned ncpu = agent_res_ncpus();
        uint64_t workers, quota;

        if (p->cores) {
                if (p->cores > ncpu) {
                        snprintf(err, errlen, "cores=%llu but this agent may use only %u CPU(s)",
                                 (unsigned long long)p->cores, ncpu);
                        return -EINVAL;
                }
                workers = p->cores;
                quota = workers * p->load_bp * CPU_PERIOD_US / 10000;
        } else {
                workers = ncpu;
                quota = (uint64_t)ncpu * p->percent_bp * CPU_PERIOD_US / 10000;
        }
        if (quota < CPU_MIN_QUOTA)
                quota = CPU_MIN_QUOTA;

        struct agent_cg_group g;
        int r = agent_cg_group_plan(h, AGENT_CG_BIT(AGENT_CG_CPU) | AGENT_CG_BIT(AGENT_CG_CPUACCT),
                                    AGENT_CG_BIT(AGENT_CG_CPU), f->id, &g, err, errlen);
        if (r < 0)
                return r;
        if (!f->undo)
                f->undo = json_object();
        if (!f->undo || agent_cg_group_record(&g, f->undo) < 0 ||
            json_object_set_new(f->undo, "quota_us", json_integer((json_int_t)quota)) < 0 ||
            json_object_set_new(f->undo, "period_us", json_integer(CPU_PERIOD_US)) < 0 ||
            json_object_set_new(f->undo, "nworkers", json_integer((json_int_t)workers)) < 0) {
                snprintf(err, errlen, "out of memory recording the worker group");
                return -ENOMEM;
        }
        unsigned pct = (unsigned)(quota * 10000 / CPU_PERIOD_US);
        snprintf(f->target, sizeof f->target,
                 "%llu worker(s) holding %u.%02u%% of one CPU (%u.%02u%% of %u) in "
                 "/" AGENT_CG_PARENT "/%s",
                 (unsigned long long)workers, pct / 100, pct % 100, pct / ncpu / 100,
                 pct / ncpu % 100, ncpu, f->id);
        snprintf(f->backend, sizeof f->backend, "cgroup-v%d-quota", g.gen[g.of[AGENT_CG_CPU]]);
        return 0;
}

/* The plan again, from the journaled id: apply() and verify() need the
 * directories, and after prepare() only f->undo and f->id are certain. */
static int replan(struct agent_fault *f, struct agent_cg_group *g, char *err, size_t errlen)
{
        return agent_cg_group_plan(agent_cg_host(),
                                   AGENT_CG_BIT(AGENT_CG_CPU) | AGENT_CG_BIT(AGENT_CG_CPUACCT),
                                   AGENT_CG_BIT(AGENT_CG_CPU), f->id, g, err, errlen);
}

static int cpu_apply(struct agent_fault *f, char *err, size_t errlen)
{
        struct agent_cg_group g;
        int r = replan(f, &g, err, errlen);
        if (r < 0)
                return r;
        if ((r = agent_cg_group_create(&g, err, errlen)) < 0)
                return r;
        const char *dir = agent_cg_group_dir(&g, AGENT_CG_CPU);
        const struct agent_cg_ops *ops = agent_cg_ops_gen(g.gen[g.of[AGENT_CG_CPU]]);
        struct agent_cg_cpu_max max = {
            .quota_us = json_integer_value(json_object_get(f->undo, "quota_us")),
            .period_us = (uint64_t)json_integer_value(json_object_get(f->undo, "period_us")),
        };
        if ((r = ops->cpu_max_set(dir, &max)) < 0) {
                snprintf(err, errlen, "setting the CPU quota of %s: %s", dir, strerror(-r));
                return r;
        }
        (void)ops->cpu_weight_max(dir);
        /* Weight only counts between siblings: with the default weight on
         * faultline's own parent group, the whole group competes like one
         * ordinary process and a high load= is starved below its quota.
         * The parent gets the maximum too. */
        char parent[PATH_MAX];
        snprintf(parent, sizeof(parent), "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
                *slash = '\0';
                (void)ops->cpu_weight_max(parent);
        }

        json_int_t n = json_integer_value(json_object_get(f->undo, "nworkers"));
        struct agent_worker_spec w = {.kind = AGENT_WORKER_CPU, .ready_timeout_ms = 5000};
        for (json_int_t i = 0; i < n; i++) {
                pid_t pid;
                if ((r = agent_worker_spawn(&g, &w, &pid, err, errlen)) < 0)
                        return r;
                if (agent_worker_record(f->undo, pid) < 0) {
                        snprintf(err, errlen, "out of memory recording worker %d", (int)pid);
                        return -ENOMEM;
                }
        }
        return 0;
}

static int cpu_verify(struct agent_fault *f, char *err, size_t errlen)
{
        struct agent_cg_group g;
        int r = replan(f, &g, err, errlen);
        if (r < 0)
                return r;
        const char *dir = agent_cg_group_dir(&g, AGENT_CG_CPU);
        json_int_t n = json_integer_value(json_object_get(f->undo, "nworkers"));
        int alive = agent_worker_alive(f->undo, dir);
        if (alive != n) {
                snprintf(err, errlen, "%d of %lld workers running in %s", alive, (long long)n, dir);
                return -ESRCH;
        }
        struct agent_cg_cpu_max max;
        const struct agent_cg_ops *ops = agent_cg_ops_gen(g.gen[g.of[AGENT_CG_CPU]]);
        if ((r = ops->cpu_max_get(dir, &max)) < 0 ||
            max.quota_us != json_integer_value(json_object_get(f->undo, "quota_us"))) {
                snprintf(err, errlen, "quota of %s reads back as %lld us", dir,
                         (long long)max.quota_us);
                return r < 0 ? r : -EIO;
        }
        return 0;
}

static int cpu_revert(struct agent_fault *f, char *err, size_t errlen)
{
        return f->undo ? agent_cg_undo_destroy(f->undo, err, errlen) : 0;
}

const struct fault_ops agent_fault_cpu_stress = {
    .kind = "cpu-stress",
    .help = "load CPUs to percent= of all CPUs, or cores= at load= each, held by a cgroup CPU "
            "quota",
    .keys = cpu_keys,
    .supported = cpu_supported,
    .validate = cpu_validate,
    .prepare = cpu_prepare,
    .apply = cpu_apply,
    .verify = cpu_verify,
    .revert = cpu_revert,
    .destroy = cpu_destroy,
};
