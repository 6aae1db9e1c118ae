/* Probes: measure one steady-state signal once and judge it.
 *
 *   HTTP        one request via libcurl; checks status, latency, body regex.
 *   command     fork + execve of an argv, never a shell; checks exit code and
 *               a stdout regex.
 *   TCP         connect (and optionally send a string and match the reply).
 *   prometheus  an instant query against the Prometheus HTTP API; the first
 *               sample's value is checked against a numeric tolerance.
 *
 * Two ways to run one: coord_probe_run blocks (steps, hypotheses), and
 * struct coord_engine (engine.h) runs many at once from one thread with
 * libcurl's multi interface (guardrails, benchmarks).
 *
 * The spec structs below are what experiment.c produces from YAML; a
 * caller may also build them by hand (strings are then borrowed for the
 * duration of coord_probe_run only). coord_probe_free releases a spec the
 * experiment parser built (all strings malloc'd).
 *
 * Threads: coord_probe_run may be called from several threads at once,
 * each with its own spec/result. Preconditions the caller owns:
 *   - curl_global_init(CURL_GLOBAL_DEFAULT) once in main() before any
 *     thread starts, curl_global_cleanup() at exit (coordinator main.c);
 *   - nobody reaps children with waitpid(-1, ...) or sets SIGCHLD to
 *     SIG_IGN, since command probes wait for their own pid.
 * Blocking: coord_probe_run blocks for at most the probe's timeout plus a
 * few milliseconds of cleanup. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COORD_PROBE_OUTPUT_MAX         (64 * 1024) /* stdout / body bytes kept for matching */
#define COORD_PROBE_HTTP_TIMEOUT_MS    5000        /* default when the file gives none */
#define COORD_PROBE_COMMAND_TIMEOUT_MS 10000       /* default when the file gives none */
#define COORD_PROBE_PATH               "/usr/sbin:/usr/bin:/sbin:/bin" /* PATH of command probes */

enum coord_probe_kind {
        COORD_PROBE_HTTP = 1,
        COORD_PROBE_COMMAND,
        COORD_PROBE_TCP,        /* format version 2 */
        COORD_PROBE_PROMETHEUS, /* format version 2 */
};

#define COORD_PROBE_TCP_TIMEOUT_MS  2000 /* default when the file gives none */
#define COORD_PROBE_PROM_TIMEOUT_MS 5000 /* default when the file gives none */

struct coord_kv {
        char *key;
        char *value;
};

struct coord_http_probe {
        char *url;    /* http:// or https:// */
        char *method; /* "GET" if NULL */
        struct coord_kv *headers;
        size_t n_headers;
        char *body; /* request body, NULL = none */
        uint64_t timeout_ms;
};

struct coord_command_probe {
        char **argv; /* NULL-terminated, argc entries; argv[0] absolute or a bare name */
        size_t argc;
        struct coord_kv *env; /* the child's only variables besides PATH */
        size_t n_env;
        uint64_t timeout_ms;
};

/* What counts as "held". Unset fields are not checked. Regexes are POSIX
 * EREs matched like grep: anywhere in the text, with ^ and $ anchoring at
 * line boundaries and . never matching a newline (REG_NEWLINE). */
struct coord_tcp_probe {
        char *host; /* IPv4/IPv6 literal or name */
        uint16_t port;
        char *send; /* bytes written after connect, NULL = none */
        uint64_t timeout_ms;
};

struct coord_prom_probe {
        char *url;   /* server base URL, e.g. http://127.0.0.1:9090 */
        char *query; /* PromQL, sent as /api/v1/query?query=... */
        uint64_t timeout_ms;
};

struct coord_probe_expect {
        int status;              /* HTTP status; 0 = 200 */
        uint64_t max_latency_ms; /* 0 = no latency limit (HTTP and command) */
        char *body_regex;        /* POSIX ERE on the (first 64 KiB of) body */
        int exit_code;           /* command exit code; default 0 */
        char *stdout_regex;      /* POSIX ERE on the first 64 KiB of stdout */
        char *reply_regex;       /* TCP: POSIX ERE on what the peer sent back */
        char *json_pointer;      /* HTTP: RFC 6901 pointer into the JSON body */
        char *json_value;        /* ...whose value must equal this (string, number,
                                    true/false/null, compared by JSON type) */
        /* prometheus: value within [min, max]; value +- tolerance sets both */
        bool has_min, has_max;
        double min_value, max_value;
};

struct coord_probe {
        char *name;
        enum coord_probe_kind kind;
        struct coord_http_probe http;       /* kind == HTTP */
        struct coord_command_probe command; /* kind == COMMAND */
        struct coord_tcp_probe tcp;         /* kind == TCP */
        struct coord_prom_probe prom;       /* kind == PROMETHEUS */
        struct coord_probe_expect expect;
        unsigned line, column; /* where it was declared, 0 if built by hand */
};

struct coord_probe_result {
        bool ok;                  /* every expectation held */
        char detail[256];         /* one line: "status 200 in 3.2 ms", "timeout after 2s",
                                     "exit 1 (expected 0)", "connection refused" */
        double value;             /* HTTP status (0 if none), exit code (-SIG if killed),
                                     TCP 1/0 (connected), prometheus: the sample value */
        uint64_t latency_us;      /* request / process wall time */
        uint64_t started_wall_ms; /* UNIX ms when the probe started */
        bool timed_out;
        char output[128]; /* start of the body / stdout / reply, for markers (RPO) */
};

/* Run the probe once and fill *ret. Returns 0 when the probe was carried
 * out — whether or not it held (ret->ok): a refused connection, a timeout
 * or a non-zero exit are results, not errors. Returns a negative errno
 * (with ret->ok = false and ret->detail set) only when the probe could not
 * be attempted: -EINVAL (bad spec: empty argv, regex does not compile,
 * unknown kind), -ENOENT (command not found in COORD_PROBE_PATH), -ENOMEM,
 * or a fork/pipe errno.
 *
 * Command probes: the child gets exactly spec->command.env plus
 * PATH=COORD_PROBE_PATH, stdin and stderr on /dev/null, stdout captured
 * (first COORD_PROBE_OUTPUT_MAX bytes; the rest is read and dropped), its
 * own process group, default signal dispositions and an empty signal mask,
 * and no inherited fds besides 0-2. A bare argv[0] is looked up in
 * COORD_PROBE_PATH (not in the coordinator's PATH). At the timeout, and
 * after the child exits, the whole process group gets SIGKILL, so nothing
 * the probe started outlives it.
 *
 * HTTP probes: no proxy, no redirects followed, http/https only. */
int coord_probe_run(const struct coord_probe *spec, struct coord_probe_result *ret);

/* Same, with every "{marker}" in the URL, body, header values and argv
 * replaced by marker (the RPO writer's sequence number). marker NULL:
 * nothing is replaced. */
int coord_probe_run_marked(const struct coord_probe *spec, const char *marker,
                           struct coord_probe_result *ret);

/* Copy s with every "{marker}" replaced. NULL on ENOMEM. */
char *coord_probe_subst(const char *s, const char *marker);

/* What coord_probe_run does for an HTTP or prometheus probe, split in two
 * for the multi interface (engine.c): _start builds a configured easy
 * handle (caller adds it to a multi handle), _finish judges the transfer
 * and frees everything. An op is used by one thread at a time. */
struct coord_http_op;
int coord_http_op_start(const struct coord_probe *spec, const char *marker,
                        struct coord_http_op **ret, struct coord_probe_result *res);
void *coord_http_op_easy(struct coord_http_op *op); /* the CURL * */
/* Judge the finished transfer (cr: the CURLcode the multi reported) into
 * *res and free op. Returns like coord_probe_run. */
int coord_http_op_finish(struct coord_http_op *op, int cr, struct coord_probe_result *res);
/* Free without judging (cancelled). Accepts NULL. */
void coord_http_op_free(struct coord_http_op *op);

/* Resolve an RFC 6901 JSON pointer ("" = whole document, "/a/0/b~1c")
 * in body and compare the value with want: strings exactly, numbers
 * numerically, true/false/null by literal. Returns 1 if equal, 0 if not
 * (with what was found in got), -EINVAL if body is not JSON or the pointer
 * does not resolve (reason in got). */
int coord_json_pointer_match(const char *body, const char *pointer, const char *want, char *got,
                             size_t got_size);

/* Compile-check a POSIX ERE. 0 or -EINVAL with the regerror text in err. */
int coord_regex_check(const char *re, char *err, size_t errlen);

/* Release a parser-built spec (all strings and arrays malloc'd); leaves it
 * zeroed. Accepts zeroed structs. */
void coord_probe_free(struct coord_probe *p);
