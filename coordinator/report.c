/* JUnit XML and the self-contained HTML report, both rendered from a run
 * journal. See report.h; the journal schema is in docs/cli.md. */
#include "report.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fl_util.h"

int coord_journal_load(const char *path, json_t **ret)
{
        json_error_t err;
        json_t *j = json_load_file(path, 0, &err);
        if (!j) {
                fprintf(stderr, "faultline: %s:%d:%d: cannot read journal: %s\n", path, err.line,
                        err.column, err.text);
                return -EINVAL;
        }
        if (!json_is_object(j) || !json_is_array(json_object_get(j, "events"))) {
                fprintf(stderr, "faultline: %s: not a faultline journal (no events)\n", path);
                json_decref(j);
                return -EINVAL;
        }
        *ret = j;
        return 0;
}

/* Text with &<>"' escaped. */
static void esc(FILE *f, const char *s)
{
        for (; s && *s; s++) {
                switch (*s) {
                case '&':
                        fputs("&amp;", f);
                        break;
                case '<':
                        fputs("&lt;", f);
                        break;
                case '>':
                        fputs("&gt;", f);
                        break;
                case '"':
                        fputs("&quot;", f);
                        break;
                case '\'':
                        fputs("&#39;", f);
                        break;
                default:
                        if ((unsigned char)*s >= 0x20 || *s == '\n' || *s == '\t')
                                fputc(*s, f);
                }
        }
}

static const char *jstr(const json_t *o, const char *k)
{
        const char *s = json_string_value(json_object_get(o, k));
        return s ? s : "";
}

static long long jint(const json_t *o, const char *k)
{
        const json_t *v = json_object_get(o, k);
        return json_is_integer(v) ? (long long)json_integer_value(v)
                                  : (long long)json_number_value(v);
}

static FILE *open_tmp(const char *path, char *tmp, size_t size)
{
        snprintf(tmp, size, "%s.tmp", path);
        FILE *f = fopen(tmp, "we");
        if (!f)
                fprintf(stderr, "faultline: cannot write %s: %s\n", path, strerror(errno));
        return f;
}

static int close_tmp(FILE *f, const char *tmp, const char *path)
{
        bool bad = ferror(f);
        if (fclose(f) != 0 || bad || rename(tmp, path) < 0) {
                int e = errno ? errno : EIO;
                fprintf(stderr, "faultline: cannot write %s: %s\n", path, strerror(e));
                unlink(tmp);
                return -e;
        }
        return 0;
}

/* ---- JUnit ---------------------------------------------------------------- */

struct tcase {
        char cls[64];
        char name[160];
        double secs;
        bool failed;
        char msg[512];
};

static void add_case(struct tcase **v, size_t *n, const char *cls, const char *name, double secs,
                     bool failed, const char *msg)
{
        struct tcase *nv = realloc(*v, (*n + 1) * sizeof(**v));
        if (!nv)
                return;
        *v = nv;
        struct tcase *c = &nv[(*n)++];
        snprintf(c->cls, sizeof(c->cls), "%s", cls);
        snprintf(c->name, sizeof(c->name), "%s", name);
        c->secs = secs;
        c->failed = failed;
        snprintf(c->msg, sizeof(c->msg), "%s", msg ? msg : "");
}

int coord_report_junit(const json_t *j, const char *path)
{
        struct tcase *tc = NULL;
        size_t n = 0, failures = 0;
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(j, "events"), i, e)
        {
                const char *type = jstr(e, "type"), *phase = jstr(e, "phase");
                char cls[64], name[160];
                if (!strcmp(type, "probe")) {
                        snprintf(cls, sizeof(cls), "%s.%s",
                                 !strcmp(phase, "before") || !strcmp(phase, "after") ? "hypothesis"
                                                                                     : "steps",
                                 phase);
                        snprintf(name, sizeof(name), "probe %s", jstr(e, "name"));
                        bool ok = json_is_true(json_object_get(e, "ok"));
                        add_case(&tc, &n, cls, name, (double)jint(e, "latency_us") / 1e6, !ok,
                                 jstr(e, "detail"));
                } else if (!strcmp(type, "hypothesis")) {
                        snprintf(cls, sizeof(cls), "hypothesis.%s", phase);
                        bool ok = json_is_true(json_object_get(e, "held"));
                        add_case(&tc, &n, cls, "steady-state hypothesis", 0, !ok,
                                 ok ? "" : "the steady-state hypothesis did not hold");
                } else if (!strcmp(type, "fault-apply") || !strcmp(type, "fault-revert")) {
                        bool ok = json_is_true(json_object_get(e, "ok"));
                        snprintf(name, sizeof(name), "%s %s on %s",
                                 type[6] == 'a' ? "apply" : "revert", jstr(e, "kind"),
                                 jstr(e, "agent"));
                        add_case(&tc, &n, "faults", name, 0, !ok, jstr(e, "error"));
                }
        }
        json_array_foreach(json_object_get(j, "guardrails"), i, e)
        {
                char name[160], msg[512] = "";
                bool br = json_is_true(json_object_get(e, "breached"));
                snprintf(name, sizeof(name), "guardrail %s", jstr(e, "name"));
                if (br)
                        snprintf(msg, sizeof(msg), "breached: %s",
                                 jstr(json_object_get(j, "breach"), "reason"));
                add_case(&tc, &n, "guardrails", name, 0, br, msg);
        }
        const json_t *drill = json_object_get(j, "drill");
        static const char *const dk[] = {"rto", "rpo"};
        for (size_t k = 0; k < 2; k++) {
                const json_t *d = json_object_get(drill, dk[k]);
                if (!d)
                        continue;
                char name[64], msg[256];
                snprintf(name, sizeof(name), "%s", dk[k]);
                bool has_ok = json_object_get(d, "ok") != NULL;
                bool ok = !has_ok || json_is_true(json_object_get(d, "ok"));
                snprintf(msg, sizeof(msg), "measured %lld ms, target %lld ms",
                         json_object_get(d, "measured_ms") ? jint(d, "measured_ms") : -1,
                         jint(d, "target_ms"));
                add_case(&tc, &n, "drill", name, (double)jint(d, "measured_ms") / 1000.0, !ok,
                         ok ? "" : msg);
        }
        const json_t *rb = json_object_get(j, "rollbacks");
        if (rb)
                add_case(&tc, &n, "rollbacks", "rollbacks", 0,
                         !json_is_true(json_object_get(rb, "ok")), "a rollback step failed");
        add_case(&tc, &n, "verdict", "verdict", 0, strcmp(jstr(j, "verdict"), "held") != 0,
                 jstr(j, "reason"));
        for (size_t k = 0; k < n; k++)
                failures += tc[k].failed;

        char tmp[4200];
        FILE *f = open_tmp(path, tmp, sizeof(tmp));
        if (!f) {
                free(tc);
                return -errno;
        }
        double secs = (double)(jint(j, "ended_ms") - jint(j, "started_ms")) / 1000.0;
        fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        fprintf(f, "<testsuites name=\"faultline\" tests=\"%zu\" failures=\"%zu\" time=\"%.3f\">\n",
                n, failures, secs);
        fprintf(f, "  <testsuite name=\"");
        esc(f, jstr(j, "experiment"));
        fprintf(f, "\" tests=\"%zu\" failures=\"%zu\" errors=\"0\" time=\"%.3f\">\n", n, failures,
                secs);
        for (size_t k = 0; k < n; k++) {
                fprintf(f, "    <testcase classname=\"");
                esc(f, tc[k].cls);
                fprintf(f, "\" name=\"");
                esc(f, tc[k].name);
                fprintf(f, "\" time=\"%.3f\"", tc[k].secs);
                if (!tc[k].failed) {
                        fprintf(f, "/>\n");
                        continue;
                }
                fprintf(f, "><failure message=\"");
                esc(f, tc[k].msg);
                fprintf(f, "\"/></testcase>\n");
        }
        fprintf(f, "  </testsuite>\n</testsuites>\n");
        free(tc);
        return close_tmp(f, tmp, path);
}

/* ---- HTML ----------------------------------------------------------------- */

struct window {
        long long t0, t1;
        char label[128];
};

/* Fault windows: apply -> matching revert (or the agent's deadline). */
static size_t fault_windows(const json_t *j, struct window **ret)
{
        const json_t *ev = json_object_get(j, "events");
        struct window *w = NULL;
        size_t n = 0, i, k;
        json_t *e, *r;
        json_array_foreach(ev, i, e)
        {
                if (strcmp(jstr(e, "type"), "fault-apply") ||
                    !json_is_true(json_object_get(e, "ok")))
                        continue;
                const char *id = jstr(e, "id");
                long long end = jint(e, "expires_ms");
                json_array_foreach(ev, k, r)
                {
                        if (k > i && !strcmp(jstr(r, "type"), "fault-revert") &&
                            !strcmp(jstr(r, "id"), id) && json_is_true(json_object_get(r, "ok"))) {
                                /* Reverted by the agent at its deadline: the
                                 * deadline is when it ended. */
                                if (strcmp(jstr(r, "by"), "agent-ttl") || jint(r, "t") < end)
                                        end = jint(r, "t");
                                break;
                        }
                }
                /* a breach abort ends everything at once */
                const json_t *b = json_object_get(j, "breach");
                if (b && jint(b, "all_reverted_ms") > jint(e, "t") &&
                    jint(b, "all_reverted_ms") < end)
                        end = jint(b, "all_reverted_ms");
                struct window *nw = realloc(w, (n + 1) * sizeof(*w));
                if (!nw)
                        break;
                w = nw;
                w[n].t0 = jint(e, "t");
                w[n].t1 = end > w[n].t0 ? end : w[n].t0;
                snprintf(w[n].label, sizeof(w[n].label), "%s on %s", jstr(e, "kind"),
                         jstr(e, "agent"));
                n++;
        }
        *ret = w;
        return n;
}

static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}"
    ".verdict{display:inline-block;padding:3px 10px;border-radius:4px;color:#fff;"
    "font-weight:bold}.held{background:#2a7d2e}.deviated{background:#b26b00}"
    ".aborted{background:#b3261e}.error{background:#6d2a8c}"
    "table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:left;vertical-align:top}th{background:#f3f3f3}.bad{color:#b3261e;"
    "font-weight:bold}.ok{color:#2a7d2e}svg{background:#fcfcfc;border:1px solid #ddd;"
    "margin:4px 0 14px}.series{fill:none;stroke:#1f5fbf;stroke-width:1.5}"
    ".fault-window{fill:#f4b400;fill-opacity:.22}.breach{stroke:#b3261e;stroke-width:2;"
    "stroke-dasharray:5 3}.axis{stroke:#888}.grid{stroke:#eee}text{font-size:11px;fill:#555}"
    ".failpt{fill:#b3261e}";

static void fmt_clock(long long ms, char *buf, size_t size)
{
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(buf, size, "%H:%M:%S", &tm);
        size_t l = strlen(buf);
        snprintf(buf + l, size - l, ".%03lld", ms % 1000);
}

/* One chart: a series of [t, ok, latency_ms, value] samples. */
static void chart(FILE *f, const char *name, const json_t *arr, bool use_value, long long t0,
                  long long t1, const struct window *w, size_t nw, const json_t *breach)
{
        const double W = 1000, H = 180, L = 56, R = 12, T = 14, B = 26;
        double span = (double)(t1 > t0 ? t1 - t0 : 1);
        double ymax = 0;
        size_t i;
        json_t *s;
        json_array_foreach(arr, i, s)
        {
                double y = json_number_value(json_array_get(s, use_value ? 3 : 2));
                if (isfinite(y) && y > ymax)
                        ymax = y;
        }
        ymax = ymax <= 0 ? 1 : ymax * 1.15;
#define X(t) (L + ((double)((t)-t0) / span) * (W - L - R))
#define Y(v) (T + (1.0 - (v) / ymax) * (H - T - B))
        fprintf(f, "<h3>");
        esc(f, name);
        fprintf(f, " <small>(%s)</small></h3>\n", use_value ? "value" : "latency, ms");
        fprintf(f, "<svg class=\"chart\" data-probe=\"");
        esc(f, name);
        fprintf(f,
                "\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
                "xmlns=\"http://www.w3.org/2000/svg\">\n",
                W, H, W, H);
        for (size_t k = 0; k < nw; k++) {
                fprintf(f,
                        "<rect class=\"fault-window\" x=\"%.1f\" y=\"%.0f\" width=\"%.1f\" "
                        "height=\"%.0f\"><title>",
                        X(w[k].t0), T, X(w[k].t1) - X(w[k].t0) < 1 ? 1 : X(w[k].t1) - X(w[k].t0),
                        H - T - B);
                esc(f, w[k].label);
                fprintf(f, "</title></rect>\n");
        }
        for (int g = 0; g <= 4; g++) {
                double v = ymax * g / 4;
                fprintf(f,
                        "<line class=\"grid\" x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\"/>"
                        "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n",
                        L, W - R, Y(v), Y(v), L - 4, Y(v) + 4, v);
        }
        for (int g = 0; g <= 5; g++) {
                double x = L + (W - L - R) * g / 5;
                fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">+%.1fs</text>\n", x,
                        H - 8, span * g / 5 / 1000.0);
        }
        fprintf(f, "<line class=\"axis\" x1=\"%.0f\" x2=\"%.0f\" y1=\"%.0f\" y2=\"%.0f\"/>\n", L,
                W - R, H - B, H - B);
        fprintf(f, "<polyline class=\"series\" data-series=\"");
        esc(f, name);
        fprintf(f, "\" points=\"");
        json_array_foreach(arr, i, s)
        {
                double y = json_number_value(json_array_get(s, use_value ? 3 : 2));
                long long t = (long long)json_number_value(json_array_get(s, 0));
                if (!isfinite(y))
                        y = 0;
                fprintf(f, "%s%.1f,%.1f", i ? " " : "", X(t), Y(y));
        }
        fprintf(f, "\"/>\n");
        json_array_foreach(arr, i, s)
        {
                if (json_number_value(json_array_get(s, 1)) != 0)
                        continue;
                double y = json_number_value(json_array_get(s, use_value ? 3 : 2));
                long long t = (long long)json_number_value(json_array_get(s, 0));
                fprintf(f, "<circle class=\"failpt\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>\n", X(t),
                        Y(isfinite(y) ? y : 0));
        }
        if (breach) {
                double x = X(jint(breach, "detected_ms"));
                fprintf(f,
                        "<line class=\"breach\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\">"
                        "<title>guardrail breach</title></line>"
                        "<text x=\"%.1f\" y=\"%.0f\" style=\"fill:#b3261e\">breach</text>\n",
                        x, x, T, H - B, x + 3, T + 10);
        }
        fprintf(f, "</svg>\n");
#undef X
#undef Y
}

int coord_report_html(const json_t *j, const char *path)
{
        char tmp[4200];
        FILE *f = open_tmp(path, tmp, sizeof(tmp));
        if (!f)
                return -errno;
        const char *verdict = jstr(j, "verdict");
        long long t0 = jint(j, "started_ms"), t1 = jint(j, "ended_ms");
        if (t1 <= t0)
                t1 = t0 + 1;
        char a[32], b[32];
        fmt_clock(t0, a, sizeof(a));
        fmt_clock(t1, b, sizeof(b));
        fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                   "<title>faultline: ");
        esc(f, jstr(j, "experiment"));
        fprintf(f, "</title><style>%s</style></head><body>\n<h1>", css);
        esc(f, jstr(j, "experiment"));
        fprintf(f, "</h1>\n<p><span class=\"verdict %s\" id=\"verdict\">", verdict);
        esc(f, verdict);
        fprintf(f, "</span> ");
        esc(f, jstr(j, "reason"));
        fprintf(f, "</p>\n<p>file <code>");
        esc(f, jstr(j, "file"));
        fprintf(f, "</code>, %s &ndash; %s (%.1f s), lease <code>", a, b, (double)(t1 - t0) / 1e3);
        esc(f, jstr(j, "lease"));
        fprintf(f, "</code>, exit %lld</p>\n", jint(j, "exit_code"));

        const json_t *breach = json_object_get(j, "breach");
        if (breach) {
                char c[32];
                fmt_clock(jint(breach, "detected_ms"), c, sizeof(c));
                fprintf(f, "<h2>Guardrail breach</h2><p class=\"bad\">");
                esc(f, jstr(breach, "guardrail"));
                fprintf(f, ": ");
                esc(f, jstr(breach, "reason"));
                fprintf(f,
                        "</p><p>detected at %s; every fault reverted %.1f ms later (%lld fault(s), "
                        "%s)</p>\n",
                        c, json_number_value(json_object_get(breach, "detect_to_reverted_ms")),
                        jint(breach, "faults_reverted"),
                        json_is_true(json_object_get(breach, "all_agents_confirmed"))
                            ? "all agents confirmed"
                            : "SOME AGENTS DID NOT CONFIRM");
        }
        const json_t *drill = json_object_get(j, "drill");
        if (drill && json_object_size(drill)) {
                fprintf(f, "<h2>DR drill</h2><table><tr><th></th><th>measured</th><th>target</th>"
                           "<th>result</th></tr>\n");
                static const char *const dk[] = {"rto", "rpo"};
                for (size_t k = 0; k < 2; k++) {
                        const json_t *d = json_object_get(drill, dk[k]);
                        if (!d)
                                continue;
                        bool has = json_object_get(d, "measured_ms") != NULL;
                        bool ok = json_is_true(json_object_get(d, "ok"));
                        fprintf(f, "<tr><td>%s</td><td>", k ? "RPO" : "RTO");
                        if (has)
                                fprintf(f, "%.2f s", (double)jint(d, "measured_ms") / 1000.0);
                        else
                                fprintf(f, "not measured");
                        fprintf(f, "</td><td>%.2f s</td><td class=\"%s\">%s</td></tr>\n",
                                (double)jint(d, "target_ms") / 1000.0, ok ? "ok" : "bad",
                                ok ? "met" : "missed");
                }
                fprintf(f, "</table>\n");
        }

        /* Step timeline */
        fprintf(f, "<h2>Timeline</h2><table><tr><th>time</th><th>+s</th><th>phase</th>"
                   "<th>event</th><th>detail</th></tr>\n");
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(j, "events"), i, e)
        {
                const char *type = jstr(e, "type");
                char c[32], detail[512] = "";
                bool bad = json_object_get(e, "ok") && !json_is_true(json_object_get(e, "ok"));
                if (!strcmp(type, "step-start") || !strcmp(type, "step-end"))
                        snprintf(detail, sizeof(detail), "%s %s%s%s", jstr(e, "step"),
                                 jstr(e, "what"), json_object_get(e, "result") ? ": " : "",
                                 jstr(e, "result"));
                else if (!strcmp(type, "probe"))
                        snprintf(detail, sizeof(detail), "%s: %s", jstr(e, "name"),
                                 jstr(e, "detail"));
                else if (!strncmp(type, "fault-", 6))
                        snprintf(detail, sizeof(detail), "%s %s on %s %s%s", jstr(e, "kind"),
                                 jstr(e, "id"), jstr(e, "agent"), jstr(e, "target"),
                                 jstr(e, "error"));
                else if (!strcmp(type, "hypothesis")) {
                        bad = !json_is_true(json_object_get(e, "held"));
                        snprintf(detail, sizeof(detail), "%s", bad ? "DEVIATED" : "held");
                } else if (!strcmp(type, "guardrail-breach")) {
                        bad = true;
                        snprintf(detail, sizeof(detail), "%s: %s", jstr(e, "guardrail"),
                                 jstr(e, "reason"));
                } else if (!strcmp(type, "abort"))
                        snprintf(detail, sizeof(detail), "%lld fault(s) reverted",
                                 jint(e, "faults_reverted"));
                fmt_clock(jint(e, "t"), c, sizeof(c));
                fprintf(f, "<tr%s><td>%s</td><td>%.2f</td><td>", bad ? " class=\"bad\"" : "", c,
                        (double)(jint(e, "t") - t0) / 1000.0);
                esc(f, jstr(e, "phase"));
                fprintf(f, "</td><td>");
                esc(f, type);
                fprintf(f, "</td><td>");
                esc(f, detail);
                fprintf(f, "</td></tr>\n");
        }
        fprintf(f, "</table>\n");

        const json_t *gr = json_object_get(j, "guardrails");
        if (json_array_size(gr)) {
                fprintf(f, "<h2>Guardrails</h2><table><tr><th>name</th><th>samples</th>"
                           "<th>failed</th><th>success</th><th>p50</th><th>p95</th><th>p99</th>"
                           "<th>state</th></tr>\n");
                json_array_foreach(gr, i, e)
                {
                        bool br = json_is_true(json_object_get(e, "breached"));
                        fprintf(f, "<tr><td>");
                        esc(f, jstr(e, "name"));
                        fprintf(f,
                                "</td><td>%lld</td><td>%lld</td><td>%.1f%%</td><td>%.1f ms</td>"
                                "<td>%.1f ms</td><td>%.1f ms</td><td class=\"%s\">%s</td></tr>\n",
                                jint(e, "samples"), jint(e, "failed"),
                                json_number_value(json_object_get(e, "success_ratio")) * 100,
                                json_number_value(json_object_get(e, "p50_ms")),
                                json_number_value(json_object_get(e, "p95_ms")),
                                json_number_value(json_object_get(e, "p99_ms")), br ? "bad" : "ok",
                                br ? "BREACHED" : "held");
                }
                fprintf(f, "</table>\n");
        }

        struct window *w = NULL;
        size_t nw = fault_windows(j, &w);
        const json_t *series = json_object_get(j, "series");
        const json_t *kinds = json_object_get(j, "probe_kinds");
        fprintf(f,
                "<h2>Probes over time</h2><p>Shaded: fault windows; red dots: failed "
                "samples%s.</p>\n",
                breach ? "; dashed red line: the guardrail breach" : "");
        const char *name;
        json_t *arr;
        json_object_foreach((json_t *)series, name, arr)
        {
                bool use_value = !strcmp(jstr(kinds, name), "prometheus");
                chart(f, name, arr, use_value, t0, t1, w, nw, breach);
        }
        free(w);
        fprintf(f, "<p><small>faultline %s</small></p>\n</body></html>\n", FL_VERSION);
        return close_tmp(f, tmp, path);
}
