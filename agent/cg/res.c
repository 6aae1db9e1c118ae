/* Parameter and target helpers shared by the cgroup-based faults. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg.h"
#include "fault.h"
#include "fl_util.h"

int agent_res_params(const struct agent_fault *f, const char **vals, size_t nvals, char *err,
                     size_t errlen)
{
        for (size_t k = 0; k < nvals; k++)
                vals[k] = NULL;
        for (size_t i = 0; i < f->n_params; i++) {
                const char *key = f->params[i].key;
                size_t k;
                for (k = 0; k < nvals && f->ops->keys[k]; k++)
                        if (strcmp(f->ops->keys[k], key) == 0)
                                break;
                if (k == nvals || !f->ops->keys[k]) {
                        snprintf(err, errlen, "unknown param %s= for %s", key, f->ops->kind);
                        return -EINVAL;
                }
                if (vals[k]) {
                        snprintf(err, errlen, "param %s= given twice", key);
                        return -EINVAL;
                }
                vals[k] = f->params[i].value;
        }
        return 0;
}

int agent_res_target_parse(const char *unit, const char *cgroup, struct agent_res_target *ret,
                           char *err, size_t errlen)
{
        memset(ret, 0, sizeof *ret);
        if (!unit == !cgroup) {
                snprintf(err, errlen, "exactly one of unit= or cgroup= is required");
                return -EINVAL;
        }
        if (unit)
                return agent_cg_parse_unit(unit, ret->unit, sizeof ret->unit, err, errlen);
        return agent_cg_parse_rel(cgroup, ret->rel, sizeof ret->rel, err, errlen);
}

int agent_res_target_prepare(const struct agent_res_target *t, enum agent_cg_ctrl c,
                             struct agent_fault *f, char *err, size_t errlen)
{
        const struct agent_cg_host *h = agent_cg_host();
        char dir[PATH_MAX], rel[PATH_MAX];
        int r = agent_cg_resolve(h, t->unit[0] ? t->unit : NULL, t->rel[0] ? t->rel : NULL, c, dir,
                                 sizeof dir, rel, sizeof rel, err, errlen);
        if (r < 0)
                return r;
        if ((r = agent_cg_check_target(h, c, dir, err, errlen)) < 0)
                return r;
        if (!f->undo)
                f->undo = json_object();
        if (!f->undo || json_object_set_new(f->undo, "dir", json_string(dir)) < 0 ||
            json_object_set_new(f->undo, "gen", json_integer(agent_cg_gen(h, c))) < 0) {
                snprintf(err, errlen, "out of memory recording the target");
                return -ENOMEM;
        }
        if (t->unit[0])
                snprintf(f->target, sizeof f->target, "unit=%.100s (%.140s)", t->unit, rel);
        else
                snprintf(f->target, sizeof f->target, "cgroup=%.200s", rel);
        snprintf(f->backend, sizeof f->backend, "cgroup-v%d", agent_cg_gen(h, c));
        return 0;
}

int agent_res_target_dir(const json_t *undo, const char **ret_dir,
                         const struct agent_cg_ops **ret_ops, char *err, size_t errlen)
{
        const char *dir = json_string_value(json_object_get(undo, "dir"));
        int gen = (int)json_integer_value(json_object_get(undo, "gen"));
        if (!dir)
                return -ENOENT;
        const struct agent_cg_host *h = agent_cg_host();
        bool ok = false;
        for (int c = 0; c < AGENT_CG_CTRL_MAX && !ok; c++) {
                const char *m = gen == 2 ? h->v2 : h->v1[c];
                size_t n = strlen(m);
                ok = n && strncmp(dir, m, n) == 0 && dir[n] == '/' && !strstr(dir, "/../") &&
                     !strstr(dir, "/./");
        }
        const struct agent_cg_ops *ops = agent_cg_ops_gen(gen);
        if (!ok || !ops) {
                snprintf(err, errlen, "undo entry: %s is not a cgroup v%d directory here", dir,
                         gen);
                return -EINVAL;
        }
        *ret_dir = dir;
        *ret_ops = ops;
        return 0;
}

unsigned agent_res_ncpus(void)
{
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
                return (unsigned)CPU_COUNT(&set);
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? (unsigned)n : 1;
}

int agent_res_meminfo(uint64_t *ret_total, uint64_t *ret_avail)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
        if (!f)
                return -errno;
        char line[256];
        unsigned long long total = 0, avail = 0, v;
        while (fgets(line, sizeof line, f)) {
                if (sscanf(line, "MemTotal: %llu kB", &v) == 1)
                        total = v * 1024;
                else if (sscanf(line, "MemAvailable: %llu kB", &v) == 1)
                        avail = v * 1024;
        }
        if (!total)
                return -EIO;
        *ret_total = total;
        *ret_avail = avail ? avail : total;
        return 0;
}
