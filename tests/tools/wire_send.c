/* fl-wire-send: craft a request frame by hand and print the agent's reply.
 * For tests of hostile and malformed input; not part of the product.
 *
 *   fl-wire-send URL map KEY=TYPE:VALUE...   a msgpack map; TYPE is
 *        s (string), i (signed int), u (unsigned), b (bool), n (nil),
 *        m (map of strings, VALUE "k1=v1,k2=v2"), a (array of N nils)
 *   fl-wire-send URL hex HEXBYTES            raw bytes
 *   fl-wire-send URL garbage N               N pseudo-random bytes
 *   fl-wire-send URL zeros N                 N zero bytes
 *
 * Prints "status=NAME msg=TEXT" (exit 0), "reply-undecodable" (exit 3) or
 * "no-reply" (exit 4).
 *
 *   fl-wire-send URL flood N              N hostile frames on one connection,
 *        cycling through a fixed set (garbage, truncated, wrong types, unknown
 *        fields, oversized strings, bad versions...); prints
 *        "sent=N answered=N bad-request=..." and exits 0 when every frame
 *        was answered with a non-OK status. */
#include <msgpack.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_wire.h"

static void pack_value(msgpack_packer *pk, const char *tv)
{
        char type = tv[0];
        const char *v = tv[1] == ':' ? tv + 2 : "";
        switch (type) {
        case 's':
                msgpack_pack_str(pk, strlen(v));
                msgpack_pack_str_body(pk, v, strlen(v));
                break;
        case 'i':
                msgpack_pack_int64(pk, strtoll(v, NULL, 10));
                break;
        case 'u':
                msgpack_pack_uint64(pk, strtoull(v, NULL, 10));
                break;
        case 'b':
                if (strcmp(v, "true") == 0)
                        msgpack_pack_true(pk);
                else
                        msgpack_pack_false(pk);
                break;
        case 'a': {
                long n = strtol(v, NULL, 10);
                msgpack_pack_array(pk, (size_t)n);
                for (long i = 0; i < n; i++)
                        msgpack_pack_nil(pk);
                break;
        }
        case 'm': {
                char *copy = strdup(v), *save = NULL;
                size_t n = 0;
                for (const char *p = v; *p; p++)
                        n += *p == ',';
                msgpack_pack_map(pk, *v ? n + 1 : 0);
                for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
                        char *eq = strchr(kv, '=');
                        const char *val = eq ? eq + 1 : "";
                        if (eq)
                                *eq = 0;
                        msgpack_pack_str(pk, strlen(kv));
                        msgpack_pack_str_body(pk, kv, strlen(kv));
                        msgpack_pack_str(pk, strlen(val));
                        msgpack_pack_str_body(pk, val, strlen(val));
                }
                free(copy);
                break;
        }
        default:
                msgpack_pack_nil(pk);
        }
}

/* The flood's frames, as hex: each must be refused with a clear status. */
static const char *const flood_frames[] = {
    "c1",                                                           /* reserved byte */
    "93010203",                                                     /* array, not map */
    "81a17601",                                                     /* {v:1}, no type */
    "dd7fffffff",                                                   /* array32 claiming 2^31 */
    "83a17601a174a568656c6c6fa3736571",                             /* truncated seq */
    "83a17601a174a568656c6c6fa3736571ff",                           /* seq = -1 */
    "83a17663a174a568656c6c6fa373657101",                           /* v = 99 */
    "84a17601a174a568656c6c6fa373657101a178c0",                     /* unknown key x */
    "83a17601a174a3787878a373657101",                               /* unknown type */
    "83a17601a174dbffffffff61a373657101",                           /* str32 claiming 4 GiB */
    "8fc0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0", /* nil keys */
    "de0000",                                                       /* empty map16 */
};

static int hexbytes(const char *hex, msgpack_sbuffer *sb)
{
        for (const char *p = hex; p[0] && p[1]; p += 2) {
                char byte[3] = {p[0], p[1], 0};
                char c = (char)strtol(byte, NULL, 16);
                msgpack_sbuffer_write(sb, &c, 1);
        }
        return 0;
}

static int flood(const char *url, long n)
{
        nng_socket sock;
        if (nng_req0_open(&sock) != 0 || nng_dial(sock, url, NULL, 0) != 0) {
                printf("no-reply\n");
                return 4;
        }
        nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, 3000);
        nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 3000);
        long answered = 0, ok = 0, counts[FL_ST_MAX] = {0};
        size_t nf = sizeof(flood_frames) / sizeof(flood_frames[0]);
        for (long i = 0; i < n; i++) {
                msgpack_sbuffer sb;
                msgpack_sbuffer_init(&sb);
                hexbytes(flood_frames[(size_t)i % nf], &sb);
                char *buf = NULL;
                size_t len = 0;
                int rv = nng_send(sock, sb.data, sb.size, 0);
                msgpack_sbuffer_destroy(&sb);
                if (rv != 0 || nng_recv(sock, &buf, &len, NNG_FLAG_ALLOC) != 0)
                        break;
                struct fl_reply rep;
                char err[FL_MSG_LEN];
                if (fl_reply_decode(buf, len, &rep, err, sizeof(err)) == 0) {
                        answered++;
                        if (rep.status < FL_ST_MAX)
                                counts[rep.status]++;
                        ok += rep.status == FL_ST_OK;
                }
                fl_reply_free(&rep);
                nng_free(buf, len);
        }
        nng_close(sock);
        printf("sent=%ld answered=%ld", n, answered);
        for (int s = 0; s < FL_ST_MAX; s++)
                if (counts[s])
                        printf(" %s=%ld", fl_status_name((enum fl_status)s), counts[s]);
        printf("\n");
        return answered == n && ok == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
        if (argc == 4 && strcmp(argv[2], "flood") == 0)
                return flood(argv[1], strtol(argv[3], NULL, 10));
        if (argc < 3) {
                fprintf(stderr, "usage: see the header of tests/tools/wire_send.c\n");
                return 2;
        }
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        const char *mode = argv[2];
        if (strcmp(mode, "map") == 0) {
                msgpack_pack_map(&pk, (size_t)(argc - 3));
                for (int i = 3; i < argc; i++) {
                        char *eq = strchr(argv[i], '=');
                        if (!eq)
                                return 2;
                        msgpack_pack_str(&pk, (size_t)(eq - argv[i]));
                        msgpack_pack_str_body(&pk, argv[i], (size_t)(eq - argv[i]));
                        pack_value(&pk, eq + 1);
                }
        } else if (strcmp(mode, "hex") == 0 && argc > 3) {
                for (const char *p = argv[3]; p[0] && p[1]; p += 2) {
                        char byte[3] = {p[0], p[1], 0};
                        char c = (char)strtol(byte, NULL, 16);
                        msgpack_sbuffer_write(&sb, &c, 1);
                }
        } else if ((strcmp(mode, "garbage") == 0 || strcmp(mode, "zeros") == 0) && argc > 3) {
                size_t n = strtoull(argv[3], NULL, 10);
                unsigned s = 12345;
                for (size_t i = 0; i < n; i++) {
                        s = s * 1103515245u + 12345u;
                        char c = mode[0] == 'g' ? (char)(s >> 16) : 0;
                        msgpack_sbuffer_write(&sb, &c, 1);
                }
        } else {
                return 2;
        }

        nng_socket sock;
        if (nng_req0_open(&sock) != 0 || nng_dial(sock, argv[1], NULL, 0) != 0) {
                printf("no-reply\n");
                return 4;
        }
        nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, 3000);
        nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 3000);
        int exit_code = 4;
        if (nng_send(sock, sb.data, sb.size, 0) == 0) {
                char *buf = NULL;
                size_t len = 0;
                if (nng_recv(sock, &buf, &len, NNG_FLAG_ALLOC) == 0) {
                        struct fl_reply rep;
                        char err[FL_MSG_LEN];
                        if (fl_reply_decode(buf, len, &rep, err, sizeof(err)) == 0) {
                                printf("status=%s msg=%s\n", fl_status_name(rep.status), rep.msg);
                                exit_code = 0;
                        } else {
                                printf("reply-undecodable: %s\n", err);
                                exit_code = 3;
                        }
                        fl_reply_free(&rep);
                        nng_free(buf, len);
                } else {
                        printf("no-reply\n");
                }
        } else {
                printf("no-reply\n");
        }
        nng_close(sock);
        msgpack_sbuffer_destroy(&sb);
        return exit_code;
}
