/* io-stress: workers=N processes, each looping over its own file of
 * bytes= in path=: a pass of direct (O_DIRECT) writes, then a pass of
 * direct reads, until reverted. The files carry the fault id and are
 * recorded before they exist; the workers run in an agent-owned cgroup
 * (with the io/blkio controller where there is one, for accounting). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "cg/cg.h"
#include "fault.h"
#include "fl_parse.h"
#include "fl_util.h"

#define IO_PREFIX      ".faultline-io-"
#define IO_DEFAULT     (64ull << 20)
#define IO_MAX_WORKERS 64u
#define IO_MASK                                                                                    \
        (AGENT_CG_BIT(AGENT_CG_IO) | AGENT_CG_BIT(AGENT_CG_CPU) | AGENT_CG_BIT(AGENT_CG_MEMORY) |  \
         AGENT_CG_BIT(AGENT_CG_PIDS))

enum { K_PATH, K_BYTES, K_WORKERS, K_N };
static const char *const io_keys[] = {"path", "bytes", "workers", NULL};

struct io_priv {
        char dir[PATH_MAX];
        uint64_t bytes;
        uint64_t workers;
};

static const char *io_supported(void)
{
        /* Any hierarchy will do to hold (and later find) the workers. */
        const struct agent_cg_host *h = agent_cg_host();
        for (int c = 0; c < AGENT_CG_CTRL_MAX; c++)
                if ((IO_MASK & AGENT_CG_BIT(c)) && agent_cg_gen(h, (enum agent_cg_ctrl)c))
                        return NULL;
        return agent_cg_unsupported(AGENT_CG_BIT(AGENT_CG_IO));
}

static void io_destroy(struct agent_fault *f)
{
        free(f->priv);
        f->priv = NULL;
}

static int io_validate(struct agent_fault *f, char *err, size_t errlen)
{
        const char *v[K_N];
        io_destroy(f);
        int r = agent_res_params(f, v, K_N, err, errlen);
        if (r < 0)
                return r;
        _cleanup_free_ struct io_priv *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        if (!v[K_PATH] || v[K_PATH][0] != '/') {
                snprintf(err, errlen, "path= is required and must be an absolute directory");
                return -EINVAL;
        }
        size_t len = strlen(v[K_PATH]);
        while (len > 1 && v[K_PATH][len - 1] == '/')
                len--;
        if (len + 1 + strlen(IO_PREFIX) + FL_ID_LEN + 8 >= sizeof p->dir) {
                snprintf(err, errlen, "path= is too long");
                return -EINVAL;
        }
        memcpy(p->dir, v[K_PATH], len);
        p->dir[len] = '\0';
        p->bytes = IO_DEFAULT;
        if (v[K_BYTES] && (fl_parse_size(v[K_BYTES], &p->bytes) < 0 || p->bytes < (1u << 20))) {
                snprintf(err, errlen, "bytes=%s: expected a file size of at least 1M", v[K_BYTES]);
                return -EINVAL;
        }
        p->bytes &= ~(uint64_t)((1u << 20) - 1); /* whole direct-I/O chunks */
        p->workers = 1;
        if (v[K_WORKERS] && (fl_parse_u64(v[K_WORKERS], &p->workers) < 0 || p->workers == 0 ||
                             p->workers > IO_MAX_WORKERS)) {
                snprintf(err, errlen, "workers=%s: expected 1..%u", v[K_WORKERS], IO_MAX_WORKERS);
                return -EINVAL;
        }
        f->priv = FL_TAKE_PTR(p);
        return 0;
}

static int io_plan(struct agent_fault *f, struct agent_cg_group *g, char *err, size_t errlen)
{
        return agent_cg_group_plan(agent_cg_host(), IO_MASK, 0, f->id, g, err, errlen);
}

static int io_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct io_priv *p = f->priv;
        struct stat st;
        struct statvfs vfs;
        if (stat(p->dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                snprintf(err, errlen, "path=%s: not a directory", p->dir);
                return -ENOENT;
        }
        if (statvfs(p->dir, &vfs) < 0)
                return -errno;
        uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
        if (p->bytes * p->workers > avail) {
                snprintf(err, errlen, "path=%s: %llu x %llu bytes exceed the %llu bytes free",
                         p->dir, (unsigned long long)p->workers, (unsigned long long)p->bytes,
                         (unsigned long long)avail);
                return -EINVAL;
        }
        struct agent_cg_group g;
        int r = io_plan(f, &g, err, errlen);
        if (r < 0)
                return r;
        if (!f->undo)
                f->undo = json_object();
        json_t *files = json_array();
        if (!f->undo || !files || agent_cg_group_record(&g, f->undo) < 0 ||
            json_object_set_new(f->undo, "files", files) < 0) {
                snprintf(err, errlen, "out of memory recording the workers");
                return -ENOMEM;
        }
        for (uint64_t i = 0; i < p->workers; i++) {
                char path[PATH_MAX + 96];
                int w = snprintf(path, sizeof path, "%s%s" IO_PREFIX "%s-%llu", p->dir,
                                 strcmp(p->dir, "/") == 0 ? "" : "/", f->id, (unsigned long long)i);
                if (w < 0 || (size_t)w >= PATH_MAX) {
                        snprintf(err, errlen, "path= is too long");
                        return -ENAMETOOLONG;
                }
                if (json_array_append_new(files, json_string(path)) < 0)
                        return -ENOMEM;
        }
        snprintf(f->target, sizeof f->target, "%.200s: %llu worker(s) x %llu bytes", p->dir,
                 (unsigned long long)p->workers, (unsigned long long)p->bytes);
        snprintf(f->backend, sizeof f->backend, "direct-io");
        return 0;
}

/* Only files of our own naming are ever removed. */
static bool io_file_ok(const char *path)
{
        const char *base = path ? strrchr(path, '/') : NULL;
        return base && path[0] == '/' && strncmp(base + 1, IO_PREFIX, strlen(IO_PREFIX)) == 0;
}

static int io_apply(struct agent_fault *f, char *err, size_t errlen)
{
        struct io_priv *p = f->priv;
        struct agent_cg_group g;
        int r = io_plan(f, &g, err, errlen);
        if (r < 0 || (r = agent_cg_group_create(&g, err, errlen)) < 0)
                return r;
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(f->undo, "files"), i, v)
        {
                const char *path = json_string_value(v);
                if (!io_file_ok(path))
                        return -EINVAL;
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (fd < 0) {
                        r = -errno;
                        snprintf(err, errlen, "creating %s: %s", path, strerror(-r));
                        return r;
                }
                close(fd);
                struct agent_worker_spec w = {
                    .kind = AGENT_WORKER_IO, .bytes = p->bytes, .ready_timeout_ms = 10000};
                fl_strlcpy(w.path, path, sizeof w.path);
                pid_t pid;
                if ((r = agent_worker_spawn(&g, &w, &pid, err, errlen)) < 0)
                        return r;
                if ((r = agent_worker_record(f->undo, pid)) < 0)
                        return r;
        }
        return 0;
}

static int io_verify(struct agent_fault *f, char *err, size_t errlen)
{
        struct agent_cg_group g;
        int r = io_plan(f, &g, err, errlen);
        if (r < 0)
                return r;
        size_t want = json_array_size(json_object_get(f->undo, "files"));
        int alive = agent_worker_alive(f->undo, g.dir[0]);
        if (alive < 0 || (size_t)alive != want) {
                snprintf(err, errlen, "%d of %zu io workers running", alive, want);
                return -ESRCH;
        }
        return 0;
}

static int io_revert(struct agent_fault *f, char *err, size_t errlen)
{
        if (!f->undo)
                return 0;
        int r = agent_cg_undo_destroy(f->undo, err, errlen);
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(f->undo, "files"), i, v)
        {
                const char *path = json_string_value(v);
                if (!io_file_ok(path)) {
                        snprintf(err, errlen, "undo entry: not a faultline io file");
                        return -EINVAL;
                }
                if (unlink(path) < 0 && errno != ENOENT && r == 0) {
                        r = -errno;
                        snprintf(err, errlen, "removing %s: %s", path, strerror(-r));
                }
        }
        return r;
}

const struct fault_ops agent_fault_io_stress = {
    .kind = "io-stress",
    .help = "workers= processes doing direct writes then reads over bytes= files in path=",
    .keys = io_keys,
    .supported = io_supported,
    .validate = io_validate,
    .prepare = io_prepare,
    .apply = io_apply,
    .verify = io_verify,
    .revert = io_revert,
    .destroy = io_destroy,
};
