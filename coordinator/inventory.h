/* Inventory: the agents a coordinator may talk to, and selection of agents
 * by name, tag, count or percentage.
 *
 *   agents:
 *     - name: web-1                     # unique, [A-Za-z0-9._-]{1,63}, not "all"
 *       address: tcp://10.77.1.2:7070   # tcp://HOST:PORT or tls+tcp://HOST:PORT
 *       tags: [web, primary]            # optional, same charset as names
 *
 * This header also carries the two pieces every coordinator file parser
 * shares: the diagnostics list (struct coord_diags) and the YAML walking
 * helpers (coord_y*). They live here because the inventory is the lowest
 * parser layer; experiment.c builds on them.
 *
 * Ownership: every struct below owns its strings and arrays; the *_free()
 * functions release them (never the struct itself), accept zeroed structs
 * and leave the struct zeroed. None of this is thread-safe for concurrent
 * mutation; read-only use from many threads is fine. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <yaml.h>

#define COORD_NAME_MAX    63  /* agent names, tags, target and probe names (chars, excl. NUL) */
#define COORD_ADDRESS_MAX 255 /* agent URL (chars, excl. NUL) */
#define COORD_FILE_MAX    (1024 * 1024) /* biggest YAML file accepted */
#define COORD_LIST_MAX    4096          /* items in any YAML sequence or mapping */
#define COORD_DIAGS_MAX   100           /* diagnostics kept; later ones are counted only */

/* ---- diagnostics ------------------------------------------------------ */

struct coord_diag {
        char *file;      /* owned; may be NULL */
        unsigned line;   /* 1-based; 0 = whole file */
        unsigned column; /* 1-based; 0 = unknown */
        char *message;   /* owned */
        char *hint;      /* owned; NULL if none */
};

struct coord_diags {
        struct coord_diag *items; /* owned */
        size_t n;
        size_t cap;
        size_t dropped; /* errors past COORD_DIAGS_MAX, counted only */
};

/* Append one error. hint may be NULL. Never fails visibly: on ENOMEM the
 * error is counted in ->dropped so a caller still sees that it failed. */
void coord_diags_add(struct coord_diags *d, const char *file, unsigned line, unsigned column,
                     const char *hint, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void coord_diags_vadd(struct coord_diags *d, const char *file, unsigned line, unsigned column,
                      const char *hint, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));
/* Number of errors recorded, including dropped ones. */
size_t coord_diags_count(const struct coord_diags *d);
/* One line each: "FILE:LINE:COL: error: message (hint: ...)"; LINE:COL are
 * left out when unknown. Then "N more errors" if some were dropped. */
void coord_diags_print(const struct coord_diags *d, FILE *f);
void coord_diags_free(struct coord_diags *d);

/* ---- inventory -------------------------------------------------------- */

struct coord_agent {
        char name[COORD_NAME_MAX + 1];
        char address[COORD_ADDRESS_MAX + 1];
        char **tags; /* owned */
        size_t n_tags;
        unsigned line, column; /* where the entry starts, for messages */
};

struct coord_inventory {
        char *source;               /* owned: file the inventory came from (for messages) */
        struct coord_agent *agents; /* owned, in file order */
        size_t n_agents;
};

/* Load an inventory file. Returns 0 on success (caller must
 * coord_inventory_free), or a negative errno with every problem appended
 * to diags and *ret zeroed: -EINVAL (the file is invalid; see diags),
 * -ENOENT/-EACCES/... (could not read), -EFBIG (over COORD_FILE_MAX). */
int coord_inventory_load(const char *path, struct coord_inventory *ret, struct coord_diags *diags);

/* Same from a YAML mapping node ({agents: [...]}) inside another document,
 * e.g. an experiment's inline `inventory:`. file names the document for
 * messages. Returns 0 or -EINVAL (see diags) / -ENOMEM; *ret zeroed on
 * failure. */
int coord_inventory_from_node(yaml_document_t *doc, yaml_node_t *node, const char *file,
                              struct coord_inventory *ret, struct coord_diags *diags);

void coord_inventory_free(struct coord_inventory *inv);

/* Agent by exact name, or NULL. */
const struct coord_agent *coord_inventory_find(const struct coord_inventory *inv, const char *name);

/* true if the agent carries the tag. */
bool coord_agent_has_tag(const struct coord_agent *a, const char *tag);

/* tcp://HOST:PORT or tls+tcp://HOST:PORT, HOST a name, IPv4 or [IPv6],
 * PORT 1..65535. Returns 0 or -EINVAL with a reason in err. */
int coord_address_check(const char *url, char *err, size_t errlen);

/* [A-Za-z0-9._-]{1,COORD_NAME_MAX} */
bool coord_name_valid(const char *s);

/* ---- selection -------------------------------------------------------- */

/* Which agents a target means. Exactly one of names / tags / all is set;
 * count and percent_bp (mutually exclusive, 0 = unset) then keep the first
 * N of the matching agents, in inventory order (names: in the order
 * given). percent rounds up, so any non-zero percentage of a non-empty
 * set keeps at least one agent. */
struct coord_selector {
        char **names; /* owned; agents by exact name */
        size_t n_names;
        char **tags; /* owned; agents carrying ALL of these tags */
        size_t n_tags;
        bool all;
        uint32_t count;      /* 0 = no limit */
        uint32_t percent_bp; /* basis points (5000 = 50%); 0 = no limit */
};

void coord_selector_free(struct coord_selector *sel);

/* Deep copy. 0 or -ENOMEM (then *ret is zeroed). */
int coord_selector_copy(const struct coord_selector *sel, struct coord_selector *ret);

/* Parse the CLI form: "NAME", "tag:TAG[,TAG...]" or "all". Returns 0 or
 * -EINVAL with a reason in err (*ret zeroed), -ENOMEM. */
int coord_selector_parse(const char *s, struct coord_selector *ret, char *err, size_t errlen);

/* Resolve a selector. On success returns the number of agents selected
 * (>= 1) and a malloc'd array of pointers into inv->agents in *ret_agents
 * (caller frees the array, not the agents; it is valid as long as inv is).
 * Errors, with a reason in err and *ret_agents = NULL:
 *   -EINVAL  selector is malformed (none or several of names/tags/all,
 *            both count and percent)
 *   -ENOENT  a listed name is not in the inventory, or nothing matched
 *   -ENOMEM */
int coord_inventory_select(const struct coord_inventory *inv, const struct coord_selector *sel,
                           const struct coord_agent ***ret_agents, char *err, size_t errlen);

/* ---- YAML helpers shared by coordinator parsers ------------------------
 *
 * A coord_yctx names the loaded document and where errors go. All helpers
 * report problems with the offending node's line/column and never abort
 * the walk, so a caller collects every error in one pass. */

struct coord_yctx {
        yaml_document_t *doc;
        const char *file;
        struct coord_diags *diags;
};

/* Read and parse one YAML document from a file / a buffer. Returns 0 and a
 * loaded document the caller must yaml_document_delete, or a negative
 * errno with the problem in diags: -EINVAL (syntax error, empty, several
 * documents), -EFBIG, or the open/read errno. */
int coord_yload_file(const char *path, yaml_document_t *ret, struct coord_diags *diags);
int coord_yload_buffer(const char *file, const char *buf, size_t len, yaml_document_t *ret,
                       struct coord_diags *diags);

/* Error at node n (NULL: whole file). */
void coord_yerr(const struct coord_yctx *c, const yaml_node_t *n, const char *hint, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

/* A plain scalar "", "~" or "null". */
bool coord_ynull(const yaml_node_t *n);

/* n must be a non-null scalar without NUL bytes; returns its text or NULL
 * after reporting "WHAT must be a string". */
const char *coord_yscalar(const struct coord_yctx *c, const yaml_node_t *n, const char *what);

/* n must be a mapping (else an error "WHAT must be a mapping", false).
 * Reports every key that is not a scalar, is duplicated, or is not in the
 * NULL-terminated list allowed (with a "did you mean X?" hint for near
 * misses). Returns true if n is a mapping, even if some keys were bad. */
bool coord_ymap_check(const struct coord_yctx *c, const yaml_node_t *n, const char *what,
                      const char *const *allowed);

/* Value node of key in mapping n, or NULL. */
yaml_node_t *coord_ymap_get(const struct coord_yctx *c, const yaml_node_t *n, const char *key);

/* n must be a sequence of at most COORD_LIST_MAX items (else an error,
 * false). */
bool coord_yseq_check(const struct coord_yctx *c, const yaml_node_t *n, const char *what);

/* n must be a sequence of strings (names=true: each coord_name_valid, and
 * no duplicates). Returns 0 and a malloc'd array of malloc'd strings the
 * caller frees with coord_strv_free (NULL and 0 for an empty sequence),
 * or -EINVAL after reporting, -ENOMEM; on failure nothing is allocated. */
int coord_ystrings(const struct coord_yctx *c, const yaml_node_t *n, const char *what, bool names,
                   char ***ret, size_t *ret_n);
void coord_strv_free(char **v, size_t n);

/* Closest entry of the NULL-terminated list to s if it is a plausible
 * typo (edit distance <= 2, and smaller than s), else NULL. */
const char *coord_did_you_mean(const char *s, const char *const *candidates);
