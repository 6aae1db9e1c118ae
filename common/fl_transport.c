/* nng req/rep transport for fl_wire messages. See fl_transport.h. */
#include "fl_transport.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <arpa/inet.h>
#include <stdatomic.h>

#include "fl_log.h"
#include "fl_util.h"

struct fl_conn {
        nng_socket sock;
        char url[FL_VAL_LEN];
        nng_tls_config *tls;    /* owned reference, NULL for plain tcp */
        struct fl_tls_ctx *ctx; /* inside tls */
};

struct fl_server {
        nng_socket sock;
        nng_listener listener;
        int cur_timeout_ms;
        nng_tls_config *tls;
};

static const struct fl_tls_identity *tls_identity;
static char tls_allowed[FL_TLS_MAX_SUBJECTS][FL_NAME_LEN];
static size_t n_tls_allowed;

void fl_transport_set_tls(const struct fl_tls_identity *id, const char *const *allowed, size_t n)
{
        tls_identity = id;
        n_tls_allowed = 0;
        for (size_t i = 0; i < n && i < FL_TLS_MAX_SUBJECTS; i++)
                if (fl_strlcpy(tls_allowed[n_tls_allowed], allowed[i], FL_NAME_LEN) == 0)
                        n_tls_allowed++;
}

static bool url_is_tls(const char *url)
{
        return strncmp(url, "tls+tcp://", 10) == 0;
}

/* Host part of "tls+tcp://HOST:PORT" / "tls+tcp://[V6]:PORT". */
static int url_host(const char *url, char *buf, size_t size)
{
        const char *h = strstr(url, "://");
        if (!h)
                return -EINVAL;
        h += 3;
        const char *end;
        if (*h == '[') {
                h++;
                end = strchr(h, ']');
        } else {
                end = strrchr(h, ':');
        }
        if (!end || end == h || (size_t)(end - h) >= size)
                return -EINVAL;
        memcpy(buf, h, (size_t)(end - h));
        buf[end - h] = 0;
        return 0;
}

static const struct {
        int nng;
        int err;
} nng_errno_table[] = {
    {NNG_EINTR, EINTR},           {NNG_ENOMEM, ENOMEM},
    {NNG_EINVAL, EINVAL},         {NNG_EBUSY, EBUSY},
    {NNG_ETIMEDOUT, ETIMEDOUT},   {NNG_ECONNREFUSED, ECONNREFUSED},
    {NNG_ECLOSED, EBADF},         {NNG_EAGAIN, EAGAIN},
    {NNG_ENOTSUP, EOPNOTSUPP},    {NNG_EADDRINUSE, EADDRINUSE},
    {NNG_ESTATE, EPROTO},         {NNG_ENOENT, ENOENT},
    {NNG_EPROTO, EPROTO},         {NNG_EUNREACHABLE, EHOSTUNREACH},
    {NNG_EADDRINVAL, EINVAL},     {NNG_EPERM, EPERM},
    {NNG_EMSGSIZE, EMSGSIZE},     {NNG_ECONNABORTED, ECONNABORTED},
    {NNG_ECONNRESET, ECONNRESET}, {NNG_ECANCELED, ECANCELED},
    {NNG_ENOFILES, EMFILE},       {NNG_ENOSPC, ENOSPC},
    {NNG_EEXIST, EEXIST},         {NNG_EREADONLY, EROFS},
    {NNG_EWRITEONLY, EINVAL},     {NNG_ECRYPTO, EACCES},
    {NNG_EPEERAUTH, EACCES},      {NNG_ENOARG, EINVAL},
    {NNG_EAMBIGUOUS, EINVAL},     {NNG_EBADTYPE, EINVAL},
    {NNG_ECONNSHUT, ECONNRESET},
};

int fl_errno_from_nng(int rv)
{
        if (rv == 0)
                return 0;
        if (rv & NNG_ESYSERR)
                return -(rv & ~NNG_ESYSERR);
        for (size_t i = 0; i < FL_ARRAY_SIZE(nng_errno_table); i++)
                if (nng_errno_table[i].nng == rv)
                        return -nng_errno_table[i].err;
        return -EIO;
}

/* Only URLs we know how to secure or that are plainly local make sense for
 * a control channel; ipc:// and inproc:// are accepted for tests. */
static int check_url(const char *url)
{
        static const char *const schemes[] = {"tcp://",     "tcp4://", "tcp6://",
                                              "tls+tcp://", "ipc://",  "inproc://"};
        if (!url || !*url || strlen(url) >= FL_VAL_LEN)
                return -EINVAL;
        for (size_t i = 0; i < FL_ARRAY_SIZE(schemes); i++)
                if (strncmp(url, schemes[i], strlen(schemes[i])) == 0)
                        return 0;
        return -EINVAL;
}

static void tls_missing(const char *url)
{
        static bool said;
        if (!said)
                fl_log(LOG_ERR,
                       "%s: tls+tcp:// needs a TLS identity (CA, certificate, key); see "
                       "'faultline pki' and docs/security.md",
                       url);
        said = true;
}

int fl_conn_open(const char *url, struct fl_conn **ret)
{
        return fl_conn_open_named(url, NULL, ret);
}

int fl_conn_open_named(const char *url, const char *server_name, struct fl_conn **ret)
{
        int rv = check_url(url);
        char host[FL_NAME_LEN];
        if (rv < 0)
                return rv;
        if (url_is_tls(url)) {
                if (!tls_identity) {
                        tls_missing(url);
                        return -ENOKEY;
                }
                if (!server_name) {
                        if (url_host(url, host, sizeof(host)) < 0)
                                return -EINVAL;
                        server_name = host;
                }
        }
        struct fl_conn *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        snprintf(c->url, sizeof(c->url), "%s", url);
        if (url_is_tls(url) && (rv = fl_tls_config_new(tls_identity, FL_TLS_CLIENT, server_name,
                                                       NULL, 0, &c->tls, &c->ctx)) < 0) {
                free(c);
                return rv;
        }
        rv = nng_req0_open(&c->sock);
        if (rv != 0) {
                if (c->tls)
                        nng_tls_config_free(c->tls);
                free(c);
                return fl_errno_from_nng(rv);
        }
        nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, FL_TRANSPORT_MAX_FRAME);
        /* Reconnect quickly: an agent that restarts should be reachable again
         * within a lease renewal period. */
        nng_socket_set_ms(c->sock, NNG_OPT_RECONNMINT, 50);
        nng_socket_set_ms(c->sock, NNG_OPT_RECONNMAXT, 500);
        /* Never resend a request by itself: APPLY is not idempotent. */
        nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
        nng_dialer d;
        rv = nng_dialer_create(&d, c->sock, url);
        if (rv == 0 && c->tls)
                rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, c->tls);
        if (rv == 0)
                rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
        if (rv != 0) {
                nng_close(c->sock);
                if (c->tls)
                        nng_tls_config_free(c->tls);
                free(c);
                return fl_errno_from_nng(rv);
        }
        *ret = c;
        return 0;
}

void fl_conn_close(struct fl_conn *c)
{
        if (!c)
                return;
        nng_close(c->sock);
        /* The dialer held its own reference; this drops ours. */
        if (c->tls)
                nng_tls_config_free(c->tls);
        free(c);
}

void fl_conn_error(const struct fl_conn *c, char *buf, size_t size)
{
        if (c->ctx)
                fl_tls_ctx_last_error(c->ctx, buf, size);
        else if (size)
                buf[0] = 0;
}

/* A timeout on a TLS connection that never completed a handshake, while
 * handshakes did fail, is a certificate problem, not a slow agent. */
static int tls_diagnose(const struct fl_conn *c, int rv)
{
        unsigned failed = 0;
        if (rv == -ETIMEDOUT && c->ctx && fl_tls_ctx_handshakes(c->ctx, &failed) == 0 && failed)
                return -EKEYREJECTED;
        return rv;
}

const char *fl_conn_url(const struct fl_conn *c)
{
        return c->url;
}

static atomic_uint_fast64_t seq_counter = 1;

static int decode_reply(const struct fl_request *req, const void *buf, size_t len,
                        struct fl_reply *ret)
{
        char err[FL_MSG_LEN];
        int rv = fl_reply_decode(buf, len, ret, err, sizeof(err));
        if (rv < 0) {
                fl_reply_free(ret);
                memset(ret, 0, sizeof(*ret));
                return -EBADMSG;
        }
        if (ret->seq != req->seq || (ret->type != req->type && ret->status == FL_ST_OK)) {
                fl_reply_free(ret);
                memset(ret, 0, sizeof(*ret));
                return -EPROTO;
        }
        return 0;
}

int fl_conn_call(struct fl_conn *c, struct fl_request *req, struct fl_reply *ret_reply,
                 int timeout_ms)
{
        memset(ret_reply, 0, sizeof(*ret_reply));
        req->version = FL_PROTO_VERSION;
        req->seq = atomic_fetch_add(&seq_counter, 1);

        _cleanup_free_ void *buf = NULL;
        size_t len = 0;
        int rv = fl_request_encode(req, &buf, &len);
        if (rv < 0)
                return rv;

        nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, timeout_ms);
        nng_socket_set_ms(c->sock, NNG_OPT_RECVTIMEO, timeout_ms);
        rv = nng_send(c->sock, buf, len, 0);
        if (rv != 0)
                return tls_diagnose(c, fl_errno_from_nng(rv));

        nng_msg *msg = NULL;
        rv = nng_recvmsg(c->sock, &msg, 0);
        if (rv != 0)
                return tls_diagnose(c, fl_errno_from_nng(rv));
        rv = decode_reply(req, nng_msg_body(msg), nng_msg_len(msg), ret_reply);
        nng_msg_free(msg);
        return rv;
}

int fl_conn_call_many(struct fl_conn **conns, size_t n, struct fl_request *req,
                      struct fl_reply *replies, int *rcs, int timeout_ms)
{
        req->version = FL_PROTO_VERSION;
        req->seq = atomic_fetch_add(&seq_counter, 1);
        for (size_t i = 0; i < n; i++) {
                memset(&replies[i], 0, sizeof(replies[i]));
                rcs[i] = -ECANCELED;
        }
        if (n == 0)
                return 0;

        _cleanup_free_ void *buf = NULL;
        size_t len = 0;
        int rv = fl_request_encode(req, &buf, &len);
        if (rv < 0) {
                for (size_t i = 0; i < n; i++)
                        rcs[i] = rv;
                return 0;
        }

        _cleanup_free_ nng_aio **aios = calloc(n, sizeof(*aios));
        if (!aios)
                return -ENOMEM;
        uint64_t deadline = fl_now_mono_ms() + (uint64_t)timeout_ms;

        /* Phase 1: hand the request to every socket at once. Each send
         * completes as soon as its pipe takes it, so the fleet is reached
         * concurrently; a dead agent only costs its own aio's timeout. */
        for (size_t i = 0; i < n; i++) {
                nng_msg *m = NULL;
                if ((rv = nng_aio_alloc(&aios[i], NULL, NULL)) != 0) {
                        rcs[i] = fl_errno_from_nng(rv);
                        aios[i] = NULL;
                        continue;
                }
                if ((rv = nng_msg_alloc(&m, 0)) != 0 || (rv = nng_msg_append(m, buf, len)) != 0) {
                        if (m)
                                nng_msg_free(m);
                        rcs[i] = fl_errno_from_nng(rv);
                        continue;
                }
                nng_aio_set_msg(aios[i], m);
                nng_aio_set_timeout(aios[i], timeout_ms);
                nng_send_aio(conns[i]->sock, aios[i]);
                rcs[i] = 1; /* in flight */
        }
        for (size_t i = 0; i < n; i++) {
                if (rcs[i] != 1)
                        continue;
                nng_aio_wait(aios[i]);
                rv = nng_aio_result(aios[i]);
                if (rv != 0) {
                        nng_msg_free(nng_aio_get_msg(aios[i]));
                        rcs[i] = tls_diagnose(conns[i], fl_errno_from_nng(rv));
                }
        }
        /* Phase 2: every receive in parallel, bounded by what is left. */
        uint64_t now = fl_now_mono_ms();
        int left = now >= deadline ? 1 : (int)(deadline - now);
        for (size_t i = 0; i < n; i++) {
                if (rcs[i] != 1)
                        continue;
                nng_aio_set_timeout(aios[i], left);
                nng_recv_aio(conns[i]->sock, aios[i]);
        }
        int answered = 0;
        for (size_t i = 0; i < n; i++) {
                if (rcs[i] != 1)
                        continue;
                nng_aio_wait(aios[i]);
                rv = nng_aio_result(aios[i]);
                if (rv != 0) {
                        rcs[i] = tls_diagnose(conns[i], fl_errno_from_nng(rv));
                        continue;
                }
                nng_msg *m = nng_aio_get_msg(aios[i]);
                rcs[i] = decode_reply(req, nng_msg_body(m), nng_msg_len(m), &replies[i]);
                nng_msg_free(m);
                if (rcs[i] == 0)
                        answered++;
        }
        for (size_t i = 0; i < n; i++)
                if (aios[i])
                        nng_aio_free(aios[i]);
        return answered;
}

int fl_server_open(const char *url, struct fl_server **ret)
{
        int rv = check_url(url);
        if (rv < 0)
                return rv;
        struct fl_server *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        rv = nng_rep0_open(&s->sock);
        if (rv != 0) {
                free(s);
                return fl_errno_from_nng(rv);
        }
        nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, FL_TRANSPORT_MAX_FRAME);
        s->cur_timeout_ms = -2;
        if (url_is_tls(url)) {
                const char *allowed[FL_TLS_MAX_SUBJECTS];
                struct fl_tls_ctx *ctx;
                for (size_t i = 0; i < n_tls_allowed; i++)
                        allowed[i] = tls_allowed[i];
                if (!tls_identity) {
                        tls_missing(url);
                        rv = -ENOKEY;
                } else {
                        rv = fl_tls_config_new(tls_identity, FL_TLS_SERVER, NULL, allowed,
                                               n_tls_allowed, &s->tls, &ctx);
                }
                if (rv < 0) {
                        nng_close(s->sock);
                        free(s);
                        return rv;
                }
        }
        rv = nng_listener_create(&s->listener, s->sock, url);
        if (rv == 0 && s->tls)
                rv = nng_listener_set_ptr(s->listener, NNG_OPT_TLS_CONFIG, s->tls);
        if (rv == 0)
                rv = nng_listener_start(s->listener, 0);
        if (rv != 0) {
                nng_close(s->sock);
                if (s->tls)
                        nng_tls_config_free(s->tls);
                free(s);
                return fl_errno_from_nng(rv);
        }
        *ret = s;
        return 0;
}

void fl_server_close(struct fl_server *s)
{
        if (!s)
                return;
        nng_close(s->sock);
        if (s->tls)
                nng_tls_config_free(s->tls);
        free(s);
}

void fl_server_shutdown(struct fl_server *s)
{
        /* nng_close is safe from another thread and makes every pending
         * operation on the socket fail with NNG_ECLOSED. */
        nng_close(s->sock);
}

int fl_server_recv(struct fl_server *s, void **ret_buf, size_t *ret_len, int timeout_ms)
{
        return fl_server_recv_peer(s, ret_buf, ret_len, NULL, timeout_ms);
}

static void describe_peer(nng_pipe p, struct fl_peer *peer)
{
        nng_sockaddr sa;
        char ip[48] = "?";
        memset(peer, 0, sizeof(*peer));
        if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) == 0) {
                if (sa.s_family == NNG_AF_INET) {
                        inet_ntop(AF_INET, &sa.s_in.sa_addr, ip, sizeof(ip));
                        snprintf(peer->addr, sizeof(peer->addr), "%s:%u", ip,
                                 ntohs(sa.s_in.sa_port));
                } else if (sa.s_family == NNG_AF_INET6) {
                        inet_ntop(AF_INET6, sa.s_in6.sa_addr, ip, sizeof(ip));
                        snprintf(peer->addr, sizeof(peer->addr), "[%s]:%u", ip,
                                 ntohs(sa.s_in6.sa_port));
                } else {
                        snprintf(peer->addr, sizeof(peer->addr), "local");
                }
        } else {
                snprintf(peer->addr, sizeof(peer->addr), "local");
        }
        fl_tls_pipe_peer(p, &peer->tls);
}

int fl_server_recv_peer(struct fl_server *s, void **ret_buf, size_t *ret_len,
                        struct fl_peer *ret_peer, int timeout_ms)
{
        if (ret_peer)
                memset(ret_peer, 0, sizeof(*ret_peer));
        if (timeout_ms != s->cur_timeout_ms) {
                nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, timeout_ms);
                s->cur_timeout_ms = timeout_ms;
        }
        nng_msg *m = NULL;
        int rv = nng_recvmsg(s->sock, &m, 0);
        if (rv == NNG_ETIMEDOUT)
                return 0;
        if (rv != 0)
                return fl_errno_from_nng(rv);
        size_t len = nng_msg_len(m);
        void *buf = malloc(len ? len : 1);
        if (!buf) {
                nng_msg_free(m);
                return -ENOMEM;
        }
        memcpy(buf, nng_msg_body(m), len);
        if (ret_peer)
                describe_peer(nng_msg_get_pipe(m), ret_peer);
        nng_msg_free(m);
        *ret_buf = buf;
        *ret_len = len;
        return 1;
}

int fl_server_send(struct fl_server *s, const void *buf, size_t len)
{
        return fl_errno_from_nng(nng_send(s->sock, (void *)buf, len, 0));
}
