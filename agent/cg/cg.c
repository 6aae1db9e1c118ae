/* cgroup detection, paths, target resolution and protection checks,
 * shared by both generations. */
#include "cg.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "fl_log.h"
#include "fl_util.h"

/* v1 hierarchy names, and the v2 controller names, per controller. */
static const char *const v1_names[AGENT_CG_CTRL_MAX] = {
    [AGENT_CG_CPU] = "cpu",  [AGENT_CG_CPUACCT] = "cpuacct", [AGENT_CG_MEMORY] = "memory",
    [AGENT_CG_IO] = "blkio", [AGENT_CG_FREEZER] = "freezer", [AGENT_CG_PIDS] = "pids",
};
static const char *const v2_names[AGENT_CG_CTRL_MAX] = {
    [AGENT_CG_CPU] = "cpu",
    [AGENT_CG_MEMORY] = "memory",
    [AGENT_CG_IO] = "io",
    [AGENT_CG_PIDS] = "pids",
};

const char *agent_cg_ctrl_name(enum agent_cg_ctrl c)
{
        return (unsigned)c < AGENT_CG_CTRL_MAX ? v1_names[c] : "?";
}

const char *agent_cg_mode_name(enum agent_cg_mode m)
{
        switch (m) {
        case AGENT_CG_MODE_V1:
                return "v1";
        case AGENT_CG_MODE_V2:
                return "v2";
        case AGENT_CG_MODE_HYBRID:
                return "hybrid";
        default:
                return "none";
        }
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s)
{
        char *w = s;
        for (char *r = s; *r;) {
                if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' &&
                    r[3] >= '0' && r[3] <= '7') {
                        *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
                        r += 4;
                } else {
                        *w++ = *r++;
                }
        }
        *w = '\0';
}

static bool opt_has(const char *opts, const char *name)
{
        size_t len = strlen(name);
        for (const char *p = opts; p && *p;) {
                const char *end = strchr(p, ',');
                size_t n = end ? (size_t)(end - p) : strlen(p);
                if (n == len && strncmp(p, name, len) == 0)
                        return true;
                p = end ? end + 1 : NULL;
        }
        return false;
}

int agent_cg_parse_mountinfo(const char *text, struct agent_cg_host *ret)
{
        struct agent_cg_host h;
        memset(&h, 0, sizeof h);

        for (const char *line = text; line && *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) : strlen(line);
                char buf[4096];
                if (len < sizeof buf) {
                        memcpy(buf, line, len);
                        buf[len] = '\0';
                        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SRC
                         * SUPEROPTS */
                        char *f[6] = {0}, *save = NULL, *tok;
                        int i = 0;
                        for (tok = strtok_r(buf, " ", &save); tok && i < 6;
                             tok = strtok_r(NULL, " ", &save))
                                f[i++] = tok;
                        while (tok && strcmp(tok, "-") != 0)
                                tok = strtok_r(NULL, " ", &save);
                        char *fstype = tok ? strtok_r(NULL, " ", &save) : NULL;
                        char *src = fstype ? strtok_r(NULL, " ", &save) : NULL;
                        char *sopts = src ? strtok_r(NULL, " ", &save) : NULL;
                        /* Only whole hierarchies: a bind of a subtree (root
                         * other than "/") would shift every rel path. */
                        if (i == 6 && fstype && strcmp(f[3], "/") == 0) {
                                unescape_octal(f[4]);
                                if (strcmp(fstype, "cgroup2") == 0 && !h.v2[0]) {
                                        fl_strlcpy(h.v2, f[4], sizeof h.v2);
                                } else if (strcmp(fstype, "cgroup") == 0 && sopts) {
                                        for (int c = 0; c < AGENT_CG_CTRL_MAX; c++)
                                                if (!h.v1[c][0] && opt_has(sopts, v1_names[c]))
                                                        fl_strlcpy(h.v1[c], f[4], sizeof h.v1[c]);
                                        if (!h.v1_systemd[0] && opt_has(sopts, "name=systemd"))
                                                fl_strlcpy(h.v1_systemd, f[4], sizeof h.v1_systemd);
                                }
                        }
                }
                line = nl ? nl + 1 : NULL;
        }

        bool any_v1 = h.v1_systemd[0] != '\0';
        for (int c = 0; c < AGENT_CG_CTRL_MAX; c++)
                any_v1 |= h.v1[c][0] != '\0';
        h.mode = any_v1 && h.v2[0] ? AGENT_CG_MODE_HYBRID
                 : any_v1          ? AGENT_CG_MODE_V1
                 : h.v2[0]         ? AGENT_CG_MODE_V2
                                   : AGENT_CG_MODE_NONE;
        *ret = h;
        return 0;
}

unsigned agent_cg_parse_controllers(const char *text)
{
        unsigned bits = 0;
        char buf[512];
        snprintf(buf, sizeof buf, "%s", text);
        char *save = NULL;
        for (char *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
                for (int c = 0; c < AGENT_CG_CTRL_MAX; c++)
                        if (v2_names[c] && strcmp(t, v2_names[c]) == 0)
                                bits |= AGENT_CG_BIT(c);
        return bits;
}

static int read_file(const char *path, char *buf, size_t size)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        size_t len = 0;
        while (len + 1 < size) {
                ssize_t n = read(fd, buf + len, size - 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        return (int)len;
}

int agent_cg_detect(struct agent_cg_host *ret)
{
        size_t size = 1 << 20;
        _cleanup_free_ char *text = malloc(size);
        if (!text)
                return -ENOMEM;
        int r = read_file("/proc/self/mountinfo", text, size);
        if (r < 0)
                return r;
        agent_cg_parse_mountinfo(text, ret);
        if (ret->v2[0]) {
                char ctl[512];
                if (agent_cg_read(ret->v2, "cgroup.controllers", ctl, sizeof ctl) >= 0)
                        ret->v2_ctrls = agent_cg_parse_controllers(ctl);
        }
        return 0;
}

const struct agent_cg_host *agent_cg_host(void)
{
        static struct agent_cg_host host;
        static bool done;
        if (!done) {
                done = true;
                int r = agent_cg_detect(&host);
                char desc[512];
                agent_cg_describe(&host, desc, sizeof desc);
                if (r < 0)
                        fl_log(LOG_WARNING, "cgroup detection failed: %s", strerror(-r));
                else
                        fl_log(LOG_INFO, "%s", desc);
        }
        return &host;
}

int agent_cg_gen(const struct agent_cg_host *h, enum agent_cg_ctrl c)
{
        if ((unsigned)c >= AGENT_CG_CTRL_MAX)
                return 0;
        if (h->v1[c][0])
                return 1;
        if (!h->v2[0])
                return 0;
        /* cpu.stat's usage and cgroup.freeze are core v2 files. On a
         * hybrid host the v2 tree may hold no processes of interest, so
         * only a pure v2 host counts them as present without a v1 mount. */
        if (c == AGENT_CG_CPUACCT || c == AGENT_CG_FREEZER)
                return h->mode == AGENT_CG_MODE_V2 ? 2 : 0;
        return (h->v2_ctrls & AGENT_CG_BIT(c)) ? 2 : 0;
}

void agent_cg_describe(const struct agent_cg_host *h, char *buf, size_t size)
{
        size_t len = 0;
#define APPEND(...)                                                                                \
        do {                                                                                       \
                if (len < size) {                                                                  \
                        int w_ = snprintf(buf + len, size - len, __VA_ARGS__);                     \
                        if (w_ > 0)                                                                \
                                len += (size_t)w_;                                                 \
                }                                                                                  \
        } while (0)
        if (size == 0)
                return;
        buf[0] = '\0';
        APPEND("cgroup %s", agent_cg_mode_name(h->mode));
        if (h->mode == AGENT_CG_MODE_V1 || h->mode == AGENT_CG_MODE_HYBRID) {
                int n = 0;
                APPEND(": v1 ");
                for (int c = 0; c < AGENT_CG_CTRL_MAX; c++)
                        if (h->v1[c][0])
                                APPEND("%s%s", n++ ? "," : "", v1_names[c]);
                if (!n)
                        APPEND("(no controllers)");
        }
        if (h->v2[0]) {
                int n = 0;
                APPEND("%s v2 %s (", h->mode == AGENT_CG_MODE_HYBRID ? ";" : ":", h->v2);
                for (int c = 0; c < AGENT_CG_CTRL_MAX; c++)
                        if ((h->v2_ctrls & AGENT_CG_BIT(c)) && v2_names[c])
                                APPEND("%s%s", n++ ? "," : "", v2_names[c]);
                APPEND("%s)", n ? "" : "no controllers");
        }
#undef APPEND
        if (len >= size)
                buf[size - 1] = '\0';
}

const char *agent_cg_unsupported(unsigned mask)
{
        static char reasons[AGENT_CG_CTRL_MAX][256];
        const struct agent_cg_host *h = agent_cg_host();
        for (int c = 0; c < AGENT_CG_CTRL_MAX; c++) {
                if (!(mask & AGENT_CG_BIT(c)) || agent_cg_gen(h, (enum agent_cg_ctrl)c))
                        continue;
                if (h->mode == AGENT_CG_MODE_NONE)
                        return "no cgroup filesystem is mounted";
                if (h->v2[0])
                        snprintf(reasons[c], sizeof reasons[c],
                                 "no %s controller: no cgroup v1 %s hierarchy, and the cgroup v2 "
                                 "mount %.100s does not offer it (cgroup %s)",
                                 v2_names[c] ? v2_names[c] : v1_names[c], v1_names[c], h->v2,
                                 agent_cg_mode_name(h->mode));
                else
                        snprintf(reasons[c], sizeof reasons[c],
                                 "no %s controller: no cgroup v1 %s hierarchy is mounted and "
                                 "there is no cgroup v2 mount",
                                 v1_names[c], v1_names[c]);
                return reasons[c];
        }
        return NULL;
}

/* --- paths ------------------------------------------------------------ */

static const char *base_of(const struct agent_cg_host *h, enum agent_cg_ctrl c)
{
        int g = agent_cg_gen(h, c);
        return g == 1 ? h->v1[c] : g == 2 ? h->v2 : NULL;
}

int agent_cg_dir(const struct agent_cg_host *h, enum agent_cg_ctrl c, const char *rel, char *buf,
                 size_t size)
{
        const char *base = base_of(h, c);
        if (!base)
                return -EOPNOTSUPP;
        int w = snprintf(buf, size, "%s%s", base, strcmp(rel, "/") == 0 ? "" : rel);
        return w < 0 || (size_t)w >= size ? -ENAMETOOLONG : 0;
}

/* The path of the g=1 hierarchy holding c, or (g=2) of the unified one. */
static int parse_proc_cgroup_gen(const char *text, int g, enum agent_cg_ctrl c, char *buf,
                                 size_t size)
{
        for (const char *line = text; line && *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) : strlen(line);
                const char *c1 = memchr(line, ':', len);
                const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
                if (c2) {
                        char ctrls[256];
                        size_t cl = (size_t)(c2 - c1 - 1);
                        bool hit;
                        if (cl < sizeof ctrls) {
                                memcpy(ctrls, c1 + 1, cl);
                                ctrls[cl] = '\0';
                                hit = g == 2 ? (cl == 0 && c1 - line == 1 && line[0] == '0')
                                             : opt_has(ctrls, v1_names[c]);
                                if (hit) {
                                        size_t pl = len - (size_t)(c2 + 1 - line);
                                        if (pl == 0 || pl >= size)
                                                return -ENAMETOOLONG;
                                        memcpy(buf, c2 + 1, pl);
                                        buf[pl] = '\0';
                                        return 0;
                                }
                        }
                }
                line = nl ? nl + 1 : NULL;
        }
        return -ENOENT;
}

int agent_cg_parse_proc_cgroup(const char *text, const struct agent_cg_host *h,
                               enum agent_cg_ctrl c, char *buf, size_t size)
{
        int g = agent_cg_gen(h, c);
        if (!g)
                return -EOPNOTSUPP;
        return parse_proc_cgroup_gen(text, g, c, buf, size);
}

static int pid_rel_gen(pid_t pid, int g, enum agent_cg_ctrl c, char *buf, size_t size)
{
        char path[64], text[8192];
        snprintf(path, sizeof path, "/proc/%d/cgroup", (int)pid);
        int r = read_file(path, text, sizeof text);
        if (r < 0)
                return r == -ENOENT ? -ESRCH : r;
        return parse_proc_cgroup_gen(text, g, c, buf, size);
}

int agent_cg_pid_rel(const struct agent_cg_host *h, pid_t pid, enum agent_cg_ctrl c, char *buf,
                     size_t size)
{
        int g = agent_cg_gen(h, c);
        if (!g)
                return -EOPNOTSUPP;
        return pid_rel_gen(pid, g, c, buf, size);
}

int agent_cg_parse_unit(const char *value, char *buf, size_t size, char *err, size_t errlen)
{
        size_t len = strlen(value);
        if (len == 0 || len > 240 || strchr(value, '/') || value[0] == '.' ||
            strspn(value,
                   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.@\\") !=
                len) {
                snprintf(err, errlen,
                         "unit=%s: expected a systemd unit name like nginx.service (no '/')",
                         value);
                return -EINVAL;
        }
        const char *dot = strrchr(value, '.');
        static const char *const suffixes[] = {".service", ".scope", ".slice", ".socket",
                                               ".mount",   ".swap",  NULL};
        bool has_suffix = false;
        for (size_t i = 0; dot && suffixes[i]; i++)
                has_suffix |= strcmp(dot, suffixes[i]) == 0;
        int w = snprintf(buf, size, "%s%s", value, has_suffix ? "" : ".service");
        if (w < 0 || (size_t)w >= size) {
                snprintf(err, errlen, "unit=%s: too long", value);
                return -EINVAL;
        }
        return 0;
}

int agent_cg_parse_rel(const char *value, char *buf, size_t size, char *err, size_t errlen)
{
        size_t len = strlen(value);
        if (value[0] != '/' || len >= size || len > 1000) {
                snprintf(err, errlen,
                         "cgroup=%s: expected a path from the cgroup root, like "
                         "/system.slice/nginx.service",
                         value);
                return -EINVAL;
        }
        /* Components: no "", ".", ".." (a trailing '/' is dropped). */
        char tmp[1024];
        memcpy(tmp, value, len + 1);
        while (len > 1 && tmp[len - 1] == '/')
                tmp[--len] = '\0';
        for (const char *p = tmp + 1; len > 1 && p;) {
                const char *e = strchr(p, '/');
                size_t n = e ? (size_t)(e - p) : strlen(p);
                if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
                        snprintf(err, errlen, "cgroup=%s: empty, '.' or '..' path component",
                                 value);
                        return -EINVAL;
                }
                p = e ? e + 1 : NULL;
        }
        memcpy(buf, tmp, len + 1);
        return 0;
}

/* Depth-first search under dir for a directory named name; the first hit
 * goes to out. Bounded in depth and in directories visited. */
static int find_dir(const char *dir, const char *name, int depth, int *budget, char *out,
                    size_t size)
{
        if (depth > 12 || --*budget < 0)
                return -ENOENT;
        DIR *d = opendir(dir);
        if (!d)
                return -ENOENT;
        struct dirent *de;
        int r = -ENOENT;
        char sub[PATH_MAX];
        while (r == -ENOENT && (de = readdir(d))) {
                if (de->d_type != DT_DIR || de->d_name[0] == '.')
                        continue;
                if (snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name) >= (int)sizeof sub)
                        continue;
                if (strcmp(de->d_name, name) == 0) {
                        r = fl_strlcpy(out, sub, size) < 0 ? -ENAMETOOLONG : 0;
                        break;
                }
                r = find_dir(sub, name, depth + 1, budget, out, size);
        }
        closedir(d);
        return r;
}

static bool rel_has_component(const char *rel, const char *name)
{
        size_t n = strlen(name);
        for (const char *p = rel; (p = strstr(p, name)); p++)
                if (p > rel && p[-1] == '/' && (p[n] == '/' || p[n] == '\0'))
                        return true;
        return false;
}

int agent_cg_resolve(const struct agent_cg_host *h, const char *unit, const char *rel,
                     enum agent_cg_ctrl c, char *ret_dir, size_t dirlen, char *ret_rel,
                     size_t rellen, char *err, size_t errlen)
{
        const char *base = base_of(h, c);
        char found[PATH_MAX], r_rel[PATH_MAX];
        struct stat st;
        if (!base) {
                snprintf(err, errlen, "%s", agent_cg_unsupported(AGENT_CG_BIT(c)));
                return -EOPNOTSUPP;
        }
        if (rel) {
                if (agent_cg_dir(h, c, rel, ret_dir, dirlen) < 0) {
                        snprintf(err, errlen, "cgroup=%s: path too long", rel);
                        return -ENAMETOOLONG;
                }
                if (stat(ret_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                        snprintf(err, errlen, "cgroup=%s: no such cgroup (%s)", rel, ret_dir);
                        return -ENOENT;
                }
                if (ret_rel)
                        fl_strlcpy(ret_rel, rel, rellen);
                return 0;
        }

        /* The unit's directory in c's own hierarchy is the answer. */
        int budget = 20000;
        if (find_dir(base, unit, 0, &budget, found, sizeof found) == 0) {
                if (fl_strlcpy(ret_dir, found, dirlen) < 0)
                        return -ENAMETOOLONG;
                if (ret_rel)
                        snprintf(ret_rel, rellen, "%s", found + strlen(base));
                return 0;
        }
        /* Elsewhere (v1: name=systemd; hybrid: the v2 tree): ask where its
         * first process sits in c's hierarchy. */
        const char *others[] = {h->v1_systemd, h->v2};
        bool seen = false;
        for (size_t i = 0; i < FL_ARRAY_SIZE(others); i++) {
                budget = 20000;
                if (!others[i][0] || strcmp(others[i], base) == 0 ||
                    find_dir(others[i], unit, 0, &budget, found, sizeof found) < 0)
                        continue;
                seen = true;
                _cleanup_free_ pid_t *pids = NULL;
                int n = agent_cg_procs(found, true, &pids);
                if (n <= 0)
                        continue;
                int r = agent_cg_pid_rel(h, pids[0], c, r_rel, sizeof r_rel);
                if (r < 0)
                        continue;
                if (!rel_has_component(r_rel, unit)) {
                        snprintf(err, errlen,
                                 "unit %s has no %s cgroup of its own (its processes sit in %s, "
                                 "shared with others): enable accounting for that controller "
                                 "for the unit",
                                 unit, v1_names[c], r_rel);
                        return -EPERM;
                }
                if (agent_cg_dir(h, c, r_rel, ret_dir, dirlen) < 0)
                        return -ENAMETOOLONG;
                if (ret_rel)
                        fl_strlcpy(ret_rel, r_rel, rellen);
                return 0;
        }
        snprintf(err, errlen,
                 seen ? "unit %s has no running process to find its %s cgroup by"
                      : "unit %s: no cgroup of that name (is it running?)",
                 unit, v1_names[c]);
        return -ENOENT;
}

static bool rel_is_within(const char *rel, const char *anc)
{
        if (strcmp(anc, "/") == 0)
                return true;
        size_t n = strlen(anc);
        return strncmp(rel, anc, n) == 0 && (rel[n] == '\0' || rel[n] == '/');
}

/* comm of a live pid, "" when it cannot be read (gone: not a match). */
static void pid_comm(pid_t pid, char *buf, size_t size)
{
        char path[64], text[512];
        buf[0] = '\0';
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        if (read_file(path, text, sizeof text) <= 0)
                return;
        const char *lp = strchr(text, '('), *rp = strrchr(text, ')');
        if (!lp || !rp || rp <= lp)
                return;
        snprintf(buf, size, "%.*s", (int)(rp - lp - 1), lp + 1);
}

/* agent_cg_check_target for a dir in the hierarchy mounted at base, of
 * generation g (c names the v1 one), called what for messages. */
static int check_target_in(const char *base, int g, enum agent_cg_ctrl c, const char *what,
                           const char *dir, bool check_procs, char *err, size_t errlen)
{
        size_t bl = base ? strlen(base) : 0;
        if (!base || !bl || strncmp(dir, base, bl) != 0 || (dir[bl] != '\0' && dir[bl] != '/')) {
                snprintf(err, errlen, "refused: %s is not under the %s hierarchy", dir, what);
                return -EPERM;
        }
        const char *rel = dir[bl] ? dir + bl : "/";
        if (strcmp(rel, "/") == 0) {
                snprintf(err, errlen, "refused: %s is the root cgroup of the %s hierarchy", dir,
                         what);
                return -EPERM;
        }
        if (rel_is_within(rel, "/" AGENT_CG_PARENT)) {
                snprintf(err, errlen, "refused: %s belongs to the agent's own worker groups", dir);
                return -EPERM;
        }
        char mine[PATH_MAX];
        if (pid_rel_gen(getpid(), g, c, mine, sizeof mine) == 0 && rel_is_within(mine, rel)) {
                snprintf(err, errlen, "refused: cgroup %s holds the faultline agent itself (%s)",
                         rel, mine);
                return -EPERM;
        }
        if (!check_procs)
                return 0;
        _cleanup_free_ pid_t *pids = NULL;
        int n = agent_cg_procs(dir, true, &pids);
        if (n < 0) {
                snprintf(err, errlen, "reading processes of %s: %s", dir, strerror(-n));
                return n;
        }
        for (int i = 0; i < n; i++) {
                char comm[32];
                if (agent_pid_is_protected(pids[i])) {
                        snprintf(err, errlen, "refused: cgroup %s holds protected pid %d", rel,
                                 (int)pids[i]);
                        return -EPERM;
                }
                pid_comm(pids[i], comm, sizeof comm);
                if (agent_name_is_protected(comm)) {
                        snprintf(err, errlen,
                                 "refused: cgroup %s holds pid %d (%s), a protected process", rel,
                                 (int)pids[i], comm);
                        return -EPERM;
                }
        }
        return 0;
}

int agent_cg_check_target(const struct agent_cg_host *h, enum agent_cg_ctrl c, const char *dir,
                          char *err, size_t errlen)
{
        return check_target_in(base_of(h, c), agent_cg_gen(h, c), c, v1_names[c], dir, true, err,
                               errlen);
}

int agent_cg_v2_target(const struct agent_cg_host *h, const char *unit, const char *rel,
                       bool check_procs, char *ret_dir, size_t dirlen, char *err, size_t errlen)
{
        struct stat st;
        if (!h->v2[0]) {
                snprintf(err, errlen, "no cgroup v2 mount");
                return -EOPNOTSUPP;
        }
        if (rel) {
                if (snprintf(ret_dir, dirlen, "%s%s", h->v2, strcmp(rel, "/") == 0 ? "" : rel) >=
                    (int)dirlen) {
                        snprintf(err, errlen, "cgroup=%s: path too long", rel);
                        return -ENAMETOOLONG;
                }
                if (stat(ret_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                        snprintf(err, errlen, "cgroup=%s is not in the cgroup v2 tree", rel);
                        return -ENOENT;
                }
        } else {
                int budget = 20000;
                if (find_dir(h->v2, unit, 0, &budget, ret_dir, dirlen) < 0) {
                        snprintf(err, errlen, "unit %s has no cgroup in the cgroup v2 tree", unit);
                        return -ENOENT;
                }
        }
        return check_target_in(h->v2, 2, AGENT_CG_CPU, "cgroup v2", ret_dir, check_procs, err,
                               errlen);
}

/* --- processes and files ------------------------------------------------ */

static int cmp_pid(const void *a, const void *b)
{
        pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
        return (x > y) - (x < y);
}

static int procs_add(const char *dir, bool recursive, int depth, pid_t **arr, size_t *n,
                     size_t *cap)
{
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/cgroup.procs", dir) >= (int)sizeof path)
                return -ENAMETOOLONG;
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f)
                return errno == ENOENT && depth > 0 ? 0 : -errno;
        long v;
        while (fscanf(f, "%ld", &v) == 1) {
                if (*n == AGENT_CG_MAX_PROCS)
                        return -E2BIG;
                if (*n == *cap) {
                        size_t nc = *cap ? *cap * 2 : 64;
                        pid_t *t = realloc(*arr, nc * sizeof *t);
                        if (!t)
                                return -ENOMEM;
                        *arr = t;
                        *cap = nc;
                }
                (*arr)[(*n)++] = (pid_t)v;
        }
        if (!recursive || depth > 16)
                return 0;
        DIR *d = opendir(dir);
        if (!d)
                return 0;
        struct dirent *de;
        int r = 0;
        while (r == 0 && (de = readdir(d))) {
                if (de->d_type != DT_DIR || de->d_name[0] == '.')
                        continue;
                char sub[PATH_MAX];
                if (snprintf(sub, sizeof sub, "%s/%s", dir, de->d_name) >= (int)sizeof sub)
                        continue;
                r = procs_add(sub, true, depth + 1, arr, n, cap);
        }
        closedir(d);
        return r;
}

int agent_cg_procs(const char *dir, bool recursive, pid_t **ret)
{
        pid_t *arr = NULL;
        size_t n = 0, cap = 0;
        *ret = NULL;
        int r = procs_add(dir, recursive, 0, &arr, &n, &cap);
        if (r < 0) {
                free(arr);
                return r;
        }
        if (n > 1)
                qsort(arr, n, sizeof *arr, cmp_pid);
        *ret = arr;
        return (int)n;
}

int agent_cg_read(const char *dir, const char *file, char *buf, size_t size)
{
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
                return -ENAMETOOLONG;
        int r = read_file(path, buf, size);
        if (r < 0)
                return r;
        while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == ' '))
                buf[--r] = '\0';
        return r;
}

int agent_cg_write(const char *dir, const char *file, const char *text)
{
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path)
                return -ENAMETOOLONG;
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        /* cgroup files take one value per write(2). */
        size_t len = strlen(text);
        ssize_t n;
        do
                n = write(fd, text, len);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        return (size_t)n == len ? 0 : -EIO;
}

int agent_cg_read_u64(const char *dir, const char *file, uint64_t *ret)
{
        char buf[64];
        int r = agent_cg_read(dir, file, buf, sizeof buf);
        if (r < 0)
                return r;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(buf, &end, 10);
        if (errno || end == buf || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

const struct agent_cg_ops *agent_cg_ops_gen(int gen)
{
        return gen == 1 ? &agent_cg_v1_ops : gen == 2 ? &agent_cg_v2_ops : NULL;
}

const struct agent_cg_ops *agent_cg_ops_for(const struct agent_cg_host *h, enum agent_cg_ctrl c)
{
        return agent_cg_ops_gen(agent_cg_gen(h, c));
}

void agent_cg_io_format(const struct agent_cg_io_limit *l, char *buf, size_t size)
{
        static const char *const names[AGENT_CG_IO_MAX] = {"rbps", "wbps", "riops", "wiops"};
        size_t len = 0;
        buf[0] = '\0';
        for (int i = 0; i < AGENT_CG_IO_MAX && len < size; i++) {
                int w = l->v[i]
                            ? snprintf(buf + len, size - len, "%s%s=%llu", len ? " " : "", names[i],
                                       (unsigned long long)l->v[i])
                            : snprintf(buf + len, size - len, "%s%s=max", len ? " " : "", names[i]);
                if (w > 0)
                        len += (size_t)w;
        }
}
