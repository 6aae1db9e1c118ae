/* faultline: the coordinator CLI. */
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <time.h>

#include "client.h"
#include "experiment.h"
#include "faultcheck.h"
#include "fl_log.h"
#include "fl_parse.h"
#include "fl_util.h"
#include "inventory.h"
#include "pki.h"
#include "report.h"
#include "run.h"

volatile sig_atomic_t coord_interrupted;

struct global_opts {
        const char *inventory;
        int timeout_ms;
        bool quiet;
        char requester[FL_NAME_LEN];
        const char *tls_dir, *tls_ca, *tls_cert, *tls_key;
};

#define COORD_DEFAULT_TLS_DIR "/etc/faultline/pki"

static void on_signal(int sig)
{
        coord_interrupted = sig;
}

static void usage(FILE *out)
{
        fprintf(
            out,
            "Usage: faultline [GLOBAL OPTIONS] COMMAND [ARGS]\n"
            "\n"
            "Run chaos game days and failover drills against faultline agents.\n"
            "\n"
            "Commands:\n"
            "  agents                       health, version and capabilities of every agent\n"
            "  status                       active faults fleet-wide\n"
            "  inject TARGET KIND [K=V...] --duration D\n"
            "                               apply one fault; holds its lease until D ends or\n"
            "                               Ctrl-C (which reverts it). TARGET: NAME, tag:T[,T]\n"
            "                               or all\n"
            "  abort [--lease ID]           revert every fault on every agent, concurrently\n"
            "  validate FILE                check an experiment file, report every error\n"
            "  run FILE [--journal F] [--junit F] [--html F] [--report-dir D [--keep N]]\n"
            "           [--lock F | --no-lock] [--progress | --no-progress] [--dry-run]\n"
            "                               execute a game day\n"
            "  report JOURNAL [--html F] [--junit F]\n"
            "                               render a journal as HTML / JUnit XML\n"
            "  pki init DIR | pki issue DIR NAME --agent|--coordinator\n"
            "                               fleet CA and certificates for tls+tcp://\n"
            "\n"
            "Global options:\n"
            "  -i, --inventory FILE   agents file (default: $FAULTLINE_INVENTORY,\n"
            "                         ./inventory.yaml, /etc/faultline/inventory.yaml)\n"
            "  -t, --timeout D        per-call timeout (default 5s)\n"
            "  -q, --quiet            only the verdict and errors (for cron)\n"
            "      --tls-dir DIR      TLS identity for tls+tcp:// agents: DIR/ca.crt,\n"
            "                         DIR/coordinator.crt, DIR/coordinator.key (default:\n"
            "                         $FAULTLINE_TLS_DIR, " COORD_DEFAULT_TLS_DIR ")\n"
            "      --tls-ca F, --tls-cert F, --tls-key F\n"
            "                         override one file ($FAULTLINE_TLS_CA, _CERT, _KEY)\n"
            "  -h, --help             this text\n"
            "  -V, --version          print the version\n"
            "\n"
            "Exit status:\n"
            "  0  success; for run: the steady-state hypothesis held\n"
            "  1  run: the hypothesis deviated\n"
            "  2  bad usage or invalid input (file, flag, fault parameter)\n"
            "  3  run: aborted (guardrail breach or Ctrl-C)\n"
            "  4  agent or system failure (unreachable agent, failed apply or revert)\n"
            "  5  run: another run holds the lock (overlapping cron runs)\n");
}

static const char *pick_inventory(const struct global_opts *g)
{
        if (g->inventory)
                return g->inventory;
        const char *env = getenv("FAULTLINE_INVENTORY");
        if (env && *env)
                return env;
        if (access("inventory.yaml", R_OK) == 0)
                return "inventory.yaml";
        return "/etc/faultline/inventory.yaml";
}

static int load_inventory(const struct global_opts *g, struct coord_inventory *inv)
{
        struct coord_diags diags = {0};
        const char *path = pick_inventory(g);
        int rv = coord_inventory_load(path, inv, &diags);
        if (rv < 0) {
                fprintf(stderr, "faultline: cannot use inventory %s\n", path);
                coord_diags_print(&diags, stderr);
        }
        coord_diags_free(&diags);
        return rv;
}

static int exit_for_status(enum fl_status st)
{
        switch (st) {
        case FL_ST_OK:
                return 0;
        case FL_ST_BAD_REQUEST:
        case FL_ST_UNKNOWN_KIND:
        case FL_ST_INVALID:
        case FL_ST_REFUSED:
        case FL_ST_NOT_FOUND:
                return COORD_EXIT_USAGE;
        default:
                return COORD_EXIT_FAILURE;
        }
}

static void fmt_time(uint64_t wall_ms, char *buf, size_t size)
{
        time_t t = (time_t)(wall_ms / 1000);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(buf, size, "%H:%M:%S", &tm);
}

/* ---- fleet-wide requests (agents, status, abort) ---------------------- */

/* One request to every agent in the inventory, concurrently. */
struct fleet_answers {
        struct coord_inventory inv;
        struct coord_fleet fleet;
        struct fl_reply *replies; /* fleet.n */
        int *rcs;                 /* fleet.n */
        uint64_t elapsed_us;      /* the broadcast alone */
};

static void answers_free(struct fleet_answers *a)
{
        for (size_t i = 0; a->replies && i < a->fleet.n; i++)
                fl_reply_free(&a->replies[i]);
        free(a->replies);
        free(a->rcs);
        coord_fleet_close(&a->fleet);
        coord_inventory_free(&a->inv);
        memset(a, 0, sizeof(*a));
}

/* Returns 0, or the exit code to leave with (message printed). */
static int ask_all(const struct global_opts *g, struct fl_request *req, struct fleet_answers *a)
{
        memset(a, 0, sizeof(*a));
        if (load_inventory(g, &a->inv) < 0)
                return COORD_EXIT_USAGE;
        size_t n = a->inv.n_agents;
        _cleanup_free_ const struct coord_agent **agents = calloc(n + 1, sizeof(*agents));
        a->replies = calloc(n + 1, sizeof(*a->replies));
        a->rcs = calloc(n + 1, sizeof(*a->rcs));
        int rv = agents && a->replies && a->rcs ? 0 : -ENOMEM;
        for (size_t i = 0; rv == 0 && i < n; i++)
                agents[i] = &a->inv.agents[i];
        if (rv == 0)
                rv = coord_fleet_open(&a->fleet, agents, n);
        if (rv < 0) {
                fprintf(stderr, "faultline: %s\n", coord_call_error(rv));
                answers_free(a);
                return COORD_EXIT_FAILURE;
        }
        snprintf(req->requester, sizeof(req->requester), "%s", g->requester);
        uint64_t t0 = fl_now_mono_us();
        coord_fleet_broadcast(&a->fleet, req, a->replies, a->rcs, g->timeout_ms);
        a->elapsed_us = fl_now_mono_us() - t0;
        return 0;
}

static const char *answer_error(const struct fleet_answers *a, size_t i)
{
        static char buf[FL_MSG_LEN];
        if (a->rcs[i] < 0)
                return coord_conn_error(a->fleet.m[i].conn, a->rcs[i], buf, sizeof(buf));
        return a->replies[i].status != FL_ST_OK ? a->replies[i].msg : NULL;
}

static int no_args(const char *cmd, int argc, char **argv)
{
        if (argc > 1) {
                fprintf(stderr, "faultline %s: unexpected argument \"%s\"\n", cmd, argv[1]);
                return COORD_EXIT_USAGE;
        }
        return 0;
}

static int cmd_agents(const struct global_opts *g, int argc, char **argv)
{
        struct fl_request req = {.type = FL_MSG_HELLO};
        struct fleet_answers a;
        int rv = no_args("agents", argc, argv);
        if (rv || (rv = ask_all(g, &req, &a)))
                return rv;
        int down = 0;
        printf("%-16s %-28s %-6s %-8s %-16s %-6s %s\n", "NAME", "ADDRESS", "STATE", "VERSION",
               "HOST", "FAULTS", "CAPABILITIES");
        for (size_t i = 0; i < a.fleet.n; i++) {
                const struct coord_agent *ag = a.fleet.m[i].agent;
                const struct fl_reply *r = &a.replies[i];
                const char *err = answer_error(&a, i);
                if (err) {
                        down++;
                        printf("%-16s %-28s %-6s %-8s %-16s %-6s %s\n", ag->name, ag->address,
                               "DOWN", "-", "-", "-", err);
                        continue;
                }
                char caps[1024] = "";
                for (size_t c = 0; c < r->n_caps; c++) {
                        const struct fl_cap *cap = &r->caps[c];
                        size_t len = strlen(caps);
                        if (cap->available)
                                snprintf(caps + len, sizeof(caps) - len, "%s%s", c ? " " : "",
                                         cap->kind);
                        else
                                snprintf(caps + len, sizeof(caps) - len, "%s%s(unavailable: %s)",
                                         c ? " " : "", cap->kind, cap->reason);
                }
                printf("%-16s %-28s %-6s %-8s %-16s %-6u %s\n", ag->name, ag->address, "ok",
                       r->agent_version, r->hostname, r->count, caps);
        }
        answers_free(&a);
        return down ? COORD_EXIT_FAILURE : 0;
}

static int cmd_status(const struct global_opts *g, int argc, char **argv)
{
        struct fl_request req = {.type = FL_MSG_LIST};
        struct fleet_answers a;
        int rv = no_args("status", argc, argv);
        if (rv || (rv = ask_all(g, &req, &a)))
                return rv;
        int failed = 0, total = 0;
        printf("%-16s %-20s %-14s %-8s %-10s %-20s %s\n", "AGENT", "FAULT", "KIND", "BACKEND",
               "REMAINING", "LEASE", "TARGET");
        uint64_t now = fl_now_wall_ms();
        for (size_t i = 0; i < a.fleet.n; i++) {
                const char *name = a.fleet.m[i].agent->name;
                const char *err = answer_error(&a, i);
                if (err) {
                        failed++;
                        fprintf(stderr, "faultline: %s: %s\n", name, err);
                        continue;
                }
                for (size_t f = 0; f < a.replies[i].n_faults; f++) {
                        const struct fl_fault_info *fi = &a.replies[i].faults[f];
                        char rem[32];
                        fl_format_duration(fi->expires_ms > now ? fi->expires_ms - now : 0, rem,
                                           sizeof(rem));
                        printf("%-16s %-20s %-14s %-8s %-10s %-20s %s\n", name, fi->id, fi->kind,
                               fi->backend, rem, fi->lease, fi->target);
                        total++;
                }
        }
        if (!g->quiet)
                printf("%d active fault(s) on %zu agent(s)%s\n", total, a.fleet.n - (size_t)failed,
                       failed ? ", some agents unreachable" : "");
        answers_free(&a);
        return failed ? COORD_EXIT_FAILURE : 0;
}

static int cmd_abort(const struct global_opts *g, int argc, char **argv)
{
        static const struct option opts[] = {{"lease", required_argument, NULL, 'l'}, {0}};
        struct fl_request req = {.type = FL_MSG_ABORT};
        struct fleet_answers a;
        int c, rv;
        optind = 0; /* 0: make GNU getopt re-read its mode (permute) */
        while ((c = getopt_long(argc, argv, "l:", opts, NULL)) != -1) {
                if (c != 'l' || fl_strlcpy(req.lease, optarg, sizeof(req.lease)) < 0) {
                        fprintf(stderr, "Usage: faultline abort [--lease ID]\n");
                        return COORD_EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "faultline abort: unexpected argument \"%s\"\n", argv[optind]);
                return COORD_EXIT_USAGE;
        }
        if ((rv = ask_all(g, &req, &a)))
                return rv;
        int failed = 0;
        unsigned total = 0;
        for (size_t i = 0; i < a.fleet.n; i++) {
                const char *name = a.fleet.m[i].agent->name;
                const char *err = answer_error(&a, i);
                if (err) {
                        failed++;
                        fprintf(stderr, "faultline: abort on %s FAILED: %s\n", name, err);
                        continue;
                }
                total += a.replies[i].count;
                if (!g->quiet)
                        printf("%-16s %u fault(s) reverted\n", name, a.replies[i].count);
        }
        printf("abort: %u fault(s) reverted on %zu agent(s) in %.1f ms%s\n", total,
               a.fleet.n - (size_t)failed, (double)a.elapsed_us / 1000.0,
               failed ? "; SOME AGENTS DID NOT CONFIRM" : "");
        answers_free(&a);
        return failed ? COORD_EXIT_FAILURE : 0;
}

/* ---- inject -------------------------------------------------------------- */

static int cmd_inject(const struct global_opts *g, int argc, char **argv)
{
        static const struct option opts[] = {{"duration", required_argument, NULL, 'd'},
                                             {"lease-ttl", required_argument, NULL, 'L'},
                                             {0}};
        const char *duration = NULL, *ttl_s = NULL;
        int c;
        optind = 0; /* 0: make GNU getopt re-read its mode (permute) */
        while ((c = getopt_long(argc, argv, "d:", opts, NULL)) != -1) {
                if (c == 'd')
                        duration = optarg;
                else if (c == 'L')
                        ttl_s = optarg;
                else
                        return COORD_EXIT_USAGE;
        }
        if (argc - optind < 2) {
                fprintf(stderr,
                        "Usage: faultline inject TARGET KIND [KEY=VALUE...] --duration D\n");
                return COORD_EXIT_USAGE;
        }
        uint64_t dur = 0, ttl = COORD_LEASE_TTL_MS;
        if (!duration) {
                fprintf(stderr,
                        "faultline inject: --duration is mandatory (e.g. --duration 30s)\n");
                return COORD_EXIT_USAGE;
        }
        if (fl_parse_duration_ms(duration, &dur) < 0 || dur == 0) {
                fprintf(stderr,
                        "faultline inject: --duration \"%s\": expected a duration like "
                        "30s or 5m\n",
                        duration);
                return COORD_EXIT_USAGE;
        }
        if (ttl_s && (fl_parse_duration_ms(ttl_s, &ttl) < 0 || ttl < 500)) {
                fprintf(stderr, "faultline inject: --lease-ttl \"%s\": expected >= 500ms\n", ttl_s);
                return COORD_EXIT_USAGE;
        }
        const char *target = argv[optind], *kind = argv[optind + 1];
        struct fl_request req = {.type = FL_MSG_APPLY, .duration_ms = dur, .lease_ttl_ms = ttl};
        char err[FL_MSG_LEN];
        if (fl_strlcpy(req.kind, kind, sizeof(req.kind)) < 0) {
                fprintf(stderr, "faultline inject: fault kind too long\n");
                return COORD_EXIT_USAGE;
        }
        snprintf(req.requester, sizeof(req.requester), "%s", g->requester);
        for (int i = optind + 2; i < argc; i++) {
                char *eq = strchr(argv[i], '=');
                if (!eq || eq == argv[i]) {
                        fprintf(stderr, "faultline inject: \"%s\": parameters are KEY=VALUE\n",
                                argv[i]);
                        fl_request_free(&req);
                        return COORD_EXIT_USAGE;
                }
                *eq = 0;
                int rv = fl_params_add(&req.params, &req.n_params, argv[i], eq + 1);
                *eq = '=';
                if (rv < 0) {
                        fprintf(stderr, "faultline inject: \"%s\": %s\n", argv[i],
                                rv == -E2BIG ? "too many parameters" : "key or value too long");
                        fl_request_free(&req);
                        return COORD_EXIT_USAGE;
                }
        }
        if (coord_fault_check(req.kind, req.params, req.n_params, err, sizeof(err)) < 0) {
                fprintf(stderr, "faultline inject: %s\n", err);
                fl_request_free(&req);
                return COORD_EXIT_USAGE;
        }

        struct coord_selector sel = {0};
        if (coord_selector_parse(target, &sel, err, sizeof(err)) < 0) {
                fprintf(stderr, "faultline inject: target \"%s\": %s\n", target, err);
                fl_request_free(&req);
                return COORD_EXIT_USAGE;
        }
        struct coord_inventory inv = {0};
        if (load_inventory(g, &inv) < 0) {
                coord_selector_free(&sel);
                fl_request_free(&req);
                return COORD_EXIT_USAGE;
        }
        const struct coord_agent **agents = NULL;
        int n = coord_inventory_select(&inv, &sel, &agents, err, sizeof(err));
        coord_selector_free(&sel);
        if (n < 0) {
                fprintf(stderr, "faultline inject: target \"%s\": %s\n", target, err);
                coord_inventory_free(&inv);
                fl_request_free(&req);
                return COORD_EXIT_USAGE;
        }
        struct coord_fleet fleet;
        struct coord_lease *lease = NULL;
        int rv = coord_fleet_open(&fleet, agents, (size_t)n);
        free(agents);
        if (rv == 0)
                rv = coord_lease_start(ttl, g->requester, &lease);
        if (rv < 0) {
                fprintf(stderr, "faultline inject: %s\n", coord_call_error(rv));
                coord_fleet_close(&fleet);
                coord_inventory_free(&inv);
                fl_request_free(&req);
                return COORD_EXIT_FAILURE;
        }
        snprintf(req.lease, sizeof(req.lease), "%s", coord_lease_id(lease));
        /* The lease renewer must know the agents before they hold faults,
         * or a slow first renewal could let a fresh fault lapse. */
        for (size_t i = 0; i < fleet.n; i++)
                coord_lease_add(lease, fleet.m[i].agent->address);

        struct fl_reply *replies = calloc(fleet.n, sizeof(*replies));
        int *rcs = calloc(fleet.n, sizeof(*rcs));
        char(*ids)[FL_ID_LEN] = calloc(fleet.n, sizeof(*ids));
        int exit_code = 0, applied = 0;
        if (!replies || !rcs || !ids) {
                exit_code = COORD_EXIT_FAILURE;
                goto out;
        }
        coord_fleet_broadcast(&fleet, &req, replies, rcs, g->timeout_ms);
        for (size_t i = 0; i < fleet.n; i++) {
                const char *name = fleet.m[i].agent->name;
                if (rcs[i] < 0) {
                        char why[FL_MSG_LEN];
                        fprintf(stderr, "%s: FAILED: %s\n", name,
                                coord_conn_error(fleet.m[i].conn, rcs[i], why, sizeof(why)));
                        exit_code = COORD_EXIT_FAILURE;
                } else if (replies[i].status != FL_ST_OK || replies[i].n_faults != 1) {
                        fprintf(stderr, "%s: %s: %s\n", name, fl_status_name(replies[i].status),
                                replies[i].msg);
                        int e = exit_for_status(replies[i].status);
                        if (e > exit_code)
                                exit_code = e ? e : COORD_EXIT_FAILURE;
                } else {
                        const struct fl_fault_info *fi = &replies[i].faults[0];
                        char until[16];
                        fmt_time(fi->expires_ms, until, sizeof(until));
                        snprintf(ids[i], FL_ID_LEN, "%s", fi->id);
                        printf("%s: applied %s %s on %s (backend %s) until %s\n", name, fi->id,
                               fi->kind, fi->target, fi->backend, until);
                        applied++;
                }
                fl_reply_free(&replies[i]);
        }
        fflush(stdout);
        if (applied == 0)
                goto out;

        /* Hold the lease for the duration; the agents revert at their own
         * deadline. Ctrl-C reverts now. */
        uint64_t end = fl_now_mono_ms() + dur;
        while (!coord_interrupted && fl_now_mono_ms() < end)
                coord_sleep_ms(end - fl_now_mono_ms() < 100 ? end - fl_now_mono_ms() : 100);
        /* Either way, finish by asking each agent to revert: "not found"
         * means its own timer already did. The agent handles requests one
         * at a time, so when this answer arrives any revert it was doing
         * is complete — `inject` never exits while a fault is still being
         * undone. */
        bool interrupted = coord_interrupted;
        for (size_t i = 0; i < fleet.n; i++) {
                if (!ids[i][0])
                        continue;
                struct fl_request rq = {.type = FL_MSG_REVERT};
                struct fl_reply rp;
                snprintf(rq.fault_id, sizeof(rq.fault_id), "%s", ids[i]);
                snprintf(rq.requester, sizeof(rq.requester), "%s", g->requester);
                int r = fl_conn_call(fleet.m[i].conn, &rq, &rp, g->timeout_ms);
                if (r == 0 && rp.status == FL_ST_OK)
                        printf("%s: reverted %s%s\n", fleet.m[i].agent->name, ids[i],
                               interrupted ? " (interrupted)" : "");
                else if (r == 0 && rp.status == FL_ST_NOT_FOUND)
                        printf("%s: %s reverted by the agent at its deadline\n",
                               fleet.m[i].agent->name, ids[i]);
                else {
                        fprintf(stderr, "%s: revert of %s: %s (lease lapses in %llums)\n",
                                fleet.m[i].agent->name, ids[i],
                                r < 0 ? coord_call_error(r) : rp.msg, (unsigned long long)ttl);
                        exit_code = COORD_EXIT_FAILURE;
                }
                if (r == 0)
                        fl_reply_free(&rp);
        }
out:
        free(replies);
        free(rcs);
        free(ids);
        coord_lease_stop(lease);
        coord_fleet_close(&fleet);
        coord_inventory_free(&inv);
        fl_request_free(&req);
        return exit_code;
}

/* ---- validate / run --------------------------------------------------------- */

static int cmd_validate(const struct global_opts *g, int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "Usage: faultline validate FILE\n");
                return COORD_EXIT_USAGE;
        }
        struct coord_run_opts o = {.dry_run = true,
                                   .quiet = g->quiet,
                                   .inventory_override = g->inventory,
                                   .call_timeout_ms = g->timeout_ms,
                                   .requester = g->requester};
        return coord_validate(argv[1], &o);
}

static int cmd_run(const struct global_opts *g, int argc, char **argv)
{
        static const struct option opts[] = {{"journal", required_argument, NULL, 'j'},
                                             {"dry-run", no_argument, NULL, 'n'},
                                             {"junit", required_argument, NULL, 'J'},
                                             {"html", required_argument, NULL, 'H'},
                                             {"lock", required_argument, NULL, 'l'},
                                             {"no-lock", no_argument, NULL, 'L'},
                                             {"report-dir", required_argument, NULL, 'r'},
                                             {"keep", required_argument, NULL, 'k'},
                                             {"progress", no_argument, NULL, 'p'},
                                             {"no-progress", no_argument, NULL, 'P'},
                                             {0}};
        struct coord_run_opts o = {.quiet = g->quiet,
                                   .inventory_override = g->inventory,
                                   .call_timeout_ms = g->timeout_ms,
                                   .requester = g->requester,
                                   .progress = -1};
        int c;
        uint64_t u;
        optind = 0; /* 0: make GNU getopt re-read its mode (permute) */
        while ((c = getopt_long(argc, argv, "j:n", opts, NULL)) != -1) {
                switch (c) {
                case 'j':
                        o.journal_path = optarg;
                        break;
                case 'n':
                        o.dry_run = true;
                        break;
                case 'J':
                        o.junit_path = optarg;
                        break;
                case 'H':
                        o.html_path = optarg;
                        break;
                case 'l':
                        o.lock_path = optarg;
                        break;
                case 'L':
                        o.no_lock = true;
                        break;
                case 'r':
                        o.report_dir = optarg;
                        break;
                case 'k':
                        if (fl_parse_u64(optarg, &u) < 0 || u < 1 || u > 100000) {
                                fprintf(stderr,
                                        "faultline run: --keep \"%s\": expected a count "
                                        "from 1 to 100000\n",
                                        optarg);
                                return COORD_EXIT_USAGE;
                        }
                        o.keep = (unsigned)u;
                        break;
                case 'p':
                        o.progress = 1;
                        break;
                case 'P':
                        o.progress = 0;
                        break;
                default:
                        return COORD_EXIT_USAGE;
                }
        }
        if (argc - optind != 1) {
                fprintf(stderr, "Usage: faultline run FILE [--journal F] [--junit F] [--html F] "
                                "[--report-dir D [--keep N]] [--lock F | --no-lock] [--dry-run]\n");
                return COORD_EXIT_USAGE;
        }
        if (o.keep && !o.report_dir) {
                fprintf(stderr, "faultline run: --keep needs --report-dir\n");
                return COORD_EXIT_USAGE;
        }
        return coord_run(argv[optind], &o);
}

static int cmd_report(const struct global_opts *g, int argc, char **argv)
{
        static const struct option opts[] = {
            {"html", required_argument, NULL, 'H'}, {"junit", required_argument, NULL, 'J'}, {0}};
        const char *html = NULL, *junit = NULL;
        int c;
        (void)g;
        optind = 0;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                if (c == 'H')
                        html = optarg;
                else if (c == 'J')
                        junit = optarg;
                else
                        return COORD_EXIT_USAGE;
        }
        if (argc - optind != 1 || (!html && !junit)) {
                fprintf(stderr, "Usage: faultline report JOURNAL [--html FILE] [--junit FILE]\n");
                return COORD_EXIT_USAGE;
        }
        json_t *j = NULL;
        if (coord_journal_load(argv[optind], &j) < 0)
                return COORD_EXIT_USAGE;
        int rv = 0;
        if (html && coord_report_html(j, html) < 0)
                rv = COORD_EXIT_FAILURE;
        if (junit && coord_report_junit(j, junit) < 0)
                rv = COORD_EXIT_FAILURE;
        json_decref(j);
        return rv;
}

/* The coordinator's TLS identity. Flags, then environment, then the
 * default directory. An identity asked for explicitly must load; the
 * default one is used when present, so plain tcp:// fleets need nothing. */
static const struct fl_tls_identity *tls_identity; /* lives until exit */

static const char *pick(const char *flag, const char *env)
{
        const char *e = getenv(env);
        return flag ? flag : e && *e ? e : NULL;
}

static int setup_tls(const struct global_opts *g)
{
        const char *dir = pick(g->tls_dir, "FAULTLINE_TLS_DIR");
        const char *ca = pick(g->tls_ca, "FAULTLINE_TLS_CA");
        const char *cert = pick(g->tls_cert, "FAULTLINE_TLS_CERT");
        const char *key = pick(g->tls_key, "FAULTLINE_TLS_KEY");
        bool explicit = dir || ca || cert || key;
        char ca_buf[4096], cert_buf[4096], key_buf[4096], err[FL_MSG_LEN];
        if (!dir)
                dir = COORD_DEFAULT_TLS_DIR;
        snprintf(ca_buf, sizeof(ca_buf), "%s/ca.crt", dir);
        snprintf(cert_buf, sizeof(cert_buf), "%s/coordinator.crt", dir);
        snprintf(key_buf, sizeof(key_buf), "%s/coordinator.key", dir);
        ca = ca ? ca : ca_buf;
        cert = cert ? cert : cert_buf;
        key = key ? key : key_buf;
        if (!explicit && access(cert, F_OK) < 0)
                return 0;
        struct fl_tls_identity *id = NULL;
        int rv = fl_tls_identity_load(ca, cert, key, &id, err, sizeof(err));
        if (rv < 0) {
                fprintf(stderr, "faultline: TLS identity: %s\n", err);
                return explicit ? COORD_EXIT_USAGE : 0;
        }
        if (rv > 0 && !g->quiet)
                fprintf(stderr, "faultline: %s\n", err);
        tls_identity = id;
        fl_transport_set_tls(id, NULL, 0);
        return 0;
}

int main(int argc, char **argv)
{
        enum { OPT_TLS_DIR = 256, OPT_TLS_CA, OPT_TLS_CERT, OPT_TLS_KEY };
        static const struct option opts[] = {
            {"inventory", required_argument, NULL, 'i'},
            {"timeout", required_argument, NULL, 't'},
            {"quiet", no_argument, NULL, 'q'},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {"tls-dir", required_argument, NULL, OPT_TLS_DIR},
            {"tls-ca", required_argument, NULL, OPT_TLS_CA},
            {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
            {"tls-key", required_argument, NULL, OPT_TLS_KEY},
            {0},
        };
        struct global_opts g = {.timeout_ms = COORD_CALL_TIMEOUT_MS};
        int c;

        fl_log_init("faultline", LOG_WARNING);
        while ((c = getopt_long(argc, argv, "+i:t:qhV", opts, NULL)) != -1) {
                uint64_t ms;
                switch (c) {
                case 'i':
                        g.inventory = optarg;
                        break;
                case 't':
                        if (fl_parse_duration_ms(optarg, &ms) < 0 || ms < 10 || ms > 600000) {
                                fprintf(stderr,
                                        "faultline: --timeout \"%s\": expected a "
                                        "duration between 10ms and 10m\n",
                                        optarg);
                                return COORD_EXIT_USAGE;
                        }
                        g.timeout_ms = (int)ms;
                        break;
                case 'q':
                        g.quiet = true;
                        break;
                case OPT_TLS_DIR:
                        g.tls_dir = optarg;
                        break;
                case OPT_TLS_CA:
                        g.tls_ca = optarg;
                        break;
                case OPT_TLS_CERT:
                        g.tls_cert = optarg;
                        break;
                case OPT_TLS_KEY:
                        g.tls_key = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("faultline %s (protocol %d)\n", FL_VERSION, FL_PROTO_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return COORD_EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return COORD_EXIT_USAGE;
        }
        if (strcmp(argv[optind], "pki") == 0)
                return coord_pki_main(argc - optind, argv + optind);
        coord_requester_name(g.requester, sizeof(g.requester));
        if (strcmp(argv[optind], "report") != 0) {
                int trv = setup_tls(&g);
                if (trv)
                        return trv;
        }

        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        curl_global_init(CURL_GLOBAL_DEFAULT);

        static const struct {
                const char *name;
                int (*fn)(const struct global_opts *, int, char **);
        } cmds[] = {
            {"agents", cmd_agents}, {"status", cmd_status},     {"inject", cmd_inject},
            {"abort", cmd_abort},   {"validate", cmd_validate}, {"run", cmd_run},
            {"report", cmd_report},
        };
        const char *cmd = argv[optind];
        int rv = -1;
        for (size_t i = 0; i < FL_ARRAY_SIZE(cmds); i++)
                if (strcmp(cmds[i].name, cmd) == 0)
                        rv = cmds[i].fn(&g, argc - optind, argv + optind);
        if (rv < 0) {
                fprintf(stderr, "faultline: unknown command \"%s\" (see faultline --help)\n", cmd);
                rv = COORD_EXIT_USAGE;
        }
        curl_global_cleanup();
        return rv;
}
