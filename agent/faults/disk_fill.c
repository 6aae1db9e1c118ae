/* disk-fill: take space away from a filesystem with one ballast file,
 * either a fixed size (bytes=), whatever brings the filesystem to a used
 * percentage (percent=), or all but reserve= bytes of what is free. With
 * inodes=, a ballast directory of empty files also brings the inode usage
 * to that percentage. Names carry the fault id and are recorded before
 * they exist, so revert — or crash recovery — finds them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fault.h"
#include "fl_parse.h"
#include "fl_util.h"

#define BALLAST_PREFIX ".faultline-ballast-"
#define WRITE_CHUNK    (1024 * 1024)

#define INODE_MAX_FILES 2000000u /* creating more would stall the agent for seconds */

struct fill_priv {
        char dir[PATH_MAX];
        uint64_t bytes;      /* 0 when percent is used */
        uint32_t percent_bp; /* 0 when bytes is used */
        bool has_reserve;
        uint64_t reserve;   /* leave this many bytes free */
        uint32_t inodes_bp; /* 0: no inode exhaustion */
};

static const char *const fill_keys[] = {"path", "bytes", "percent", "reserve", "inodes", NULL};

/* The write fallback works everywhere a file can be written. */
static const char *fill_supported(void)
{
        return NULL;
}

static void fill_destroy(struct agent_fault *f)
{
        free(f->priv);
        f->priv = NULL;
}

static bool key_known(const char *key)
{
        for (size_t i = 0; fill_keys[i]; i++)
                if (strcmp(key, fill_keys[i]) == 0)
                        return true;
        return false;
}

static int fill_validate(struct agent_fault *f, char *err, size_t errlen)
{
        const char *path = NULL, *bytes = NULL, *percent = NULL, *reserve = NULL, *inodes = NULL;

        fill_destroy(f);
        for (size_t i = 0; i < f->n_params; i++) {
                const char *key = f->params[i].key;
                if (!key_known(key)) {
                        snprintf(err, errlen, "unknown param %s= for disk-fill", key);
                        return -EINVAL;
                }
                for (size_t j = 0; j < i; j++)
                        if (strcmp(f->params[j].key, key) == 0) {
                                snprintf(err, errlen, "param %s= given twice", key);
                                return -EINVAL;
                        }
                if (strcmp(key, "path") == 0)
                        path = f->params[i].value;
                else if (strcmp(key, "bytes") == 0)
                        bytes = f->params[i].value;
                else if (strcmp(key, "reserve") == 0)
                        reserve = f->params[i].value;
                else if (strcmp(key, "inodes") == 0)
                        inodes = f->params[i].value;
                else
                        percent = f->params[i].value;
        }

        _cleanup_free_ struct fill_priv *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;

        if (!path) {
                snprintf(err, errlen, "path= is required");
                return -EINVAL;
        }
        /* Relative paths would resolve against the agent's cwd, which is
         * nothing a drill author can see. */
        if (path[0] != '/') {
                snprintf(err, errlen, "path=%s: must be an absolute directory", path);
                return -EINVAL;
        }
        size_t len = strlen(path);
        while (len > 1 && path[len - 1] == '/')
                len--;
        /* Room for "/.faultline-ballast-<id>". */
        if (len + 1 + strlen(BALLAST_PREFIX) + FL_ID_LEN >= sizeof p->dir) {
                snprintf(err, errlen, "path= is too long");
                return -EINVAL;
        }
        memcpy(p->dir, path, len);
        p->dir[len] = '\0';

        int space = !!bytes + !!percent + !!reserve;
        if (space > 1 || (space == 0 && !inodes)) {
                snprintf(err, errlen,
                         "exactly one of bytes=, percent= or reserve= is required (inodes= may "
                         "stand alone)");
                return -EINVAL;
        }
        if (reserve) {
                if (fl_parse_size(reserve, &p->reserve) < 0) {
                        snprintf(err, errlen, "reserve=%s: expected a size to leave free (\"1G\")",
                                 reserve);
                        return -EINVAL;
                }
                p->has_reserve = true;
        }
        if (inodes && (fl_parse_percent(inodes, &p->inodes_bp) < 0 || p->inodes_bp == 0)) {
                snprintf(err, errlen, "inodes=%s: expected a used-inode percentage in (0,100]",
                         inodes);
                return -EINVAL;
        }
        if (bytes && (fl_parse_size(bytes, &p->bytes) < 0 || p->bytes == 0)) {
                snprintf(err, errlen, "bytes=%s: expected a size above 0 (\"512M\", \"2G\")",
                         bytes);
                return -EINVAL;
        }
        if (percent && (fl_parse_percent(percent, &p->percent_bp) < 0 || p->percent_bp == 0)) {
                snprintf(err, errlen, "percent=%s: expected a used percentage in (0,100]", percent);
                return -EINVAL;
        }
        f->priv = FL_TAKE_PTR(p);
        return 0;
}

static bool id_is_safe(const char *id)
{
        if (!id[0])
                return false;
        for (const char *c = id; *c; c++)
                if (*c == '/' || *c < 0x21 || *c > 0x7e)
                        return false;
        return strcmp(id, ".") != 0 && strcmp(id, "..") != 0;
}

/* inodes=: how many empty files bring the inode usage to the target, in
 * a directory named after the fault. */
static int inodes_prepare(struct agent_fault *f, const struct fill_priv *p,
                          const struct statvfs *vfs, bool with_file, char *err, size_t errlen)
{
        if (!p->inodes_bp)
                return 0;
        if (vfs->f_files == 0) {
                snprintf(err, errlen, "path=%s: filesystem has no inode limit to exhaust", p->dir);
                return -EINVAL;
        }
        uint64_t total = vfs->f_files;
        uint64_t freei = geteuid() == 0 ? vfs->f_ffree : vfs->f_favail;
        uint64_t used = total - vfs->f_ffree;
        uint64_t target = (uint64_t)(((unsigned __int128)total * p->inodes_bp + 9999) / 10000);
        if (target <= used) {
                snprintf(err, errlen,
                         "path=%s: %llu of %llu inodes already used, at or above "
                         "inodes=%u.%02u%%",
                         p->dir, (unsigned long long)used, (unsigned long long)total,
                         p->inodes_bp / 100, p->inodes_bp % 100);
                return -EINVAL;
        }
        /* The ballast directory takes one inode itself, a ballast file
         * (bytes=, percent=, reserve=) another. */
        uint64_t files = target - used - 1 - (with_file ? 1 : 0);
        if (target < used + 1 + (with_file ? 1 : 0))
                files = 0;
        if (files + 1 > freei || files > INODE_MAX_FILES) {
                snprintf(err, errlen,
                         "path=%s: inodes= needs %llu files (%llu inodes free, at "
                         "most %u created)",
                         p->dir, (unsigned long long)files, (unsigned long long)freei,
                         INODE_MAX_FILES);
                return -EINVAL;
        }
        char dir[PATH_MAX];
        int w = snprintf(dir, sizeof dir, "%s%s" BALLAST_PREFIX "%s.d", p->dir,
                         strcmp(p->dir, "/") == 0 ? "" : "/", f->id);
        if (w < 0 || (size_t)w >= sizeof dir)
                return -ENAMETOOLONG;
        if (json_object_set_new(f->undo, "inode_dir", json_string(dir)) < 0 ||
            json_object_set_new(f->undo, "inode_files", json_integer((json_int_t)files)) < 0)
                return -ENOMEM;
        snprintf(f->target, sizeof f->target, "%.200s +%llu inodes", p->dir,
                 (unsigned long long)files);
        return 0;
}

static const char *undo_inode_dir(const json_t *undo)
{
        const char *dir = json_string_value(json_object_get(undo, "inode_dir"));
        const char *base = dir ? strrchr(dir, '/') : NULL;
        if (!base || dir[0] != '/' ||
            strncmp(base + 1, BALLAST_PREFIX, strlen(BALLAST_PREFIX)) != 0)
                return NULL;
        return dir;
}

static int inodes_apply(struct agent_fault *f, char *err, size_t errlen)
{
        const char *dir = undo_inode_dir(f->undo);
        if (!dir)
                return 0;
        json_int_t n = json_integer_value(json_object_get(f->undo, "inode_files"));
        if (mkdir(dir, 0700) < 0) {
                int r = -errno;
                snprintf(err, errlen, "creating %s: %s", dir, strerror(-r));
                return r;
        }
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dfd < 0)
                return -errno;
        for (json_int_t i = 0; i < n; i++) {
                char name[24];
                snprintf(name, sizeof name, "%llx", (unsigned long long)i);
                int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
                if (fd < 0) {
                        /* Out of inodes a little early (others create files
                         * too): the filesystem is where the fault wants it. */
                        if (errno == ENOSPC)
                                break;
                        int r = -errno;
                        snprintf(err, errlen, "creating file %lld in %s: %s", (long long)i, dir,
                                 strerror(-r));
                        return r;
                }
                close(fd);
        }
        if (!f->backend[0])
                fl_strlcpy(f->backend, "inodes", sizeof f->backend);
        return 0;
}

static int inodes_revert(struct agent_fault *f, char *err, size_t errlen)
{
        const char *dir = undo_inode_dir(f->undo);
        if (!dir)
                return 0;
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (dfd < 0)
                return errno == ENOENT ? 0 : -errno;
        DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return -errno;
        }
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' &&
                    strspn(de->d_name, "0123456789abcdef") == strlen(de->d_name))
                        unlinkat(dfd, de->d_name, 0);
        closedir(d);
        if (rmdir(dir) < 0 && errno != ENOENT) {
                int r = -errno;
                snprintf(err, errlen, "removing %s: %s", dir, strerror(-r));
                return r;
        }
        return 0;
}

static int fill_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct fill_priv *p = f->priv;
        if (!p) {
                snprintf(err, errlen, "disk-fill: prepare before validate");
                return -EINVAL;
        }
        if (!id_is_safe(f->id)) {
                snprintf(err, errlen, "fault id '%s' cannot name a file", f->id);
                return -EINVAL;
        }

        struct stat st;
        if (stat(p->dir, &st) < 0) {
                int r = -errno;
                snprintf(err, errlen, "path=%s: %s", p->dir, strerror(-r));
                return r;
        }
        if (!S_ISDIR(st.st_mode)) {
                snprintf(err, errlen, "path=%s: not a directory", p->dir);
                return -EINVAL;
        }

        struct statvfs vfs;
        if (statvfs(p->dir, &vfs) < 0) {
                int r = -errno;
                snprintf(err, errlen, "statvfs %s: %s", p->dir, strerror(-r));
                return r;
        }
        uint64_t frsize = vfs.f_frsize ? vfs.f_frsize : vfs.f_bsize;
        uint64_t size = (uint64_t)vfs.f_blocks * frsize;
        uint64_t used = (uint64_t)(vfs.f_blocks - vfs.f_bfree) * frsize;
        /* root may dig into the blocks reserved for it (ext4's 5%); that is
         * part of "filling the disk", an unprivileged agent cannot. */
        uint64_t avail = (uint64_t)(geteuid() == 0 ? vfs.f_bfree : vfs.f_bavail) * frsize;
        if (size == 0) {
                snprintf(err, errlen, "path=%s: filesystem reports no size", p->dir);
                return -EINVAL;
        }

        uint64_t bytes = p->bytes;
        if (p->has_reserve) {
                if (p->reserve >= avail) {
                        snprintf(err, errlen,
                                 "path=%s: only %llu bytes free, already at or below reserve=%llu",
                                 p->dir, (unsigned long long)avail, (unsigned long long)p->reserve);
                        return -EINVAL;
                }
                bytes = avail - p->reserve;
        }
        if (p->percent_bp) {
                uint64_t target =
                    (uint64_t)(((unsigned __int128)size * p->percent_bp + 9999) / 10000);
                if (target <= used) {
                        unsigned cur = (unsigned)((unsigned __int128)used * 10000 / size);
                        snprintf(err, errlen,
                                 "path=%s: filesystem is already %u.%02u%% used, "
                                 "at or above percent=%u.%02u",
                                 p->dir, cur / 100, cur % 100, p->percent_bp / 100,
                                 p->percent_bp % 100);
                        return -EINVAL;
                }
                bytes = target - used;
        }
        if (bytes > avail) {
                snprintf(err, errlen, "path=%s: filling %llu bytes exceeds the %llu bytes free",
                         p->dir, (unsigned long long)bytes, (unsigned long long)avail);
                return -EINVAL;
        }
        if (!f->undo)
                f->undo = json_object();
        if (!f->undo)
                return -ENOMEM;
        int r = inodes_prepare(f, p, &vfs, bytes > 0, err, errlen);
        if (r < 0)
                return r;
        if (bytes == 0) /* inodes= alone */
                return 0;

        char ballast[PATH_MAX];
        int w = snprintf(ballast, sizeof ballast, "%s%s" BALLAST_PREFIX "%s", p->dir,
                         strcmp(p->dir, "/") == 0 ? "" : "/", f->id);
        if (w < 0 || (size_t)w >= sizeof ballast) {
                snprintf(err, errlen, "path= is too long");
                return -ENAMETOOLONG;
        }

        if (!f->undo)
                f->undo = json_object();
        if (!f->undo || json_object_set_new(f->undo, "path", json_string(ballast)) < 0 ||
            json_object_set_new(f->undo, "bytes", json_integer((json_int_t)bytes)) < 0) {
                snprintf(err, errlen, "out of memory recording the ballast");
                return -ENOMEM;
        }
        /* The summary may be cut; the undo entry holds the full path. */
        snprintf(f->target, sizeof f->target, "%.200s +%llu bytes", p->dir,
                 (unsigned long long)bytes);
        return 0;
}

/* The ballast path and size, as recorded by prepare(). The basename check
 * keeps a damaged or hand-edited journal from turning revert into an
 * arbitrary unlink. */
static int undo_ballast(const json_t *undo, const char **ret_path, uint64_t *ret_bytes, char *err,
                        size_t errlen)
{
        const char *path = json_string_value(json_object_get(undo, "path"));
        json_t *bytes = json_object_get(undo, "bytes");
        if (!path)
                return -ENOENT;
        const char *base = strrchr(path, '/');
        if (path[0] != '/' || !base ||
            strncmp(base + 1, BALLAST_PREFIX, strlen(BALLAST_PREFIX)) != 0 ||
            !json_is_integer(bytes) || json_integer_value(bytes) <= 0) {
                snprintf(err, errlen, "undo entry: not a faultline ballast: %s", path);
                return -EINVAL;
        }
        *ret_path = path;
        *ret_bytes = (uint64_t)json_integer_value(bytes);
        return 0;
}

static uint64_t free_bytes(const char *path)
{
        struct statvfs vfs;
        if (statvfs(path, &vfs) < 0)
                return 0;
        return (uint64_t)vfs.f_bfree * (vfs.f_frsize ? vfs.f_frsize : vfs.f_bsize);
}

/* Fallback for filesystems without fallocate: zeros in bounded chunks,
 * then fsync so delayed allocation has really taken the blocks. */
static int write_zeros(int fd, uint64_t bytes)
{
        _cleanup_free_ char *buf = calloc(1, WRITE_CHUNK);
        if (!buf)
                return -ENOMEM;
        uint64_t done = 0;
        while (done < bytes) {
                size_t chunk = bytes - done < WRITE_CHUNK ? (size_t)(bytes - done) : WRITE_CHUNK;
                ssize_t n = write(fd, buf, chunk);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EIO;
                done += (uint64_t)n;
        }
        return fsync(fd) < 0 ? -errno : 0;
}

static int fill_apply(struct agent_fault *f, char *err, size_t errlen)
{
        const char *path;
        uint64_t bytes;
        int r = undo_ballast(f->undo, &path, &bytes, err, errlen);
        if (r == -ENOENT && undo_inode_dir(f->undo))
                return inodes_apply(f, err, errlen);
        if (r == -ENOENT) {
                snprintf(err, errlen, "disk-fill: apply before prepare");
                return -EINVAL;
        }
        if (r < 0)
                return r;

        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(path, '/') - path), path);
        if (!dir[0])
                fl_strlcpy(dir, "/", sizeof dir);
        json_object_set_new(f->undo, "free_before", json_integer((json_int_t)free_bytes(dir)));

        /* O_EXCL: never adopt (and later delete) a file we did not create. */
        _cleanup_close_ int fd =
            open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                r = -errno;
                snprintf(err, errlen, "creating %s: %s", path, strerror(-r));
                return r;
        }

        const char *backend = "fallocate";
        do
                r = fallocate(fd, 0, 0, (off_t)bytes) < 0 ? -errno : 0;
        while (r == -EINTR);
        if (r == -EOPNOTSUPP || r == -ENOSYS) {
                backend = "write";
                r = write_zeros(fd, bytes);
        }
        if (r < 0) {
                /* A partial ballast would still eat space after a failed
                 * apply; the agent will revert, but do not rely on it. */
                unlink(path);
                snprintf(err, errlen, "filling %s with %llu bytes (%s): %s", path,
                         (unsigned long long)bytes, backend, strerror(-r));
                return r;
        }
        fl_strlcpy(f->backend, backend, sizeof f->backend);
        /* Inodes last: the ballast file above needs one of them. */
        return inodes_apply(f, err, errlen);
}

static int inodes_verify(struct agent_fault *f, char *err, size_t errlen)
{
        const char *dir = undo_inode_dir(f->undo);
        if (!dir)
                return 0;
        struct statvfs vfs;
        if (statvfs(dir, &vfs) < 0) {
                int r = -errno;
                snprintf(err, errlen, "statvfs %s: %s", dir, strerror(-r));
                return r;
        }
        json_int_t n = json_integer_value(json_object_get(f->undo, "inode_files"));
        /* Full (or within the files we were asked for, with slack for
         * others deleting meanwhile). */
        if (vfs.f_ffree > 0 && (json_int_t)vfs.f_ffree > n / 10 + 16) {
                struct stat st;
                if (stat(dir, &st) < 0 || (json_int_t)st.st_nlink < 2) {
                        snprintf(err, errlen, "inode ballast %s missing", dir);
                        return -EIO;
                }
        }
        return 0;
}

static int fill_verify(struct agent_fault *f, char *err, size_t errlen)
{
        const char *path;
        uint64_t bytes;
        int r = inodes_verify(f, err, errlen);
        if (r < 0)
                return r;
        r = undo_ballast(f->undo, &path, &bytes, err, errlen);
        if (r == -ENOENT && undo_inode_dir(f->undo))
                return 0;
        if (r == -ENOENT) {
                snprintf(err, errlen, "disk-fill: verify before prepare");
                return -EINVAL;
        }
        if (r < 0)
                return r;

        struct stat st;
        if (lstat(path, &st) < 0) {
                r = -errno;
                snprintf(err, errlen, "ballast %s: %s", path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < bytes) {
                snprintf(err, errlen, "ballast %s is %lld bytes, expected %llu", path,
                         (long long)st.st_size, (unsigned long long)bytes);
                return -EIO;
        }
        /* A sparse or compressed file has the size but not the blocks. */
        if ((uint64_t)st.st_blocks * 512 < bytes) {
                snprintf(err, errlen, "ballast %s holds only %llu of %llu bytes on disk", path,
                         (unsigned long long)st.st_blocks * 512, (unsigned long long)bytes);
                return -EIO;
        }

        /* And the filesystem must agree. Others write and delete meanwhile,
         * so allow a tenth of slack rather than demanding the exact drop. */
        json_t *before = json_object_get(f->undo, "free_before");
        if (json_is_integer(before)) {
                char dir[PATH_MAX];
                snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(path, '/') - path), path);
                if (!dir[0])
                        fl_strlcpy(dir, "/", sizeof dir);
                long long drop = (long long)json_integer_value(before) - (long long)free_bytes(dir);
                if (drop < 0 || (uint64_t)drop < bytes - bytes / 10) {
                        snprintf(err, errlen,
                                 "free space on %s dropped by %lld bytes, expected %llu", dir, drop,
                                 (unsigned long long)bytes);
                        return -EIO;
                }
        }
        return 0;
}

static int fill_revert(struct agent_fault *f, char *err, size_t errlen)
{
        const char *path;
        uint64_t bytes;
        int r = inodes_revert(f, err, errlen);
        if (r < 0)
                return r;
        r = undo_ballast(f->undo, &path, &bytes, err, errlen);
        if (r == -ENOENT)
                return 0; /* prepare() never recorded a ballast: nothing exists */
        if (r < 0)
                return r;
        if (unlink(path) < 0 && errno != ENOENT) {
                r = -errno;
                snprintf(err, errlen, "removing %s: %s", path, strerror(-r));
                return r;
        }
        return 0;
}

const struct fault_ops agent_fault_disk_fill = {
    .kind = "disk-fill",
    .help = "fill the filesystem of path= by bytes=, up to percent= used, or to reserve= free; "
            "inodes= exhausts inodes to a used percentage",
    .keys = fill_keys,
    .supported = fill_supported,
    .validate = fill_validate,
    .prepare = fill_prepare,
    .apply = fill_apply,
    .verify = fill_verify,
    .revert = fill_revert,
    .destroy = fill_destroy,
};
