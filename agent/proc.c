/* procfs / pidfd helpers and the target set of the process faults. */
#include "proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cg/cg.h"
#include "fl_parse.h"
#include "fl_util.h"

static void closedirp(DIR **d)
{
        if (*d)
                closedir(*d);
}

/* Read a whole small procfs file into buf[size] (NUL-terminated, possibly
 * truncated). A missing file means the process is gone. */
static int read_proc_file(pid_t pid, const char *what, char *buf, size_t size)
{
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, what);
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : -errno;

        size_t len = 0;
        while (len + 1 < size) {
                ssize_t n = read(fd, buf + len, size - 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        /* A process torn down between open and read. */
                        return errno == ESRCH ? -ESRCH : -errno;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        return (int)len;
}

/* Digits only, no sign, no overflow. */
static int parse_u64_span(const char *s, size_t len, uint64_t *ret)
{
        uint64_t v = 0;
        if (len == 0)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                unsigned d = (unsigned)(s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

int agent_proc_parse_stat(const char *buf, struct agent_proc_stat *ret)
{
        struct agent_proc_stat st = {0};

        /* comm is free text chosen by the process: anything between the
         * first '(' and the last ')' belongs to it, including ") (". */
        const char *lp = strchr(buf, '(');
        const char *rp = strrchr(buf, ')');
        if (!lp || !rp || rp < lp || lp == buf || lp[-1] != ' ')
                return -EINVAL;

        uint64_t pid;
        if (parse_u64_span(buf, (size_t)(lp - 1 - buf), &pid) < 0 || pid == 0 || pid > INT_MAX)
                return -EINVAL;
        st.pid = (pid_t)pid;

        /* Kernel threads can show longer names (workqueue workers); only
         * user processes are matched by name, and theirs fit. */
        size_t clen = (size_t)(rp - lp - 1);
        if (clen >= sizeof st.comm)
                clen = sizeof st.comm - 1;
        memcpy(st.comm, lp + 1, clen);
        st.comm[clen] = '\0';

        const char *p = rp + 1;
        for (int field = 3; field <= 22; field++) {
                if (*p != ' ')
                        return -EINVAL;
                p++;
                size_t len = strcspn(p, " \n");
                if (field == 3) {
                        if (len != 1)
                                return -EINVAL;
                        st.state = p[0];
                } else if (field == 9) {
                        uint64_t v;
                        if (parse_u64_span(p, len, &v) < 0 || v > UINT_MAX)
                                return -EINVAL;
                        st.flags = (unsigned)v;
                } else if (field == 22) {
                        if (parse_u64_span(p, len, &st.start) < 0)
                                return -EINVAL;
                } else if (len == 0) {
                        return -EINVAL;
                }
                p += len;
        }
        *ret = st;
        return 0;
}

int agent_proc_read_stat(pid_t pid, struct agent_proc_stat *ret)
{
        char buf[2048];
        if (pid <= 0)
                return -ESRCH;
        int r = read_proc_file(pid, "stat", buf, sizeof buf);
        if (r < 0)
                return r;
        if (r == 0)
                return -ESRCH;
        return agent_proc_parse_stat(buf, ret);
}

int agent_proc_read_cmdline(pid_t pid, char *buf, size_t size)
{
        if (size == 0)
                return -EINVAL;
        int r = read_proc_file(pid, "cmdline", buf, size);
        if (r < 0)
                return r;
        size_t len = (size_t)r;
        /* argv ends with a NUL: drop trailing separators, then join. */
        while (len > 0 && buf[len - 1] == '\0')
                len--;
        for (size_t i = 0; i < len; i++)
                if (buf[i] == '\0')
                        buf[i] = ' ';
        buf[len] = '\0';
        return (int)len;
}

int agent_proc_pidfd_open(pid_t pid, uint64_t start)
{
        if (pid <= 0)
                return -ESRCH;
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
                return errno == ESRCH ? -ESRCH : -errno;

        /* Check after opening: if the stat we read now shows the recorded
         * start time, the pid was held by the target at a moment after the
         * pidfd was taken, so the pidfd refers to the target. Checking
         * before opening would leave a window for a recycle. */
        struct agent_proc_stat st;
        int r = agent_proc_read_stat(pid, &st);
        if (r < 0 || st.start != start) {
                close(fd);
                return -ESRCH;
        }
        return fd;
}

int agent_proc_pidfd_signal(int pidfd, int sig)
{
        if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
                return -errno;
        return 0;
}

int agent_proc_pidfd_wait_exit(int pidfd, int timeout_ms)
{
        uint64_t deadline = fl_now_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
        for (;;) {
                uint64_t now = fl_now_mono_ms();
                int left = now >= deadline ? 0 : (int)(deadline - now);
                struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
                int r = poll(&pfd, 1, left);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r > 0)
                        return 0;
                if (left == 0)
                        return -ETIMEDOUT;
        }
}

bool agent_proc_is_protected(const struct agent_proc_stat *st)
{
        return agent_pid_is_protected(st->pid) || agent_name_is_protected(st->comm);
}

int agent_proc_state(pid_t pid, uint64_t start, char *ret_state)
{
        struct agent_proc_stat st;
        int r = agent_proc_read_stat(pid, &st);
        if (r < 0)
                return r == -EINVAL ? r : -ESRCH;
        if (st.start != start)
                return -ESRCH;
        *ret_state = st.state;
        return 0;
}

/* --- selectors --------------------------------------------------------- */

int agent_proc_selector_init(struct agent_proc_selector *sel, const char *key, const char *value,
                             char *err, size_t errlen)
{
        memset(sel, 0, sizeof *sel);
        snprintf(sel->text, sizeof sel->text, "%s=%s", key, value);

        if (strcmp(key, "pid") == 0) {
                uint64_t v;
                if (fl_parse_u64(value, &v) < 0 || v == 0 || v > INT_MAX) {
                        snprintf(err, errlen, "pid=%s: expected a process id above 0", value);
                        return -EINVAL;
                }
                sel->kind = AGENT_PROC_SEL_PID;
                sel->pid = (pid_t)v;
                return 0;
        }
        if (strcmp(key, "name") == 0) {
                size_t len = strlen(value);
                /* The kernel keeps 15 bytes of comm: a longer name could
                 * never match exactly, which would only surface later as a
                 * confusing "no process matches". */
                if (len == 0 || len >= AGENT_PROC_COMM_LEN) {
                        snprintf(err, errlen,
                                 "name=%s: must be 1..%d bytes, the kernel's comm length "
                                 "(use cmdline= for longer names)",
                                 value, AGENT_PROC_COMM_LEN - 1);
                        return -EINVAL;
                }
                sel->kind = AGENT_PROC_SEL_NAME;
                memcpy(sel->name, value, len + 1);
                return 0;
        }
        if (strcmp(key, "cmdline") == 0) {
                /* An empty pattern matches every process on the host. */
                if (value[0] == '\0') {
                        snprintf(err, errlen, "cmdline= must not be empty");
                        return -EINVAL;
                }
                char cx[128];
                if (fl_regex_check_size(value, cx, sizeof(cx)) < 0) {
                        snprintf(err, errlen, "cmdline=%.64s: %s", value, cx);
                        return -EINVAL;
                }
                int r = regcomp(&sel->re, value, REG_EXTENDED | REG_NOSUB);
                if (r != 0) {
                        char why[128];
                        regerror(r, &sel->re, why, sizeof why);
                        snprintf(err, errlen, "cmdline=%s: bad regular expression: %s", value, why);
                        return -EINVAL;
                }
                sel->re_set = true;
                sel->kind = AGENT_PROC_SEL_CMDLINE;
                return 0;
        }
        if (strcmp(key, "unit") == 0 || strcmp(key, "cgroup") == 0) {
                bool unit = key[0] == 'u';
                int r = unit ? agent_cg_parse_unit(value, sel->cg, sizeof sel->cg, err, errlen)
                             : agent_cg_parse_rel(value, sel->cg, sizeof sel->cg, err, errlen);
                if (r < 0)
                        return r;
                /* A selector for "/" would be every process on the host. */
                if (!unit && strcmp(sel->cg, "/") == 0) {
                        snprintf(err, errlen, "cgroup=/ selects every process: refused");
                        return -EINVAL;
                }
                sel->kind = unit ? AGENT_PROC_SEL_UNIT : AGENT_PROC_SEL_CGROUP;
                return 0;
        }
        snprintf(err, errlen, "%s= is not a process selector", key);
        return -EINVAL;
}

void agent_proc_selector_done(struct agent_proc_selector *sel)
{
        if (sel && sel->re_set) {
                regfree(&sel->re);
                sel->re_set = false;
        }
}

/* Each line is "ID:CONTROLLERS:PATH"; any hierarchy counts, so the same
 * selector works on v1, v2 and hybrid hosts. */
bool agent_proc_cgroup_text_match(const struct agent_proc_selector *sel, const char *text)
{
        size_t n = strlen(sel->cg);
        for (const char *line = text; line && *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t)(nl - line) : strlen(line);
                const char *c1 = memchr(line, ':', len);
                const char *path = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - line)) : NULL;
                if (path) {
                        path++;
                        size_t pl = len - (size_t)(path - line);
                        if (sel->kind == AGENT_PROC_SEL_CGROUP) {
                                if (pl >= n && strncmp(path, sel->cg, n) == 0 &&
                                    (pl == n || path[n] == '/'))
                                        return true;
                        } else {
                                for (const char *p = path; p < path + pl; p++)
                                        if (p[0] == '/' && (size_t)(path + pl - p - 1) >= n &&
                                            strncmp(p + 1, sel->cg, n) == 0 &&
                                            (p + 1 + n == path + pl || p[1 + n] == '/'))
                                                return true;
                        }
                }
                line = nl ? nl + 1 : NULL;
        }
        return false;
}

static bool cgroup_match(const struct agent_proc_selector *sel, pid_t pid)
{
        char buf[8192];
        int r = read_proc_file(pid, "cgroup", buf, sizeof buf);
        return r > 0 && agent_proc_cgroup_text_match(sel, buf);
}

bool agent_proc_selector_match(const struct agent_proc_selector *sel,
                               const struct agent_proc_stat *st, const char *cmdline)
{
        switch (sel->kind) {
        case AGENT_PROC_SEL_PID:
                return st->pid == sel->pid;
        case AGENT_PROC_SEL_NAME:
                return strcmp(st->comm, sel->name) == 0;
        case AGENT_PROC_SEL_CMDLINE:
                return cmdline && cmdline[0] && regexec(&sel->re, cmdline, 0, NULL, 0) == 0;
        case AGENT_PROC_SEL_UNIT:
        case AGENT_PROC_SEL_CGROUP:
                return cgroup_match(sel, st->pid);
        default:
                return false;
        }
}

static bool proc_is_user_alive(const struct agent_proc_stat *st)
{
        return !(st->flags & AGENT_PROC_PF_KTHREAD) && st->state != 'Z' && st->state != 'X';
}

static int cmp_pid_t(const void *a, const void *b)
{
        pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
        return (x > y) - (x < y);
}

static int cmp_stat_pid(const void *a, const void *b)
{
        pid_t x = ((const struct agent_proc_stat *)a)->pid;
        pid_t y = ((const struct agent_proc_stat *)b)->pid;
        return (x > y) - (x < y);
}

/* cgroup=/rel: the processes listed in <mount>/rel (and below) of every
 * cgroup hierarchy mounted at its root are exactly those whose
 * /proc/PID/cgroup puts them at or below rel in some hierarchy — found
 * without reading two files for every process on the host. Returns the
 * sorted, distinct pids, or -ENOTSUP when no hierarchy is mounted at its
 * root (a cgroup namespace, say): then the caller walks /proc. */
static int cgroup_candidates(const char *rel, pid_t **ret)
{
        *ret = NULL;
        _cleanup_fclose_ FILE *mi = fopen("/proc/self/mountinfo", "re");
        if (!mi)
                return -errno;
        _cleanup_free_ pid_t *all = NULL;
        size_t n = 0;
        bool any = false;
        char line[4096], root[PATH_MAX], mnt[PATH_MAX], fstype[32], dir[PATH_MAX];
        while (fgets(line, sizeof line, mi)) {
                const char *dash = strstr(line, " - ");
                if (!dash || sscanf(dash + 3, "%31s", fstype) != 1 ||
                    (strcmp(fstype, "cgroup") != 0 && strcmp(fstype, "cgroup2") != 0))
                        continue;
                /* Fields 4 and 5; a mount point with escaped blanks is
                 * left to the /proc walk's semantics by skipping it. */
                if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2 ||
                    strcmp(root, "/") != 0 || strchr(mnt, '\\'))
                        continue;
                any = true;
                if (snprintf(dir, sizeof dir, "%s%s", mnt, rel) >= (int)sizeof dir)
                        continue;
                pid_t *p = NULL;
                int k = agent_cg_procs(dir, true, &p);
                if (k == -ENOENT || k == -ENOTDIR || k == 0) {
                        free(p);
                        continue;
                }
                if (k < 0)
                        return k;
                if (n + (size_t)k > 8 * AGENT_PROC_MAX_MATCHES) {
                        free(p);
                        return -E2BIG;
                }
                pid_t *t = realloc(all, (n + (size_t)k) * sizeof *t);
                if (!t) {
                        free(p);
                        return -ENOMEM;
                }
                all = t;
                memcpy(all + n, p, (size_t)k * sizeof *p);
                n += (size_t)k;
                free(p);
        }
        if (!any)
                return -ENOTSUP;
        if (n > 1) {
                qsort(all, n, sizeof *all, cmp_pid_t);
                size_t u = 1;
                for (size_t i = 1; i < n; i++)
                        if (all[i] != all[u - 1])
                                all[u++] = all[i];
                n = u;
        }
        *ret = FL_TAKE_PTR(all);
        return (int)n;
}

int agent_proc_scan(const struct agent_proc_selector *sel, struct agent_proc_stat **ret)
{
        *ret = NULL;

        if (sel->kind == AGENT_PROC_SEL_CGROUP) {
                _cleanup_free_ pid_t *pids = NULL;
                int k = cgroup_candidates(sel->cg, &pids);
                if (k != -ENOTSUP) {
                        if (k < 0)
                                return k;
                        _cleanup_free_ struct agent_proc_stat *out =
                            k ? calloc((size_t)k, sizeof *out) : NULL;
                        if (k && !out)
                                return -ENOMEM;
                        size_t n = 0;
                        for (int i = 0; i < k; i++) {
                                /* Gone since the listing: not a match. */
                                if (agent_proc_read_stat(pids[i], &out[n]) < 0 ||
                                    !proc_is_user_alive(&out[n]))
                                        continue;
                                if (n == AGENT_PROC_MAX_MATCHES)
                                        return -E2BIG;
                                n++;
                        }
                        *ret = n ? FL_TAKE_PTR(out) : NULL;
                        return (int)n;
                }
        }

        /* A pid selector looks at one entry instead of walking /proc. */
        if (sel->kind == AGENT_PROC_SEL_PID) {
                struct agent_proc_stat st;
                int r = agent_proc_read_stat(sel->pid, &st);
                if (r == -ESRCH || (r == 0 && !proc_is_user_alive(&st)))
                        return 0;
                if (r < 0)
                        return r;
                struct agent_proc_stat *one = malloc(sizeof *one);
                if (!one)
                        return -ENOMEM;
                *one = st;
                *ret = one;
                return 1;
        }

        _cleanup_free_ char *cmdline = NULL;
        if (sel->kind == AGENT_PROC_SEL_CMDLINE) {
                cmdline = malloc(AGENT_PROC_CMDLINE_MAX);
                if (!cmdline)
                        return -ENOMEM;
        }

        __attribute__((cleanup(closedirp))) DIR *d = opendir("/proc");
        if (!d)
                return -errno;

        _cleanup_free_ struct agent_proc_stat *out = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        while ((errno = 0, de = readdir(d))) {
                uint64_t pid;
                if (parse_u64_span(de->d_name, strlen(de->d_name), &pid) < 0 || pid == 0 ||
                    pid > INT_MAX)
                        continue;

                struct agent_proc_stat st;
                /* Processes come and go while we walk: a vanished one is
                 * simply not a match. */
                if (agent_proc_read_stat((pid_t)pid, &st) < 0 || !proc_is_user_alive(&st))
                        continue;
                if (cmdline &&
                    agent_proc_read_cmdline((pid_t)pid, cmdline, AGENT_PROC_CMDLINE_MAX) <= 0)
                        continue;
                if (!agent_proc_selector_match(sel, &st, cmdline))
                        continue;

                if (n == AGENT_PROC_MAX_MATCHES)
                        return -E2BIG;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        struct agent_proc_stat *t = realloc(out, ncap * sizeof *out);
                        if (!t)
                                return -ENOMEM;
                        out = t;
                        cap = ncap;
                }
                out[n++] = st;
        }
        if (errno != 0)
                return -errno;

        if (n > 0)
                qsort(out, n, sizeof *out, cmp_stat_pid);
        *ret = FL_TAKE_PTR(out);
        return (int)n;
}

/* --- the target set ------------------------------------------------------ */

static bool key_in(const char *key, const char *const *keys)
{
        for (size_t i = 0; keys && keys[i]; i++)
                if (strcmp(key, keys[i]) == 0)
                        return true;
        return false;
}

/* Unknown and repeated keys are rejected before any value is looked at, so
 * a typo ("cout=3") never silently falls back to a default. */
static int check_keys(const struct agent_fault *f, char *err, size_t errlen)
{
        const char *kind = f->ops ? f->ops->kind : "?";
        for (size_t i = 0; i < f->n_params; i++) {
                const char *key = f->params[i].key;
                if (!f->ops || !key_in(key, f->ops->keys)) {
                        snprintf(err, errlen, "unknown param %s= for %s", key, kind);
                        return -EINVAL;
                }
                for (size_t j = 0; j < i; j++)
                        if (strcmp(f->params[j].key, key) == 0) {
                                snprintf(err, errlen, "param %s= given twice", key);
                                return -EINVAL;
                        }
        }
        return 0;
}

int agent_proc_spec_parse(struct agent_proc_spec *spec, const struct agent_fault *f, char *err,
                          size_t errlen)
{
        const struct fl_param *sel = NULL, *count = NULL, *percent = NULL, *seed = NULL;
        struct agent_proc_spec s = {.count = 1};

        memset(spec, 0, sizeof *spec);
        int r = check_keys(f, err, errlen);
        if (r < 0)
                return r;

        for (size_t i = 0; i < f->n_params; i++) {
                const struct fl_param *p = &f->params[i];
                if (strcmp(p->key, "pid") == 0 || strcmp(p->key, "name") == 0 ||
                    strcmp(p->key, "cmdline") == 0 || strcmp(p->key, "unit") == 0 ||
                    strcmp(p->key, "cgroup") == 0) {
                        if (sel) {
                                snprintf(err, errlen,
                                         "%s= and %s= both given: use exactly one selector",
                                         sel->key, p->key);
                                return -EINVAL;
                        }
                        sel = p;
                } else if (strcmp(p->key, "count") == 0) {
                        count = p;
                } else if (strcmp(p->key, "percent") == 0) {
                        percent = p;
                } else if (strcmp(p->key, "seed") == 0) {
                        seed = p;
                }
        }
        if (!sel) {
                snprintf(err, errlen,
                         "one of pid=, name= or cmdline= (or unit=, cgroup=) is required");
                return -EINVAL;
        }
        if (count && percent) {
                snprintf(err, errlen, "count= and percent= both given: use one");
                return -EINVAL;
        }
        if (count) {
                if (fl_parse_u64(count->value, &s.count) < 0 || s.count == 0) {
                        snprintf(err, errlen, "count=%s: expected a whole number above 0",
                                 count->value);
                        return -EINVAL;
                }
        }
        if (percent) {
                if (fl_parse_percent(percent->value, &s.percent_bp) < 0 || s.percent_bp == 0) {
                        snprintf(err, errlen, "percent=%s: expected a percentage in (0,100]",
                                 percent->value);
                        return -EINVAL;
                }
                s.count = 0;
        }
        if (!count && !percent &&
            (strcmp(sel->key, "unit") == 0 || strcmp(sel->key, "cgroup") == 0)) {
                s.all = true;
                s.count = 0;
        }
        if (seed) {
                if (fl_parse_u64(seed->value, &s.seed) < 0) {
                        snprintf(err, errlen, "seed=%s: expected an unsigned integer", seed->value);
                        return -EINVAL;
                }
                s.has_seed = true;
        }
        /* Last, because it is the only step that allocates. */
        r = agent_proc_selector_init(&s.sel, sel->key, sel->value, err, errlen);
        if (r < 0)
                return r;
        *spec = s;
        return 0;
}

void agent_proc_spec_done(struct agent_proc_spec *spec)
{
        if (spec)
                agent_proc_selector_done(&spec->sel);
}

size_t agent_proc_pick_count(size_t n, uint64_t count, uint32_t percent_bp)
{
        if (n == 0)
                return 0;
        size_t k;
        if (percent_bp > 0)
                k = (size_t)(((uint64_t)n * percent_bp + 9999) / 10000);
        else
                k = count < n ? (size_t)count : n;
        if (k < 1)
                k = 1;
        return k > n ? n : k;
}

static uint64_t splitmix64(uint64_t *state)
{
        uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

static int cmp_size(const void *a, const void *b)
{
        size_t x = *(const size_t *)a, y = *(const size_t *)b;
        return (x > y) - (x < y);
}

void agent_proc_pick(size_t n, size_t k, uint64_t seed, size_t *idx)
{
        uint64_t state = seed;
        if (k > n)
                k = n;
        for (size_t i = 0; i < n; i++)
                idx[i] = i;
        for (size_t i = 0; i < k; i++) {
                /* Multiply-shift maps 64 random bits onto [0, n-i); the bias
                 * is below 2^-50 for any n we accept. */
                uint64_t range = (uint64_t)(n - i);
                size_t j = i + (size_t)(((unsigned __int128)splitmix64(&state) * range) >> 64);
                size_t t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
        }
        qsort(idx, k, sizeof *idx, cmp_size);
}

static uint64_t random_seed(void)
{
        uint64_t s;
        if (getrandom(&s, sizeof s, GRND_NONBLOCK) == (ssize_t)sizeof s)
                return s;
        return fl_now_mono_us() ^ ((uint64_t)getpid() << 32);
}

/* "name=nginx pids=12,34" — cut with "+N more" when it would not fit. */
static void format_target(char *buf, size_t size, const char *sel, const struct agent_proc_stat *m,
                          const size_t *idx, size_t k)
{
        int w = snprintf(buf, size, "%s pids=", sel);
        if (w < 0 || (size_t)w >= size) {
                fl_strlcpy(buf, "pids=?", size);
                return;
        }
        size_t len = (size_t)w;
        for (size_t i = 0; i < k; i++) {
                char item[24], more[32];
                snprintf(item, sizeof item, "%s%d", i ? "," : "", (int)m[idx[i]].pid);
                snprintf(more, sizeof more, " (+%zu more)", k - i);
                size_t need = strlen(item) + (i + 1 < k ? strlen(more) : 0);
                if (len + need >= size) {
                        if (len + strlen(more) < size)
                                memcpy(buf + len, more, strlen(more) + 1);
                        return;
                }
                memcpy(buf + len, item, strlen(item) + 1);
                len += strlen(item);
        }
}

int agent_proc_spec_resolve(const struct agent_proc_spec *spec, struct agent_fault *f, char *err,
                            size_t errlen)
{
        const struct agent_proc_selector *sel = &spec->sel;

        if (sel->kind == AGENT_PROC_SEL_PID && agent_pid_is_protected(sel->pid)) {
                snprintf(err, errlen, "refused: pid %d is protected", (int)sel->pid);
                return -EPERM;
        }

        _cleanup_free_ struct agent_proc_stat *m = NULL;
        int n = agent_proc_scan(sel, &m);
        if (n == -E2BIG) {
                snprintf(err, errlen, "more than %d processes match %s: narrow the selector",
                         AGENT_PROC_MAX_MATCHES, sel->text);
                return n;
        }
        if (n < 0) {
                snprintf(err, errlen, "scanning /proc for %s: %s", sel->text, strerror(-n));
                return n;
        }
        if (n == 0) {
                struct agent_proc_stat st;
                if (sel->kind == AGENT_PROC_SEL_PID && agent_proc_read_stat(sel->pid, &st) == 0 &&
                    (st.flags & AGENT_PROC_PF_KTHREAD)) {
                        snprintf(err, errlen, "refused: pid %d is a kernel thread", (int)sel->pid);
                        return -EPERM;
                }
                snprintf(err, errlen, "no process matches %s", sel->text);
                return -ENOENT;
        }

        /* Protected processes are never candidates, so count/percent apply
         * to what may actually be hit. The whole group cannot be hit with
         * one of them spared: that is a refusal. */
        size_t kept = 0;
        pid_t first_protected = 0;
        for (int i = 0; i < n; i++) {
                if (agent_proc_is_protected(&m[i])) {
                        if (spec->all) {
                                snprintf(err, errlen,
                                         "refused: %s holds protected pid %d (%s); a whole-group "
                                         "fault cannot spare it (count= or percent= picks among "
                                         "the others)",
                                         sel->text, (int)m[i].pid, m[i].comm);
                                return -EPERM;
                        }
                        if (!first_protected)
                                first_protected = m[i].pid;
                        continue;
                }
                m[kept++] = m[i];
        }
        if (kept == 0) {
                if (n == 1)
                        snprintf(err, errlen, "refused: pid %d is protected", (int)first_protected);
                else
                        snprintf(err, errlen, "refused: all %d processes matching %s are protected",
                                 n, sel->text);
                return -EPERM;
        }

        size_t k = spec->all ? kept : agent_proc_pick_count(kept, spec->count, spec->percent_bp);
        _cleanup_free_ size_t *idx = malloc(kept * sizeof *idx);
        if (!idx)
                return -ENOMEM;
        uint64_t seed = spec->has_seed ? spec->seed : random_seed();
        agent_proc_pick(kept, k, seed, idx);

        json_t *arr = json_array();
        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < k; i++) {
                const struct agent_proc_stat *t = &m[idx[i]];
                char state[2] = {t->state, '\0'};
                json_t *o = json_pack("{s:i, s:I, s:s, s:s}", "pid", (int)t->pid, "start",
                                      (json_int_t)t->start, "comm", t->comm, "state", state);
                if (!o || json_array_append_new(arr, o) < 0) {
                        json_decref(arr);
                        return -ENOMEM;
                }
        }
        if (!f->undo)
                f->undo = json_object();
        char seedbuf[24];
        snprintf(seedbuf, sizeof seedbuf, "%llu", (unsigned long long)seed);
        /* The seed is kept as a string: json_int_t cannot hold all of u64. */
        if (!f->undo || json_object_set_new(f->undo, "targets", arr) < 0 ||
            json_object_set_new(f->undo, "seed", json_string(seedbuf)) < 0) {
                snprintf(err, errlen, "out of memory recording targets");
                return -ENOMEM;
        }
        format_target(f->target, sizeof f->target, sel->text, m, idx, k);
        return (int)k;
}

int agent_proc_targets_load(const json_t *undo, struct agent_proc_target **ret, char *err,
                            size_t errlen)
{
        *ret = NULL;
        json_t *arr = undo ? json_object_get(undo, "targets") : NULL;
        if (!arr)
                return 0;
        if (!json_is_array(arr)) {
                snprintf(err, errlen, "undo entry: targets is not an array");
                return -EINVAL;
        }
        size_t n = json_array_size(arr);
        if (n == 0)
                return 0;
        if (n > AGENT_PROC_MAX_MATCHES) {
                snprintf(err, errlen, "undo entry: %zu targets, more than %d", n,
                         AGENT_PROC_MAX_MATCHES);
                return -EINVAL;
        }
        _cleanup_free_ struct agent_proc_target *t = calloc(n, sizeof *t);
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_t *o = json_array_get(arr, i);
                json_t *pid = json_object_get(o, "pid");
                json_t *start = json_object_get(o, "start");
                json_t *comm = json_object_get(o, "comm");
                json_t *state = json_object_get(o, "state");
                if (!json_is_object(o) || !json_is_integer(pid) || !json_is_integer(start) ||
                    json_integer_value(pid) <= 0 || json_integer_value(pid) > INT_MAX ||
                    json_integer_value(start) < 0 || (comm && !json_is_string(comm)) ||
                    (state && (!json_is_string(state) || json_string_length(state) != 1))) {
                        snprintf(err, errlen, "undo entry: target %zu is malformed", i);
                        return -EINVAL;
                }
                t[i].pid = (pid_t)json_integer_value(pid);
                t[i].start = (uint64_t)json_integer_value(start);
                if (comm)
                        snprintf(t[i].comm, sizeof t[i].comm, "%s", json_string_value(comm));
                if (state)
                        t[i].state = json_string_value(state)[0];
        }
        *ret = FL_TAKE_PTR(t);
        return (int)n;
}
