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
#include "run.h"

volatile sig_atomic_t coord_interrupted;

struct global_opts {
        const char *inventory;
        int timeout_ms;
        bool quiet;
        char requester[FL_NAME_LEN];
};

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
            "  run FILE [--journal F] [--dry-run]\n"
            "                               execute a game day\n"
            "\n"
            "Global options:\n"
            "  -i, --inventory FILE   agents file (default: $FAULTLINE_INVENTORY,\n"
            "                         ./inventory.yaml, /etc/faultline/inventory.yaml)\n"
            "  -t, --timeout D        per-call timeout (default 5s)\n"
            "  -q, --quiet            only the verdict and errors (for cron)\n"
            "  -h, --help             this text\n"
            "  -V, --version          print the version\n"
            "\n"
            "Exit status:\n"
            "  0  success; for run: the steady-state hypothesis held\n"
            "  1  run: the hypothesis deviated\n"
            "  2  bad usage or invalid input (file, flag, fault parameter)\n"
            "  3  run: aborted (guardrail breach or Ctrl-C)\n"
            "  4  agent or system failure (unreachable agent, failed apply or revert)\n");
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

/* ---- agents ----------------------------------------------------------- */

static int cmd_agents(const struct global_opts *g, int argc, char **argv)
{
        if (argc > 1) {
                fprintf(stderr, "faultline agents: unexpected argument \"%s\"\n", argv[1]);
                return COORD_EXIT_USAGE;
        }
        struct coord_inventory inv = {0};
        if (load_inventory(g, &inv) < 0)
                return COORD_EXIT_USAGE;
        _cleanup_free_ const struct coord_agent **agents =
            calloc(inv.n_agents ? inv.n_agents : 1, sizeof(*agents));
        for (size_t i = 0; agents && i < inv.n_agents; i++)
                agents[i] = &inv.agents[i];
        struct coord_fleet fleet;
        int rv = agents ? coord_fleet_open(&fleet, agents, inv.n_agents) : -ENOMEM;
        if (rv < 0) {
                fprintf(stderr, "faultline: %s\n", strerror(-rv));
                coord_inventory_free(&inv);
                return COORD_EXIT_FAILURE;
        }
        struct fl_request req = {.type = FL_MSG_HELLO};
        snprintf(req.requester, sizeof(req.requester), "%s", g->requester);
        struct fl_reply *replies = calloc(fleet.n + 1, sizeof(*replies));
        int *rcs = calloc(fleet.n + 1, sizeof(*rcs));
        int down = 0;
        if (!replies || !rcs) {
                free(replies);
                free(rcs);
                coord_fleet_close(&fleet);
                coord_inventory_free(&inv);
                return COORD_EXIT_FAILURE;
        }
        coord_fleet_broadcast(&fleet, &req, replies, rcs, g->timeout_ms);
        printf("%-16s %-28s %-6s %-8s %-16s %-6s %s\n", "NAME", "ADDRESS", "STATE", "VERSION",
               "HOST", "FAULTS", "CAPABILITIES");
        for (size_t i = 0; i < fleet.n; i++) {
                const struct coord_agent *a = fleet.m[i].agent;
                if (rcs[i] < 0 || replies[i].status != FL_ST_OK) {
                        down++;
                        printf("%-16s %-28s %-6s %-8s %-16s %-6s %s\n", a->name, a->address, "DOWN",
                               "-", "-", "-",
                               rcs[i] < 0 ? coord_call_error(rcs[i]) : replies[i].msg);
                        fl_reply_free(&replies[i]);
                        continue;
                }
                char caps[1024] = "";
                for (size_t c = 0; c < replies[i].n_caps; c++) {
                        const struct fl_cap *cap = &replies[i].caps[c];
                        size_t len = strlen(caps);
                        if (cap->available)
                                snprintf(caps + len, sizeof(caps) - len, "%s%s", c ? " " : "",
                                         cap->kind);
                        else
                                snprintf(caps + len, sizeof(caps) - len, "%s%s(unavailable: %s)",
                                         c ? " " : "", cap->kind, cap->reason);
                }
                printf("%-16s %-28s %-6s %-8s %-16s %-6u %s\n", a->name, a->address, "ok",
                       replies[i].agent_version, replies[i].hostname, replies[i].count, caps);
                fl_reply_free(&replies[i]);
        }
        free(replies);
        free(rcs);
        coord_fleet_close(&fleet);
        coord_inventory_free(&inv);
        return down ? COORD_EXIT_FAILURE : 0;
}

/* ---- status ------------------------------------------------------------ */

static int open_all(const struct global_opts *g, struct coord_inventory *inv,
                    struct coord_fleet *fleet)
{
        if (load_inventory(g, inv) < 0)
                return COORD_EXIT_USAGE;
        _cleanup_free_ const struct coord_agent **agents =
            calloc(inv->n_agents ? inv->n_agents : 1, sizeof(*agents));
        if (!agents)
                return COORD_EXIT_FAILURE;
        for (size_t i = 0; i < inv->n_agents; i++)
                agents[i] = &inv->agents[i];
        int rv = coord_fleet_open(fleet, agents, inv->n_agents);
        if (rv < 0) {
                fprintf(stderr, "faultline: %s\n", strerror(-rv));
                coord_inventory_free(inv);
                return COORD_EXIT_FAILURE;
        }
        return 0;
}

static int cmd_status(const struct global_opts *g, int argc, char **argv)
{
        if (argc > 1) {
                fprintf(stderr, "faultline status: unexpected argument \"%s\"\n", argv[1]);
                return COORD_EXIT_USAGE;
        }
        struct coord_inventory inv = {0};
        struct coord_fleet fleet = {0};
        int rv = open_all(g, &inv, &fleet);
        if (rv)
                return rv;
        struct fl_request req = {.type = FL_MSG_LIST};
        snprintf(req.requester, sizeof(req.requester), "%s", g->requester);
        struct fl_reply *replies = calloc(fleet.n + 1, sizeof(*replies));
        int *rcs = calloc(fleet.n + 1, sizeof(*rcs));
        int failed = 0, total = 0;
        if (replies && rcs)
                coord_fleet_broadcast(&fleet, &req, replies, rcs, g->timeout_ms);
        printf("%-16s %-20s %-14s %-8s %-10s %-20s %s\n", "AGENT", "FAULT", "KIND", "BACKEND",
               "REMAINING", "LEASE", "TARGET");
        uint64_t now = fl_now_wall_ms();
        for (size_t i = 0; replies && rcs && i < fleet.n; i++) {
                const char *name = fleet.m[i].agent->name;
                if (rcs[i] < 0 || replies[i].status != FL_ST_OK) {
                        failed++;
                        fprintf(stderr, "faultline: %s: %s\n", name,
                                rcs[i] < 0 ? coord_call_error(rcs[i]) : replies[i].msg);
                        fl_reply_free(&replies[i]);
                        continue;
                }
                for (size_t f = 0; f < replies[i].n_faults; f++) {
                        const struct fl_fault_info *fi = &replies[i].faults[f];
                        char rem[32];
                        fl_format_duration(fi->expires_ms > now ? fi->expires_ms - now : 0, rem,
                                           sizeof(rem));
                        printf("%-16s %-20s %-14s %-8s %-10s %-20s %s\n", name, fi->id, fi->kind,
                               fi->backend, rem, fi->lease, fi->target);
                        total++;
                }
                fl_reply_free(&replies[i]);
        }
        if (!g->quiet)
                printf("%d active fault(s) on %zu agent(s)%s\n", total, fleet.n - (size_t)failed,
                       failed ? ", some agents unreachable" : "");
        free(replies);
        free(rcs);
        coord_fleet_close(&fleet);
        coord_inventory_free(&inv);
        return failed ? COORD_EXIT_FAILURE : 0;
}

/* ---- abort --------------------------------------------------------------- */

static int cmd_abort(const struct global_opts *g, int argc, char **argv)
{
        static const struct option opts[] = {{"lease", required_argument, NULL, 'l'}, {0}};
        const char *lease = NULL;
        int c;
        optind = 0; /* 0: make GNU getopt re-read its mode (permute) */
        while ((c = getopt_long(argc, argv, "l:", opts, NULL)) != -1) {
                if (c != 'l')
                        return COORD_EXIT_USAGE;
                lease = optarg;
        }
        if (optind < argc) {
                fprintf(stderr, "faultline abort: unexpected argument \"%s\"\n", argv[optind]);
                return COORD_EXIT_USAGE;
        }
        if (lease && strlen(lease) >= FL_ID_LEN) {
                fprintf(stderr, "faultline abort: --lease: id too long\n");
                return COORD_EXIT_USAGE;
        }
        struct coord_inventory inv = {0};
        struct coord_fleet fleet = {0};
        int rv = open_all(g, &inv, &fleet);
        if (rv)
                return rv;
        struct fl_request req = {.type = FL_MSG_ABORT};
        snprintf(req.requester, sizeof(req.requester), "%s", g->requester);
        if (lease)
                snprintf(req.lease, sizeof(req.lease), "%s", lease);
        struct fl_reply *replies = calloc(fleet.n + 1, sizeof(*replies));
        int *rcs = calloc(fleet.n + 1, sizeof(*rcs));
        int failed = 0;
        unsigned total = 0;
        uint64_t t0 = fl_now_mono_us();
        if (replies && rcs)
                coord_fleet_broadcast(&fleet, &req, replies, rcs, g->timeout_ms);
        uint64_t elapsed = fl_now_mono_us() - t0;
        for (size_t i = 0; replies && rcs && i < fleet.n; i++) {
                const char *name = fleet.m[i].agent->name;
                if (rcs[i] < 0 || replies[i].status != FL_ST_OK) {
                        failed++;
                        fprintf(stderr, "faultline: abort on %s FAILED: %s\n", name,
                                rcs[i] < 0 ? coord_call_error(rcs[i]) : replies[i].msg);
                } else {
                        total += replies[i].count;
                        if (!g->quiet)
                                printf("%-16s %u fault(s) reverted\n", name, replies[i].count);
                }
                fl_reply_free(&replies[i]);
        }
        printf("abort: %u fault(s) reverted on %zu agent(s) in %.1f ms%s\n", total,
               fleet.n - (size_t)failed, (double)elapsed / 1000.0,
               failed ? "; SOME AGENTS DID NOT CONFIRM" : "");
        free(replies);
        free(rcs);
        coord_fleet_close(&fleet);
        coord_inventory_free(&inv);
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
                fprintf(stderr, "faultline inject: %s\n", strerror(-rv));
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
                        fprintf(stderr, "%s: FAILED: %s\n", name, coord_call_error(rcs[i]));
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
        if (coord_interrupted) {
                for (size_t i = 0; i < fleet.n; i++) {
                        if (!ids[i][0])
                                continue;
                        struct fl_request rq = {.type = FL_MSG_REVERT};
                        struct fl_reply rp;
                        snprintf(rq.fault_id, sizeof(rq.fault_id), "%s", ids[i]);
                        snprintf(rq.requester, sizeof(rq.requester), "%s", g->requester);
                        int r = fl_conn_call(fleet.m[i].conn, &rq, &rp, g->timeout_ms);
                        if (r < 0 || rp.status != FL_ST_OK) {
                                fprintf(stderr, "%s: revert of %s: %s (lease lapses in %llums)\n",
                                        fleet.m[i].agent->name, ids[i],
                                        r < 0 ? coord_call_error(r) : rp.msg,
                                        (unsigned long long)ttl);
                                exit_code = COORD_EXIT_FAILURE;
                        } else {
                                printf("%s: reverted %s (interrupted)\n", fleet.m[i].agent->name,
                                       ids[i]);
                        }
                        if (r == 0)
                                fl_reply_free(&rp);
                }
        } else {
                printf("duration elapsed: agents reverted the fault(s) at their deadline\n");
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
        static const struct option opts[] = {
            {"journal", required_argument, NULL, 'j'}, {"dry-run", no_argument, NULL, 'n'}, {0}};
        struct coord_run_opts o = {.quiet = g->quiet,
                                   .inventory_override = g->inventory,
                                   .call_timeout_ms = g->timeout_ms,
                                   .requester = g->requester};
        int c;
        optind = 0; /* 0: make GNU getopt re-read its mode (permute) */
        while ((c = getopt_long(argc, argv, "j:n", opts, NULL)) != -1) {
                if (c == 'j')
                        o.journal_path = optarg;
                else if (c == 'n')
                        o.dry_run = true;
                else
                        return COORD_EXIT_USAGE;
        }
        if (argc - optind != 1) {
                fprintf(stderr, "Usage: faultline run FILE [--journal FILE] [--dry-run]\n");
                return COORD_EXIT_USAGE;
        }
        return coord_run(argv[optind], &o);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
            {"inventory", required_argument, NULL, 'i'}, {"timeout", required_argument, NULL, 't'},
            {"quiet", no_argument, NULL, 'q'},           {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},         {0},
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
        coord_requester_name(g.requester, sizeof(g.requester));

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
