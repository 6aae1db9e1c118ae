/* Experiment file parser and validator (format version 1).
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
};

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
        memset(p, 0, sizeof(*p));
}

static const char *const probe_keys[] = {"name", "http", "command", "expect", NULL};
static const char *const http_keys[] = {"url", "method", "timeout", "headers", "body", NULL};
static const char *const command_keys[] = {"argv", "timeout", "env", NULL};
static const char *const expect_keys[] = {"status",    "max-latency",  "body-regex",
                                          "exit-code", "stdout-regex", NULL};

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

static void parse_expect(struct ectx *c, const yaml_node_t *n, struct coord_probe *p)
{
        if (!coord_ymap_check(&c->y, n, "expect", expect_keys))
                return;
        bool http = p->kind == COORD_PROBE_HTTP;
        static const char *const http_only[] = {"status", "body-regex", NULL};
        static const char *const cmd_only[] = {"exit-code", "stdout-regex", NULL};
        const char *const *wrong = http ? cmd_only : http_only;
        for (size_t i = 0; wrong[i]; i++) {
                yaml_node_t *v = coord_ymap_get(&c->y, n, wrong[i]);
                if (v)
                        coord_yerr(&c->y, v, NULL, "'%s' applies to %s probes only", wrong[i],
                                   http ? "command" : "http");
        }
        yaml_node_t *v;
        uint64_t u;
        if (http && (v = coord_ymap_get(&c->y, n, "status")) &&
            parse_int(c, v, "status", 100, 599, &u) == 0)
                p->expect.status = (int)u;
        if (!http && (v = coord_ymap_get(&c->y, n, "exit-code")) &&
            parse_int(c, v, "exit-code", 0, 255, &u) == 0)
                p->expect.exit_code = (int)u;
        if ((v = coord_ymap_get(&c->y, n, "max-latency")))
                parse_duration(c, v, "max-latency", &p->expect.max_latency_ms);
        if (http && (v = coord_ymap_get(&c->y, n, "body-regex")))
                p->expect.body_regex = parse_regex(c, v, "body-regex");
        if (!http && (v = coord_ymap_get(&c->y, n, "stdout-regex")))
                p->expect.stdout_regex = parse_regex(c, v, "stdout-regex");
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
static void parse_probe(struct ectx *c, const yaml_node_t *n, struct coord_probe *p)
{
        if (!coord_ymap_check(&c->y, n, "probe", probe_keys))
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
        yaml_node_t *h = coord_ymap_get(&c->y, n, "http");
        yaml_node_t *cmd = coord_ymap_get(&c->y, n, "command");
        if (h && cmd)
                coord_yerr(&c->y, cmd, NULL, "a probe has either 'http' or 'command', not both");
        else if (h) {
                p->kind = COORD_PROBE_HTTP;
                parse_http(c, h, &p->http);
        } else if (cmd) {
                p->kind = COORD_PROBE_COMMAND;
                parse_command(c, cmd, &p->command);
        } else
                coord_yerr(&c->y, n, "planned: tcp, prometheus", "probe needs 'http' or 'command'");
        if ((v = coord_ymap_get(&c->y, n, "expect")) && p->kind)
                parse_expect(c, v, p);
        if (p->kind == COORD_PROBE_HTTP && p->expect.status == 0)
                p->expect.status = 200;
}

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

static const char *const fault_keys[] = {"target", "kind", "duration", "params", NULL};

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

static const char *const step_keys[] = {"fault", "wait", "probe", NULL};

static void parse_step(struct ectx *c, const yaml_node_t *n, struct coord_step *st,
                       const char *list, bool allow_fault)
{
        if (!coord_ymap_check(&c->y, n, "step", step_keys))
                return;
        st->line = (unsigned)n->start_mark.line + 1;
        st->column = (unsigned)n->start_mark.column + 1;
        size_t keys = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
        if (keys != 1) {
                coord_yerr(&c->y, n, "write one '- fault:', '- wait:' or '- probe:' per item",
                           "a step has exactly one of fault, wait, probe");
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

static const char *const selector_keys[] = {"names", "tags", "all", "count", "percent", NULL};

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

static const char *const top_keys[] = {"version",   "title",   "description",  "tags",
                                       "inventory", "targets", "steady-state", "method",
                                       "rollbacks", NULL};
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
                 u != COORD_EXPERIMENT_VERSION)
                coord_yerr(&c.y, v, "this faultline reads version 1 only",
                           "unsupported experiment version %llu", (unsigned long long)u);
        else if (parse_int(&c, v, "version", 1, 1, &u) == 0)
                e.version = (uint32_t)u;

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
        }
        return "?";
}
