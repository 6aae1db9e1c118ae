/* Inventory parsing and agent selection, plus the diagnostics list and
 * YAML helpers every coordinator parser shares (see inventory.h). */
#include "inventory.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fl_util.h"

/* ---- diagnostics ------------------------------------------------------ */

void coord_diags_vadd(struct coord_diags *d, const char *file, unsigned line, unsigned column,
                      const char *hint, const char *fmt, va_list ap)
{
        if (!d)
                return;
        if (d->n >= COORD_DIAGS_MAX) {
                d->dropped++;
                return;
        }
        if (d->n == d->cap) {
                size_t ncap = d->cap ? d->cap * 2 : 8;
                struct coord_diag *p = realloc(d->items, ncap * sizeof(*p));
                if (!p) {
                        d->dropped++;
                        return;
                }
                d->items = p;
                d->cap = ncap;
        }
        struct coord_diag *e = &d->items[d->n];
        memset(e, 0, sizeof(*e));
        if (vasprintf(&e->message, fmt, ap) < 0) {
                d->dropped++;
                return;
        }
        e->file = file ? strdup(file) : NULL;
        e->hint = hint ? strdup(hint) : NULL;
        e->line = line;
        e->column = column;
        d->n++;
}

void coord_diags_add(struct coord_diags *d, const char *file, unsigned line, unsigned column,
                     const char *hint, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        coord_diags_vadd(d, file, line, column, hint, fmt, ap);
        va_end(ap);
}

size_t coord_diags_count(const struct coord_diags *d)
{
        return d ? d->n + d->dropped : 0;
}

void coord_diags_print(const struct coord_diags *d, FILE *f)
{
        if (!d)
                return;
        for (size_t i = 0; i < d->n; i++) {
                const struct coord_diag *e = &d->items[i];
                const char *file = e->file ? e->file : "<input>";
                if (e->line > 0)
                        fprintf(f, "%s:%u:%u: error: %s", file, e->line, e->column, e->message);
                else
                        fprintf(f, "%s: error: %s", file, e->message);
                if (e->hint)
                        fprintf(f, " (hint: %s)", e->hint);
                fputc('\n', f);
        }
        if (d->dropped > 0)
                fprintf(f, "%zu more errors not shown\n", d->dropped);
}

void coord_diags_free(struct coord_diags *d)
{
        if (!d)
                return;
        for (size_t i = 0; i < d->n; i++) {
                free(d->items[i].file);
                free(d->items[i].message);
                free(d->items[i].hint);
        }
        free(d->items);
        memset(d, 0, sizeof(*d));
}

/* ---- YAML helpers ----------------------------------------------------- */

static int yload(yaml_parser_t *p, const char *file, yaml_document_t *ret,
                 struct coord_diags *diags)
{
        if (!yaml_parser_load(p, ret)) {
                const char *hint = NULL;
                if (p->problem && strstr(p->problem, "tab"))
                        hint = "indent with spaces, not tabs";
                if (p->error == YAML_MEMORY_ERROR)
                        return -ENOMEM;
                coord_diags_add(diags, file, (unsigned)p->problem_mark.line + 1,
                                (unsigned)p->problem_mark.column + 1, hint, "invalid YAML: %s%s%s",
                                p->problem ? p->problem : "syntax error", p->context ? " " : "",
                                p->context ? p->context : "");
                return -EINVAL;
        }
        if (!yaml_document_get_root_node(ret)) {
                yaml_document_delete(ret);
                memset(ret, 0, sizeof(*ret));
                coord_diags_add(diags, file, 0, 0, NULL, "empty document");
                return -EINVAL;
        }
        /* A second document would be silently ignored: refuse it. */
        yaml_document_t extra;
        if (!yaml_parser_load(p, &extra)) {
                coord_diags_add(diags, file, (unsigned)p->problem_mark.line + 1,
                                (unsigned)p->problem_mark.column + 1, NULL, "invalid YAML: %s",
                                p->problem ? p->problem : "syntax error");
                yaml_document_delete(ret);
                memset(ret, 0, sizeof(*ret));
                return -EINVAL;
        }
        yaml_node_t *root2 = yaml_document_get_root_node(&extra);
        if (root2) {
                coord_diags_add(diags, file, (unsigned)root2->start_mark.line + 1,
                                (unsigned)root2->start_mark.column + 1,
                                "remove the second '---' document", "more than one YAML document");
                yaml_document_delete(&extra);
                yaml_document_delete(ret);
                memset(ret, 0, sizeof(*ret));
                return -EINVAL;
        }
        yaml_document_delete(&extra);
        return 0;
}

int coord_yload_buffer(const char *file, const char *buf, size_t len, yaml_document_t *ret,
                       struct coord_diags *diags)
{
        memset(ret, 0, sizeof(*ret));
        if (len > COORD_FILE_MAX) {
                coord_diags_add(diags, file, 0, 0, NULL, "file larger than %d bytes",
                                COORD_FILE_MAX);
                return -EFBIG;
        }
        yaml_parser_t p;
        if (!yaml_parser_initialize(&p))
                return -ENOMEM;
        yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
        int r = yload(&p, file, ret, diags);
        yaml_parser_delete(&p);
        return r;
}

int coord_yload_file(const char *path, yaml_document_t *ret, struct coord_diags *diags)
{
        memset(ret, 0, sizeof(*ret));
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                int e = errno;
                coord_diags_add(diags, path, 0, 0, NULL, "cannot open: %s", strerror(e));
                return -e;
        }
        struct stat st;
        if (fstat(fd, &st) < 0) {
                int e = errno;
                coord_diags_add(diags, path, 0, 0, NULL, "cannot stat: %s", strerror(e));
                return -e;
        }
        if (!S_ISREG(st.st_mode)) {
                coord_diags_add(diags, path, 0, 0, NULL, "not a regular file");
                return -EINVAL;
        }
        if (st.st_size > COORD_FILE_MAX) {
                coord_diags_add(diags, path, 0, 0, NULL, "file larger than %d bytes",
                                COORD_FILE_MAX);
                return -EFBIG;
        }
        size_t cap = (size_t)st.st_size + 1, len = 0;
        _cleanup_free_ char *buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) { /* grew while reading: stay under the cap */
                        coord_diags_add(diags, path, 0, 0, NULL, "file larger than %d bytes",
                                        COORD_FILE_MAX);
                        return -EFBIG;
                }
                ssize_t k = read(fd, buf + len, cap - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        int e = errno;
                        coord_diags_add(diags, path, 0, 0, NULL, "cannot read: %s", strerror(e));
                        return -e;
                }
                if (k == 0)
                        break;
                len += (size_t)k;
        }
        return coord_yload_buffer(path, buf, len, ret, diags);
}

void coord_yerr(const struct coord_yctx *c, const yaml_node_t *n, const char *hint, const char *fmt,
                ...)
{
        va_list ap;
        va_start(ap, fmt);
        coord_diags_vadd(c->diags, c->file, n ? (unsigned)n->start_mark.line + 1 : 0,
                         n ? (unsigned)n->start_mark.column + 1 : 0, hint, fmt, ap);
        va_end(ap);
}

bool coord_ynull(const yaml_node_t *n)
{
        if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        const char *s = (const char *)n->data.scalar.value;
        return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
               !strcmp(s, "NULL");
}

const char *coord_yscalar(const struct coord_yctx *c, const yaml_node_t *n, const char *what)
{
        if (!n || n->type != YAML_SCALAR_NODE || coord_ynull(n)) {
                coord_yerr(c, n, NULL, "%s must be a non-empty string", what);
                return NULL;
        }
        if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length) {
                coord_yerr(c, n, NULL, "%s contains a NUL byte", what);
                return NULL;
        }
        return (const char *)n->data.scalar.value;
}

static size_t edit_distance(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);
        if (la > 64 || lb > 64)
                return SIZE_MAX;
        size_t row[65];
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t diag = row[0];
                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t up = row[j];
                        size_t cost =
                            tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1])
                                ? 0
                                : 1;
                        /* '_' for '-' is the most common typo: count it as half. */
                        if (cost && ((a[i - 1] == '_' && b[j - 1] == '-') ||
                                     (a[i - 1] == '-' && b[j - 1] == '_')))
                                cost = 0;
                        size_t best = diag + cost;
                        if (up + 1 < best)
                                best = up + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        row[j] = best;
                        diag = up;
                }
        }
        return row[lb];
}

const char *coord_did_you_mean(const char *s, const char *const *candidates)
{
        const char *best = NULL;
        size_t bestd = SIZE_MAX;
        for (size_t i = 0; candidates && candidates[i]; i++) {
                size_t d = edit_distance(s, candidates[i]);
                if (d < bestd) {
                        bestd = d;
                        best = candidates[i];
                }
        }
        if (!best || bestd > 2 || bestd >= strlen(s))
                return NULL;
        return best;
}

bool coord_ymap_check(const struct coord_yctx *c, const yaml_node_t *n, const char *what,
                      const char *const *allowed)
{
        if (!n || n->type != YAML_MAPPING_NODE) {
                coord_yerr(c, n, NULL, "%s must be a mapping", what);
                return false;
        }
        yaml_node_pair_t *start = n->data.mapping.pairs.start, *top = n->data.mapping.pairs.top;
        if (top - start > COORD_LIST_MAX) {
                coord_yerr(c, n, NULL, "%s has more than %d keys", what, COORD_LIST_MAX);
                return false;
        }
        for (yaml_node_pair_t *p = start; p < top; p++) {
                yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
                if (!k || k->type != YAML_SCALAR_NODE) {
                        coord_yerr(c, k, NULL, "keys of %s must be strings", what);
                        continue;
                }
                const char *key = (const char *)k->data.scalar.value;
                bool dup = false;
                for (yaml_node_pair_t *q = start; q < p; q++) {
                        yaml_node_t *k2 = yaml_document_get_node(c->doc, q->key);
                        if (k2 && k2->type == YAML_SCALAR_NODE &&
                            !strcmp((const char *)k2->data.scalar.value, key)) {
                                dup = true;
                                break;
                        }
                }
                if (dup) {
                        coord_yerr(c, k, NULL, "duplicate key '%s' in %s", key, what);
                        continue;
                }
                if (!allowed)
                        continue;
                bool known = false;
                for (size_t i = 0; allowed[i]; i++)
                        if (!strcmp(allowed[i], key)) {
                                known = true;
                                break;
                        }
                if (known)
                        continue;
                const char *sug = coord_did_you_mean(key, allowed);
                char hint[128];
                if (sug)
                        snprintf(hint, sizeof(hint), "did you mean '%s'?", sug);
                else {
                        /* List what is accepted when there is no near miss. */
                        size_t off = (size_t)snprintf(hint, sizeof(hint), "expected one of:");
                        for (size_t i = 0; allowed[i] && off < sizeof(hint); i++)
                                off += (size_t)snprintf(hint + off, sizeof(hint) - off, " %s",
                                                        allowed[i]);
                }
                coord_yerr(c, k, hint, "unknown key '%s' in %s", key, what);
        }
        return true;
}

yaml_node_t *coord_ymap_get(const struct coord_yctx *c, const yaml_node_t *n, const char *key)
{
        if (!n || n->type != YAML_MAPPING_NODE)
                return NULL;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
                yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
                if (k && k->type == YAML_SCALAR_NODE &&
                    !strcmp((const char *)k->data.scalar.value, key))
                        return yaml_document_get_node(c->doc, p->value);
        }
        return NULL;
}

bool coord_yseq_check(const struct coord_yctx *c, const yaml_node_t *n, const char *what)
{
        if (!n || n->type != YAML_SEQUENCE_NODE) {
                coord_yerr(c, n, NULL, "%s must be a list", what);
                return false;
        }
        if (n->data.sequence.items.top - n->data.sequence.items.start > COORD_LIST_MAX) {
                coord_yerr(c, n, NULL, "%s has more than %d items", what, COORD_LIST_MAX);
                return false;
        }
        return true;
}

void coord_strv_free(char **v, size_t n)
{
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

bool coord_name_valid(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n > COORD_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)s[i];
                if (!isalnum(ch) && ch != '.' && ch != '_' && ch != '-')
                        return false;
        }
        return true;
}

int coord_ystrings(const struct coord_yctx *c, const yaml_node_t *n, const char *what, bool names,
                   char ***ret, size_t *ret_n)
{
        *ret = NULL;
        *ret_n = 0;
        if (!coord_yseq_check(c, n, what))
                return -EINVAL;
        size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
        if (cnt == 0)
                return 0;
        char **v = calloc(cnt, sizeof(*v));
        if (!v)
                return -ENOMEM;
        size_t got = 0;
        bool bad = false;
        for (size_t i = 0; i < cnt; i++) {
                yaml_node_t *it = yaml_document_get_node(c->doc, n->data.sequence.items.start[i]);
                const char *s = coord_yscalar(c, it, what);
                if (!s) {
                        bad = true;
                        continue;
                }
                if (names && !coord_name_valid(s)) {
                        coord_yerr(c, it, "use 1-63 characters from A-Z a-z 0-9 . _ -",
                                   "invalid name '%s' in %s", s, what);
                        bad = true;
                        continue;
                }
                bool dup = false;
                for (size_t j = 0; names && j < got; j++)
                        if (!strcmp(v[j], s))
                                dup = true;
                if (dup) {
                        coord_yerr(c, it, NULL, "duplicate '%s' in %s", s, what);
                        bad = true;
                        continue;
                }
                v[got] = strdup(s);
                if (!v[got]) {
                        coord_strv_free(v, got);
                        return -ENOMEM;
                }
                got++;
        }
        if (bad) {
                coord_strv_free(v, got);
                return -EINVAL;
        }
        *ret = v;
        *ret_n = got;
        return 0;
}

/* ---- addresses -------------------------------------------------------- */

int coord_address_check(const char *url, char *err, size_t errlen)
{
        const char *rest;
        if (!strncmp(url, "tcp://", 6))
                rest = url + 6;
        else if (!strncmp(url, "tls+tcp://", 10))
                rest = url + 10;
        else {
                snprintf(err, errlen, "address must start with tcp:// or tls+tcp://");
                return -EINVAL;
        }
        if (strlen(url) > COORD_ADDRESS_MAX) {
                snprintf(err, errlen, "address longer than %d characters", COORD_ADDRESS_MAX);
                return -EINVAL;
        }
        const char *colon;
        if (*rest == '[') {
                const char *close = strchr(rest, ']');
                if (!close || close == rest + 1) {
                        snprintf(err, errlen, "unterminated or empty [IPv6] host");
                        return -EINVAL;
                }
                for (const char *p = rest + 1; p < close; p++)
                        if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.') {
                                snprintf(err, errlen, "invalid IPv6 address");
                                return -EINVAL;
                        }
                if (close[1] != ':') {
                        snprintf(err, errlen, "missing :PORT");
                        return -EINVAL;
                }
                colon = close + 1;
        } else {
                colon = strrchr(rest, ':');
                if (!colon) {
                        snprintf(err, errlen, "missing :PORT");
                        return -EINVAL;
                }
                if (colon == rest) {
                        snprintf(err, errlen, "missing host");
                        return -EINVAL;
                }
                for (const char *p = rest; p < colon; p++)
                        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-') {
                                snprintf(err, errlen, "invalid character '%c' in host", *p);
                                return -EINVAL;
                        }
        }
        const char *port = colon + 1;
        size_t plen = strlen(port);
        if (plen == 0 || plen > 5 || strspn(port, "0123456789") != plen) {
                snprintf(err, errlen, "port must be a number 1-65535");
                return -EINVAL;
        }
        long v = strtol(port, NULL, 10);
        if (v < 1 || v > 65535) {
                snprintf(err, errlen, "port must be a number 1-65535");
                return -EINVAL;
        }
        return 0;
}

/* ---- inventory -------------------------------------------------------- */

void coord_inventory_free(struct coord_inventory *inv)
{
        if (!inv)
                return;
        for (size_t i = 0; i < inv->n_agents; i++)
                coord_strv_free(inv->agents[i].tags, inv->agents[i].n_tags);
        free(inv->agents);
        free(inv->source);
        memset(inv, 0, sizeof(*inv));
}

static const char *const inventory_keys[] = {"agents", NULL};
static const char *const agent_keys[] = {"name", "address", "tags", NULL};

static void parse_agent(const struct coord_yctx *c, yaml_node_t *n, struct coord_inventory *inv,
                        bool *bad)
{
        if (!coord_ymap_check(c, n, "agent", agent_keys)) {
                *bad = true;
                return;
        }
        size_t before = coord_diags_count(c->diags);
        struct coord_agent *a = &inv->agents[inv->n_agents];
        memset(a, 0, sizeof(*a));
        a->line = (unsigned)n->start_mark.line + 1;
        a->column = (unsigned)n->start_mark.column + 1;

        yaml_node_t *v = coord_ymap_get(c, n, "name");
        if (!v)
                coord_yerr(c, n, NULL, "agent has no 'name'");
        else {
                const char *s = coord_yscalar(c, v, "agent name");
                if (s && !coord_name_valid(s))
                        coord_yerr(c, v, "use 1-63 characters from A-Z a-z 0-9 . _ -",
                                   "invalid agent name '%s'", s);
                else if (s && !strcmp(s, "all"))
                        coord_yerr(c, v, "'all' selects every agent on the command line",
                                   "agent name 'all' is reserved");
                else if (s && coord_inventory_find(inv, s))
                        coord_yerr(c, v, NULL, "duplicate agent name '%s' (first at line %u)", s,
                                   coord_inventory_find(inv, s)->line);
                else if (s)
                        fl_strlcpy(a->name, s, sizeof(a->name));
        }

        v = coord_ymap_get(c, n, "address");
        if (!v)
                coord_yerr(c, n, "e.g. address: tls+tcp://10.0.0.5:7070", "agent has no 'address'");
        else {
                const char *s = coord_yscalar(c, v, "agent address");
                char err[128];
                if (s && coord_address_check(s, err, sizeof(err)) < 0)
                        coord_yerr(c, v, "e.g. tls+tcp://10.0.0.5:7070 or tcp://127.0.0.1:7070",
                                   "invalid agent address '%s': %s", s, err);
                else if (s)
                        fl_strlcpy(a->address, s, sizeof(a->address));
        }

        v = coord_ymap_get(c, n, "tags");
        if (v && coord_ystrings(c, v, "agent tags", true, &a->tags, &a->n_tags) == -ENOMEM)
                coord_yerr(c, v, NULL, "out of memory");

        if (coord_diags_count(c->diags) != before) {
                coord_strv_free(a->tags, a->n_tags);
                memset(a, 0, sizeof(*a));
                *bad = true;
                return;
        }
        inv->n_agents++;
}

int coord_inventory_from_node(yaml_document_t *doc, yaml_node_t *node, const char *file,
                              struct coord_inventory *ret, struct coord_diags *diags)
{
        struct coord_yctx c = {.doc = doc, .file = file, .diags = diags};
        struct coord_inventory inv = {0};
        bool bad = false;

        memset(ret, 0, sizeof(*ret));
        if (!coord_ymap_check(&c, node, "inventory", inventory_keys))
                return -EINVAL;
        size_t before = coord_diags_count(diags);
        yaml_node_t *agents = coord_ymap_get(&c, node, "agents");
        if (!agents) {
                coord_yerr(&c, node, "add 'agents:' with a list of {name, address, tags}",
                           "inventory has no 'agents'");
                return -EINVAL;
        }
        if (!coord_yseq_check(&c, agents, "agents"))
                return -EINVAL;
        size_t cnt = (size_t)(agents->data.sequence.items.top - agents->data.sequence.items.start);
        if (cnt == 0) {
                coord_yerr(&c, agents, NULL, "inventory has no agents");
                return -EINVAL;
        }
        inv.agents = calloc(cnt, sizeof(*inv.agents));
        inv.source = file ? strdup(file) : NULL;
        if (!inv.agents || (file && !inv.source)) {
                coord_inventory_free(&inv);
                return -ENOMEM;
        }
        for (size_t i = 0; i < cnt; i++)
                parse_agent(&c, yaml_document_get_node(doc, agents->data.sequence.items.start[i]),
                            &inv, &bad);
        if (bad || coord_diags_count(diags) != before) {
                coord_inventory_free(&inv);
                return -EINVAL;
        }
        *ret = inv;
        return 0;
}

int coord_inventory_load(const char *path, struct coord_inventory *ret, struct coord_diags *diags)
{
        yaml_document_t doc;
        memset(ret, 0, sizeof(*ret));
        int r = coord_yload_file(path, &doc, diags);
        if (r < 0)
                return r;
        r = coord_inventory_from_node(&doc, yaml_document_get_root_node(&doc), path, ret, diags);
        yaml_document_delete(&doc);
        return r;
}

const struct coord_agent *coord_inventory_find(const struct coord_inventory *inv, const char *name)
{
        for (size_t i = 0; inv && i < inv->n_agents; i++)
                if (!strcmp(inv->agents[i].name, name))
                        return &inv->agents[i];
        return NULL;
}

bool coord_agent_has_tag(const struct coord_agent *a, const char *tag)
{
        for (size_t i = 0; i < a->n_tags; i++)
                if (!strcmp(a->tags[i], tag))
                        return true;
        return false;
}

/* ---- selection -------------------------------------------------------- */

void coord_selector_free(struct coord_selector *sel)
{
        if (!sel)
                return;
        coord_strv_free(sel->names, sel->n_names);
        coord_strv_free(sel->tags, sel->n_tags);
        memset(sel, 0, sizeof(*sel));
}

static int strv_dup(char *const *v, size_t n, char ***ret)
{
        *ret = NULL;
        if (n == 0)
                return 0;
        char **out = calloc(n, sizeof(*out));
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                out[i] = strdup(v[i]);
                if (!out[i]) {
                        coord_strv_free(out, i);
                        return -ENOMEM;
                }
        }
        *ret = out;
        return 0;
}

int coord_selector_copy(const struct coord_selector *sel, struct coord_selector *ret)
{
        struct coord_selector s = *sel;
        s.names = NULL;
        s.tags = NULL;
        memset(ret, 0, sizeof(*ret));
        if (strv_dup(sel->names, sel->n_names, &s.names) < 0)
                return -ENOMEM;
        if (strv_dup(sel->tags, sel->n_tags, &s.tags) < 0) {
                coord_strv_free(s.names, s.n_names);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

int coord_selector_parse(const char *s, struct coord_selector *ret, char *err, size_t errlen)
{
        struct coord_selector sel = {0};
        memset(ret, 0, sizeof(*ret));
        if (!strcmp(s, "all")) {
                ret->all = true;
                return 0;
        }
        if (!strncmp(s, "tag:", 4)) {
                const char *p = s + 4;
                for (;;) {
                        size_t len = strcspn(p, ",");
                        char tag[COORD_NAME_MAX + 1];
                        if (len == 0 || len > COORD_NAME_MAX) {
                                snprintf(err, errlen, "empty or too long tag in '%s'", s);
                                coord_selector_free(&sel);
                                return -EINVAL;
                        }
                        memcpy(tag, p, len);
                        tag[len] = 0;
                        if (!coord_name_valid(tag)) {
                                snprintf(err, errlen, "invalid tag '%s'", tag);
                                coord_selector_free(&sel);
                                return -EINVAL;
                        }
                        char **nv = realloc(sel.tags, (sel.n_tags + 1) * sizeof(*nv));
                        if (!nv) {
                                coord_selector_free(&sel);
                                return -ENOMEM;
                        }
                        sel.tags = nv;
                        sel.tags[sel.n_tags] = strdup(tag);
                        if (!sel.tags[sel.n_tags]) {
                                coord_selector_free(&sel);
                                return -ENOMEM;
                        }
                        sel.n_tags++;
                        if (!p[len])
                                break;
                        p += len + 1;
                }
                *ret = sel;
                return 0;
        }
        if (!coord_name_valid(s)) {
                snprintf(err, errlen, "invalid target '%s' (expected NAME, tag:TAG[,TAG] or all)",
                         s);
                return -EINVAL;
        }
        sel.names = calloc(1, sizeof(*sel.names));
        if (!sel.names)
                return -ENOMEM;
        sel.names[0] = strdup(s);
        if (!sel.names[0]) {
                free(sel.names);
                return -ENOMEM;
        }
        sel.n_names = 1;
        *ret = sel;
        return 0;
}

int coord_inventory_select(const struct coord_inventory *inv, const struct coord_selector *sel,
                           const struct coord_agent ***ret_agents, char *err, size_t errlen)
{
        *ret_agents = NULL;
        int kinds = (sel->n_names > 0) + (sel->n_tags > 0) + (sel->all ? 1 : 0);
        if (kinds != 1) {
                snprintf(err, errlen, "a selector needs exactly one of names, tags or all");
                return -EINVAL;
        }
        if (sel->count > 0 && sel->percent_bp > 0) {
                snprintf(err, errlen, "count and percent are mutually exclusive");
                return -EINVAL;
        }
        if (sel->percent_bp > 10000) {
                snprintf(err, errlen, "percent above 100");
                return -EINVAL;
        }
        size_t cap = sel->n_names > 0 ? sel->n_names : inv->n_agents;
        if (cap == 0) {
                snprintf(err, errlen, "inventory is empty");
                return -ENOENT;
        }
        _cleanup_free_ const struct coord_agent **out = calloc(cap, sizeof(*out));
        if (!out)
                return -ENOMEM;
        size_t n = 0;
        if (sel->n_names > 0) {
                for (size_t i = 0; i < sel->n_names; i++) {
                        const struct coord_agent *a = coord_inventory_find(inv, sel->names[i]);
                        if (!a) {
                                snprintf(err, errlen, "agent '%s' is not in the inventory",
                                         sel->names[i]);
                                return -ENOENT;
                        }
                        bool dup = false;
                        for (size_t j = 0; j < n; j++)
                                dup |= out[j] == a;
                        if (!dup)
                                out[n++] = a;
                }
        } else {
                for (size_t i = 0; i < inv->n_agents; i++) {
                        const struct coord_agent *a = &inv->agents[i];
                        bool match = true;
                        for (size_t t = 0; t < sel->n_tags && match; t++)
                                match = coord_agent_has_tag(a, sel->tags[t]);
                        if (match)
                                out[n++] = a;
                }
        }
        if (n == 0) {
                char tags[256] = "";
                size_t off = 0;
                for (size_t t = 0; t < sel->n_tags && off < sizeof(tags); t++)
                        off += (size_t)snprintf(tags + off, sizeof(tags) - off, "%s%s",
                                                t ? "," : "", sel->tags[t]);
                snprintf(err, errlen, "no agent carries tag(s) %s", tags);
                return -ENOENT;
        }
        size_t keep = n;
        if (sel->count > 0 && sel->count < keep)
                keep = sel->count;
        if (sel->percent_bp > 0) {
                /* Round up: 50% of 3 agents is 2, 1% of 3 is 1. */
                keep = (n * sel->percent_bp + 9999) / 10000;
                if (keep == 0)
                        keep = 1;
        }
        *ret_agents = FL_TAKE_PTR(out);
        return (int)keep;
}
