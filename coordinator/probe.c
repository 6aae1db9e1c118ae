/* Probe execution: HTTP via libcurl's easy interface, commands via
 * fork + execve. See probe.h for the contract.
 *
 * Everything a probe needs is prepared before fork() (program path, argv,
 * envp, fds) because the child of a multi-threaded process may only call
 * async-signal-safe functions until execve. */
#include "probe.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netdb.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fl_parse.h"
#include "fl_util.h"

/* ---- shared ----------------------------------------------------------- */

struct outbuf {
        char *data; /* COORD_PROBE_OUTPUT_MAX + 1 */
        size_t len;
        bool truncated;
};

static void outbuf_put(struct outbuf *b, const char *p, size_t n)
{
        size_t room = COORD_PROBE_OUTPUT_MAX - b->len;
        if (n > room) {
                n = room;
                b->truncated = true;
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
}

static void regfreep(regex_t **r)
{
        if (*r)
                regfree(*r);
}

int coord_regex_check(const char *re, char *err, size_t errlen)
{
        regex_t rx;
        if (fl_regex_check_size(re, err, errlen) < 0)
                return -EINVAL;
        int r = regcomp(&rx, re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE);
        if (r != 0) {
                regerror(r, &rx, err, errlen);
                return -EINVAL;
        }
        regfree(&rx);
        return 0;
}

/* Compile re into *rx (NULL re: nothing to do, *ret stays NULL). */
static int compile(const char *re, regex_t *rx, regex_t **ret, struct coord_probe_result *res)
{
        *ret = NULL;
        if (!re)
                return 0;
        char err[128];
        if (fl_regex_check_size(re, err, sizeof(err)) < 0) {
                snprintf(res->detail, sizeof(res->detail), "invalid regex '%.64s': %s", re, err);
                return -EINVAL;
        }
        int r = regcomp(rx, re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE);
        if (r != 0) {
                regerror(r, rx, err, sizeof(err));
                snprintf(res->detail, sizeof(res->detail), "invalid regex '%s': %s", re, err);
                return -EINVAL;
        }
        *ret = rx;
        return 0;
}

static void fmt_ms(uint64_t ms, char *buf, unsigned size)
{
        fl_format_duration(ms, buf, size);
}

/* Append ", ..." to the detail line. */
static void detail_add(struct coord_probe_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void detail_add(struct coord_probe_result *res, const char *fmt, ...)
{
        size_t off = strlen(res->detail);
        if (off >= sizeof(res->detail) - 1)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(res->detail + off, sizeof(res->detail) - off, fmt, ap);
        va_end(ap);
}

static void check_latency(const struct coord_probe *p, struct coord_probe_result *res)
{
        uint64_t max_us = p->expect.max_latency_ms * 1000u;
        if (p->expect.max_latency_ms > 0 && res->latency_us > max_us) {
                char b[32];
                fmt_ms(p->expect.max_latency_ms, b, sizeof(b));
                detail_add(res, ", slower than max %s", b);
                res->ok = false;
        }
}

static void check_regex(regex_t *rx, const char *re, const struct outbuf *b, const char *what,
                        struct coord_probe_result *res)
{
        if (rx && regexec(rx, b->data, 0, NULL, 0) != 0) {
                detail_add(res, ", %s does not match '%s'", what, re);
                res->ok = false;
        }
}

/* ---- JSON pointer --------------------------------------------------------- */

int coord_json_pointer_match(const char *body, const char *pointer, const char *want, char *got,
                             size_t got_size)
{
        json_error_t jerr;
        json_t *root = json_loads(body, JSON_DECODE_ANY, &jerr);
        if (!root) {
                snprintf(got, got_size, "body is not JSON (%s)", jerr.text);
                return -EINVAL;
        }
        json_t *cur = root;
        const char *p = pointer;
        while (*p) {
                /* *p == '/' (checked at parse time and here) */
                if (*p != '/') {
                        json_decref(root);
                        snprintf(got, got_size, "bad pointer");
                        return -EINVAL;
                }
                p++;
                char tok[256];
                size_t n = 0;
                while (*p && *p != '/' && n + 1 < sizeof(tok)) {
                        if (p[0] == '~' && (p[1] == '0' || p[1] == '1')) {
                                tok[n++] = p[1] == '0' ? '~' : '/';
                                p += 2;
                        } else {
                                tok[n++] = *p++;
                        }
                }
                tok[n] = 0;
                json_t *next = NULL;
                if (json_is_object(cur)) {
                        next = json_object_get(cur, tok);
                } else if (json_is_array(cur)) {
                        char *end = NULL;
                        unsigned long idx = strtoul(tok, &end, 10);
                        if (n && *end == 0 && (tok[0] != '0' || n == 1))
                                next = json_array_get(cur, idx);
                }
                if (!next) {
                        snprintf(got, got_size, "%s not found", pointer);
                        json_decref(root);
                        return -EINVAL;
                }
                cur = next;
        }
        int eq = 0;
        if (json_is_string(cur)) {
                eq = strcmp(json_string_value(cur), want) == 0;
                snprintf(got, got_size, "\"%s\"", json_string_value(cur));
        } else if (json_is_number(cur)) {
                char *end = NULL;
                double w = strtod(want, &end);
                eq = end != want && *end == 0 && w == json_number_value(cur);
                snprintf(got, got_size, "%g", json_number_value(cur));
        } else if (json_is_boolean(cur) || json_is_null(cur)) {
                const char *lit = json_is_null(cur) ? "null" : json_is_true(cur) ? "true" : "false";
                eq = strcmp(lit, want) == 0;
                snprintf(got, got_size, "%s", lit);
        } else {
                snprintf(got, got_size, "%s", json_is_object(cur) ? "an object" : "an array");
        }
        json_decref(root);
        return eq;
}

static void check_json(const struct coord_probe *p, const struct outbuf *b,
                       struct coord_probe_result *res)
{
        if (!p->expect.json_pointer)
                return;
        char got[160];
        int r = coord_json_pointer_match(b->data, p->expect.json_pointer, p->expect.json_value, got,
                                         sizeof(got));
        if (r != 1) {
                detail_add(res, ", json %s is %s (expected %s)", p->expect.json_pointer, got,
                           p->expect.json_value);
                res->ok = false;
        }
}

/* ---- HTTP ------------------------------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
        outbuf_put(ud, ptr, size * nmemb);
        return size * nmemb; /* keep reading past the cap; just drop it */
}

/* One HTTP (or prometheus) transfer in flight. Everything the easy
 * handle points at lives here until _finish. */
struct coord_http_op {
        const struct coord_probe *p;
        CURL *c;
        struct curl_slist *hdrs;
        char *url;  /* owned, marker substituted / query encoded */
        char *body; /* owned, marker substituted */
        char *data; /* COORD_PROBE_OUTPUT_MAX + 1 */
        struct outbuf out;
        regex_t rxs;
        regex_t *rx;
        char errbuf[CURL_ERROR_SIZE];
        uint64_t t0_us, timeout_ms;
};

void coord_http_op_free(struct coord_http_op *op)
{
        if (!op)
                return;
        if (op->c)
                curl_easy_cleanup(op->c);
        curl_slist_free_all(op->hdrs);
        if (op->rx)
                regfree(op->rx);
        free(op->url);
        free(op->body);
        free(op->data);
        free(op);
}

void *coord_http_op_easy(struct coord_http_op *op)
{
        return op->c;
}

char *coord_probe_subst(const char *s, const char *marker)
{
        static const char tok[] = "{marker}";
        if (!s)
                return NULL;
        size_t n = 0;
        for (const char *q = s; marker && (q = strstr(q, tok)); q += sizeof(tok) - 1)
                n++;
        size_t len = strlen(s) + n * (marker ? strlen(marker) : 0) + 1;
        char *r = malloc(len), *w = r;
        if (!r)
                return NULL;
        while (*s) {
                if (marker && !strncmp(s, tok, sizeof(tok) - 1)) {
                        w = stpcpy(w, marker);
                        s += sizeof(tok) - 1;
                } else
                        *w++ = *s++;
        }
        *w = 0;
        return r;
}

static void op_fail_nomem(struct coord_http_op *op, struct coord_probe_result *res)
{
        coord_http_op_free(op);
        snprintf(res->detail, sizeof(res->detail), "out of memory");
}

int coord_http_op_start(const struct coord_probe *p, const char *marker, struct coord_http_op **ret,
                        struct coord_probe_result *res)
{
        bool prom = p->kind == COORD_PROBE_PROMETHEUS;
        const struct coord_http_probe *h = &p->http;
        const char *base = prom ? p->prom.url : h->url;
        *ret = NULL;
        if (!base || (prom && !p->prom.query)) {
                snprintf(res->detail, sizeof(res->detail), "%s probe without url",
                         prom ? "prometheus" : "http");
                return -EINVAL;
        }
        struct coord_http_op *op = calloc(1, sizeof(*op));
        if (!op) {
                snprintf(res->detail, sizeof(res->detail), "out of memory");
                return -ENOMEM;
        }
        op->p = p;
        int r = compile(prom ? NULL : p->expect.body_regex, &op->rxs, &op->rx, res);
        if (r < 0) {
                coord_http_op_free(op);
                return r;
        }
        op->data = malloc(COORD_PROBE_OUTPUT_MAX + 1);
        op->c = curl_easy_init();
        if (!op->data || !op->c) {
                op_fail_nomem(op, res);
                return -ENOMEM;
        }
        op->data[0] = 0;
        op->out.data = op->data;
        CURL *c = op->c;

        if (prom) {
                char *q = curl_easy_escape(c, p->prom.query, 0);
                size_t bl = strlen(base);
                while (bl > 0 && base[bl - 1] == '/')
                        bl--;
                if (!q || asprintf(&op->url, "%.*s/api/v1/query?query=%s", (int)bl, base, q) < 0)
                        op->url = NULL;
                curl_free(q);
                op->timeout_ms =
                    p->prom.timeout_ms ? p->prom.timeout_ms : COORD_PROBE_PROM_TIMEOUT_MS;
        } else {
                op->url = coord_probe_subst(h->url, marker);
                op->timeout_ms = h->timeout_ms ? h->timeout_ms : COORD_PROBE_HTTP_TIMEOUT_MS;
        }
        if (!op->url) {
                op_fail_nomem(op, res);
                return -ENOMEM;
        }
        for (size_t i = 0; !prom && i < h->n_headers; i++) {
                _cleanup_free_ char *v = coord_probe_subst(h->headers[i].value, marker);
                _cleanup_free_ char *line = NULL;
                if (!v || asprintf(&line, "%s: %s", h->headers[i].key, v) < 0) {
                        line = NULL;
                        op_fail_nomem(op, res);
                        return -ENOMEM;
                }
                struct curl_slist *n = curl_slist_append(op->hdrs, line);
                if (!n) {
                        op_fail_nomem(op, res);
                        return -ENOMEM;
                }
                op->hdrs = n;
        }
        const char *method = prom || !h->method ? "GET" : h->method;

        /* Option failures here can only be out-of-memory or a libcurl
         * built without http: both show up as a transfer error. */
        curl_easy_setopt(c, CURLOPT_URL, op->url);
        curl_easy_setopt(c, CURLOPT_PRIVATE, op);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM: we run in threads */
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_PROXY, ""); /* ignore http_proxy & co */
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)op->timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)op->timeout_ms);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, op->errbuf);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &op->out);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "faultline-probe/" FL_VERSION);
        if (op->hdrs)
                curl_easy_setopt(c, CURLOPT_HTTPHEADER, op->hdrs);
        if (!prom && h->body) {
                if (!(op->body = coord_probe_subst(h->body, marker))) {
                        op_fail_nomem(op, res);
                        return -ENOMEM;
                }
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(op->body));
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, op->body);
        }
        if (!strcmp(method, "HEAD"))
                curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        else if (strcmp(method, "GET") || (!prom && h->body))
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        op->t0_us = fl_now_mono_us();
        *ret = op;
        return 0;
}

/* Prometheus answer: {"status":"success","data":{"resultType":"vector",
 * "result":[{"metric":{...},"value":[1700000000.1,"42"]}]}} (or
 * resultType scalar with data.result = [ts, "42"]). */
static void judge_prometheus(const struct coord_probe *p, const struct outbuf *b,
                             struct coord_probe_result *res)
{
        json_error_t jerr;
        json_t *doc = json_loadb(b->data, b->len, 0, &jerr);
        json_t *data = doc ? json_object_get(doc, "data") : NULL;
        const char *status = json_string_value(json_object_get(doc, "status"));
        const char *type = json_string_value(json_object_get(data, "resultType"));
        json_t *result = json_object_get(data, "result");
        json_t *pair = NULL;
        res->ok = false;
        if (!doc || !status) {
                snprintf(res->detail, sizeof(res->detail), "not a Prometheus API answer");
                goto out;
        }
        if (strcmp(status, "success")) {
                const char *why = json_string_value(json_object_get(doc, "error"));
                snprintf(res->detail, sizeof(res->detail), "query failed: %.200s",
                         why ? why : status);
                goto out;
        }
        if (type && !strcmp(type, "scalar"))
                pair = result;
        else if (type && !strcmp(type, "vector") && json_array_size(result) > 0)
                pair = json_object_get(json_array_get(result, 0), "value");
        else if (type && !strcmp(type, "vector")) {
                snprintf(res->detail, sizeof(res->detail), "query returned no series");
                goto out;
        }
        const char *vs = json_string_value(json_array_get(pair, 1));
        char *end = NULL;
        double v = vs ? strtod(vs, &end) : 0;
        if (!vs || end == vs || *end) {
                snprintf(res->detail, sizeof(res->detail), "unexpected result type %s",
                         type ? type : "(none)");
                goto out;
        }
        res->value = v;
        snprintf(res->output, sizeof(res->output), "%s", vs);
        res->ok = true;
        snprintf(res->detail, sizeof(res->detail), "value %g", v);
        if (p->expect.has_min && !(v >= p->expect.min_value)) {
                detail_add(res, " below min %g", p->expect.min_value);
                res->ok = false;
        }
        if (p->expect.has_max && !(v <= p->expect.max_value)) {
                detail_add(res, " above max %g", p->expect.max_value);
                res->ok = false;
        }
        detail_add(res, " in %.1f ms", (double)res->latency_us / 1000.0);
out:
        json_decref(doc);
}

int coord_http_op_finish(struct coord_http_op *op, int cr_, struct coord_probe_result *res)
{
        CURLcode cr = (CURLcode)cr_;
        CURL *c = op->c;
        const struct coord_probe *p = op->p;
        int rv = 0;
        res->latency_us = fl_now_mono_us() - op->t0_us;
        curl_off_t total_us = 0;
        if (curl_easy_getinfo(c, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK && total_us > 0)
                res->latency_us = (uint64_t)total_us;
        double lat_ms = (double)res->latency_us / 1000.0;

        if (cr != CURLE_OK) {
                char tb[32];
                long oserr = 0;
                res->ok = false;
                switch (cr) {
                case CURLE_OPERATION_TIMEDOUT:
                        fmt_ms(op->timeout_ms, tb, sizeof(tb));
                        res->timed_out = true;
                        snprintf(res->detail, sizeof(res->detail), "timeout after %s", tb);
                        break;
                case CURLE_COULDNT_CONNECT:
                        curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
                        if (oserr == ECONNREFUSED)
                                snprintf(res->detail, sizeof(res->detail), "connection refused");
                        else
                                snprintf(res->detail, sizeof(res->detail), "cannot connect: %.200s",
                                         oserr ? strerror((int)oserr) : op->errbuf);
                        break;
                case CURLE_OUT_OF_MEMORY:
                        snprintf(res->detail, sizeof(res->detail), "out of memory");
                        rv = -ENOMEM;
                        break;
                default:
                        snprintf(res->detail, sizeof(res->detail), "http error: %.200s",
                                 op->errbuf[0] ? op->errbuf : curl_easy_strerror(cr));
                        break;
                }
                coord_http_op_free(op);
                return rv;
        }

        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        snprintf(res->output, sizeof(res->output), "%s", op->out.data);
        if (p->kind == COORD_PROBE_PROMETHEUS) {
                if (status != 200 && status != 400 && status != 422) {
                        res->ok = false;
                        snprintf(res->detail, sizeof(res->detail),
                                 "prometheus answered status %ld in %.1f ms", status, lat_ms);
                } else
                        judge_prometheus(p, &op->out, res);
                check_latency(p, res);
                coord_http_op_free(op);
                return 0;
        }
        int want = p->expect.status ? p->expect.status : 200;
        res->value = (double)status;
        res->ok = status == want;
        if (res->ok)
                snprintf(res->detail, sizeof(res->detail), "status %ld in %.1f ms", status, lat_ms);
        else
                snprintf(res->detail, sizeof(res->detail), "status %ld (expected %d) in %.1f ms",
                         status, want, lat_ms);
        check_latency(p, res);
        check_regex(op->rx, p->expect.body_regex, &op->out, "body", res);
        check_json(p, &op->out, res);
        coord_http_op_free(op);
        return 0;
}

static int run_http(const struct coord_probe *p, const char *marker, struct coord_probe_result *res)
{
        struct coord_http_op *op = NULL;
        int r = coord_http_op_start(p, marker, &op, res);
        if (r < 0)
                return r;
        CURLcode cr = curl_easy_perform(op->c);
        return coord_http_op_finish(op, (int)cr, res);
}

/* ---- TCP -------------------------------------------------------------- */

/* Wait for fd to become ready for events until deadline_us. 1 ready, 0
 * timeout, -errno. */
static int wait_fd(int fd, short events, uint64_t deadline_us)
{
        for (;;) {
                uint64_t now = fl_now_mono_us();
                if (now >= deadline_us)
                        return 0;
                struct pollfd pf = {.fd = fd, .events = events};
                int r = poll(&pf, 1, (int)((deadline_us - now + 999) / 1000));
                if (r > 0)
                        return 1;
                if (r < 0 && errno != EINTR)
                        return -errno;
        }
}

static int run_tcp(const struct coord_probe *p, const char *marker, struct coord_probe_result *res)
{
        const struct coord_tcp_probe *t = &p->tcp;
        regex_t rxs;
        __attribute__((cleanup(regfreep))) regex_t *rx = NULL;
        _cleanup_free_ char *data = NULL, *payload = NULL;
        _cleanup_close_ int fd = -1;
        struct addrinfo hints = {
            .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
        struct addrinfo *ai = NULL;
        char port[8], tb[32];
        int r;

        if (!t->host || !t->port) {
                snprintf(res->detail, sizeof(res->detail), "tcp probe without host/port");
                return -EINVAL;
        }
        r = compile(p->expect.reply_regex, &rxs, &rx, res);
        if (r < 0)
                return r;
        data = malloc(COORD_PROBE_OUTPUT_MAX + 1);
        payload = t->send ? coord_probe_subst(t->send, marker) : NULL;
        if (!data || (t->send && !payload)) {
                snprintf(res->detail, sizeof(res->detail), "out of memory");
                return -ENOMEM;
        }
        data[0] = 0;
        struct outbuf out = {.data = data};
        uint64_t timeout = t->timeout_ms ? t->timeout_ms : COORD_PROBE_TCP_TIMEOUT_MS;
        fmt_ms(timeout, tb, sizeof(tb));
        uint64_t t0 = fl_now_mono_us(), deadline = t0 + timeout * 1000u;
        snprintf(port, sizeof(port), "%u", t->port);
        r = getaddrinfo(t->host, port, &hints, &ai);
        if (r != 0) {
                res->latency_us = fl_now_mono_us() - t0;
                snprintf(res->detail, sizeof(res->detail), "cannot resolve %s: %s", t->host,
                         gai_strerror(r));
                return 0;
        }
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                r = -errno;
                freeaddrinfo(ai);
                snprintf(res->detail, sizeof(res->detail), "socket: %s", strerror(-r));
                return r;
        }
        int cr = connect(fd, ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(ai);
        int err = cr == 0 ? 0 : errno;
        if (err == EINPROGRESS) {
                r = wait_fd(fd, POLLOUT, deadline);
                socklen_t sl = sizeof(err);
                if (r <= 0)
                        err = r == 0 ? ETIMEDOUT : -r;
                else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
                        err = errno;
        }
        res->latency_us = fl_now_mono_us() - t0;
        if (err) {
                res->timed_out = err == ETIMEDOUT;
                if (err == ETIMEDOUT)
                        snprintf(res->detail, sizeof(res->detail), "connect timeout after %s", tb);
                else
                        snprintf(res->detail, sizeof(res->detail), "cannot connect: %s",
                                 strerror(err));
                return 0;
        }
        res->value = 1;
        if (payload) {
                size_t off = 0, len = strlen(payload);
                while (off < len) {
                        ssize_t k = send(fd, payload + off, len - off, MSG_NOSIGNAL);
                        if (k > 0) {
                                off += (size_t)k;
                                continue;
                        }
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT, deadline) > 0)
                                continue;
                        snprintf(res->detail, sizeof(res->detail), "send failed: %s",
                                 k < 0 && errno != EAGAIN ? strerror(errno) : "timeout");
                        return 0;
                }
        }
        /* With a reply regex: read until it matches, the peer closes, or
         * the deadline. */
        bool matched = !rx;
        while (rx && !matched) {
                r = wait_fd(fd, POLLIN, deadline);
                if (r <= 0)
                        break;
                char chunk[4096];
                ssize_t k = recv(fd, chunk, sizeof(chunk), 0);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k <= 0)
                        break;
                outbuf_put(&out, chunk, (size_t)k);
                matched = regexec(rx, out.data, 0, NULL, 0) == 0;
                if (out.truncated)
                        break;
        }
        res->latency_us = fl_now_mono_us() - t0;
        snprintf(res->output, sizeof(res->output), "%s", out.data);
        double lat_ms = (double)res->latency_us / 1000.0;
        if (!matched) {
                snprintf(res->detail, sizeof(res->detail),
                         "connected, reply does not match '%s' within %s", p->expect.reply_regex,
                         tb);
                return 0;
        }
        res->ok = true;
        snprintf(res->detail, sizeof(res->detail), "connected%s in %.1f ms",
                 rx ? ", reply matched" : "", lat_ms);
        check_latency(p, res);
        return 0;
}

/* ---- command ---------------------------------------------------------- */

/* argv[0] as given if it has a '/', else the first executable
 * COORD_PROBE_PATH entry. */
static int resolve_program(const char *name, char **ret)
{
        if (strchr(name, '/')) {
                if (access(name, X_OK) < 0)
                        return -errno;
                *ret = strdup(name);
                return *ret ? 0 : -ENOMEM;
        }
        const char *p = COORD_PROBE_PATH;
        int last = -ENOENT;
        while (*p) {
                size_t len = strcspn(p, ":");
                char *cand = NULL;
                if (asprintf(&cand, "%.*s/%s", (int)len, p, name) < 0)
                        return -ENOMEM;
                struct stat st;
                if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) {
                        *ret = cand;
                        return 0;
                }
                if (errno == EACCES)
                        last = -EACCES;
                free(cand);
                p += len;
                if (*p == ':')
                        p++;
        }
        return last;
}

static void envp_freep(char ***v)
{
        for (size_t i = 0; *v && (*v)[i]; i++)
                free((*v)[i]);
        free(*v);
}

/* Wait until the child has exited (not reaped: the pid, and so the
 * process group id, stays reserved), reading its stdout meanwhile.
 * Returns true if it exited before deadline_us. */
static bool supervise(pid_t pid, int outfd, uint64_t deadline_us, struct outbuf *out)
{
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        bool open_ = true, exited = false;
        char chunk[4096];

        while (!exited) {
                uint64_t now = fl_now_mono_us();
                if (now >= deadline_us)
                        break;
                int wait_ms = (int)((deadline_us - now + 999) / 1000);
                struct pollfd pf[2];
                nfds_t n = 0;
                int out_i = -1, pid_i = -1;
                if (open_) {
                        pf[n] = (struct pollfd){.fd = outfd, .events = POLLIN};
                        out_i = (int)n++;
                }
                if (pidfd >= 0) {
                        pf[n] = (struct pollfd){.fd = pidfd, .events = POLLIN};
                        pid_i = (int)n++;
                } else if (wait_ms > 10)
                        wait_ms = 10; /* no pidfd (old kernel): poll for exit */
                int pr = poll(pf, n, wait_ms);
                if (pr < 0 && errno != EINTR)
                        break;
                if (pr > 0 && out_i >= 0 && pf[out_i].revents) {
                        for (;;) {
                                ssize_t k = read(outfd, chunk, sizeof(chunk));
                                if (k > 0) {
                                        outbuf_put(out, chunk, (size_t)k);
                                        continue;
                                }
                                if (k == 0)
                                        open_ = false;
                                else if (errno == EINTR)
                                        continue;
                                else if (errno != EAGAIN)
                                        open_ = false;
                                break;
                        }
                }
                if (pidfd < 0 || (pid_i >= 0 && pr > 0 && pf[pid_i].revents)) {
                        siginfo_t si = {0};
                        if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                            si.si_pid == pid)
                                exited = true;
                }
        }
        /* Output the child wrote just before exiting is still in the pipe. */
        while (exited && open_) {
                ssize_t k = read(outfd, chunk, sizeof(chunk));
                if (k > 0)
                        outbuf_put(out, chunk, (size_t)k);
                else if (k < 0 && errno == EINTR)
                        continue;
                else
                        break;
        }
        if (pidfd >= 0)
                close(pidfd);
        return exited;
}

static int run_command(const struct coord_probe *p, const char *marker,
                       struct coord_probe_result *res)
{
        const struct coord_command_probe *cmd = &p->command;
        regex_t rxs;
        __attribute__((cleanup(regfreep))) regex_t *rx = NULL;
        __attribute__((cleanup(envp_freep))) char **argv = NULL;
        __attribute__((cleanup(envp_freep))) char **envp = NULL;
        _cleanup_free_ char *prog = NULL;
        _cleanup_free_ char *data = NULL;
        _cleanup_close_ int devnull = -1;
        int outp[2] = {-1, -1}, errp[2] = {-1, -1};
        int r;

        if (cmd->argc == 0 || !cmd->argv || !cmd->argv[0]) {
                snprintf(res->detail, sizeof(res->detail), "command probe with empty argv");
                return -EINVAL;
        }
        r = compile(p->expect.stdout_regex, &rxs, &rx, res);
        if (r < 0)
                return r;
        r = resolve_program(cmd->argv[0], &prog);
        if (r < 0) {
                snprintf(res->detail, sizeof(res->detail), "cannot execute '%s': %s", cmd->argv[0],
                         strerror(-r));
                return r;
        }
        data = malloc(COORD_PROBE_OUTPUT_MAX + 1);
        argv = calloc(cmd->argc + 1, sizeof(*argv));
        envp = calloc(cmd->n_env + 2, sizeof(*envp));
        if (!data || !argv || !envp)
                goto nomem;
        data[0] = 0;
        for (size_t i = 0; i < cmd->argc; i++)
                if (!(argv[i] = coord_probe_subst(cmd->argv[i], marker)))
                        goto nomem;
        if (!(envp[0] = strdup("PATH=" COORD_PROBE_PATH)))
                goto nomem;
        for (size_t i = 0; i < cmd->n_env; i++)
                if (asprintf(&envp[i + 1], "%s=%s", cmd->env[i].key, cmd->env[i].value) < 0) {
                        envp[i + 1] = NULL;
                        goto nomem;
                }

        devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull < 0 || pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
                r = -errno;
                snprintf(res->detail, sizeof(res->detail), "cannot set up probe: %s",
                         strerror(errno));
                goto out;
        }
        uint64_t timeout = cmd->timeout_ms ? cmd->timeout_ms : COORD_PROBE_COMMAND_TIMEOUT_MS;
        uint64_t t0 = fl_now_mono_us();
        pid_t pid = fork();
        if (pid < 0) {
                r = -errno;
                snprintf(res->detail, sizeof(res->detail), "fork: %s", strerror(errno));
                goto out;
        }
        if (pid == 0) {
                /* Child: async-signal-safe calls only. */
                sigset_t none;
                setpgid(0, 0);
                for (int s = 1; s < NSIG; s++) {
                        struct sigaction sa = {.sa_handler = SIG_DFL};
                        sigaction(s, &sa, NULL);
                }
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                if (dup2(devnull, 0) < 0 || dup2(outp[1], 1) < 0 || dup2(devnull, 2) < 0) {
                        int e = errno;
                        (void)!write(errp[1], &e, sizeof(e));
                        _exit(127);
                }
                /* Inherited fds without O_CLOEXEC must not leak into the probe. */
                syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */);
                execve(prog, argv, envp);
                int e = errno;
                (void)!write(errp[1], &e, sizeof(e));
                _exit(127);
        }

        setpgid(pid, pid); /* also from here: no window where kill(-pid) misses */
        close(outp[1]);
        outp[1] = -1;
        close(errp[1]);
        errp[1] = -1;
        int child_err = 0;
        ssize_t k;
        do
                k = read(errp[0], &child_err, sizeof(child_err));
        while (k < 0 && errno == EINTR);
        if (k == (ssize_t)sizeof(child_err)) {
                waitpid(pid, NULL, 0);
                r = -child_err;
                snprintf(res->detail, sizeof(res->detail), "cannot execute '%s': %s", prog,
                         strerror(child_err));
                goto out;
        }
        fcntl(outp[0], F_SETFL, fcntl(outp[0], F_GETFL) | O_NONBLOCK);

        struct outbuf out = {.data = data};
        bool exited = supervise(pid, outp[0], t0 + timeout * 1000u, &out);
        /* Exited or not, nothing the probe started may outlive it. */
        kill(-pid, SIGKILL);
        if (!exited)
                kill(pid, SIGKILL);
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        res->latency_us = fl_now_mono_us() - t0;
        double lat_ms = (double)res->latency_us / 1000.0;

        r = 0;
        if (!exited) {
                char tb[32];
                fmt_ms(timeout, tb, sizeof(tb));
                res->timed_out = true;
                res->ok = false;
                res->value = -SIGKILL;
                snprintf(res->detail, sizeof(res->detail), "timeout after %s", tb);
                goto out;
        }
        if (WIFSIGNALED(status)) {
                res->ok = false;
                res->value = -WTERMSIG(status);
                snprintf(res->detail, sizeof(res->detail), "killed by signal %s after %.1f ms",
                         fl_signal_name(WTERMSIG(status)), lat_ms);
                goto out;
        }
        int code = WEXITSTATUS(status);
        res->value = code;
        snprintf(res->output, sizeof(res->output), "%s", out.data);
        res->ok = code == p->expect.exit_code;
        if (res->ok)
                snprintf(res->detail, sizeof(res->detail), "exit %d in %.1f ms", code, lat_ms);
        else
                snprintf(res->detail, sizeof(res->detail), "exit %d (expected %d) in %.1f ms", code,
                         p->expect.exit_code, lat_ms);
        check_latency(p, res);
        check_regex(rx, p->expect.stdout_regex, &out, "stdout", res);
        goto out;

nomem:
        r = -ENOMEM;
        snprintf(res->detail, sizeof(res->detail), "out of memory");
out:
        for (int i = 0; i < 2; i++) {
                if (outp[i] >= 0)
                        close(outp[i]);
                if (errp[i] >= 0)
                        close(errp[i]);
        }
        return r;
}

int coord_probe_run(const struct coord_probe *spec, struct coord_probe_result *ret)
{
        return coord_probe_run_marked(spec, NULL, ret);
}

int coord_probe_run_marked(const struct coord_probe *spec, const char *marker,
                           struct coord_probe_result *ret)
{
        memset(ret, 0, sizeof(*ret));
        ret->started_wall_ms = fl_now_wall_ms();
        switch (spec->kind) {
        case COORD_PROBE_HTTP:
        case COORD_PROBE_PROMETHEUS:
                return run_http(spec, marker, ret);
        case COORD_PROBE_COMMAND:
                return run_command(spec, marker, ret);
        case COORD_PROBE_TCP:
                return run_tcp(spec, marker, ret);
        }
        snprintf(ret->detail, sizeof(ret->detail), "unknown probe kind %d", (int)spec->kind);
        return -EINVAL;
}
