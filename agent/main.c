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
                "  -c, --config FILE      YAML config (listen, state-dir, log-level, policy)\n"
                "      --recover          revert faults left by a previous run, then exit\n"
                "  -f, --foreground       stay in the foreground (default under systemd)\n"
                "      --log-level LEVEL  debug, info, notice, warning, err (default info)\n"
                "  -h, --help             this text\n"
                "  -V, --version          print the version\n"
                "\n"
                "Command-line flags override the config file.\n"
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

static int run_loop(struct agent *a, struct fl_server *srv)
{
        while (!stop_signal) {
                /* Sleep until the next fault or lease deadline; with none,
                 * until a request (or a signal) arrives. */
                int wait_ms = agent_tick(a, 3600 * 1000);
                void *buf = NULL;
                size_t len = 0;
                int rv = fl_server_recv(srv, &buf, &len, wait_ms);
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
                rv = agent_serve_frame(a, buf, len, &out, &out_len);
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
        if (colon && strncmp(cfg->listen, "ipc://", 6) != 0 && fl_parse_u64(colon + 1, &port) == 0 &&
            port <= 65535)
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
        enum { OPT_RECOVER = 256, OPT_LOG_LEVEL };
        static const struct option opts[] = {
            {"listen", required_argument, NULL, 'l'},
            {"state-dir", required_argument, NULL, 's'},
            {"config", required_argument, NULL, 'c'},
            {"recover", no_argument, NULL, OPT_RECOVER},
            {"foreground", no_argument, NULL, 'f'},
            {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
            {"help", no_argument, NULL, 'h'},
            {"version", no_argument, NULL, 'V'},
            {0},
        };
        const char *listen = NULL, *state_dir = NULL, *config = NULL, *level = NULL;
        bool recover_only = false, foreground = false;
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

        if (!url_is_loopback(cfg.listen))
                fl_log(LOG_WARNING,
                       "listening on %s without TLS: any host that reaches this port can inject "
                       "faults; use tls+tcp:// or a loopback address",
                       cfg.listen);
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

        pthread_t sig_thread;
        if ((rv = pthread_create(&sig_thread, NULL, signal_thread, srv)) != 0) {
                fl_log(LOG_ERR, "cannot start the signal thread: %s", strerror(rv));
                fl_server_close(srv);
                agent_free(a);
                return EXIT_FAILURE_SYS;
        }
        pthread_detach(sig_thread);
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
