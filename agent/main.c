/* faultline-agent: injects faults on this host on behalf of a coordinator,
 * and guarantees they are reverted — at their deadline, when the
 * coordinator's lease lapses, on SIGTERM, or at the next start after a
 * crash. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>

#include "agent.h"
#include "faults/net.h"
#include "fl_log.h"
#include "fl_parse.h"
#include "fl_transport.h"
#include "fl_util.h"

#define EXIT_USAGE       2
#define EXIT_FAILURE_SYS 4

static volatile sig_atomic_t stop_signal;
/* The signal thread uses the server until the process exits, so it lives
 * in a global: freeing it at exit could race that thread, and a global
 * keeps it reachable for LeakSanitizer. */
static struct fl_server *server;

/* SIGTERM/SIGINT are blocked in every thread and taken by this one with
 * sigwait(): it records the signal and closes the server socket, which
 * wakes the main loop out of its (otherwise unbounded) receive. So an idle
 * agent does not wake up at all, rather than polling a flag. */
static void *signal_thread(void *arg)
{
        struct fl_server *srv = arg;
        sigset_t set;
        int sig = 0;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        if (sigwait(&set, &sig) == 0) {
                stop_signal = sig;
                fl_server_shutdown(srv);
        }
        return NULL;
}

static void usage(FILE *out)
{
        fprintf(out,
                "Usage: faultline-agent [OPTIONS]\n"
                "\n"
                "Inject faults on this host on behalf of a faultline coordinator.\n"
                "\n"
                "  -l, --listen URL       control endpoint (default %s)\n"
                "  -s, --state-dir DIR    journal directory (default %s)\n"
                "  -c, --config FILE      YAML config (listen, state-dir, log-level, policy,\n"
                "                         tls, insecure, audit-log, sandbox)\n"
                "      --tls-ca FILE      fleet CA certificate (for tls+tcp://)\n"
                "      --tls-cert FILE    this agent's certificate (CN/SAN = inventory name)\n"
                "      --tls-key FILE     its private key (mode 0600)\n"
                "      --insecure         allow plain tcp:// on a non-loopback address (also\n"
                "                         FAULTLINE_AGENT_INSECURE=1); logged at every start\n"
                "      --audit-log        also append audit records to STATE-DIR/audit.log\n"
                "      --no-sandbox       skip the seccomp filter and capability drop (debugging;\n"
                "                         also FAULTLINE_AGENT_NO_SANDBOX=1)\n"
                "      --recover          revert faults left by a previous run, then exit\n"
                "  -f, --foreground       stay in the foreground (default under systemd)\n"
                "      --log-level LEVEL  debug, info, notice, warning, err (default info)\n"
                "  -h, --help             this text\n"
                "  -V, --version          print the version\n"
                "\n"
                "Command-line flags override the config file.\n"
                "Plain tcp:// is refused unless the address is loopback or --insecure is given.\n"
                "Exit status: 0 ok, 1 leftovers could not be reverted, 2 usage or config\n"
                "error, 4 system failure (cannot listen, state dir unusable).\n",
                AGENT_DEFAULT_LISTEN, AGENT_DEFAULT_STATE_DIR);
}

static bool url_is_loopback(const char *url)
{
        static const char *const local[] = {
            "tcp://127.", "tcp://localhost:", "tcp://[::1]:", "tcp4://127.", "ipc://", "inproc://"};
        for (size_t i = 0; i < FL_ARRAY_SIZE(local); i++)
                if (strncmp(url, local[i], strlen(local[i])) == 0)
                        return true;
        return false;
}

static bool url_is_tls(const char *url)
{
        return strncmp(url, "tls+tcp://", 10) == 0;
}

static bool env_true(const char *name)
{
        const char *v = getenv(name);
        return v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0 || strcmp(v, "yes") == 0);
}

/* Secure by default: tls+tcp:// needs a complete identity; plain tcp://
 * only on loopback or with an explicit insecure flag. Returns 0 or an
 * exit code (message printed). *ret_id is the loaded identity (kept for
 * the life of the process). */
static int check_transport(const struct agent_config *cfg, struct fl_tls_identity **ret_id)
{
        char err[FL_MSG_LEN];
        *ret_id = NULL;
        if (url_is_tls(cfg->listen)) {
                if (!cfg->tls.ca[0] || !cfg->tls.cert[0] || !cfg->tls.key[0]) {
                        fprintf(stderr,
                                "faultline-agent: %s needs tls.ca, tls.cert and tls.key "
                                "(or --tls-ca/--tls-cert/--tls-key); see 'faultline pki'\n",
                                cfg->listen);
                        return EXIT_USAGE;
                }
                int rv = fl_tls_identity_load(cfg->tls.ca, cfg->tls.cert, cfg->tls.key, ret_id, err,
                                              sizeof(err));
                if (rv < 0) {
                        fprintf(stderr, "faultline-agent: TLS: %s\n", err);
                        return EXIT_USAGE;
                }
                if (rv > 0)
                        fl_log(LOG_WARNING, "TLS: %s", err);
                const char *allowed[FL_TLS_MAX_SUBJECTS];
                for (size_t i = 0; i < cfg->tls.n_allowed_subjects; i++)
                        allowed[i] = cfg->tls.allowed_subjects[i];
                fl_transport_set_tls(*ret_id, allowed, cfg->tls.n_allowed_subjects);
                return 0;
        }
        if (url_is_loopback(cfg->listen))
                return 0;
        if (!cfg->insecure) {
                fprintf(stderr,
                        "faultline-agent: refusing to listen on %s without TLS: anyone who "
                        "reaches it could inject faults. Use tls+tcp:// with a certificate "
                        "('faultline pki'), a loopback address, or insecure: true / --insecure\n",
                        cfg->listen);
                return EXIT_USAGE;
        }
        return 0;
}

static int run_loop(struct agent *a, struct fl_server *srv)
{
        while (!stop_signal) {
                /* Sleep until the next fault or lease deadline; with none,
                 * until a request (or a signal) arrives. */
                int wait_ms = agent_tick(a, 3600 * 1000);
                void *buf = NULL;
                size_t len = 0;
                struct fl_peer peer;
                int rv = fl_server_recv_peer(srv, &buf, &len, &peer, wait_ms);
                if (rv < 0) {
                        if (rv == -EBADF)
                                return stop_signal ? 0 : rv;
                        fl_log(LOG_WARNING, "receive failed: %s", strerror(-rv));
                        continue;
                }
                if (rv == 0)
                        continue;
                void *out = NULL;
                size_t out_len = 0;
                rv = agent_serve_frame_peer(a, &peer, buf, len, &out, &out_len);
                free(buf);
                if (rv == 0) {
                        int sr = fl_server_send(srv, out, out_len);
                        if (sr < 0)
                                fl_log(LOG_WARNING, "reply send failed: %s", strerror(-sr));
                }
                free(out);
        }
        return 0;
}

/* Exemptions for network faults: the control port and the policy's list. */
static void set_net_policy(const struct agent_config *cfg)
{
        struct agent_net_policy np = {0};
        const char *colon = strrchr(cfg->listen, ':');
        uint64_t port = 0;
        if (colon && strncmp(cfg->listen, "ipc://", 6) != 0 &&
            fl_parse_u64(colon + 1, &port) == 0 && port <= 65535)
                np.control_port = (uint16_t)port;
        for (size_t i = 0; i < cfg->policy.n_protected_ports && i < NET_MAX_PROTECTED; i++)
                np.ports[np.n_ports++] = cfg->policy.protected_ports[i];
        for (size_t i = 0; i < cfg->policy.n_protected_cidrs && i < NET_MAX_PROTECTED; i++) {
                char err[FL_MSG_LEN];
                size_t n = 0;
                if (net_parse_cidrs("protected-cidrs", cfg->policy.protected_cidrs[i],
                                    &np.cidrs[np.n_cidrs], 1, &n, err, sizeof(err)) == 0)
                        np.n_cidrs += n;
        }
        agent_net_policy_set(&np);
}

int main(int argc, char **argv)
{
        enum {
                OPT_RECOVER = 256,
                OPT_LOG_LEVEL,
                OPT_TLS_CA,
                OPT_TLS_CERT,
                OPT_TLS_KEY,
                OPT_INSECURE,
                OPT_AUDIT_LOG,
                OPT_NO_SANDBOX,
        };
        static const struct option opts[] = {
            {"listen", required_argument, NULL, 'l'},
            {"state-dir", required_argument, NULL, 's'},
            {"config", required_argument, NULL, 'c'},
            {"recover", no_argument, NULL, OPT_RECOVER},
            {"foreground", no_argument, NULL, 'f'},
            {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
            {"tls-ca", required_argument, NULL, OPT_TLS_CA},
            {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
            {"tls-key", required_argument, NULL, OPT_TLS_KEY},
            {"insecure", no_argument, NULL, OPT_INSECURE},
            {"audit-log", no_argument, NULL, OPT_AUDIT_LOG},
            {"no-sandbox", no_argument, NULL, OPT_NO_SANDBOX},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {0},
        };
        const char *listen = NULL, *state_dir = NULL, *config = NULL, *level = NULL;
        const char *tls_ca = NULL, *tls_cert = NULL, *tls_key = NULL;
        bool recover_only = false, foreground = false, insecure = false, audit_log = false;
        bool no_sandbox = false;
        int c;

        fl_log_init("faultline-agent", LOG_INFO);
        while ((c = getopt_long(argc, argv, "l:s:c:fhV", opts, NULL)) != -1) {
                switch (c) {
                case 'l':
                        listen = optarg;
                        break;
                case 's':
                        state_dir = optarg;
                        break;
                case 'c':
                        config = optarg;
                        break;
                case OPT_RECOVER:
                        recover_only = true;
                        break;
                case 'f':
                        foreground = true;
                        break;
                case OPT_LOG_LEVEL:
                        level = optarg;
                        break;
                case OPT_TLS_CA:
                        tls_ca = optarg;
                        break;
                case OPT_TLS_CERT:
                        tls_cert = optarg;
                        break;
                case OPT_TLS_KEY:
                        tls_key = optarg;
                        break;
                case OPT_INSECURE:
                        insecure = true;
                        break;
                case OPT_AUDIT_LOG:
                        audit_log = true;
                        break;
                case OPT_NO_SANDBOX:
                        no_sandbox = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'V':
                        printf("faultline-agent %s (protocol %d)\n", FL_VERSION, FL_PROTO_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "faultline-agent: unexpected argument \"%s\"\n", argv[optind]);
                return EXIT_USAGE;
        }

        struct agent_config cfg;
        char err[FL_MSG_LEN];
        agent_config_defaults(&cfg);
        if (config && agent_config_load(config, &cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "faultline-agent: config: %s\n", err);
                return EXIT_USAGE;
        }
        if (listen && fl_strlcpy(cfg.listen, listen, sizeof(cfg.listen)) < 0) {
                fprintf(stderr, "faultline-agent: --listen: URL too long\n");
                return EXIT_USAGE;
        }
        if (state_dir && (state_dir[0] != '/' ||
                          fl_strlcpy(cfg.state_dir, state_dir, sizeof(cfg.state_dir)) < 0)) {
                fprintf(stderr, "faultline-agent: --state-dir must be an absolute path\n");
                return EXIT_USAGE;
        }
        if (level) {
                int l = fl_log_level_from_string(level);
                if (l < 0) {
                        fprintf(stderr,
                                "faultline-agent: --log-level \"%s\": use debug, info, notice, "
                                "warning or err\n",
                                level);
                        return EXIT_USAGE;
                }
                cfg.log_level = l;
        }
        fl_log_set_level(cfg.log_level);
        const struct {
                const char *flag, *name;
                char *dst;
        } tls_flags[] = {{tls_ca, "--tls-ca", cfg.tls.ca},
                         {tls_cert, "--tls-cert", cfg.tls.cert},
                         {tls_key, "--tls-key", cfg.tls.key}};
        for (size_t i = 0; i < FL_ARRAY_SIZE(tls_flags); i++) {
                if (tls_flags[i].flag &&
                    fl_strlcpy(tls_flags[i].dst, tls_flags[i].flag, FL_VAL_LEN) < 0) {
                        fprintf(stderr, "faultline-agent: %s: path too long\n", tls_flags[i].name);
                        return EXIT_USAGE;
                }
        }
        if (insecure || env_true("FAULTLINE_AGENT_INSECURE"))
                cfg.insecure = true;
        if (audit_log)
                cfg.audit_log = true;
        if (no_sandbox || env_true("FAULTLINE_AGENT_NO_SANDBOX"))
                cfg.sandbox = false;
        struct fl_tls_identity *tls_id = NULL;
        if (!recover_only) {
                int trv = check_transport(&cfg, &tls_id);
                if (trv)
                        return trv;
        }

        if (!foreground && !recover_only && getenv("INVOCATION_ID") == NULL) {
                /* Classic daemon when started by hand; systemd sets
                 * INVOCATION_ID and wants us in the foreground. */
                if (daemon(0, 1) < 0) {
                        fl_log(LOG_ERR, "daemon: %s", strerror(errno));
                        return EXIT_FAILURE_SYS;
                }
        }

        agent_protect_pid(getpid());
        agent_protect_pid(getppid());
        for (size_t i = 0; i < cfg.policy.n_protected_names; i++)
                agent_protect_name(cfg.policy.protected_names[i]);

        /* Block the stop signals before any thread exists (nng starts its
         * own), so only signal_thread ever takes them. */
        sigset_t stop_set;
        sigemptyset(&stop_set);
        sigaddset(&stop_set, SIGTERM);
        sigaddset(&stop_set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
        signal(SIGPIPE, SIG_IGN);
        set_net_policy(&cfg);

        if (agent_journal_init(cfg.state_dir, err, sizeof(err)) < 0) {
                fl_log(LOG_ERR, "%s", err);
                return EXIT_FAILURE_SYS;
        }
        if (cfg.audit_log && agent_audit_open(cfg.state_dir, err, sizeof(err)) < 0) {
                fl_log(LOG_ERR, "%s", err);
                return EXIT_FAILURE_SYS;
        }
        struct agent *a = NULL;
        if (agent_new(&cfg, &a) < 0) {
                fl_log(LOG_ERR, "out of memory");
                return EXIT_FAILURE_SYS;
        }
        /* Leftovers from a crash are reverted before anyone can talk to us. */
        int leftovers = agent_recover(a);
        if (recover_only) {
                agent_free(a);
                return leftovers ? 1 : 0;
        }

        if (!url_is_tls(cfg.listen) && !url_is_loopback(cfg.listen))
                fl_log(LOG_WARNING,
                       "INSECURE: listening on %s without TLS (insecure: true): any host that "
                       "reaches this port can inject faults; use tls+tcp:// or a loopback address",
                       cfg.listen);
        /* Least privilege, step 1: before nng starts its threads, so they
         * inherit the reduced capability sets. */
        if (cfg.sandbox && agent_sandbox_drop_privileges(err, sizeof(err)) < 0) {
                fl_log(LOG_ERR, "sandbox: %s (--no-sandbox to run without it)", err);
                agent_free(a);
                return EXIT_FAILURE_SYS;
        }
        int rv = fl_server_open(cfg.listen, &server);
        struct fl_server *srv = server;
        if (rv < 0) {
                fl_log(LOG_ERR, "cannot listen on %s: %s", cfg.listen, strerror(-rv));
                agent_free(a);
                return EXIT_FAILURE_SYS;
        }
        fl_log(LOG_NOTICE, "listening on %s state-dir=%s lease-timeout=%llums max-duration=%llums",
               cfg.listen, cfg.state_dir, (unsigned long long)cfg.policy.max_lease_ms,
               (unsigned long long)cfg.policy.max_duration_ms);
        if (tls_id)
                fl_log(LOG_NOTICE, "TLS: certificate \"%s\", clients need a certificate from %s%s",
                       fl_tls_identity_name(tls_id), cfg.tls.ca,
                       cfg.tls.n_allowed_subjects ? " named in tls.allowed-subjects" : "");

        pthread_t sig_thread;
        if ((rv = pthread_create(&sig_thread, NULL, signal_thread, srv)) != 0) {
                fl_log(LOG_ERR, "cannot start the signal thread: %s", strerror(rv));
                fl_server_close(srv);
                agent_free(a);
                return EXIT_FAILURE_SYS;
        }
        pthread_detach(sig_thread);
        /* Step 2: set-up is over; from here on the allow-list holds. */
        if (cfg.sandbox) {
                if (agent_sandbox_install_filter(err, sizeof(err)) < 0) {
                        fl_log(LOG_ERR, "sandbox: %s (--no-sandbox to run without it)", err);
                        fl_server_shutdown(srv);
                        agent_free(a);
                        return EXIT_FAILURE_SYS;
                }
                fl_log(LOG_INFO, "sandbox: capabilities reduced, no-new-privs, seccomp allow-list "
                                 "installed");
        } else {
                fl_log(LOG_WARNING, "sandbox disabled: no seccomp filter, full capabilities");
        }
        rv = run_loop(a, srv);
        /* Close the socket but keep srv itself: the signal thread may still
         * hold it. */
        fl_server_shutdown(srv);
        size_t before = agent_active_count(a);
        int n = agent_revert_all(a, stop_signal ? "agent-stopping" : "agent-exiting");
        fl_log(LOG_NOTICE, "stopping on signal %d: reverted %d of %zu fault(s)", (int)stop_signal,
               n, before);
        bool clean = agent_active_count(a) == 0;
        agent_free(a);
        return rv < 0 ? EXIT_FAILURE_SYS : clean ? 0 : 1;
}
