/* Fleet connections and lease renewal. See client.h. */
#include <pwd.h>
#include <sys/random.h>

#include "client.h"
#include "fl_log.h"
#include "fl_util.h"

/* Which inventory name an agent URL belongs to, for connections opened
 * from a URL alone (the lease renewer): TLS checks the agent's
 * certificate against that name, never against the URL's host. */
struct url_name {
        char url[COORD_ADDRESS_MAX + 1];
        char name[COORD_NAME_MAX + 1];
};
static struct url_name *url_names;
static size_t n_url_names, cap_url_names;
static pthread_mutex_t url_names_lock = PTHREAD_MUTEX_INITIALIZER;

static void remember_name(const char *url, const char *name)
{
        pthread_mutex_lock(&url_names_lock);
        for (size_t i = 0; i < n_url_names; i++) {
                if (strcmp(url_names[i].url, url) == 0) {
                        snprintf(url_names[i].name, sizeof(url_names[i].name), "%s", name);
                        goto out;
                }
        }
        if (n_url_names == cap_url_names) {
                size_t cap = cap_url_names ? cap_url_names * 2 : 16;
                struct url_name *n = realloc(url_names, cap * sizeof(*n));
                if (!n)
                        goto out;
                url_names = n;
                cap_url_names = cap;
        }
        snprintf(url_names[n_url_names].url, sizeof(url_names[0].url), "%s", url);
        snprintf(url_names[n_url_names].name, sizeof(url_names[0].name), "%s", name);
        n_url_names++;
out:
        pthread_mutex_unlock(&url_names_lock);
}

static int open_by_url(const char *url, struct fl_conn **ret)
{
        char name[COORD_NAME_MAX + 1] = "";
        pthread_mutex_lock(&url_names_lock);
        for (size_t i = 0; i < n_url_names; i++)
                if (strcmp(url_names[i].url, url) == 0)
                        snprintf(name, sizeof(name), "%s", url_names[i].name);
        pthread_mutex_unlock(&url_names_lock);
        return fl_conn_open_named(url, name[0] ? name : NULL, ret);
}

int coord_fleet_open(struct coord_fleet *ret, const struct coord_agent *const *agents, size_t n)
{
        memset(ret, 0, sizeof(*ret));
        if (n == 0)
                return 0;
        ret->m = calloc(n, sizeof(*ret->m));
        if (!ret->m)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                ret->m[i].agent = agents[i];
                remember_name(agents[i]->address, agents[i]->name);
                int rv = fl_conn_open_named(agents[i]->address, agents[i]->name, &ret->m[i].conn);
                if (rv < 0) {
                        ret->n = i;
                        coord_fleet_close(ret);
                        return rv;
                }
        }
        ret->n = n;
        return 0;
}

void coord_fleet_close(struct coord_fleet *f)
{
        for (size_t i = 0; i < f->n; i++)
                fl_conn_close(f->m[i].conn);
        free(f->m);
        memset(f, 0, sizeof(*f));
}

struct coord_member *coord_fleet_find(struct coord_fleet *f, const char *name)
{
        for (size_t i = 0; i < f->n; i++)
                if (strcmp(f->m[i].agent->name, name) == 0)
                        return &f->m[i];
        return NULL;
}

int coord_fleet_broadcast(struct coord_fleet *f, struct fl_request *req, struct fl_reply *replies,
                          int *rcs, int timeout_ms)
{
        _cleanup_free_ struct fl_conn **conns = calloc(f->n ? f->n : 1, sizeof(*conns));
        if (!conns)
                return -ENOMEM;
        for (size_t i = 0; i < f->n; i++)
                conns[i] = f->m[i].conn;
        return fl_conn_call_many(conns, f->n, req, replies, rcs, timeout_ms);
}

const char *coord_call_error(int rv)
{
        switch (rv) {
        case -ETIMEDOUT:
                return "no answer (agent down, unreachable, or busy)";
        case -ECONNREFUSED:
                return "connection refused";
        case -EBADMSG:
                return "undecodable reply (wrong protocol?)";
        case -EPROTO:
                return "reply does not match the request";
        case -EKEYREJECTED:
                return "TLS handshake failed (certificate missing, expired, from another CA, "
                       "or with the wrong name; the agent's log says which)";
        case -ENOKEY:
                return "tls+tcp:// needs a TLS identity (--tls-dir or FAULTLINE_TLS_DIR; see "
                       "'faultline pki')";
        default:
                return strerror(-rv);
        }
}

const char *coord_conn_error(const struct fl_conn *c, int rv, char *buf, size_t size)
{
        char why[FL_MSG_LEN] = "";
        if (rv == -EKEYREJECTED && c)
                fl_conn_error(c, why, sizeof(why));
        if (!why[0])
                return coord_call_error(rv);
        snprintf(buf, size, "TLS handshake failed: %s", why);
        return buf;
}

void coord_requester_name(char *buf, size_t size)
{
        char host[128] = "?";
        const char *user = getenv("USER");
        struct passwd *pw = getpwuid(geteuid());
        if (pw && pw->pw_name)
                user = pw->pw_name;
        gethostname(host, sizeof(host) - 1);
        snprintf(buf, size, "%s@%s", user ? user : "?", host);
}

/* ---- lease renewal ------------------------------------------------------ */

struct lease_target {
        char url[FL_VAL_LEN];
        struct fl_conn *conn;
};

struct coord_lease {
        char id[FL_ID_LEN];
        char requester[FL_NAME_LEN];
        uint64_t ttl_ms;
        pthread_t thread;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool stop;
        struct lease_target *targets;
        size_t n_targets, cap_targets;
};

static void renew_all(struct coord_lease *l)
{
        pthread_mutex_lock(&l->lock);
        size_t n = l->n_targets, m = 0;
        _cleanup_free_ struct fl_conn **conns = calloc(n ? n : 1, sizeof(*conns));
        for (size_t i = 0; conns && i < n; i++) {
                /* Opened at the first renewal, not when the target is
                 * added: a command that ends sooner (a refused apply, say)
                 * then never opens, and never closes mid-handshake, a
                 * second connection (which nng 1.5 agents took badly:
                 * docs/adr/0010). */
                if (!l->targets[i].conn && open_by_url(l->targets[i].url, &l->targets[i].conn) < 0)
                        continue;
                conns[m++] = l->targets[i].conn;
        }
        pthread_mutex_unlock(&l->lock);
        n = m;
        if (!conns || n == 0)
                return;

        struct fl_request req = {.type = FL_MSG_RENEW, .lease_ttl_ms = l->ttl_ms};
        snprintf(req.lease, sizeof(req.lease), "%s", l->id);
        snprintf(req.requester, sizeof(req.requester), "%s", l->requester);
        _cleanup_free_ struct fl_reply *replies = calloc(n, sizeof(*replies));
        _cleanup_free_ int *rcs = calloc(n, sizeof(*rcs));
        if (!replies || !rcs)
                return;
        /* Bounded well below the ttl so one slow agent cannot make the
         * others' leases lapse. */
        fl_conn_call_many(conns, n, &req, replies, rcs, (int)(l->ttl_ms / 3));
        for (size_t i = 0; i < n; i++) {
                if (rcs[i] < 0)
                        fl_log(LOG_DEBUG, "lease %s renew to %s: %s", l->id, fl_conn_url(conns[i]),
                               coord_call_error(rcs[i]));
                fl_reply_free(&replies[i]);
        }
}

static void *renew_thread(void *arg)
{
        struct coord_lease *l = arg;
        uint64_t period = l->ttl_ms / 5 ? l->ttl_ms / 5 : 100;
        pthread_mutex_lock(&l->lock);
        while (!l->stop) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t ns = (uint64_t)ts.tv_nsec + period * 1000000u;
                ts.tv_sec += (time_t)(ns / 1000000000u);
                ts.tv_nsec = (long)(ns % 1000000000u);
                pthread_cond_timedwait(&l->cond, &l->lock, &ts);
                if (l->stop)
                        break;
                pthread_mutex_unlock(&l->lock);
                renew_all(l);
                pthread_mutex_lock(&l->lock);
        }
        pthread_mutex_unlock(&l->lock);
        return NULL;
}

int coord_lease_start(uint64_t ttl_ms, const char *requester, struct coord_lease **ret)
{
        struct coord_lease *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        uint64_t r = 0;
        if (getrandom(&r, sizeof(r), 0) != sizeof(r))
                r = fl_now_mono_us() ^ ((uint64_t)getpid() << 32);
        snprintf(l->id, sizeof(l->id), "l-%016llx", (unsigned long long)r);
        snprintf(l->requester, sizeof(l->requester), "%s", requester ? requester : "");
        l->ttl_ms = ttl_ms;
        pthread_mutex_init(&l->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&l->cond, &ca);
        pthread_condattr_destroy(&ca);
        int rv = pthread_create(&l->thread, NULL, renew_thread, l);
        if (rv != 0) {
                pthread_mutex_destroy(&l->lock);
                pthread_cond_destroy(&l->cond);
                free(l);
                return -rv;
        }
        *ret = l;
        return 0;
}

const char *coord_lease_id(const struct coord_lease *l)
{
        return l->id;
}

uint64_t coord_lease_ttl(const struct coord_lease *l)
{
        return l->ttl_ms;
}

int coord_lease_add(struct coord_lease *l, const char *url)
{
        int rv = 0;
        pthread_mutex_lock(&l->lock);
        for (size_t i = 0; i < l->n_targets; i++)
                if (strcmp(l->targets[i].url, url) == 0)
                        goto out;
        if (l->n_targets == l->cap_targets) {
                size_t cap = l->cap_targets ? l->cap_targets * 2 : 8;
                struct lease_target *n = realloc(l->targets, cap * sizeof(*n));
                if (!n) {
                        rv = -ENOMEM;
                        goto out;
                }
                l->targets = n;
                l->cap_targets = cap;
        }
        struct lease_target *t = &l->targets[l->n_targets];
        snprintf(t->url, sizeof(t->url), "%s", url);
        t->conn = NULL; /* opened by the first renewal */
        l->n_targets++;
out:
        pthread_mutex_unlock(&l->lock);
        return rv;
}

void coord_lease_stop(struct coord_lease *l)
{
        if (!l)
                return;
        pthread_mutex_lock(&l->lock);
        l->stop = true;
        pthread_cond_signal(&l->cond);
        pthread_mutex_unlock(&l->lock);
        pthread_join(l->thread, NULL);
        for (size_t i = 0; i < l->n_targets; i++)
                fl_conn_close(l->targets[i].conn);
        free(l->targets);
        pthread_mutex_destroy(&l->lock);
        pthread_cond_destroy(&l->cond);
        free(l);
}
