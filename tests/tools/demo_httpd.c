/* fl-demo-httpd: the "service under test" of the demo and the host-lane
 * tests. A deliberately small HTTP/1.0 server: one process, one request at
 * a time, so pausing or killing it has an immediate, visible effect.
 *
 *   fl-demo-httpd ADDRESS PORT [PIDFILE]
 *
 * GET /        -> 200 "hello from <hostname>\n"
 * GET /health  -> 200 {"status":"ok"}
 * anything else -> 404 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
        (void)sig;
        stop = 1;
}

static void respond(int fd, const char *status, const char *type, const char *body)
{
        char buf[1024];
        int n = snprintf(buf, sizeof(buf),
                         "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\n\r\n%s",
                         status, type, strlen(body), body);
        if (n > 0 && write(fd, buf, (size_t)n) < 0)
                perror("write");
}

static void serve(int fd)
{
        char req[4096];
        size_t len = 0;
        struct timeval tv = {.tv_sec = 2};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        while (len < sizeof(req) - 1) {
                ssize_t n = read(fd, req + len, sizeof(req) - 1 - len);
                if (n <= 0)
                        return;
                len += (size_t)n;
                req[len] = 0;
                if (strstr(req, "\r\n\r\n"))
                        break;
        }
        char host[128] = "?", body[256];
        gethostname(host, sizeof(host) - 1);
        if (strncmp(req, "GET /health ", 12) == 0) {
                respond(fd, "200 OK", "application/json", "{\"status\":\"ok\"}\n");
        } else if (strncmp(req, "GET / ", 6) == 0) {
                snprintf(body, sizeof(body), "hello from %s\n", host);
                respond(fd, "200 OK", "text/plain", body);
        } else {
                respond(fd, "404 Not Found", "text/plain", "not found\n");
        }
}

int main(int argc, char **argv)
{
        if (argc < 3) {
                fprintf(stderr, "usage: %s ADDRESS PORT [PIDFILE]\n", argv[0]);
                return 2;
        }
        struct sockaddr_in sin = {.sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)atoi(argv[2]))};
        if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1) {
                fprintf(stderr, "%s: bad IPv4 address %s\n", argv[0], argv[1]);
                return 2;
        }
        int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (ls < 0 || bind(ls, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(ls, 64) < 0) {
                perror("listen");
                return 1;
        }
        if (argc > 3) {
                FILE *f = fopen(argv[3], "w");
                if (f) {
                        fprintf(f, "%d\n", getpid());
                        fclose(f);
                }
        }
        struct sigaction sa = {.sa_handler = on_signal};
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        while (!stop) {
                int fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("accept");
                        return 1;
                }
                serve(fd);
                close(fd);
        }
        close(ls);
        return 0;
}
