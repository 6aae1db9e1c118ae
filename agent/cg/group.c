/* The groups the agent creates for its workers: <mount>/faultline/<id> in
 * every hierarchy a fault needs. Created in apply(), recorded in the undo
 * entry by prepare() before they exist, destroyed by revert() and by crash
 * recovery from that record alone. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cg.h"
#include "fl_util.h"

#define DESTROY_WAIT_MS 2000

static void sleep_ms(long ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
}

int agent_cg_group_plan(const struct agent_cg_host *h, unsigned mask, unsigned required,
                        const char *id, struct agent_cg_group *ret, char *err, size_t errlen)
{
        memset(ret, 0, sizeof *ret);
        for (int c = 0; c < AGENT_CG_CTRL_MAX; c++)
                ret->of[c] = -1;
        if (!id[0] || strchr(id, '/') || id[0] == '.') {
                snprintf(err, errlen, "fault id '%s' cannot name a cgroup", id);
                return -EINVAL;
        }
        for (int c = 0; c < AGENT_CG_CTRL_MAX; c++) {
                if (!(mask & AGENT_CG_BIT(c)))
                        continue;
                int g = agent_cg_gen(h, (enum agent_cg_ctrl)c);
                if (!g) {
                        if (required & AGENT_CG_BIT(c)) {
                                snprintf(err, errlen, "%s", agent_cg_unsupported(AGENT_CG_BIT(c)));
                                return -EOPNOTSUPP;
                        }
                        continue;
                }
                char dir[PATH_MAX];
                const char *base = g == 1 ? h->v1[c] : h->v2;
                if (snprintf(dir, sizeof dir, "%s/" AGENT_CG_PARENT "/%s", base, id) >=
                    (int)sizeof dir) {
                        snprintf(err, errlen, "cgroup path under %s too long", base);
                        return -ENAMETOOLONG;
                }
                size_t i;
                for (i = 0; i < ret->n; i++)
                        if (strcmp(ret->dir[i], dir) == 0)
                                break;
                if (i == ret->n) {
                        memcpy(ret->dir[i], dir, strlen(dir) + 1);
                        ret->gen[i] = g;
                        ret->n++;
                }
                ret->of[c] = (int)i;
                ret->mask |= AGENT_CG_BIT(c);
        }
        if (ret->n == 0) {
                snprintf(err, errlen, "no cgroup hierarchy available for the workers");
                return -EOPNOTSUPP;
        }
        return 0;
}

int agent_cg_group_record(const struct agent_cg_group *g, json_t *undo)
{
        json_t *arr = json_array();
        if (!arr)
                return -ENOMEM;
        for (size_t i = 0; i < g->n; i++)
                if (json_array_append_new(arr, json_string(g->dir[i])) < 0) {
                        json_decref(arr);
                        return -ENOMEM;
                }
        return json_object_set_new(undo, "cgroups", arr) < 0 ? -ENOMEM : 0;
}

const char *agent_cg_group_dir(const struct agent_cg_group *g, enum agent_cg_ctrl c)
{
        if ((unsigned)c >= AGENT_CG_CTRL_MAX || g->of[c] < 0)
                return NULL;
        return g->dir[g->of[c]];
}

/* v2 hands a controller to children only when the parent lists it in
 * cgroup.subtree_control; the root's list is shared with systemd, which
 * enables the same ones, so nothing is turned back off on revert. */
static void v2_enable(const char *dir, unsigned mask)
{
        static const char *const names[AGENT_CG_CTRL_MAX] = {[AGENT_CG_CPU] = "+cpu",
                                                             [AGENT_CG_MEMORY] = "+memory",
                                                             [AGENT_CG_IO] = "+io",
                                                             [AGENT_CG_PIDS] = "+pids"};
        for (int c = 0; c < AGENT_CG_CTRL_MAX; c++)
                if ((mask & AGENT_CG_BIT(c)) && names[c])
                        (void)agent_cg_write(dir, "cgroup.subtree_control", names[c]);
}

int agent_cg_group_create(const struct agent_cg_group *g, char *err, size_t errlen)
{
        for (size_t i = 0; i < g->n; i++) {
                char parent[PATH_MAX];
                snprintf(parent, sizeof parent, "%s", g->dir[i]);
                char *slash = strrchr(parent, '/');
                if (!slash)
                        return -EINVAL;
                *slash = '\0';
                unsigned v2mask = 0;
                for (int c = 0; c < AGENT_CG_CTRL_MAX; c++)
                        if (g->of[c] == (int)i && g->gen[i] == 2)
                                v2mask |= AGENT_CG_BIT(c);
                if (g->gen[i] == 2) {
                        char root[PATH_MAX];
                        snprintf(root, sizeof root, "%s", parent);
                        char *s = strrchr(root, '/');
                        if (s)
                                *s = '\0';
                        v2_enable(root, v2mask);
                }
                if (mkdir(parent, 0755) < 0 && errno != EEXIST) {
                        int r = -errno;
                        snprintf(err, errlen, "mkdir %s: %s", parent, strerror(-r));
                        return r;
                }
                if (g->gen[i] == 2)
                        v2_enable(parent, v2mask);
                if (mkdir(g->dir[i], 0755) < 0 && errno != EEXIST) {
                        int r = -errno;
                        snprintf(err, errlen, "mkdir %s: %s", g->dir[i], strerror(-r));
                        return r;
                }
        }
        return 0;
}

int agent_cg_group_attach(const struct agent_cg_group *g, pid_t pid, char *err, size_t errlen)
{
        char buf[24];
        snprintf(buf, sizeof buf, "%d", (int)pid);
        for (size_t i = 0; i < g->n; i++) {
                int r = agent_cg_write(g->dir[i], "cgroup.procs", buf);
                if (r < 0) {
                        snprintf(err, errlen, "moving pid %d into %s: %s", (int)pid, g->dir[i],
                                 strerror(-r));
                        return r;
                }
        }
        return 0;
}

static bool under_mount(const char *dir, const char *mount, const char **rest)
{
        size_t n = strlen(mount);
        if (!n || strncmp(dir, mount, n) != 0 || dir[n] != '/')
                return false;
        *rest = dir + n;
        return true;
}

bool agent_cg_owned_dir_ok(const char *dir)
{
        const struct agent_cg_host *h = agent_cg_host();
        const char *rest = NULL;
        bool ok = under_mount(dir, h->v2, &rest);
        for (int c = 0; !ok && c < AGENT_CG_CTRL_MAX; c++)
                ok = under_mount(dir, h->v1[c], &rest);
        if (!ok)
                return false;
        static const char prefix[] = "/" AGENT_CG_PARENT "/";
        if (strncmp(rest, prefix, sizeof prefix - 1) != 0)
                return false;
        const char *name = rest + sizeof prefix - 1;
        return name[0] && name[0] != '.' && !strchr(name, '/');
}

int agent_cg_owned_destroy(const char *dir, char *err, size_t errlen)
{
        if (!agent_cg_owned_dir_ok(dir)) {
                snprintf(err, errlen, "undo entry: %s is not a faultline worker cgroup", dir);
                return -EINVAL;
        }
        const struct agent_cg_host *h = agent_cg_host();
        const char *rest;
        const struct agent_cg_ops *ops = agent_cg_ops_gen(under_mount(dir, h->v2, &rest) ? 2 : 1);
        uint64_t deadline = fl_now_mono_ms() + DESTROY_WAIT_MS;
        struct stat st;
        int r = 0;

        while (stat(dir, &st) == 0) {
                _cleanup_free_ pid_t *pids = NULL;
                int n = agent_cg_procs(dir, false, &pids);
                if (n == 0) {
                        if (rmdir(dir) == 0 || errno == ENOENT)
                                break;
                        r = -errno;
                } else if (n > 0) {
                        /* Only members of our own group are signalled: a pid
                         * read from cgroup.procs belongs to it at that moment. */
                        if (ops->kill_all(dir) < 0)
                                for (int i = 0; i < n; i++)
                                        kill(pids[i], SIGKILL);
                        r = -EBUSY;
                } else {
                        r = n;
                }
                if (fl_now_mono_ms() >= deadline) {
                        snprintf(err, errlen, "removing %s: %s", dir, strerror(-r));
                        return r;
                }
                sleep_ms(5);
        }
        /* The parent goes when the last group in it does; another fault's
         * group (or another agent's) keeps it. */
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", dir);
        char *slash = strrchr(parent, '/');
        if (slash) {
                *slash = '\0';
                (void)rmdir(parent);
        }
        return 0;
}

static pid_t parent_of(pid_t pid)
{
        char path[64], buf[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f || !fgets(buf, sizeof buf, f))
                return 0;
        const char *rp = strrchr(buf, ')');
        int ppid = 0;
        char state;
        if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
                return 0;
        return (pid_t)ppid;
}

int agent_cg_undo_destroy(const json_t *undo, char *err, size_t errlen)
{
        int first = 0;
        json_t *arr = json_object_get(undo, "cgroups");
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
        {
                const char *dir = json_string_value(v);
                char e[256] = "";
                int r = dir ? agent_cg_owned_destroy(dir, e, sizeof e) : -EINVAL;
                if (r < 0 && !first) {
                        first = r;
                        snprintf(err, errlen, "%s", e[0] ? e : "undo entry: bad cgroups list");
                }
        }
        /* Workers are our children while this agent runs: end any that
         * escaped their group and reap them all. After a restart they are
         * nobody's children here (PR_SET_PDEATHSIG ended them), and a pid
         * that is not our child is never signalled. */
        json_array_foreach(json_object_get(undo, "workers"), i, v)
        {
                pid_t pid = (pid_t)json_integer_value(v);
                if (pid <= 1 || parent_of(pid) != getpid())
                        continue;
                kill(pid, SIGKILL);
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
        }
        return first;
}
