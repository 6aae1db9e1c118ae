/* Probe execution: HTTP via libcurl's easy interface, commands via
 * fork + execve. See probe.h for the contract.
 *
 * Everything a probe needs is prepared before fork() (program path, argv,
 * envp, fds) because the child of a multi-threaded process may only call
 * async-signal-safe functions until execve. */
#include "probe.h"

#include <curl/curl.h>
#include <errno.h>
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

/* ---- HTTP ------------------------------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
        outbuf_put(ud, ptr, size * nmemb);
        return size * nmemb; /* keep reading past the cap; just drop it */
}

static void curl_cleanupp(CURL **c)
{
        if (*c)
                curl_easy_cleanup(*c);
}

static void slist_freep(struct curl_slist **l)
{
        curl_slist_free_all(*l);
}

static int run_http(const struct coord_probe *p, struct coord_probe_result *res)
{
        const struct coord_http_probe *h = &p->http;
        regex_t rxs;
        __attribute__((cleanup(regfreep))) regex_t *rx = NULL;
        __attribute__((cleanup(curl_cleanupp))) CURL *c = NULL;
        __attribute__((cleanup(slist_freep))) struct curl_slist *hdrs = NULL;
        _cleanup_free_ char *data = NULL;
        char errbuf[CURL_ERROR_SIZE] = "";
        int r;

        if (!h->url) {
                snprintf(res->detail, sizeof(res->detail), "http probe without url");
                return -EINVAL;
        }
        r = compile(p->expect.body_regex, &rxs, &rx, res);
        if (r < 0)
                return r;
        data = malloc(COORD_PROBE_OUTPUT_MAX + 1);
        c = curl_easy_init();
        if (!data || !c)
                goto nomem;
        data[0] = 0;
        struct outbuf body = {.data = data};

        for (size_t i = 0; i < h->n_headers; i++) {
                _cleanup_free_ char *line = NULL;
                if (asprintf(&line, "%s: %s", h->headers[i].key, h->headers[i].value) < 0)
                        goto nomem;
                struct curl_slist *n = curl_slist_append(hdrs, line);
                if (!n)
                        goto nomem;
                hdrs = n;
        }
        const char *method = h->method ? h->method : "GET";
        uint64_t timeout = h->timeout_ms ? h->timeout_ms : COORD_PROBE_HTTP_TIMEOUT_MS;

        /* Option failures here can only be out-of-memory or a libcurl
         * built without http: both show up as a perform error below. */
        curl_easy_setopt(c, CURLOPT_URL, h->url);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L); /* no SIGALRM: we run in threads */
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(c, CURLOPT_PROXY, ""); /* ignore http_proxy & co */
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "faultline-probe/" FL_VERSION);
        if (hdrs)
                curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
        if (h->body) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(h->body));
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, h->body);
        }
        if (!strcmp(method, "HEAD"))
                curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        else if (strcmp(method, "GET") || h->body)
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);

        uint64_t t0 = fl_now_mono_us();
        CURLcode cr = curl_easy_perform(c);
        res->latency_us = fl_now_mono_us() - t0;

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
                        fmt_ms(timeout, tb, sizeof(tb));
                        res->timed_out = true;
                        snprintf(res->detail, sizeof(res->detail), "timeout after %s", tb);
                        break;
                case CURLE_COULDNT_CONNECT:
                        curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &oserr);
                        if (oserr == ECONNREFUSED)
                                snprintf(res->detail, sizeof(res->detail), "connection refused");
                        else
                                snprintf(res->detail, sizeof(res->detail), "cannot connect: %.200s",
                                         oserr ? strerror((int)oserr) : errbuf);
                        break;
                case CURLE_OUT_OF_MEMORY:
                        goto nomem;
                default:
                        snprintf(res->detail, sizeof(res->detail), "http error: %.200s",
                                 errbuf[0] ? errbuf : curl_easy_strerror(cr));
                        break;
                }
                return 0;
        }

        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        int want = p->expect.status ? p->expect.status : 200;
        res->value = (double)status;
        res->ok = status == want;
        if (res->ok)
                snprintf(res->detail, sizeof(res->detail), "status %ld in %.1f ms", status, lat_ms);
        else
                snprintf(res->detail, sizeof(res->detail), "status %ld (expected %d) in %.1f ms",
                         status, want, lat_ms);
        check_latency(p, res);
        check_regex(rx, p->expect.body_regex, &body, "body", res);
        return 0;

nomem:
        snprintf(res->detail, sizeof(res->detail), "out of memory");
        return -ENOMEM;
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

static void strv_free_shallow(char ***v)
{
        free(*v);
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

static int run_command(const struct coord_probe *p, struct coord_probe_result *res)
{
        const struct coord_command_probe *cmd = &p->command;
        regex_t rxs;
        __attribute__((cleanup(regfreep))) regex_t *rx = NULL;
        __attribute__((cleanup(strv_free_shallow))) char **argv = NULL;
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
                argv[i] = cmd->argv[i];
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
        memset(ret, 0, sizeof(*ret));
        ret->started_wall_ms = fl_now_wall_ms();
        switch (spec->kind) {
        case COORD_PROBE_HTTP:
                return run_http(spec, ret);
        case COORD_PROBE_COMMAND:
                return run_command(spec, ret);
        }
        snprintf(ret->detail, sizeof(ret->detail), "unknown probe kind %d", (int)spec->kind);
        return -EINVAL;
}
