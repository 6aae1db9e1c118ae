/* io-throttle: cap a service's I/O on the disk backing path= — io.max on
 * v2, the blkio.throttle.*_device files on v1 — with any of rbps=, wbps=
 * (bytes/s) and riops=, wiops=. Limits are per whole disk, so a partition
 * is mapped to its disk. The previous four values for that disk are
 * journaled and written back on revert. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cg/cg.h"
#include "fault.h"
#include "fl_parse.h"
#include "fl_util.h"

enum { K_UNIT, K_CGROUP, K_PATH, K_RBPS, K_WBPS, K_RIOPS, K_WIOPS, K_N };
static const char *const iot_keys[] = {"unit", "cgroup", "path",  "rbps",
                                       "wbps", "riops",  "wiops", NULL};

struct iot_priv {
        struct agent_res_target t;
        char path[PATH_MAX];
        struct agent_cg_io_limit lim; /* 0: keep the current value */
};

static const char *iot_supported(void)
{
        return agent_cg_unsupported(AGENT_CG_BIT(AGENT_CG_IO));
}

static void iot_destroy(struct agent_fault *f)
{
        free(f->priv);
        f->priv = NULL;
}

static int iot_validate(struct agent_fault *f, char *err, size_t errlen)
{
        const char *v[K_N];
        iot_destroy(f);
        int r = agent_res_params(f, v, K_N, err, errlen);
        if (r < 0)
                return r;
        _cleanup_free_ struct iot_priv *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        if ((r = agent_res_target_parse(v[K_UNIT], v[K_CGROUP], &p->t, err, errlen)) < 0)
                return r;
        if (!v[K_PATH] || v[K_PATH][0] != '/' ||
            fl_strlcpy(p->path, v[K_PATH], sizeof p->path) < 0) {
                snprintf(err, errlen,
                         "path= is required: an absolute path on the disk to throttle");
                return -EINVAL;
        }
        bool any = false;
        for (int i = 0; i < AGENT_CG_IO_MAX; i++) {
                const char *s = v[K_RBPS + i];
                if (!s)
                        continue;
                int pr = i < AGENT_CG_RIOPS ? fl_parse_size(s, &p->lim.v[i])
                                            : fl_parse_u64(s, &p->lim.v[i]);
                if (pr < 0 || p->lim.v[i] == 0) {
                        snprintf(err, errlen, "%s=%s: expected %s above 0", iot_keys[K_RBPS + i], s,
                                 i < AGENT_CG_RIOPS ? "bytes per second (\"10M\")"
                                                    : "operations per second");
                        return -EINVAL;
                }
                any = true;
        }
        if (!any) {
                snprintf(err, errlen, "at least one of rbps=, wbps=, riops=, wiops= is required");
                return -EINVAL;
        }
        f->priv = FL_TAKE_PTR(p);
        return 0;
}

/* The whole disk behind path: a partition's limits belong to its disk. */
static int backing_disk(const char *path, unsigned *ret_maj, unsigned *ret_min, char *err,
                        size_t errlen)
{
        struct stat st;
        if (stat(path, &st) < 0) {
                int r = -errno;
                snprintf(err, errlen, "path=%s: %s", path, strerror(-r));
                return r;
        }
        dev_t dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
        unsigned maj = major(dev), min = minor(dev);
        char sys[128], buf[32];
        snprintf(sys, sizeof sys, "/sys/dev/block/%u:%u", maj, min);
        if (access(sys, F_OK) < 0) {
                snprintf(err, errlen, "path=%s is on %u:%u, which is not a block device", path, maj,
                         min);
                return -EINVAL;
        }
        snprintf(sys, sizeof sys, "/sys/dev/block/%u:%u/partition", maj, min);
        if (access(sys, F_OK) == 0) {
                snprintf(sys, sizeof sys, "/sys/dev/block/%u:%u/../dev", maj, min);
                _cleanup_fclose_ FILE *f = fopen(sys, "re");
                if (!f || !fgets(buf, sizeof buf, f) || sscanf(buf, "%u:%u", &maj, &min) != 2) {
                        snprintf(err, errlen, "path=%s: cannot find the disk of partition %s", path,
                                 sys);
                        return -EIO;
                }
        }
        *ret_maj = maj;
        *ret_min = min;
        return 0;
}

static int iot_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct iot_priv *p = f->priv;
        unsigned maj = 0, min = 0;
        int r = backing_disk(p->path, &maj, &min, err, errlen);
        if (r < 0)
                return r;
        if ((r = agent_res_target_prepare(&p->t, AGENT_CG_IO, f, err, errlen)) < 0)
                return r;
        const char *dir;
        const struct agent_cg_ops *ops;
        if ((r = agent_res_target_dir(f->undo, &dir, &ops, err, errlen)) < 0)
                return r;
        struct agent_cg_io_limit prev;
        if ((r = ops->io_get(dir, maj, min, &prev)) < 0) {
                snprintf(err, errlen, "reading the io limits of %s: %s", dir, strerror(-r));
                return r;
        }
        json_t *arr = json_array();
        for (int i = 0; arr && i < AGENT_CG_IO_MAX; i++)
                json_array_append_new(arr, json_integer((json_int_t)prev.v[i]));
        if (!arr || json_object_set_new(f->undo, "prev", arr) < 0 ||
            json_object_set_new(f->undo, "major", json_integer(maj)) < 0 ||
            json_object_set_new(f->undo, "minor", json_integer(min)) < 0)
                return -ENOMEM;
        size_t len = strlen(f->target);
        snprintf(f->target + len, sizeof f->target - len, " on %u:%u", maj, min);
        return 0;
}

static int undo_dev(const json_t *undo, unsigned *maj, unsigned *min,
                    struct agent_cg_io_limit *prev)
{
        json_t *arr = json_object_get(undo, "prev");
        if (!json_is_array(arr) || json_array_size(arr) != AGENT_CG_IO_MAX)
                return -ENOENT;
        for (int i = 0; i < AGENT_CG_IO_MAX; i++)
                prev->v[i] = (uint64_t)json_integer_value(json_array_get(arr, (size_t)i));
        *maj = (unsigned)json_integer_value(json_object_get(undo, "major"));
        *min = (unsigned)json_integer_value(json_object_get(undo, "minor"));
        return 0;
}

static void wanted(const struct iot_priv *p, const struct agent_cg_io_limit *prev,
                   struct agent_cg_io_limit *ret)
{
        for (int i = 0; i < AGENT_CG_IO_MAX; i++)
                ret->v[i] = p->lim.v[i] ? p->lim.v[i] : prev->v[i];
}

static int iot_apply(struct agent_fault *f, char *err, size_t errlen)
{
        const char *dir;
        const struct agent_cg_ops *ops;
        unsigned maj, min;
        struct agent_cg_io_limit prev, want;
        int r = agent_res_target_dir(f->undo, &dir, &ops, err, errlen);
        if (r < 0 || (r = undo_dev(f->undo, &maj, &min, &prev)) < 0)
                return r;
        wanted(f->priv, &prev, &want);
        if ((r = ops->io_set(dir, maj, min, &want)) < 0) {
                char lim[128];
                agent_cg_io_format(&want, lim, sizeof lim);
                snprintf(err, errlen, "setting %u:%u %s on %s: %s", maj, min, lim, dir,
                         strerror(-r));
        }
        return r;
}

static int iot_verify(struct agent_fault *f, char *err, size_t errlen)
{
        const char *dir;
        const struct agent_cg_ops *ops;
        unsigned maj, min;
        struct agent_cg_io_limit prev, want, got;
        int r = agent_res_target_dir(f->undo, &dir, &ops, err, errlen);
        if (r < 0 || (r = undo_dev(f->undo, &maj, &min, &prev)) < 0)
                return r;
        wanted(f->priv, &prev, &want);
        if ((r = ops->io_get(dir, maj, min, &got)) < 0)
                return r;
        if (memcmp(&got, &want, sizeof got) != 0) {
                char a[128], b[128];
                agent_cg_io_format(&got, a, sizeof a);
                agent_cg_io_format(&want, b, sizeof b);
                snprintf(err, errlen, "io limits of %s on %u:%u read back as %s, wanted %s", dir,
                         maj, min, a, b);
                return -EIO;
        }
        return 0;
}

static int iot_revert(struct agent_fault *f, char *err, size_t errlen)
{
        const char *dir;
        const struct agent_cg_ops *ops;
        unsigned maj, min;
        struct agent_cg_io_limit prev;
        int r = f->undo ? agent_res_target_dir(f->undo, &dir, &ops, err, errlen) : -ENOENT;
        if (r == -ENOENT || undo_dev(f->undo, &maj, &min, &prev) < 0)
                return 0;
        if (r < 0)
                return r;
        r = ops->io_set(dir, maj, min, &prev);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                snprintf(err, errlen, "restoring io limits of %s on %u:%u: %s", dir, maj, min,
                         strerror(-r));
        return r;
}

const struct fault_ops agent_fault_io_throttle = {
    .kind = "io-throttle",
    .help = "cap a unit= or cgroup= on the disk of path= to rbps=/wbps=/riops=/wiops=; exact "
            "restore",
    .keys = iot_keys,
    .supported = iot_supported,
    .validate = iot_validate,
    .prepare = iot_prepare,
    .apply = iot_apply,
    .verify = iot_verify,
    .revert = iot_revert,
    .destroy = iot_destroy,
};
