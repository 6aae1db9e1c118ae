/* Agent configuration file (YAML). Every key is known, every value parsed
 * strictly; a bad file is refused whole and the defaults stay. */
#include <yaml.h>

#include "agent.h"
#include "faults/net.h"
#include "fl_log.h"
#include "fl_parse.h"
#include "fl_util.h"

void agent_config_defaults(struct agent_config *c)
{
        memset(c, 0, sizeof(*c));
        snprintf(c->listen, sizeof(c->listen), "%s", AGENT_DEFAULT_LISTEN);
        snprintf(c->state_dir, sizeof(c->state_dir), "%s", AGENT_DEFAULT_STATE_DIR);
        c->log_level = LOG_INFO;
        c->policy.max_duration_ms = AGENT_DEFAULT_MAX_DURATION;
        c->policy.max_faults = AGENT_DEFAULT_MAX_FAULTS;
        c->policy.max_lease_ms = AGENT_DEFAULT_LEASE_MS;
        c->policy.allow_all_kinds = true;
        c->policy.protected_ports[0] = 22;
        c->policy.n_protected_ports = 1;
        c->sandbox = true;
}

struct cfg_parse {
        const char *path;
        yaml_document_t *doc;
        char *err;
        size_t errlen;
};

static int fail_at(struct cfg_parse *p, yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail_at(struct cfg_parse *p, yaml_node_t *n, const char *fmt, ...)
{
        char msg[FL_MSG_LEN];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(p->err, p->errlen, "%s:%zu:%zu: %s", p->path, n ? n->start_mark.line + 1 : 0,
                 n ? n->start_mark.column + 1 : 0, msg);
        return -EINVAL;
}

static const char *scalar(yaml_node_t *n)
{
        return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int want_scalar(struct cfg_parse *p, yaml_node_t *n, const char *key, const char **ret)
{
        *ret = scalar(n);
        return *ret ? 0 : fail_at(p, n, "\"%s\" must be a scalar", key);
}

static int parse_string_list(struct cfg_parse *p, yaml_node_t *n, const char *key, char *arr,
                             size_t width, size_t max, size_t *ret_n)
{
        if (n->type != YAML_SEQUENCE_NODE)
                return fail_at(p, n, "\"%s\" must be a list", key);
        size_t count = 0;
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
                yaml_node_t *item = yaml_document_get_node(p->doc, *it);
                const char *s = scalar(item);
                if (!s || !*s)
                        return fail_at(p, item, "\"%s\" entries must be non-empty strings", key);
                if (count == max)
                        return fail_at(p, item, "\"%s\" holds at most %zu entries", key, max);
                if (fl_strlcpy(arr + count * width, s, width) < 0)
                        return fail_at(p, item, "\"%s\" entry too long (max %zu)", key, width - 1);
                count++;
        }
        *ret_n = count;
        return 0;
}

static int parse_policy(struct cfg_parse *p, yaml_node_t *map, struct agent_policy *pol)
{
        if (map->type != YAML_MAPPING_NODE)
                return fail_at(p, map, "\"policy\" must be a mapping");
        for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
             pr++) {
                yaml_node_t *k = yaml_document_get_node(p->doc, pr->key);
                yaml_node_t *v = yaml_document_get_node(p->doc, pr->value);
                const char *key = scalar(k), *s;
                uint64_t u;
                int rv;
                if (!key)
                        return fail_at(p, k, "keys must be strings");
                if (strcmp(key, "max-duration") == 0) {
                        if ((rv = want_scalar(p, v, key, &s)) < 0)
                                return rv;
                        if (fl_parse_duration_ms(s, &u) < 0 || u == 0)
                                return fail_at(p, v,
                                               "max-duration: \"%s\" is not a duration "
                                               "like 10m",
                                               s);
                        pol->max_duration_ms = u;
                } else if (strcmp(key, "lease-timeout") == 0) {
                        if ((rv = want_scalar(p, v, key, &s)) < 0)
                                return rv;
                        if (fl_parse_duration_ms(s, &u) < 0 || u < AGENT_MIN_LEASE_MS || u > 600000)
                                return fail_at(p, v,
                                               "lease-timeout: \"%s\" must be a duration "
                                               "between 500ms and 10m",
                                               s);
                        pol->max_lease_ms = u;
                } else if (strcmp(key, "max-concurrent-faults") == 0) {
                        if ((rv = want_scalar(p, v, key, &s)) < 0)
                                return rv;
                        if (fl_parse_u64(s, &u) < 0 || u == 0 || u > 4096)
                                return fail_at(p, v,
                                               "max-concurrent-faults: \"%s\" must be "
                                               "1..4096",
                                               s);
                        pol->max_faults = (uint32_t)u;
                } else if (strcmp(key, "allowed-faults") == 0) {
                        if ((rv = parse_string_list(p, v, key, &pol->allowed_kinds[0][0],
                                                    FL_KIND_LEN, FL_ARRAY_SIZE(pol->allowed_kinds),
                                                    &pol->n_allowed_kinds)) < 0)
                                return rv;
                        for (size_t i = 0; i < pol->n_allowed_kinds; i++)
                                if (!agent_fault_lookup(pol->allowed_kinds[i]))
                                        return fail_at(p,
                                                       yaml_document_get_node(
                                                           p->doc, v->data.sequence.items.start[i]),
                                                       "allowed-faults: unknown fault kind \"%s\"",
                                                       pol->allowed_kinds[i]);
                        pol->allow_all_kinds = false;
                } else if (strcmp(key, "protected-processes") == 0) {
                        if ((rv = parse_string_list(p, v, key, &pol->protected_names[0][0], 16,
                                                    AGENT_MAX_PROTECTED_NAMES,
                                                    &pol->n_protected_names)) < 0)
                                return rv;
                } else if (strcmp(key, "protected-ports") == 0) {
                        char ports[16][8];
                        size_t n = 0;
                        if ((rv = parse_string_list(p, v, key, &ports[0][0], 8, 16, &n)) < 0)
                                return rv;
                        for (size_t i = 0; i < n; i++) {
                                if (fl_parse_u64(ports[i], &u) < 0 || u == 0 || u > 65535)
                                        return fail_at(p, v,
                                                       "protected-ports: \"%s\" is not a "
                                                       "port 1..65535",
                                                       ports[i]);
                                pol->protected_ports[i] = (uint16_t)u;
                        }
                        pol->n_protected_ports = n;
                } else if (strcmp(key, "protected-cidrs") == 0) {
                        if ((rv = parse_string_list(p, v, key, &pol->protected_cidrs[0][0], 64, 16,
                                                    &pol->n_protected_cidrs)) < 0)
                                return rv;
                        for (size_t i = 0; i < pol->n_protected_cidrs; i++) {
                                struct net_cidr c;
                                size_t n = 0;
                                char e[FL_MSG_LEN];
                                if (net_parse_cidrs("protected-cidrs", pol->protected_cidrs[i], &c,
                                                    1, &n, e, sizeof(e)) < 0)
                                        return fail_at(p, v, "%s", e);
                        }
                } else if (strcmp(key, "allowed-paths") == 0) {
                        if ((rv = parse_string_list(p, v, key, &pol->allowed_paths[0][0],
                                                    FL_VAL_LEN, FL_ARRAY_SIZE(pol->allowed_paths),
                                                    &pol->n_allowed_paths)) < 0)
                                return rv;
                        for (size_t i = 0; i < pol->n_allowed_paths; i++)
                                if (pol->allowed_paths[i][0] != '/')
                                        return fail_at(p, v,
                                                       "allowed-paths: \"%s\" is not an "
                                                       "absolute path",
                                                       pol->allowed_paths[i]);
                } else {
                        return fail_at(p, k,
                                       "unknown key \"policy.%s\" (known: max-duration, "
                                       "lease-timeout, max-concurrent-faults, allowed-faults, "
                                       "protected-processes, protected-ports, protected-cidrs, "
                                       "allowed-paths)",
                                       key);
                }
        }
        return 0;
}

static int parse_bool(struct cfg_parse *p, yaml_node_t *v, const char *key, bool *ret)
{
        const char *s;
        int rv = want_scalar(p, v, key, &s);
        if (rv < 0)
                return rv;
        if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0)
                *ret = true;
        else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0)
                *ret = false;
        else
                return fail_at(p, v, "%s: \"%s\" is not true or false", key, s);
        return 0;
}

static int parse_tls(struct cfg_parse *p, yaml_node_t *map, struct agent_tls *t)
{
        if (map->type != YAML_MAPPING_NODE)
                return fail_at(p, map, "\"tls\" must be a mapping");
        for (yaml_node_pair_t *pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
             pr++) {
                yaml_node_t *k = yaml_document_get_node(p->doc, pr->key);
                yaml_node_t *v = yaml_document_get_node(p->doc, pr->value);
                const char *key = scalar(k), *s;
                char *dst = NULL;
                int rv;
                if (!key)
                        return fail_at(p, k, "keys must be strings");
                if (strcmp(key, "ca") == 0)
                        dst = t->ca;
                else if (strcmp(key, "cert") == 0)
                        dst = t->cert;
                else if (strcmp(key, "key") == 0)
                        dst = t->key;
                if (dst) {
                        if ((rv = want_scalar(p, v, key, &s)) < 0)
                                return rv;
                        if (s[0] != '/' || fl_strlcpy(dst, s, FL_VAL_LEN) < 0)
                                return fail_at(p, v, "tls.%s must be an absolute path", key);
                } else if (strcmp(key, "allowed-subjects") == 0) {
                        if ((rv = parse_string_list(p, v, key, &t->allowed_subjects[0][0],
                                                    FL_NAME_LEN, FL_TLS_MAX_SUBJECTS,
                                                    &t->n_allowed_subjects)) < 0)
                                return rv;
                } else {
                        return fail_at(p, k,
                                       "unknown key \"tls.%s\" (known: ca, cert, key, "
                                       "allowed-subjects)",
                                       key);
                }
        }
        return 0;
}

int agent_config_load(const char *path, struct agent_config *out, char *err, size_t errlen)
{
        struct agent_config c = *out;
        yaml_parser_t parser;
        yaml_document_t doc;
        struct cfg_parse p = {.path = path, .doc = &doc, .err = err, .errlen = errlen};
        int rv = 0;

        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f) {
                rv = -errno;
                snprintf(err, errlen, "%s: %s", path, strerror(errno));
                return rv;
        }
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_file(&parser, f);
        if (!yaml_parser_load(&parser, &doc)) {
                snprintf(err, errlen, "%s:%zu:%zu: invalid YAML: %s", path,
                         parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                         parser.problem ? parser.problem : "parse error");
                yaml_parser_delete(&parser);
                return -EINVAL;
        }
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root) {
                rv = 0; /* empty file: defaults */
                goto out;
        }
        if (root->type != YAML_MAPPING_NODE) {
                rv = fail_at(&p, root, "top level must be a mapping");
                goto out;
        }
        for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
             pr < root->data.mapping.pairs.top && rv == 0; pr++) {
                yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
                yaml_node_t *v = yaml_document_get_node(&doc, pr->value);
                const char *key = scalar(k), *s = NULL;
                if (!key) {
                        rv = fail_at(&p, k, "keys must be strings");
                } else if (strcmp(key, "listen") == 0) {
                        if ((rv = want_scalar(&p, v, key, &s)) == 0 &&
                            fl_strlcpy(c.listen, s, sizeof(c.listen)) < 0)
                                rv = fail_at(&p, v, "listen: URL too long");
                } else if (strcmp(key, "state-dir") == 0) {
                        if ((rv = want_scalar(&p, v, key, &s)) == 0 &&
                            (s[0] != '/' || fl_strlcpy(c.state_dir, s, sizeof(c.state_dir)) < 0))
                                rv = fail_at(&p, v, "state-dir must be an absolute path");
                } else if (strcmp(key, "log-level") == 0) {
                        if ((rv = want_scalar(&p, v, key, &s)) == 0) {
                                int lvl = fl_log_level_from_string(s);
                                if (lvl < 0)
                                        rv = fail_at(&p, v,
                                                     "log-level: \"%s\" is not one of "
                                                     "debug, info, notice, warning, err",
                                                     s);
                                else
                                        c.log_level = lvl;
                        }
                } else if (strcmp(key, "policy") == 0) {
                        rv = parse_policy(&p, v, &c.policy);
                } else if (strcmp(key, "tls") == 0) {
                        rv = parse_tls(&p, v, &c.tls);
                } else if (strcmp(key, "insecure") == 0) {
                        rv = parse_bool(&p, v, key, &c.insecure);
                } else if (strcmp(key, "audit-log") == 0) {
                        rv = parse_bool(&p, v, key, &c.audit_log);
                } else if (strcmp(key, "sandbox") == 0) {
                        rv = parse_bool(&p, v, key, &c.sandbox);
                } else {
                        rv = fail_at(&p, k,
                                     "unknown key \"%s\" (known: listen, state-dir, log-level, "
                                     "policy, tls, insecure, audit-log, sandbox)",
                                     key);
                }
        }
        if (rv == 0)
                *out = c;
out:
        yaml_document_delete(&doc);
        yaml_parser_delete(&parser);
        return rv;
}
