/* On-disk journal of applied faults. See agent.h for the contract.
 *
 * The journal is the reason a crashed agent never leaves a fault behind:
 * every entry is durable before the system is changed, and an entry only
 * disappears after its revert succeeded. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "agent.h"
#include "fl_log.h"
#include "fl_util.h"

#define JOURNAL_VERSION 1

static int faults_dir(const char *state_dir, char *buf, size_t size)
{
        int n = snprintf(buf, size, "%s/faults", state_dir);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int mkdir_mode(const char *path, mode_t mode)
{
        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return -errno;
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        /* The journal decides what gets reverted as root: nobody else may
         * write into it. */
        if (st.st_uid != geteuid() || (st.st_mode & 022))
                return -EPERM;
        return 0;
}

int agent_journal_init(const char *state_dir, char *err, size_t errlen)
{
        char dir[FL_VAL_LEN + 16];
        int rv = mkdir_mode(state_dir, 0700);
        if (rv < 0) {
                snprintf(err, errlen, "state dir %s: %s%s", state_dir, strerror(-rv),
                         rv == -EPERM ? " (must be owned by the agent's user, not group/world "
                                        "writable)"
                                      : "");
                return rv;
        }
        if ((rv = faults_dir(state_dir, dir, sizeof(dir))) < 0 ||
            (rv = mkdir_mode(dir, 0700)) < 0) {
                snprintf(err, errlen, "journal dir %s: %s", dir, strerror(-rv));
                return rv;
        }
        return 0;
}

json_t *agent_journal_to_json(const struct agent_fault *f)
{
        json_t *params = json_object();
        for (size_t i = 0; params && i < f->n_params; i++)
                json_object_set_new(params, f->params[i].key, json_string(f->params[i].value));
        return json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:s, s:s, s:O}", "version",
                         JOURNAL_VERSION, "id", f->id, "kind", f->ops->kind, "lease", f->lease,
                         "requester", f->requester, "duration_ms", (json_int_t)f->duration_ms,
                         "started_ms", (json_int_t)f->started_wall_ms, "expires_ms",
                         (json_int_t)f->expires_wall_ms, "params", params, "target", f->target,
                         "backend", f->backend, "undo", f->undo ? f->undo : json_null());
}

static int copy_field(char *dst, size_t size, json_t *j, const char *key, char *err, size_t errlen)
{
        const char *s = json_string_value(json_object_get(j, key));
        if (!s || fl_strlcpy(dst, s, size) < 0) {
                snprintf(err, errlen, "field \"%s\" missing or too long", key);
                return -EBADMSG;
        }
        return 0;
}

int agent_journal_from_json(json_t *j, struct agent_fault *f, char *err, size_t errlen)
{
        char kind[FL_KIND_LEN];
        int rv;

        memset(f, 0, sizeof(*f));
        if (!json_is_object(j) ||
            json_integer_value(json_object_get(j, "version")) != JOURNAL_VERSION) {
                snprintf(err, errlen, "not a version %d journal entry", JOURNAL_VERSION);
                return -EBADMSG;
        }
        if ((rv = copy_field(f->id, sizeof(f->id), j, "id", err, errlen)) < 0 ||
            (rv = copy_field(kind, sizeof(kind), j, "kind", err, errlen)) < 0 ||
            (rv = copy_field(f->lease, sizeof(f->lease), j, "lease", err, errlen)) < 0 ||
            (rv = copy_field(f->requester, sizeof(f->requester), j, "requester", err, errlen)) <
                0 ||
            (rv = copy_field(f->target, sizeof(f->target), j, "target", err, errlen)) < 0 ||
            (rv = copy_field(f->backend, sizeof(f->backend), j, "backend", err, errlen)) < 0)
                return rv;
        f->ops = agent_fault_lookup(kind);
        if (!f->ops) {
                snprintf(err, errlen, "unknown fault kind \"%s\"", kind);
                return -EBADMSG;
        }
        f->duration_ms = (uint64_t)json_integer_value(json_object_get(j, "duration_ms"));
        f->started_wall_ms = (uint64_t)json_integer_value(json_object_get(j, "started_ms"));
        f->expires_wall_ms = (uint64_t)json_integer_value(json_object_get(j, "expires_ms"));
        json_t *params = json_object_get(j, "params");
        const char *k;
        json_t *v;
        json_object_foreach(params, k, v)
        {
                if (!json_is_string(v) ||
                    fl_params_add(&f->params, &f->n_params, k, json_string_value(v)) < 0) {
                        snprintf(err, errlen, "bad param \"%s\"", k);
                        free(f->params);
                        f->params = NULL;
                        return -EBADMSG;
                }
        }
        json_t *undo = json_object_get(j, "undo");
        f->undo = json_is_object(undo) ? json_incref(undo) : json_object();
        return 0;
}

static int fsync_dir(const char *dir)
{
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return fsync(fd) < 0 ? -errno : 0;
}

int agent_journal_write(const char *state_dir, const struct agent_fault *f)
{
        return agent_journal_write_mode(state_dir, f, true);
}

int agent_journal_write_mode(const char *state_dir, const struct agent_fault *f, bool durable)
{
        char dir[FL_VAL_LEN + 16], tmp[FL_VAL_LEN + 96], path[FL_VAL_LEN + 96];
        int rv = faults_dir(state_dir, dir, sizeof(dir));
        if (rv < 0)
                return rv;
        snprintf(path, sizeof(path), "%s/%s.json", dir, f->id);
        snprintf(tmp, sizeof(tmp), "%s/.%s.json.tmp", dir, f->id);

        json_t *j = agent_journal_to_json(f);
        if (!j)
                return -ENOMEM;
        _cleanup_free_ char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(j);
        if (!text)
                return -ENOMEM;

        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        size_t len = strlen(text), off = 0;
        while (off < len) {
                ssize_t n = write(fd, text + off, len - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        rv = n < 0 ? -errno : -EIO;
                        goto fail;
                }
                off += (size_t)n;
        }
        if (durable && fsync(fd) < 0) {
                rv = -errno;
                goto fail;
        }
        close(fd);
        fd = -1;
        if (rename(tmp, path) < 0) {
                rv = -errno;
                goto fail;
        }
        return durable ? fsync_dir(dir) : 0;
fail:
        if (fd >= 0)
                close(fd);
        unlink(tmp);
        return rv;
}

int agent_journal_remove(const char *state_dir, const char *id)
{
        char dir[FL_VAL_LEN + 16], path[FL_VAL_LEN + 96];
        int rv = faults_dir(state_dir, dir, sizeof(dir));
        if (rv < 0)
                return rv;
        snprintf(path, sizeof(path), "%s/%s.json", dir, id);
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        return fsync_dir(dir);
}

static json_t *load_json(const char *path, char *err, size_t errlen)
{
        json_error_t jerr;
        /* Entries are small; anything large is not ours. */
        struct stat st;
        if (stat(path, &st) < 0 || st.st_size > 1024 * 1024) {
                snprintf(err, errlen, "unreadable or oversized");
                return NULL;
        }
        json_t *j = json_load_file(path, 0, &jerr);
        if (!j)
                snprintf(err, errlen, "line %d: %s", jerr.line, jerr.text);
        return j;
}

int agent_journal_load(const char *state_dir,
                       int (*cb)(struct agent_fault *f, const char *path, void *ud), void *ud)
{
        char dir[FL_VAL_LEN + 16];
        int rv = faults_dir(state_dir, dir, sizeof(dir));
        if (rv < 0)
                return rv;
        DIR *d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        int seen = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                char path[FL_VAL_LEN + 300], err[FL_MSG_LEN];
                size_t n = strlen(de->d_name);
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                if (de->d_name[0] == '.') {
                        /* A temp file means a crash mid-write: the apply it
                         * belonged to never started, so the file goes. */
                        if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0)
                                unlink(path);
                        continue;
                }
                if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
                        continue;
                seen++;
                json_t *j = load_json(path, err, sizeof(err));
                struct agent_fault *f = calloc(1, sizeof(*f));
                if (!j || !f || agent_journal_from_json(j, f, err, sizeof(err)) < 0) {
                        fl_log(LOG_ERR, "journal entry %s unusable: %s (left in place)", path,
                               j ? err : err);
                        json_decref(j);
                        free(f);
                        continue;
                }
                json_decref(j);
                if (cb(f, path, ud) != 0) {
                        if (f->ops && f->ops->destroy)
                                f->ops->destroy(f);
                        free(f->params);
                        json_decref(f->undo);
                        free(f);
                }
        }
        closedir(d);
        return seen;
}
