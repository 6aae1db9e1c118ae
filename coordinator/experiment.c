/* Experiment file parser and validator (format versions 1 and 2).
 *
 * One pass over the libyaml document tree. Every helper reports its own
 * problems at the node that caused them and keeps going, so a user sees
 * all errors at once. Whether a sub-tree was good is judged by comparing
 * the diagnostics count before and after parsing it. */
#include "experiment.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>

#include "fl_parse.h"
#include "fl_util.h"

#define DURATION_HINT "durations need a unit: 250ms, 5s, 2m, 1h"

struct ectx {
        struct coord_yctx y;
        const struct coord_validate_hooks *hooks;
        struct coord_experiment *e;
        /* every probe name seen so far (borrowed from e), for uniqueness */
        const struct coord_probe **probes;
        size_t n_probes, cap_probes;
        bool oom;
        unsigned depth;                   /* parallel nesting */
        bool in_rollbacks;                /* parsing rollbacks (no faults) */
        uint64_t def_interval;            /* defaults: guardrail-interval */
        uint64_t def_window;              /* defaults: guardrail-window */
        const yaml_node_t *failover_node; /* first fault step with failover: true */
};

/* A version 2 feature used in a version 1 file: say so at the node. */
static bool need_v2(struct ectx *c, const yaml_node_t *n, const char *what)
{
        if (c->e->version != 1)
                return true;
        coord_yerr(&c->y, n, "set 'version: 2' at the top (see docs/experiment-format.md)",
                   "%s needs format version 2", what);
        return false;
}

/* A plain number (strtod syntax, finite). */
static int parse_number(struct ectx *c, const yaml_node_t *n, const char *what, double min,
                        double max, double *ret)
{
        const char *s = coord_yscalar(&c->y, n, what);
        if (!s)
                return -EINVAL;
        char *end = NULL;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || *end || errno || !(v >= min && v <= max)) {
                coord_yerr(&c->y, n, NULL, "%s must be a number from %g to %g, not '%s'", what, min,
                           max, s);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

static int parse_bool(struct ectx *c, const yaml_node_t *n, const char *what, bool *ret)
{
        const char *s = coord_yscalar(&c->y, n, what);
        if (!s)
                return -EINVAL;
        if (fl_parse_bool(s, ret) < 0) {
                coord_yerr(&c->y, n, NULL, "%s must be true or false, not '%s'", what, s);
                return -EINVAL;
        }
        return 0;
}

static int parse_pct(struct ectx *c, const yaml_node_t *n, const char *what, uint32_t *ret_bp)
{
        const char *s = coord_yscalar(&c->y, n, what);
        if (!s)
                return -EINVAL;
        if (fl_parse_percent(s, ret_bp) < 0 || *ret_bp == 0) {
                coord_yerr(&c->y, n, "a number greater than 0 and at most 100, e.g. 99.5%",
                           "%s must be in (0, 100], not '%s'", what, s);
                return -EINVAL;
        }
        return 0;
}

static size_t nerr(const struct ectx *c)
{
        return coord_diags_count(c->y.diags);
}

static char *xstrdup(struct ectx *c, const char *s)
{
        char *r = strdup(s);
        if (!r)
                c->oom = true;
        return r;
}

static size_t seq_len(const yaml_node_t *n)
{
        return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static yaml_node_t *seq_item(const struct ectx *c, const yaml_node_t *n, size_t i)
{
        return yaml_document_get_node(c->y.doc, n->data.sequence.items.start[i]);
}

/* Strict duration: unit mandatory, no sign, and > 0 (no v1 duration —
 * fault TTL, wait, timeout, max-latency — has a meaning for zero). */
static int parse_duration(struct ectx *c, const yaml_node_t *n, const char *what, uint64_t *ret_ms)
{
        const char *s = coord_yscalar(&c->y, n, what);
        if (!s)
                return -EINVAL;
        uint64_t ms;
        int r = fl_parse_duration_ms(s, &ms);
        if (r < 0) {
                if (s[0] == '-')
                        coord_yerr(&c->y, n, DURATION_HINT, "%s must not be negative: '%s'", what,
                                   s);
                else if (strspn(s, "0123456789.") == strlen(s))
                        coord_yerr(&c->y, n, DURATION_HINT, "%s '%s' has no unit", what, s);
                else if (r == -ERANGE)
                        coord_yerr(&c->y, n, "the maximum is 30 days", "%s '%s' is too long", what,
                                   s);
                else
                        coord_yerr(&c->y, n, DURATION_HINT, "invalid %s '%s'", what, s);
                return -EINVAL;
        }
        if (ms == 0) {
                coord_yerr(&c->y, n, NULL, "%s must be greater than zero", what);
                return -EINVAL;
        }
        *ret_ms = ms;
        return 0;
}

static int parse_int(struct ectx *c, const yaml_node_t *n, const char *what, uint64_t min,
                     uint64_t max, uint64_t *ret)
{
        const char *s = coord_yscalar(&c->y, n, what);
        if (!s)
                return -EINVAL;
        uint64_t v;
        if (fl_parse_u64(s, &v) < 0 || v < min || v > max) {
                coord_yerr(&c->y, n, NULL, "%s must be an integer from %llu to %llu, not '%s'",
                           what, (unsigned long long)min, (unsigned long long)max, s);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

static char *parse_regex(struct ectx *c, const yaml_node_t *n, const char *what)
{
        if (!n || n->type != YAML_SCALAR_NODE) {
                coord_yerr(&c->y, n, NULL, "%s must be a string", what);
                return NULL;
        }
        const char *s = (const char *)n->data.scalar.value;
        char err[128];
        if (coord_regex_check(s, err, sizeof(err)) < 0) {
                coord_yerr(&c->y, n, "POSIX extended regular expression syntax",
                           "invalid %s '%s': %s", what, s, err);
                return NULL;
        }
        return xstrdup(c, s);
}

/* mapping of string -> string into a coord_kv array. */
static int parse_kv(struct ectx *c, const yaml_node_t *n, const char *what,
                    bool (*key_ok)(const char *), const char *key_hint, struct coord_kv **ret,
                    size_t *ret_n)
{
        if (!coord_ymap_check(&c->y, n, what, NULL))
                return -EINVAL;
        size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        if (cnt == 0)
                return 0;
        struct coord_kv *kv = calloc(cnt, sizeof(*kv));
        if (!kv) {
                c->oom = true;
                return -ENOMEM;
        }
        size_t got = 0;
        for (size_t i = 0; i < cnt; i++) {
                yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
                yaml_node_t *kn = yaml_document_get_node(c->y.doc, p->key);
                yaml_node_t *vn = yaml_document_get_node(c->y.doc, p->value);
                const char *k = coord_yscalar(&c->y, kn, what);
                if (!k)
                        continue;
                if (!key_ok(k)) {
                        coord_yerr(&c->y, kn, key_hint, "invalid name '%s' in %s", k, what);
                        continue;
                }
                if (!vn || vn->type != YAML_SCALAR_NODE) {
                        coord_yerr(&c->y, vn, NULL, "value of '%s' in %s must be a string", k,
                                   what);
                        continue;
                }
                const char *v = (const char *)vn->data.scalar.value;
                if (strlen(v) != vn->data.scalar.length || strpbrk(v, "\r\n")) {
                        coord_yerr(&c->y, vn, NULL,
                                   "value of '%s' in %s contains a line break or NUL", k, what);
                        continue;
                }
                kv[got].key = xstrdup(c, k);
                kv[got].value = xstrdup(c, v);
                got++;
        }
        *ret = kv;
        *ret_n = got;
        return 0;
}

static void kv_free(struct coord_kv *kv, size_t n)
{
        for (size_t i = 0; kv && i < n; i++) {
                free(kv[i].key);
                free(kv[i].value);
        }
        free(kv);
}

static bool header_name_ok(const char *s)
{
        /* RFC 9110 token */
        if (!*s)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s))
                        return false;
        return true;
}

static bool env_name_ok(const char *s)
{
        if (!*s || isdigit((unsigned char)*s) || !strcmp(s, "PATH"))
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && *s != '_')
                        return false;
        return true;
}

void coord_probe_free(struct coord_probe *p)
{
        if (!p)
                return;
        free(p->name);
        free(p->http.url);
        free(p->http.method);
        kv_free(p->http.headers, p->http.n_headers);
        free(p->http.body);
        for (size_t i = 0; p->command.argv && i < p->command.argc; i++)
                free(p->command.argv[i]);
        free(p->command.argv);
        kv_free(p->command.env, p->command.n_env);
        free(p->expect.body_regex);
        free(p->expect.stdout_regex);
        free(p->expect.reply_regex);
        free(p->expect.json_pointer);
        free(p->expect.json_value);
        free(p->tcp.host);
        free(p->tcp.send);
        free(p->prom.url);
        free(p->prom.query);
        memset(p, 0, sizeof(*p));
}

static const char *const probe_keys[] = {"name",       "http",   "command", "tcp",
                                         "prometheus", "expect", NULL};
/* A guardrail is a probe plus the rules that judge its samples. */
static const char *const guard_keys[] = {
    "name",        "http",        "command", "tcp",         "prometheus",    "expect",
    "interval",    "failures",    "window",  "min-samples", "success-ratio", "p50-latency",
    "p95-latency", "p99-latency", "slo",     NULL};
static const char *const tcp_keys[] = {"host", "port", "timeout", "send", NULL};
static const char *const prom_keys[] = {"url", "query", "timeout", NULL};
static const char *const http_keys[] = {"url", "method", "timeout", "headers", "body", NULL};
static const char *const command_keys[] = {"argv", "timeout", "env", NULL};
static const char *const expect_keys[] = {
    "status",       "max-latency", "body-regex", "exit-code", "stdout-regex",
    "reply-regex",  "min-value",   "max-value",  "value",     "tolerance",
    "json-pointer", "json-value",  NULL};

/* Which probe kind each kind-specific expect key belongs to. */
static const struct {
        const char *key;
        enum coord_probe_kind kind;
} expect_owner[] = {
    {"status", COORD_PROBE_HTTP},          {"body-regex", COORD_PROBE_HTTP},
    {"exit-code", COORD_PROBE_COMMAND},    {"stdout-regex", COORD_PROBE_COMMAND},
    {"reply-regex", COORD_PROBE_TCP},      {"min-value", COORD_PROBE_PROMETHEUS},
    {"max-value", COORD_PROBE_PROMETHEUS}, {"value", COORD_PROBE_PROMETHEUS},
    {"tolerance", COORD_PROBE_PROMETHEUS}, {"json-pointer", COORD_PROBE_HTTP},
    {"json-value", COORD_PROBE_HTTP},
};

static const char *probe_kind_word(enum coord_probe_kind k)
{
        switch (k) {
        case COORD_PROBE_HTTP:
                return "http";
        case COORD_PROBE_COMMAND:
                return "command";
        case COORD_PROBE_TCP:
                return "tcp";
        case COORD_PROBE_PROMETHEUS:
                return "prometheus";
        }
        return "?";
}

static void parse_http(struct ectx *c, const yaml_node_t *n, struct coord_http_probe *h)
{
        if (!coord_ymap_check(&c->y, n, "http probe", http_keys))
                return;
        h->timeout_ms = COORD_PROBE_HTTP_TIMEOUT_MS;
        yaml_node_t *v = coord_ymap_get(&c->y, n, "url");
        if (!v)
                coord_yerr(&c->y, n, "e.g. url: http://10.0.0.5:8080/health",
                           "http probe has no 'url'");
        else {
                const char *s = coord_yscalar(&c->y, v, "url");
                if (s && strncmp(s, "http://", 7) && strncmp(s, "https://", 8))
                        coord_yerr(&c->y, v, NULL, "url must start with http:// or https://");
                else if (s && (strpbrk(s, " \t\r\n") || strlen(s) > 2048))
                        coord_yerr(&c->y, v, NULL, "url contains whitespace or is too long");
                else if (s)
                        h->url = xstrdup(c, s);
        }
        if ((v = coord_ymap_get(&c->y, n, "method"))) {
                const char *s = coord_yscalar(&c->y, v, "method");
                size_t len = s ? strlen(s) : 0;
                if (s && (len > 16 || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != len))
                        coord_yerr(&c->y, v, "e.g. GET, HEAD, POST",
                                   "method must be an upper-case HTTP method, not '%s'", s);
                else if (s)
                        h->method = xstrdup(c, s);
        }
        if ((v = coord_ymap_get(&c->y, n, "timeout")))
                parse_duration(c, v, "timeout", &h->timeout_ms);
        if ((v = coord_ymap_get(&c->y, n, "headers")))
                parse_kv(c, v, "headers", header_name_ok, "header names are HTTP tokens",
                         &h->headers, &h->n_headers);
        if ((v = coord_ymap_get(&c->y, n, "body"))) {
                if (v->type != YAML_SCALAR_NODE)
                        coord_yerr(&c->y, v, NULL, "body must be a string");
                else
                        h->body = xstrdup(c, (const char *)v->data.scalar.value);
        }
}

static void parse_command(struct ectx *c, const yaml_node_t *n, struct coord_command_probe *cmd)
{
        if (!coord_ymap_check(&c->y, n, "command probe", command_keys))
                return;
        cmd->timeout_ms = COORD_PROBE_COMMAND_TIMEOUT_MS;
        yaml_node_t *v = coord_ymap_get(&c->y, n, "argv");
        if (!v)
                coord_yerr(&c->y, n, "e.g. argv: [/usr/bin/systemctl, is-active, nginx]",
                           "command probe has no 'argv'");
        else if (coord_yseq_check(&c->y, v, "argv")) {
                size_t cnt = seq_len(v);
                if (cnt == 0)
                        coord_yerr(&c->y, v, NULL, "argv must not be empty");
                else if (cnt > 256)
                        coord_yerr(&c->y, v, NULL, "argv has more than 256 entries");
                else if (!(cmd->argv = calloc(cnt + 1, sizeof(char *))))
                        c->oom = true;
                else {
                        for (size_t i = 0; i < cnt; i++) {
                                yaml_node_t *it = seq_item(c, v, i);
                                if (!it || it->type != YAML_SCALAR_NODE ||
                                    strlen((const char *)it->data.scalar.value) !=
                                        it->data.scalar.length) {
                                        coord_yerr(&c->y, it, NULL, "argv entries must be strings");
                                        continue;
                                }
                                const char *s = (const char *)it->data.scalar.value;
                                if (i == 0 && (!*s || (s[0] != '/' && strchr(s, '/')))) {
                                        coord_yerr(&c->y, it,
                                                   "give an absolute path or a bare program name "
                                                   "looked up in " COORD_PROBE_PATH,
                                                   "invalid program '%s'", s);
                                        continue;
                                }
                                cmd->argv[cmd->argc++] = xstrdup(c, s);
                        }
                }
        }
        if ((v = coord_ymap_get(&c->y, n, "timeout")))
                parse_duration(c, v, "timeout", &cmd->timeout_ms);
        if ((v = coord_ymap_get(&c->y, n, "env")))
                parse_kv(c, v, "env", env_name_ok,
                         "names are [A-Za-z_][A-Za-z0-9_]*; PATH is fixed to " COORD_PROBE_PATH,
                         &cmd->env, &cmd->n_env);
}

static void parse_tcp(struct ectx *c, const yaml_node_t *n, struct coord_tcp_probe *t)
{
        if (!coord_ymap_check(&c->y, n, "tcp probe", tcp_keys))
                return;
        t->timeout_ms = COORD_PROBE_TCP_TIMEOUT_MS;
        yaml_node_t *v = coord_ymap_get(&c->y, n, "host");
        const char *s;
        if (!v)
                coord_yerr(&c->y, n, "e.g. tcp: {host: 10.0.0.5, port: 5432}",
                           "tcp probe has no 'host'");
        else if ((s = coord_yscalar(&c->y, v, "host"))) {
                if (!*s || strlen(s) > 253 || strpbrk(s, " \t\r\n/"))
                        coord_yerr(&c->y, v, NULL, "invalid host '%s'", s);
                else
                        t->host = xstrdup(c, s);
        }
        uint64_t u;
        if (!(v = coord_ymap_get(&c->y, n, "port")))
                coord_yerr(&c->y, n, NULL, "tcp probe has no 'port'");
        else if (parse_int(c, v, "port", 1, 65535, &u) == 0)
                t->port = (uint16_t)u;
        if ((v = coord_ymap_get(&c->y, n, "timeout")))
                parse_duration(c, v, "timeout", &t->timeout_ms);
        if ((v = coord_ymap_get(&c->y, n, "send"))) {
                if (v->type != YAML_SCALAR_NODE ||
                    strlen((const char *)v->data.scalar.value) != v->data.scalar.length)
                        coord_yerr(&c->y, v, NULL, "send must be a string");
                else
                        t->send = xstrdup(c, (const char *)v->data.scalar.value);
        }
}

static void parse_prom(struct ectx *c, const yaml_node_t *n, struct coord_prom_probe *pr)
{
        if (!coord_ymap_check(&c->y, n, "prometheus probe", prom_keys))
                return;
        pr->timeout_ms = COORD_PROBE_PROM_TIMEOUT_MS;
        yaml_node_t *v = coord_ymap_get(&c->y, n, "url");
        const char *s;
        if (!v)
                coord_yerr(&c->y, n, "the server's base URL, e.g. url: http://127.0.0.1:9090",
                           "prometheus probe has no 'url'");
        else if ((s = coord_yscalar(&c->y, v, "url"))) {
                if (strncmp(s, "http://", 7) && strncmp(s, "https://", 8))
                        coord_yerr(&c->y, v, NULL, "url must start with http:// or https://");
                else if (strpbrk(s, " \t\r\n?#") || strlen(s) > 2048)
                        coord_yerr(&c->y, v, "give the server's base URL only",
                                   "url contains whitespace, a query or is too long");
                else
                        pr->url = xstrdup(c, s);
        }
        if (!(v = coord_ymap_get(&c->y, n, "query")))
                coord_yerr(&c->y, n,
                           "e.g. query: 'sum(rate(http_requests_total{code=~\"5..\"}[1m]))'",
                           "prometheus probe has no 'query'");
        else if ((s = coord_yscalar(&c->y, v, "query"))) {
                if (!*s || strlen(s) > 4096)
                        coord_yerr(&c->y, v, NULL, "query must be 1 to 4096 characters");
                else
                        pr->query = xstrdup(c, s);
        }
        if ((v = coord_ymap_get(&c->y, n, "timeout")))
                parse_duration(c, v, "timeout", &pr->timeout_ms);
}

static void parse_expect(struct ectx *c, const yaml_node_t *n, struct coord_probe *p)
{
        if (!coord_ymap_check(&c->y, n, "expect", expect_keys))
                return;
        enum coord_probe_kind k = p->kind;
        for (size_t i = 0; i < FL_ARRAY_SIZE(expect_owner); i++) {
                yaml_node_t *v = coord_ymap_get(&c->y, n, expect_owner[i].key);
                if (v && expect_owner[i].kind != k)
                        coord_yerr(&c->y, v, NULL, "'%s' applies to %s probes only",
                                   expect_owner[i].key, probe_kind_word(expect_owner[i].kind));
        }
        yaml_node_t *v;
        uint64_t u;
        if (k == COORD_PROBE_HTTP && (v = coord_ymap_get(&c->y, n, "status")) &&
            parse_int(c, v, "status", 100, 599, &u) == 0)
                p->expect.status = (int)u;
        if (k == COORD_PROBE_COMMAND && (v = coord_ymap_get(&c->y, n, "exit-code")) &&
            parse_int(c, v, "exit-code", 0, 255, &u) == 0)
                p->expect.exit_code = (int)u;
        if ((v = coord_ymap_get(&c->y, n, "max-latency")))
                parse_duration(c, v, "max-latency", &p->expect.max_latency_ms);
        if (k == COORD_PROBE_HTTP && (v = coord_ymap_get(&c->y, n, "body-regex")))
                p->expect.body_regex = parse_regex(c, v, "body-regex");
        if (k == COORD_PROBE_HTTP) {
                yaml_node_t *jp = coord_ymap_get(&c->y, n, "json-pointer");
                yaml_node_t *jv = coord_ymap_get(&c->y, n, "json-value");
                const char *ps = jp ? coord_yscalar(&c->y, jp, "json-pointer") : NULL;
                const char *vs = jv ? coord_yscalar(&c->y, jv, "json-value") : NULL;
                if (jp && !jv)
                        coord_yerr(&c->y, jp, "e.g. json-pointer: /status, json-value: ok",
                                   "json-pointer needs json-value");
                else if (jv && !jp)
                        coord_yerr(&c->y, jv, "e.g. json-pointer: /status, json-value: ok",
                                   "json-value needs json-pointer");
                else if (ps && ps[0] && ps[0] != '/')
                        coord_yerr(&c->y, jp, "RFC 6901: \"\" or a path like /a/0/b",
                                   "json-pointer must be empty or start with '/', not '%s'", ps);
                else if (ps && vs) {
                        p->expect.json_pointer = xstrdup(c, ps);
                        p->expect.json_value = xstrdup(c, vs);
                }
        }
        if (k == COORD_PROBE_COMMAND && (v = coord_ymap_get(&c->y, n, "stdout-regex")))
                p->expect.stdout_regex = parse_regex(c, v, "stdout-regex");
        if (k == COORD_PROBE_TCP && (v = coord_ymap_get(&c->y, n, "reply-regex")))
                p->expect.reply_regex = parse_regex(c, v, "reply-regex");
        if (k != COORD_PROBE_PROMETHEUS)
                return;
        const double big = 1e300;
        yaml_node_t *mn = coord_ymap_get(&c->y, n, "min-value");
        yaml_node_t *mx = coord_ymap_get(&c->y, n, "max-value");
        yaml_node_t *val = coord_ymap_get(&c->y, n, "value");
        yaml_node_t *tol = coord_ymap_get(&c->y, n, "tolerance");
        if (mn && parse_number(c, mn, "min-value", -big, big, &p->expect.min_value) == 0)
                p->expect.has_min = true;
        if (mx && parse_number(c, mx, "max-value", -big, big, &p->expect.max_value) == 0)
                p->expect.has_max = true;
        if (val && (mn || mx))
                coord_yerr(&c->y, val, "use value (+ tolerance) or min-value/max-value",
                           "value and min-value/max-value are mutually exclusive");
        else if (tol && !val)
                coord_yerr(&c->y, tol, NULL, "tolerance needs a value");
        else if (val) {
                double x, t = 0;
                if (parse_number(c, val, "value", -big, big, &x) == 0 &&
                    (!tol || parse_number(c, tol, "tolerance", 0, big, &t) == 0)) {
                        p->expect.has_min = p->expect.has_max = true;
                        p->expect.min_value = x - t;
                        p->expect.max_value = x + t;
                }
        }
        if (p->expect.has_min && p->expect.has_max && p->expect.min_value > p->expect.max_value)
                coord_yerr(&c->y, n, NULL, "min-value is greater than max-value");
}

static int remember_probe(struct ectx *c, const struct coord_probe *p)
{
        if (c->n_probes == c->cap_probes) {
                size_t ncap = c->cap_probes ? c->cap_probes * 2 : 16;
                const struct coord_probe **np = realloc(c->probes, ncap * sizeof(*np));
                if (!np) {
                        c->oom = true;
                        return -ENOMEM;
                }
                c->probes = np;
                c->cap_probes = ncap;
        }
        c->probes[c->n_probes++] = p;
        return 0;
}

/* Parse into *p (zeroed by the caller). The name is checked for
 * uniqueness across the whole experiment. */
static void parse_probe_keys(struct ectx *c, const yaml_node_t *n, struct coord_probe *p,
                             const char *what, const char *const *allowed)
{
        if (!coord_ymap_check(&c->y, n, what, allowed))
                return;
        p->line = (unsigned)n->start_mark.line + 1;
        p->column = (unsigned)n->start_mark.column + 1;
        yaml_node_t *v = coord_ymap_get(&c->y, n, "name");
        if (!v)
                coord_yerr(&c->y, n, NULL, "probe has no 'name'");
        else {
                const char *s = coord_yscalar(&c->y, v, "probe name");
                const struct coord_probe *dup = NULL;
                for (size_t i = 0; s && i < c->n_probes; i++)
                        if (!strcmp(c->probes[i]->name, s))
                                dup = c->probes[i];
                if (s && !coord_name_valid(s))
                        coord_yerr(&c->y, v, "use 1-63 characters from A-Z a-z 0-9 . _ -",
                                   "invalid probe name '%s'", s);
                else if (dup)
                        coord_yerr(&c->y, v, "probe names are unique across the experiment",
                                   "duplicate probe name '%s' (first at line %u)", s, dup->line);
                else if (s && (p->name = xstrdup(c, s)))
                        remember_probe(c, p);
        }
        static const char *const kinds[] = {"http", "command", "tcp", "prometheus"};
        yaml_node_t *kn[4];
        int found = 0, which = -1;
        for (int i = 0; i < 4; i++)
                if ((kn[i] = coord_ymap_get(&c->y, n, kinds[i]))) {
                        found++;
                        if (which < 0)
                                which = i;
                        else
                                coord_yerr(&c->y, kn[i], NULL,
                                           "a probe has exactly one of 'http', 'command', 'tcp', "
                                           "'prometheus' (also has '%s')",
                                           kinds[which]);
                }
        if (found == 0)
                coord_yerr(&c->y, n, NULL,
                           "probe needs one of 'http', 'command', 'tcp' or 'prometheus'");
        else if (found == 1) {
                switch (which) {
                case 0:
                        p->kind = COORD_PROBE_HTTP;
                        parse_http(c, kn[0], &p->http);
                        break;
                case 1:
                        p->kind = COORD_PROBE_COMMAND;
                        parse_command(c, kn[1], &p->command);
                        break;
                case 2:
                        if (need_v2(c, kn[2], "a tcp probe")) {
                                p->kind = COORD_PROBE_TCP;
                                parse_tcp(c, kn[2], &p->tcp);
                        }
                        break;
                default:
                        if (need_v2(c, kn[3], "a prometheus probe")) {
                                p->kind = COORD_PROBE_PROMETHEUS;
                                parse_prom(c, kn[3], &p->prom);
                        }
                        break;
                }
        }
        if ((v = coord_ymap_get(&c->y, n, "expect")) && p->kind)
                parse_expect(c, v, p);
        if (p->kind == COORD_PROBE_HTTP && p->expect.status == 0)
                p->expect.status = 200;
}

static void parse_probe(struct ectx *c, const yaml_node_t *n, struct coord_probe *p)
{
        parse_probe_keys(c, n, p, "probe", probe_keys);
}

static void steps_free(struct coord_step *v, size_t n);

static void step_free(struct coord_step *s)
{
        switch (s->kind) {
        case COORD_STEP_FAULT:
                free(s->fault.target);
                free(s->fault.kind);
                free(s->fault.params);
                break;
        case COORD_STEP_PROBE:
                coord_probe_free(&s->probe);
                break;
        case COORD_STEP_PARALLEL:
                steps_free(s->group.steps, s->group.n);
                break;
        case COORD_STEP_WAIT:
                break;
        }
        memset(s, 0, sizeof(*s));
}

static void steps_free(struct coord_step *v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                step_free(&v[i]);
        free(v);
}

static const char *const fault_keys[] = {"target",     "kind",     "duration", "params",
                                         "background", "failover", NULL};

/* One param value: a scalar, or a list of scalars joined with ",". */
static int param_value(struct ectx *c, const yaml_node_t *v, const char *key, char *buf,
                       size_t size)
{
        if (v && v->type == YAML_SCALAR_NODE) {
                if (fl_strlcpy(buf, (const char *)v->data.scalar.value, size) < 0) {
                        coord_yerr(&c->y, v, NULL, "value of param '%s' longer than %zu bytes", key,
                                   size - 1);
                        return -EINVAL;
                }
                return 0;
        }
        if (v && v->type == YAML_SEQUENCE_NODE) {
                size_t off = 0;
                buf[0] = 0;
                for (size_t i = 0; i < seq_len(v); i++) {
                        yaml_node_t *it = seq_item(c, v, i);
                        if (!it || it->type != YAML_SCALAR_NODE) {
                                coord_yerr(&c->y, it, NULL, "param '%s' list items must be scalars",
                                           key);
                                return -EINVAL;
                        }
                        int k = snprintf(buf + off, size - off, "%s%s", i ? "," : "",
                                         (const char *)it->data.scalar.value);
                        if (k < 0 || (size_t)k >= size - off) {
                                coord_yerr(&c->y, v, NULL,
                                           "value of param '%s' longer than %zu bytes", key,
                                           size - 1);
                                return -EINVAL;
                        }
                        off += (size_t)k;
                }
                return 0;
        }
        coord_yerr(&c->y, v, NULL, "param '%s' must be a scalar or a list of scalars", key);
        return -EINVAL;
}

static void parse_fault(struct ectx *c, const yaml_node_t *n, struct coord_step *st)
{
        struct coord_fault_step *f = &st->fault;
        if (!coord_ymap_check(&c->y, n, "fault", fault_keys))
                return;
        size_t before = nerr(c);
        yaml_node_t *v = coord_ymap_get(&c->y, n, "target");
        if (!v)
                coord_yerr(&c->y, n, "name one of the experiment's targets",
                           "fault has no 'target'");
        else {
                const char *s = coord_yscalar(&c->y, v, "target");
                if (s && !coord_experiment_find_target(c->e, s)) {
                        const char *names[65] = {0};
                        for (size_t i = 0; i < c->e->n_targets && i < 64; i++)
                                names[i] = c->e->targets[i].name;
                        const char *sug = coord_did_you_mean(s, names);
                        char hint[128];
                        if (sug)
                                snprintf(hint, sizeof(hint), "did you mean '%s'?", sug);
                        else
                                snprintf(hint, sizeof(hint), "declare it under 'targets:'");
                        coord_yerr(&c->y, v, hint, "unknown target '%s'", s);
                } else if (s)
                        f->target = xstrdup(c, s);
        }
        v = coord_ymap_get(&c->y, n, "kind");
        if (!v)
                coord_yerr(&c->y, n, "e.g. kind: process-kill", "fault has no 'kind'");
        else {
                const char *s = coord_yscalar(&c->y, v, "kind");
                if (s && (strlen(s) >= FL_KIND_LEN || !coord_name_valid(s)))
                        coord_yerr(&c->y, v, NULL, "invalid fault kind '%s'", s);
                else if (s)
                        f->kind = xstrdup(c, s);
        }
        v = coord_ymap_get(&c->y, n, "duration");
        if (!v)
                coord_yerr(&c->y, n, "every fault needs a duration (its TTL), e.g. duration: 30s",
                           "fault has no 'duration'");
        else
                parse_duration(c, v, "duration", &f->duration_ms);

        if ((v = coord_ymap_get(&c->y, n, "params")) &&
            coord_ymap_check(&c->y, v, "params", NULL)) {
                for (yaml_node_pair_t *p = v->data.mapping.pairs.start;
                     p < v->data.mapping.pairs.top; p++) {
                        yaml_node_t *kn = yaml_document_get_node(c->y.doc, p->key);
                        yaml_node_t *vn = yaml_document_get_node(c->y.doc, p->value);
                        const char *k = coord_yscalar(&c->y, kn, "param name");
                        char val[FL_VAL_LEN];
                        if (!k)
                                continue;
                        if (strlen(k) >= FL_KEY_LEN) {
                                coord_yerr(&c->y, kn, NULL, "param name '%s' is too long", k);
                                continue;
                        }
                        if (param_value(c, vn, k, val, sizeof(val)) < 0)
                                continue;
                        int r = fl_params_add(&f->params, &f->n_params, k, val);
                        if (r == -E2BIG) {
                                coord_yerr(&c->y, kn, NULL, "more than %d params", FL_MAX_PARAMS);
                                break;
                        } else if (r == -ENOMEM)
                                c->oom = true;
                        else if (r < 0)
                                coord_yerr(&c->y, kn, NULL, "param '%s' is too long", k);
                }
        }

        if ((v = coord_ymap_get(&c->y, n, "background")) && need_v2(c, v, "background"))
                parse_bool(c, v, "background", &f->background);
        if ((v = coord_ymap_get(&c->y, n, "failover")) && need_v2(c, v, "failover") &&
            parse_bool(c, v, "failover", &f->failover) == 0 && f->failover) {
                if (c->failover_node)
                        coord_yerr(&c->y, v, "a drill measures one failover",
                                   "only one fault step may have failover: true (first at line "
                                   "%u)",
                                   (unsigned)c->failover_node->start_mark.line + 1);
                else
                        c->failover_node = v;
                c->e->has_failover = true;
        }

        /* The agent's own validator sees only faults that passed our checks. */
        if (nerr(c) == before && c->hooks && c->hooks->validate_fault && f->kind) {
                char err[FL_MSG_LEN] = "";
                if (c->hooks->validate_fault(c->hooks->userdata, f->kind, f->params, f->n_params,
                                             err, sizeof(err)) < 0)
                        coord_diags_add(c->y.diags, c->y.file, st->line, st->column, NULL,
                                        "fault '%s': %s", f->kind,
                                        err[0] ? err : "invalid parameters");
        }
}

static const char *const step_keys[] = {"fault", "wait", "probe", "parallel", NULL};

static void parse_steps(struct ectx *c, const yaml_node_t *n, const char *list, bool allow_fault,
                        struct coord_step **ret, size_t *ret_n);

static void parse_step(struct ectx *c, const yaml_node_t *n, struct coord_step *st,
                       const char *list, bool allow_fault)
{
        if (!coord_ymap_check(&c->y, n, "step", step_keys))
                return;
        st->line = (unsigned)n->start_mark.line + 1;
        st->column = (unsigned)n->start_mark.column + 1;
        size_t keys = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        if (keys != 1) {
                coord_yerr(&c->y, n,
                           "write one '- fault:', '- wait:', '- probe:' or '- parallel:' per item",
                           "a step has exactly one of fault, wait, probe, parallel");
                return;
        }
        yaml_node_t *v;
        if ((v = coord_ymap_get(&c->y, n, "fault"))) {
                if (!allow_fault) {
                        coord_yerr(&c->y, n, "rollbacks undo; faults are reverted automatically",
                                   "fault steps are not allowed in %s", list);
                        return;
                }
                st->kind = COORD_STEP_FAULT;
                parse_fault(c, v, st);
        } else if ((v = coord_ymap_get(&c->y, n, "wait"))) {
                st->kind = COORD_STEP_WAIT;
                parse_duration(c, v, "wait", &st->wait_ms);
        } else if ((v = coord_ymap_get(&c->y, n, "probe"))) {
                st->kind = COORD_STEP_PROBE;
                parse_probe(c, v, &st->probe);
        } else if ((v = coord_ymap_get(&c->y, n, "parallel"))) {
                if (!need_v2(c, v, "parallel"))
                        return;
                if (c->depth >= COORD_MAX_NESTING) {
                        coord_yerr(&c->y, v, NULL, "parallel groups nested more than %d deep",
                                   COORD_MAX_NESTING);
                        return;
                }
                if (coord_ynull(v) || (v->type == YAML_SEQUENCE_NODE && seq_len(v) == 0)) {
                        coord_yerr(&c->y, v, NULL, "parallel group is empty");
                        return;
                }
                st->kind = COORD_STEP_PARALLEL;
                c->depth++;
                parse_steps(c, v, list, allow_fault, &st->group.steps, &st->group.n);
                c->depth--;
        }
}

static void parse_steps(struct ectx *c, const yaml_node_t *n, const char *list, bool allow_fault,
                        struct coord_step **ret, size_t *ret_n)
{
        if (!coord_yseq_check(&c->y, n, list))
                return;
        size_t cnt = seq_len(n);
        if (cnt > COORD_MAX_STEPS) {
                coord_yerr(&c->y, n, NULL, "%s has more than %d steps", list, COORD_MAX_STEPS);
                return;
        }
        if (cnt == 0)
                return;
        /* Allocated once, never moved: remember_probe keeps pointers into it. */
        struct coord_step *v = calloc(cnt, sizeof(*v));
        if (!v) {
                c->oom = true;
                return;
        }
        *ret = v;
        *ret_n = cnt;
        for (size_t i = 0; i < cnt; i++)
                parse_step(c, seq_item(c, n, i), &v[i], list, allow_fault);
}

static const char *const selector_keys[] = {
    "names", "tags", "all", "count", "percent", "random", "seed", "max-blast-radius", NULL};

static void parse_target(struct ectx *c, const yaml_node_t *kn, const yaml_node_t *n,
                         struct coord_target *t)
{
        t->line = (unsigned)kn->start_mark.line + 1;
        t->column = (unsigned)kn->start_mark.column + 1;
        const char *name = coord_yscalar(&c->y, kn, "target name");
        if (!name)
                return;
        if (!coord_name_valid(name)) {
                coord_yerr(&c->y, kn, "use 1-63 characters from A-Z a-z 0-9 . _ -",
                           "invalid target name '%s'", name);
                return;
        }
        if (!(t->name = xstrdup(c, name)))
                return;
        if (!coord_ymap_check(&c->y, n, "target", selector_keys))
                return;
        struct coord_selector *sel = &t->sel;
        size_t before = nerr(c);
        yaml_node_t *v;
        if ((v = coord_ymap_get(&c->y, n, "names")) &&
            coord_ystrings(&c->y, v, "names", true, &sel->names, &sel->n_names) == 0 &&
            sel->n_names == 0)
                coord_yerr(&c->y, v, NULL, "names must not be empty");
        if ((v = coord_ymap_get(&c->y, n, "tags")) &&
            coord_ystrings(&c->y, v, "tags", true, &sel->tags, &sel->n_tags) == 0 &&
            sel->n_tags == 0)
                coord_yerr(&c->y, v, NULL, "tags must not be empty");
        if ((v = coord_ymap_get(&c->y, n, "all"))) {
                const char *s = coord_yscalar(&c->y, v, "all");
                bool b = false;
                if (s && fl_parse_bool(s, &b) < 0)
                        coord_yerr(&c->y, v, NULL, "all must be true or false");
                sel->all = b;
        }
        uint64_t u;
        yaml_node_t *cn = coord_ymap_get(&c->y, n, "count");
        if (cn && parse_int(c, cn, "count", 1, 100000, &u) == 0)
                sel->count = (uint32_t)u;
        yaml_node_t *pn = coord_ymap_get(&c->y, n, "percent");
        if (pn) {
                const char *s = coord_yscalar(&c->y, pn, "percent");
                uint32_t bp;
                if (s && (fl_parse_percent(s, &bp) < 0 || bp == 0))
                        coord_yerr(&c->y, pn, "a number greater than 0 and at most 100, e.g. 50",
                                   "percent must be in (0, 100], not '%s'", s);
                else if (s)
                        sel->percent_bp = bp;
        }
        if (cn && pn)
                coord_yerr(&c->y, pn, NULL, "count and percent are mutually exclusive");
        if ((v = coord_ymap_get(&c->y, n, "random")) && need_v2(c, v, "random"))
                parse_bool(c, v, "random", &t->random);
        if ((v = coord_ymap_get(&c->y, n, "seed")) && need_v2(c, v, "seed") &&
            parse_int(c, v, "seed", 0, UINT64_MAX, &t->seed) == 0) {
                t->has_seed = true;
                if (!t->random)
                        coord_yerr(&c->y, v, "add random: true", "seed without random: true");
        }
        if ((v = coord_ymap_get(&c->y, n, "max-blast-radius")) &&
            need_v2(c, v, "max-blast-radius") &&
            parse_int(c, v, "max-blast-radius", 1, 100000, &u) == 0)
                t->max_blast = (uint32_t)u;
        if (nerr(c) != before)
                return;
        int kinds = (sel->n_names > 0) + (sel->n_tags > 0) + (sel->all ? 1 : 0);
        if (kinds != 1) {
                coord_yerr(&c->y, n, "e.g. {names: [web-1]}, {tags: [web], count: 1}, {all: true}",
                           "target '%s' needs exactly one of names, tags, all: true", name);
                return;
        }
        if (c->e->has_inventory) {
                const struct coord_agent **agents = NULL;
                char err[256];
                int r = coord_inventory_select(&c->e->inventory, sel, &agents, err, sizeof(err));
                free(agents);
                if (r == -ENOMEM)
                        c->oom = true;
                else if (r < 0)
                        coord_yerr(&c->y, n, NULL, "target '%s': %s", name, err);
                else if (t->max_blast && (uint32_t)r > t->max_blast)
                        coord_yerr(&c->y, n, "narrow it with count or percent, or raise the limit",
                                   "target '%s' selects %d agents, more than max-blast-radius %u",
                                   name, r, t->max_blast);
        }
}

static void parse_targets(struct ectx *c, const yaml_node_t *n)
{
        if (!coord_ymap_check(&c->y, n, "targets", NULL))
                return;
        size_t cnt = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        if (cnt == 0)
                return;
        c->e->targets = calloc(cnt, sizeof(*c->e->targets));
        if (!c->e->targets) {
                c->oom = true;
                return;
        }
        c->e->n_targets = cnt;
        for (size_t i = 0; i < cnt; i++) {
                yaml_node_pair_t *p = &n->data.mapping.pairs.start[i];
                parse_target(c, yaml_document_get_node(c->y.doc, p->key),
                             yaml_document_get_node(c->y.doc, p->value), &c->e->targets[i]);
        }
}

static void parse_inventory(struct ectx *c, const yaml_node_t *n, const char *basedir)
{
        struct coord_experiment *e = c->e;
        int r;
        if (n->type == YAML_SCALAR_NODE) {
                const char *s = coord_yscalar(&c->y, n, "inventory");
                if (!s)
                        return;
                if (s[0] == '/' || !basedir)
                        e->inventory_path = xstrdup(c, s);
                else if (asprintf(&e->inventory_path, "%s/%s", basedir, s) < 0) {
                        e->inventory_path = NULL;
                        c->oom = true;
                }
                if (!e->inventory_path)
                        return;
                size_t before = nerr(c);
                r = coord_inventory_load(e->inventory_path, &e->inventory, c->y.diags);
                if (r < 0 && r != -EINVAL && nerr(c) == before + 1)
                        /* file-level failure (missing, unreadable): point at the reference */
                        coord_yerr(&c->y, n, NULL, "cannot load inventory '%s'", s);
        } else
                r = coord_inventory_from_node(c->y.doc, (yaml_node_t *)n, c->y.file, &e->inventory,
                                              c->y.diags);
        if (r == -ENOMEM)
                c->oom = true;
        e->has_inventory = r == 0;
}

static const char *const top_keys[] = {
    "version",      "title",  "description", "tags",       "inventory", "defaults", "targets",
    "steady-state", "method", "rollbacks",   "guardrails", "drill",     NULL};
static const char *const defaults_keys[] = {"guardrail-interval", "guardrail-window", NULL};
static const char *const slo_keys[] = {"objective", "windows", "burn-rate", NULL};
static const char *const drill_keys[] = {"rto", "rpo", NULL};
static const char *const rto_keys[] = {"target", "poll", "timeout", NULL};
static const char *const rpo_keys[] = {"target", "interval",     "writer",
                                       "reader", "marker-regex", NULL};

static void parse_slo(struct ectx *c, const yaml_node_t *n, struct coord_slo *slo)
{
        if (!coord_ymap_check(&c->y, n, "slo", slo_keys))
                return;
        size_t before = nerr(c);
        yaml_node_t *v;
        uint32_t bp = 0;
        if (!(v = coord_ymap_get(&c->y, n, "objective")))
                coord_yerr(&c->y, n, "e.g. objective: 99.9%", "slo has no 'objective'");
        else if (parse_pct(c, v, "objective", &bp) == 0 && bp >= 10000)
                coord_yerr(&c->y, v, "an objective of 100% leaves no error budget",
                           "objective must be below 100%%");
        slo->objective = bp / 10000.0;
        if (!(v = coord_ymap_get(&c->y, n, "windows")))
                coord_yerr(&c->y, n, "e.g. windows: [5m, 1h]", "slo has no 'windows'");
        else if (coord_yseq_check(&c->y, v, "windows")) {
                if (seq_len(v) != 2)
                        coord_yerr(&c->y, v, "a short and a long window, e.g. [5m, 1h]",
                                   "windows needs exactly two durations");
                else if (parse_duration(c, seq_item(c, v, 0), "window", &slo->short_ms) == 0 &&
                         parse_duration(c, seq_item(c, v, 1), "window", &slo->long_ms) == 0 &&
                         slo->short_ms >= slo->long_ms)
                        coord_yerr(&c->y, v, "e.g. [5m, 1h]",
                                   "the short window must be shorter than the long one");
        }
        if (!(v = coord_ymap_get(&c->y, n, "burn-rate")))
                coord_yerr(&c->y, n, "e.g. burn-rate: 14.4 (2% of a 30-day budget in 1h)",
                           "slo has no 'burn-rate'");
        else
                parse_number(c, v, "burn-rate", 0.001, 1e6, &slo->burn_rate);
        (void)before;
}

static void parse_guardrail(struct ectx *c, const yaml_node_t *n, struct coord_guardrail *g)
{
        parse_probe_keys(c, n, &g->probe, "guardrail", guard_keys);
        if (n->type != YAML_MAPPING_NODE)
                return;
        g->line = (unsigned)n->start_mark.line + 1;
        g->column = (unsigned)n->start_mark.column + 1;
        g->interval_ms = c->def_interval;
        g->window_ms = c->def_window;
        g->min_samples = COORD_GUARD_MIN_SAMPLES;
        yaml_node_t *v;
        uint64_t u;
        if ((v = coord_ymap_get(&c->y, n, "interval")))
                parse_duration(c, v, "interval", &g->interval_ms);
        if ((v = coord_ymap_get(&c->y, n, "window")))
                parse_duration(c, v, "window", &g->window_ms);
        if ((v = coord_ymap_get(&c->y, n, "failures")) &&
            parse_int(c, v, "failures", 1, 100000, &u) == 0)
                g->failures = (uint32_t)u;
        if ((v = coord_ymap_get(&c->y, n, "min-samples")) &&
            parse_int(c, v, "min-samples", 1, 100000, &u) == 0)
                g->min_samples = (uint32_t)u;
        if ((v = coord_ymap_get(&c->y, n, "success-ratio")))
                parse_pct(c, v, "success-ratio", &g->min_success_bp);
        if ((v = coord_ymap_get(&c->y, n, "p50-latency")))
                parse_duration(c, v, "p50-latency", &g->max_p50_ms);
        if ((v = coord_ymap_get(&c->y, n, "p95-latency")))
                parse_duration(c, v, "p95-latency", &g->max_p95_ms);
        if ((v = coord_ymap_get(&c->y, n, "p99-latency")))
                parse_duration(c, v, "p99-latency", &g->max_p99_ms);
        if ((v = coord_ymap_get(&c->y, n, "slo"))) {
                g->has_slo = true;
                parse_slo(c, v, &g->slo);
        }
        bool window_rule = g->min_success_bp || g->max_p50_ms || g->max_p95_ms || g->max_p99_ms;
        if (!window_rule && !g->has_slo && !g->failures)
                g->failures = 1;
        if (g->interval_ms < 50 && g->interval_ms > 0)
                coord_yerr(&c->y, coord_ymap_get(&c->y, n, "interval"), NULL,
                           "interval must be at least 50ms");
}

static void parse_guardrails(struct ectx *c, const yaml_node_t *n)
{
        if (!need_v2(c, n, "guardrails") || !coord_yseq_check(&c->y, n, "guardrails"))
                return;
        size_t cnt = seq_len(n);
        if (cnt == 0)
                return;
        if (cnt > 256) {
                coord_yerr(&c->y, n, NULL, "more than 256 guardrails");
                return;
        }
        c->e->guardrails = calloc(cnt, sizeof(*c->e->guardrails));
        if (!c->e->guardrails) {
                c->oom = true;
                return;
        }
        c->e->n_guardrails = cnt;
        for (size_t i = 0; i < cnt; i++)
                parse_guardrail(c, seq_item(c, n, i), &c->e->guardrails[i]);
}

static void parse_drill(struct ectx *c, const yaml_node_t *n)
{
        if (!need_v2(c, n, "drill") || !coord_ymap_check(&c->y, n, "drill", drill_keys))
                return;
        struct coord_experiment *e = c->e;
        yaml_node_t *rn = coord_ymap_get(&c->y, n, "rto"), *pn = coord_ymap_get(&c->y, n, "rpo");
        yaml_node_t *v;
        if (rn && coord_ymap_check(&c->y, rn, "rto", rto_keys)) {
                if ((v = coord_ymap_get(&c->y, rn, "target")) &&
                    parse_duration(c, v, "rto target", &e->rto.target_ms) == 0)
                        e->rto.has_target = true;
                if ((v = coord_ymap_get(&c->y, rn, "poll")))
                        parse_duration(c, v, "poll", &e->rto.poll_ms);
                if ((v = coord_ymap_get(&c->y, rn, "timeout")))
                        parse_duration(c, v, "timeout", &e->rto.timeout_ms);
                if (!e->rto.has_target)
                        coord_yerr(&c->y, rn, "e.g. rto: {target: 30s}", "rto has no 'target'");
                if (e->n_steady_state == 0)
                        coord_yerr(&c->y, rn, "RTO is the time until the hypothesis holds again",
                                   "rto needs steady-state probes");
        }
        if (pn && coord_ymap_check(&c->y, pn, "rpo", rpo_keys)) {
                e->rpo.enabled = true;
                if (!(v = coord_ymap_get(&c->y, pn, "target")))
                        coord_yerr(&c->y, pn, "e.g. target: 5s", "rpo has no 'target'");
                else
                        parse_duration(c, v, "rpo target", &e->rpo.target_ms);
                if ((v = coord_ymap_get(&c->y, pn, "interval")))
                        parse_duration(c, v, "interval", &e->rpo.interval_ms);
                if (!(v = coord_ymap_get(&c->y, pn, "writer")))
                        coord_yerr(&c->y, pn, "a probe that writes '{marker}'",
                                   "rpo has no 'writer'");
                else
                        parse_probe(c, v, &e->rpo.writer);
                if (!(v = coord_ymap_get(&c->y, pn, "reader")))
                        coord_yerr(&c->y, pn, "a probe whose output is the newest marker",
                                   "rpo has no 'reader'");
                else
                        parse_probe(c, v, &e->rpo.reader);
                if ((v = coord_ymap_get(&c->y, pn, "marker-regex")) &&
                    (e->rpo.marker_regex = parse_regex(c, v, "marker-regex")) &&
                    !strchr(e->rpo.marker_regex, '('))
                        coord_yerr(&c->y, v, "e.g. 'seq=([0-9]+)'",
                                   "marker-regex needs a group around the marker");
                if (e->rpo.writer.kind == COORD_PROBE_PROMETHEUS)
                        coord_yerr(&c->y, coord_ymap_get(&c->y, pn, "writer"), NULL,
                                   "the rpo writer must be an http, command or tcp probe");
        }
        if ((rn || pn) && !c->failover_node)
                coord_yerr(&c->y, n, "mark the fault that causes the failover",
                           "drill needs a fault step with failover: true");
        if (!e->rto.poll_ms)
                e->rto.poll_ms = 200;
        if (!e->rto.timeout_ms)
                e->rto.timeout_ms = e->rto.target_ms * 5 > 60000 ? e->rto.target_ms * 5 : 60000;
        if (!e->rpo.interval_ms)
                e->rpo.interval_ms = 200;
}
static const char *const steady_keys[] = {"probes", NULL};

static int load_doc(yaml_document_t *doc, const char *name, const char *basedir,
                    const struct coord_validate_hooks *hooks, struct coord_experiment *ret,
                    struct coord_diags *diags)
{
        struct coord_experiment e = {0};
        struct ectx c = {.y = {.doc = doc, .file = name, .diags = diags}, .hooks = hooks, .e = &e};
        yaml_node_t *root = yaml_document_get_root_node(doc);
        size_t before = nerr(&c);

        e.path = xstrdup(&c, name);
        if (!coord_ymap_check(&c.y, root, "experiment", top_keys))
                goto out;

        yaml_node_t *v = coord_ymap_get(&c.y, root, "version");
        uint64_t u;
        if (!v)
                coord_yerr(&c.y, root, "add 'version: 1' at the top", "missing 'version'");
        else if (v->type == YAML_SCALAR_NODE &&
                 fl_parse_u64((const char *)v->data.scalar.value, &u) == 0 &&
                 (u < 1 || u > COORD_EXPERIMENT_VERSION))
                coord_yerr(&c.y, v, "this faultline reads versions 1 and 2",
                           "unsupported experiment version %llu", (unsigned long long)u);
        else if (parse_int(&c, v, "version", 1, COORD_EXPERIMENT_VERSION, &u) == 0)
                e.version = (uint32_t)u;

        c.def_interval = COORD_GUARD_INTERVAL_MS;
        c.def_window = COORD_GUARD_WINDOW_MS;
        if ((v = coord_ymap_get(&c.y, root, "defaults")) && need_v2(&c, v, "defaults") &&
            coord_ymap_check(&c.y, v, "defaults", defaults_keys)) {
                yaml_node_t *d;
                if ((d = coord_ymap_get(&c.y, v, "guardrail-interval")))
                        parse_duration(&c, d, "guardrail-interval", &c.def_interval);
                if ((d = coord_ymap_get(&c.y, v, "guardrail-window")))
                        parse_duration(&c, d, "guardrail-window", &c.def_window);
        }

        if (!(v = coord_ymap_get(&c.y, root, "title")))
                coord_yerr(&c.y, root, NULL, "missing 'title'");
        else {
                const char *s = coord_yscalar(&c.y, v, "title");
                if (s)
                        e.title = xstrdup(&c, s);
        }
        if ((v = coord_ymap_get(&c.y, root, "description"))) {
                if (v->type != YAML_SCALAR_NODE)
                        coord_yerr(&c.y, v, NULL, "description must be a string");
                else
                        e.description = xstrdup(&c, (const char *)v->data.scalar.value);
        }
        if ((v = coord_ymap_get(&c.y, root, "tags")))
                coord_ystrings(&c.y, v, "tags", true, &e.tags, &e.n_tags);

        /* Inventory before targets, targets before method: later sections
         * are checked against earlier ones. */
        if ((v = coord_ymap_get(&c.y, root, "inventory")))
                parse_inventory(&c, v, basedir);
        if ((v = coord_ymap_get(&c.y, root, "targets"))) {
                if (!e.has_inventory && !coord_ymap_get(&c.y, root, "inventory"))
                        coord_yerr(&c.y, v, "add 'inventory: FILE' or an inline inventory",
                                   "targets need an inventory");
                parse_targets(&c, v);
        }

        if ((v = coord_ymap_get(&c.y, root, "steady-state")) &&
            coord_ymap_check(&c.y, v, "steady-state", steady_keys)) {
                yaml_node_t *pl = coord_ymap_get(&c.y, v, "probes");
                if (pl && coord_yseq_check(&c.y, pl, "steady-state probes") && seq_len(pl) > 0) {
                        size_t cnt = seq_len(pl);
                        e.steady_state = calloc(cnt, sizeof(*e.steady_state));
                        if (!e.steady_state)
                                c.oom = true;
                        else {
                                e.n_steady_state = cnt;
                                for (size_t i = 0; i < cnt; i++)
                                        parse_probe(&c, seq_item(&c, pl, i), &e.steady_state[i]);
                        }
                }
        }

        if (!(v = coord_ymap_get(&c.y, root, "method")))
                coord_yerr(&c.y, root, "add 'method:' with at least one step", "missing 'method'");
        else if (coord_ynull(v) || (v->type == YAML_SEQUENCE_NODE && seq_len(v) == 0))
                coord_yerr(&c.y, v, "add at least one fault, wait or probe step",
                           "method is empty");
        else
                parse_steps(&c, v, "method", true, &e.method, &e.n_method);
        if ((v = coord_ymap_get(&c.y, root, "rollbacks")) && !coord_ynull(v))
                parse_steps(&c, v, "rollbacks", false, &e.rollbacks, &e.n_rollbacks);
        if ((v = coord_ymap_get(&c.y, root, "guardrails")) && !coord_ynull(v))
                parse_guardrails(&c, v);
        if ((v = coord_ymap_get(&c.y, root, "drill")) && !coord_ynull(v))
                parse_drill(&c, v);

out:
        free(c.probes);
        if (c.oom) {
                coord_experiment_free(&e);
                return -ENOMEM;
        }
        if (nerr(&c) != before) {
                coord_experiment_free(&e);
                return -EINVAL;
        }
        *ret = e;
        return 0;
}

int coord_experiment_load_buffer(const char *name, const char *buf, size_t len, const char *basedir,
                                 const struct coord_validate_hooks *hooks,
                                 struct coord_experiment *ret, struct coord_diags *diags)
{
        yaml_document_t doc;
        memset(ret, 0, sizeof(*ret));
        int r = coord_yload_buffer(name, buf, len, &doc, diags);
        if (r < 0)
                return r;
        r = load_doc(&doc, name, basedir, hooks, ret, diags);
        yaml_document_delete(&doc);
        return r;
}

int coord_experiment_load(const char *path, const struct coord_validate_hooks *hooks,
                          struct coord_experiment *ret, struct coord_diags *diags)
{
        yaml_document_t doc;
        memset(ret, 0, sizeof(*ret));
        int r = coord_yload_file(path, &doc, diags);
        if (r < 0)
                return r;
        _cleanup_free_ char *copy = strdup(path);
        if (!copy) {
                yaml_document_delete(&doc);
                return -ENOMEM;
        }
        r = load_doc(&doc, path, dirname(copy), hooks, ret, diags);
        yaml_document_delete(&doc);
        return r;
}

void coord_experiment_free(struct coord_experiment *e)
{
        if (!e)
                return;
        free(e->path);
        free(e->title);
        free(e->description);
        coord_strv_free(e->tags, e->n_tags);
        free(e->inventory_path);
        coord_inventory_free(&e->inventory);
        for (size_t i = 0; e->targets && i < e->n_targets; i++) {
                free(e->targets[i].name);
                coord_selector_free(&e->targets[i].sel);
        }
        free(e->targets);
        for (size_t i = 0; e->steady_state && i < e->n_steady_state; i++)
                coord_probe_free(&e->steady_state[i]);
        free(e->steady_state);
        steps_free(e->method, e->n_method);
        steps_free(e->rollbacks, e->n_rollbacks);
        for (size_t i = 0; e->guardrails && i < e->n_guardrails; i++)
                coord_probe_free(&e->guardrails[i].probe);
        free(e->guardrails);
        coord_probe_free(&e->rpo.writer);
        coord_probe_free(&e->rpo.reader);
        free(e->rpo.marker_regex);
        memset(e, 0, sizeof(*e));
}

const struct coord_target *coord_experiment_find_target(const struct coord_experiment *e,
                                                        const char *name)
{
        for (size_t i = 0; e && i < e->n_targets; i++)
                if (e->targets[i].name && !strcmp(e->targets[i].name, name))
                        return &e->targets[i];
        return NULL;
}

const char *coord_step_kind_name(enum coord_step_kind k)
{
        switch (k) {
        case COORD_STEP_FAULT:
                return "fault";
        case COORD_STEP_WAIT:
                return "wait";
        case COORD_STEP_PROBE:
                return "probe";
        case COORD_STEP_PARALLEL:
                return "parallel";
        }
        return "?";
}

static uint64_t splitmix64(uint64_t *x)
{
        uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

void coord_shuffle(const void **v, size_t n, uint64_t seed)
{
        uint64_t st = seed;
        for (size_t i = n; i > 1; i--) {
                size_t j = (size_t)(splitmix64(&st) % i);
                const void *t = v[i - 1];
                v[i - 1] = v[j];
                v[j] = t;
        }
}
