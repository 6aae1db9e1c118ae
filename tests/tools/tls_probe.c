/* fl-tls-probe: a TLS client for tests of refusal, and the TLS figures in
 * docs/BENCHMARKS.md. Not part of the product.
 *
 *   fl-tls-probe URL NAME CA [CERT KEY]
 *        one blocking dial with nng's own TLS engine (so no faultline code
 *        decides anything on the client side), then a HELLO. Without CERT
 *        and KEY the client presents no certificate at all. Prints
 *        "status=NAME msg=TEXT" (exit 0), "dial: ERROR" (exit 5) or
 *        "no-reply: ERROR" (exit 4).
 *   fl-tls-probe --bench N URL NAME CA CERT KEY
 *        through the product's transport (fl_conn): N fresh connections
 *        (open + first HELLO = setup time), then N HELLO round trips on one
 *        connection; prints median and p99 of each in microseconds. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_tls.h"
#include "fl_transport.h"
#include "fl_util.h"
#include "fl_wire.h"

static char *slurp(const char *path)
{
        FILE *f = fopen(path, "re");
        if (!f)
                return NULL;
        char *buf = calloc(1, 65537);
        size_t n = buf ? fread(buf, 1, 65536, f) : 0;
        fclose(f);
        if (buf)
                buf[n] = 0;
        return buf;
}

static int probe(int argc, char **argv)
{
        const char *url = argv[1], *name = argv[2];
        _cleanup_free_ char *ca = slurp(argv[3]);
        _cleanup_free_ char *cert = argc > 5 ? slurp(argv[4]) : NULL;
        _cleanup_free_ char *key = argc > 5 ? slurp(argv[5]) : NULL;
        _cleanup_free_ void *buf = NULL;
        nng_tls_config *cfg = NULL;
        nng_socket s = NNG_SOCKET_INITIALIZER;
        nng_dialer d;
        nng_msg *m = NULL;
        int rv, code = 2;
        if (!ca || (argc > 5 && (!cert || !key))) {
                fprintf(stderr, "cannot read the PEM files\n");
                return 2;
        }
        if ((rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT)) != 0 ||
            (rv = nng_tls_config_ca_chain(cfg, ca, NULL)) != 0 ||
            (rv = nng_tls_config_server_name(cfg, name)) != 0 ||
            (rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
            (cert && (rv = nng_tls_config_own_cert(cfg, cert, key, NULL)) != 0)) {
                fprintf(stderr, "tls config: %s\n", nng_strerror(rv));
                goto out;
        }
        if ((rv = nng_req0_open(&s)) != 0 || (rv = nng_dialer_create(&d, s, url)) != 0 ||
            (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg)) != 0) {
                fprintf(stderr, "socket: %s\n", nng_strerror(rv));
                goto out;
        }
        if ((rv = nng_dialer_start(d, 0)) != 0) {
                printf("dial: %s (nng %d)\n", nng_strerror(rv), rv);
                code = 5;
                goto out;
        }
        struct fl_request req = {.version = FL_PROTO_VERSION, .type = FL_MSG_HELLO, .seq = 1};
        size_t len = 0;
        if (fl_request_encode(&req, &buf, &len) < 0)
                goto out;
        nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 2000);
        nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 2000);
        if ((rv = nng_send(s, buf, len, 0)) != 0 || (rv = nng_recvmsg(s, &m, 0)) != 0) {
                printf("no-reply: %s\n", nng_strerror(rv));
                code = 4;
                goto out;
        }
        struct fl_reply rep;
        char err[FL_MSG_LEN];
        if (fl_reply_decode(nng_msg_body(m), nng_msg_len(m), &rep, err, sizeof(err)) < 0) {
                printf("reply-undecodable: %s\n", err);
                code = 3;
        } else {
                printf("status=%s msg=%s\n", fl_status_name(rep.status), rep.msg);
                code = 0;
        }
        fl_reply_free(&rep);
out:
        if (m)
                nng_msg_free(m);
        nng_close(s);
        if (cfg)
                nng_tls_config_free(cfg);
        return code;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *v, size_t n)
{
        qsort(v, n, sizeof(*v), cmp_u64);
        printf("%s n=%zu median_us=%llu p99_us=%llu\n", what, n, (unsigned long long)v[n / 2],
               (unsigned long long)v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1]);
}

static int bench(int argc, char **argv)
{
        long n = strtol(argv[2], NULL, 10);
        const char *url = argv[3], *name = argv[4];
        struct fl_tls_identity *id = NULL;
        char err[FL_MSG_LEN];
        if (n < 1 || n > 100000)
                return 2;
        if (strncmp(url, "tls+tcp://", 10) == 0) {
                if (fl_tls_identity_load(argv[5], argv[6], argv[7], &id, err, sizeof(err)) < 0) {
                        fprintf(stderr, "%s\n", err);
                        return 2;
                }
                fl_transport_set_tls(id, NULL, 0);
        }
        uint64_t *setup = calloc((size_t)n, sizeof(*setup)), *rtt = calloc((size_t)n, sizeof(*rtt));
        if (!setup || !rtt)
                return 2;
        for (long i = 0; i < n; i++) {
                struct fl_conn *c = NULL;
                struct fl_request req = {.type = FL_MSG_HELLO};
                struct fl_reply rep;
                uint64_t t0 = fl_now_mono_us();
                if (fl_conn_open_named(url, name, &c) < 0 ||
                    fl_conn_call(c, &req, &rep, 5000) < 0) {
                        fprintf(stderr, "setup %ld failed\n", i);
                        return 4;
                }
                setup[i] = fl_now_mono_us() - t0;
                fl_reply_free(&rep);
                fl_conn_close(c);
        }
        struct fl_conn *c = NULL;
        if (fl_conn_open_named(url, name, &c) < 0)
                return 4;
        for (long i = -10; i < n; i++) { /* 10 warm-up calls */
                struct fl_request req = {.type = FL_MSG_LIST};
                struct fl_reply rep;
                uint64_t t0 = fl_now_mono_us();
                if (fl_conn_call(c, &req, &rep, 5000) < 0) {
                        fprintf(stderr, "call %ld failed\n", i);
                        return 4;
                }
                if (i >= 0)
                        rtt[i] = fl_now_mono_us() - t0;
                fl_reply_free(&rep);
        }
        fl_conn_close(c);
        report("setup", setup, (size_t)n);
        report("roundtrip", rtt, (size_t)n);
        free(setup);
        free(rtt);
        fl_tls_identity_free(id);
        return 0;
}

int main(int argc, char **argv)
{
        if (argc >= 5 && strcmp(argv[1], "--bench") == 0)
                return bench(argc, argv);
        if (argc == 4 || argc == 6)
                return probe(argc, argv);
        fprintf(stderr, "usage: fl-tls-probe URL NAME CA [CERT KEY]\n"
                        "       fl-tls-probe --bench N URL NAME [CA CERT KEY]\n");
        return 2;
}
