/* faultline's nng TLS engine (mbedTLS) and identity files. See fl_tls.h.
 *
 * The engine follows the shape of nng's own mbedTLS engine
 * (src/supplemental/tls/mbedtls/tls.c, MIT licence, Staysail Systems):
 * nng owns the TCP stream and hands us bytes through nng_tls_engine_send/
 * recv; we drive an mbedtls_ssl_context over them. What we add: the peer's
 * names and the allowed-subjects verdict are recorded at the end of the
 * handshake, and the reason of a failed handshake is kept on the config.
 *
 * Getting the peer's names back to the application: nng 1.5 has no pipe
 * option for them, but reading NNG_OPT_TLS_VERIFIED on a pipe calls our
 * conn_verified() synchronously on the caller's thread, under the pipe's
 * lock. fl_tls_pipe_peer() arms a thread-local slot, reads that option,
 * and conn_verified() fills the slot from the connection it belongs to.
 * No table, no race: the call chain is the lookup. */
#include "fl_tls.h"

#include <errno.h>
#include <fcntl.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <nng/supplemental/tls/engine.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "fl_log.h"
#include "fl_util.h"

/* ---- identity files ----------------------------------------------------- */

struct fl_tls_identity {
        char *ca_pem, *cert_pem, *key_pem;
        char name[FL_NAME_LEN];
};

/* Read a whole PEM file, NUL-terminated (mbedTLS wants the NUL counted). */
static int read_pem(const char *path, bool secret, char **ret, char *err, size_t errlen)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                int e = errno;
                snprintf(err, errlen, "%s: %s", path, strerror(e));
                return -e;
        }
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                snprintf(err, errlen, "%s: not a regular file", path);
                return -EINVAL;
        }
        if (st.st_size > FL_TLS_MAX_PEM) {
                close(fd);
                snprintf(err, errlen, "%s: larger than %d bytes", path, FL_TLS_MAX_PEM);
                return -EFBIG;
        }
        if (secret && (st.st_mode & 077)) {
                close(fd);
                snprintf(err, errlen,
                         "%s: private key is readable by group or others (mode %04o); "
                         "chmod 600 it",
                         path, (unsigned)(st.st_mode & 07777));
                return -EPERM;
        }
        char *buf = calloc(1, (size_t)st.st_size + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        size_t got = 0;
        while (got < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += (size_t)n;
        }
        close(fd);
        buf[got] = 0;
        *ret = buf;
        return 0;
}

static void tls_strerror(int rv, char *buf, size_t size)
{
        mbedtls_strerror(rv, buf, size);
}

/* CN of a parsed certificate's subject, "" if none. */
static void crt_cn(const mbedtls_x509_crt *crt, char *buf, size_t size)
{
        buf[0] = 0;
        for (const mbedtls_x509_name *n = &crt->subject; n; n = n->next) {
                if (n->oid.p && MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid) == 0) {
                        size_t len = n->val.len < size - 1 ? n->val.len : size - 1;
                        memcpy(buf, n->val.p, len);
                        buf[len] = 0;
                        return;
                }
        }
}

/* Calls fn for the CN and every DNS SAN of crt; stops at the first true. */
static bool crt_names_any(const mbedtls_x509_crt *crt, bool (*fn)(const char *name, void *ud),
                          void *ud)
{
        char name[FL_NAME_LEN];
        crt_cn(crt, name, sizeof(name));
        if (name[0] && fn(name, ud))
                return true;
        for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s && s->buf.p; s = s->next) {
                if (s->buf.tag != (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME))
                        continue;
                size_t len = s->buf.len < sizeof(name) - 1 ? s->buf.len : sizeof(name) - 1;
                memcpy(name, s->buf.p, len);
                name[len] = 0;
                if (fn(name, ud))
                        return true;
        }
        return false;
}

int fl_tls_identity_load(const char *ca_path, const char *cert_path, const char *key_path,
                         struct fl_tls_identity **ret, char *err, size_t errlen)
{
        struct fl_tls_identity *id = calloc(1, sizeof(*id));
        mbedtls_x509_crt ca, crt;
        mbedtls_pk_context key;
        char why[160];
        int rv;

        if (!id)
                return -ENOMEM;
        mbedtls_x509_crt_init(&ca);
        mbedtls_x509_crt_init(&crt);
        mbedtls_pk_init(&key);
        if ((rv = read_pem(ca_path, false, &id->ca_pem, err, errlen)) < 0 ||
            (rv = read_pem(cert_path, false, &id->cert_pem, err, errlen)) < 0 ||
            (rv = read_pem(key_path, true, &id->key_pem, err, errlen)) < 0)
                goto fail;
        rv = -EINVAL;
        int mr;
        if ((mr = mbedtls_x509_crt_parse(&ca, (const unsigned char *)id->ca_pem,
                                         strlen(id->ca_pem) + 1)) != 0) {
                tls_strerror(mr, why, sizeof(why));
                snprintf(err, errlen, "%s: not a PEM certificate: %s", ca_path, why);
                goto fail;
        }
        if ((mr = mbedtls_x509_crt_parse(&crt, (const unsigned char *)id->cert_pem,
                                         strlen(id->cert_pem) + 1)) != 0) {
                tls_strerror(mr, why, sizeof(why));
                snprintf(err, errlen, "%s: not a PEM certificate: %s", cert_path, why);
                goto fail;
        }
        if ((mr = mbedtls_pk_parse_key(&key, (const unsigned char *)id->key_pem,
                                       strlen(id->key_pem) + 1, NULL, 0)) != 0) {
                tls_strerror(mr, why, sizeof(why));
                snprintf(err, errlen, "%s: not an unencrypted PEM private key: %s", key_path, why);
                goto fail;
        }
        if (mbedtls_pk_check_pair(&crt.pk, &key) != 0) {
                snprintf(err, errlen, "%s does not belong to %s", key_path, cert_path);
                goto fail;
        }
        crt_cn(&crt, id->name, sizeof(id->name));
        /* The chain is checked by the peer; checking it here as well turns
         * a confusing handshake failure into a message at start-up. Expiry
         * is only a warning: the peer refuses it, and the tests need to
         * present such certificates. */
        uint32_t flags = 0;
        rv = 0;
        if (mbedtls_x509_crt_verify(&crt, &ca, NULL, NULL, &flags, NULL, NULL) != 0) {
                char info[256];
                mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
                info[strcspn(info, "\n")] = 0;
                snprintf(err, errlen, "warning: %s does not verify against %s: %s", cert_path,
                         ca_path, info);
                rv = 1;
        }
        mbedtls_x509_crt_free(&ca);
        mbedtls_x509_crt_free(&crt);
        mbedtls_pk_free(&key);
        *ret = id;
        return rv;
fail:
        mbedtls_x509_crt_free(&ca);
        mbedtls_x509_crt_free(&crt);
        mbedtls_pk_free(&key);
        fl_tls_identity_free(id);
        return rv;
}

void fl_tls_identity_free(struct fl_tls_identity *id)
{
        if (!id)
                return;
        free(id->ca_pem);
        free(id->cert_pem);
        if (id->key_pem) {
                explicit_bzero(id->key_pem, strlen(id->key_pem));
                free(id->key_pem);
        }
        free(id);
}

const char *fl_tls_identity_name(const struct fl_tls_identity *id)
{
        return id->name;
}

/* ---- the engine ----------------------------------------------------------- */

struct nng_tls_engine_config {
        mbedtls_ssl_config ssl;
        mbedtls_x509_crt ca;
        mbedtls_x509_crt own;
        mbedtls_pk_context key;
        bool has_own;
        bool server;
        char server_name[FL_NAME_LEN];
        char allowed[FL_TLS_MAX_SUBJECTS][FL_NAME_LEN];
        size_t n_allowed;
        pthread_mutex_t lock; /* guards the fields below */
        char last_error[FL_MSG_LEN];
        unsigned ok, failed;
};

struct nng_tls_engine_conn {
        void *tls; /* nng's side, for nng_tls_engine_send/recv */
        mbedtls_ssl_context ssl;
        nng_tls_engine_config *cfg;
        bool done, verified, allowed;
        char subject[FL_NAME_LEN];
};

/* Set by fl_tls_config_new around nng_tls_config_alloc, which calls
 * config_init on the same thread: how we learn our half of the config. */
static _Thread_local nng_tls_engine_config *tl_new_cfg;
static _Thread_local bool tl_want_cfg;
/* Armed by fl_tls_pipe_peer around the NNG_OPT_TLS_VERIFIED read. */
static _Thread_local struct fl_tls_peer *tl_peer_query;

static int tls_random(void *ud, unsigned char *buf, size_t len)
{
        while (len) {
                ssize_t n = getrandom(buf, len, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
                buf += n;
                len -= (size_t)n;
        }
        return 0;
}

static int tls_err_to_nng(int rv)
{
        switch (rv) {
        case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE:
        case MBEDTLS_ERR_SSL_CA_CHAIN_REQUIRED:
        case MBEDTLS_ERR_SSL_PEER_VERIFY_FAILED:
        case MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE:
        case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
        case MBEDTLS_ERR_SSL_BAD_HS_CERTIFICATE:
                return NNG_EPEERAUTH;
        case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
                return NNG_ECONNREFUSED;
        case MBEDTLS_ERR_SSL_ALLOC_FAILED:
                return NNG_ENOMEM;
        case MBEDTLS_ERR_SSL_TIMEOUT:
                return NNG_ETIMEDOUT;
        case MBEDTLS_ERR_SSL_CONN_EOF:
                /* The peer hung up mid-handshake. Not NNG_ECLOSED: nng
                 * 1.5 (issue #1518, fixed in 1.6) takes that from a
                 * negotiating pipe for "the listener/dialer was closed"
                 * and stops accepting (or redialing) for good, so one
                 * client that exits mid-handshake would leave the agent
                 * deaf. A reset is retried at once. */
                return NNG_ECONNRESET;
        default:
                return NNG_ECRYPTO;
        }
}

static int bio_send(void *tls, const unsigned char *buf, size_t len)
{
        size_t sz = len;
        switch (nng_tls_engine_send(tls, buf, &sz)) {
        case 0:
                return (int)sz;
        case NNG_EAGAIN:
                return MBEDTLS_ERR_SSL_WANT_WRITE;
        default:
                return MBEDTLS_ERR_NET_SEND_FAILED;
        }
}

static int bio_recv(void *tls, unsigned char *buf, size_t len)
{
        size_t sz = len;
        switch (nng_tls_engine_recv(tls, buf, &sz)) {
        case 0:
                return (int)sz;
        case NNG_EAGAIN:
                return MBEDTLS_ERR_SSL_WANT_READ;
        default:
                return MBEDTLS_ERR_NET_RECV_FAILED;
        }
}

static int conn_init(nng_tls_engine_conn *ec, void *tls, nng_tls_engine_config *cfg)
{
        ec->tls = tls;
        ec->cfg = cfg;
        mbedtls_ssl_init(&ec->ssl);
        mbedtls_ssl_set_bio(&ec->ssl, tls, bio_send, bio_recv, NULL);
        int rv = mbedtls_ssl_setup(&ec->ssl, &cfg->ssl);
        if (rv != 0)
                return tls_err_to_nng(rv);
        if (cfg->server_name[0] && mbedtls_ssl_set_hostname(&ec->ssl, cfg->server_name) != 0)
                return NNG_ENOMEM;
        return 0;
}

static void conn_fini(nng_tls_engine_conn *ec)
{
        mbedtls_ssl_free(&ec->ssl);
}

static void conn_close(nng_tls_engine_conn *ec)
{
        (void)mbedtls_ssl_close_notify(&ec->ssl);
}

static bool name_allowed(const char *name, void *ud)
{
        const nng_tls_engine_config *cfg = ud;
        for (size_t i = 0; i < cfg->n_allowed; i++)
                if (strcasecmp(cfg->allowed[i], name) == 0)
                        return true;
        return false;
}

static bool first_name(const char *name, void *ud)
{
        snprintf(ud, FL_NAME_LEN, "%s", name);
        return true;
}

/* The handshake is over: record who the peer is. */
static void conn_identify(nng_tls_engine_conn *ec)
{
        const mbedtls_x509_crt *peer = mbedtls_ssl_get_peer_cert(&ec->ssl);
        ec->done = true;
        ec->verified = peer && mbedtls_ssl_get_verify_result(&ec->ssl) == 0;
        if (peer)
                crt_names_any(peer, first_name, ec->subject);
        ec->allowed =
            ec->verified && (ec->cfg->n_allowed == 0 || crt_names_any(peer, name_allowed, ec->cfg));
}

/* A server logs refused handshakes, at most one line a second: anyone
 * who can reach the port can cause them. */
static void log_refused(const char *why)
{
        static _Atomic uint64_t last_ms;
        static atomic_uint suppressed;
        uint64_t now = fl_now_mono_ms(), prev = atomic_load(&last_ms);
        if (now - prev < 1000 || !atomic_compare_exchange_strong(&last_ms, &prev, now)) {
                atomic_fetch_add(&suppressed, 1);
                return;
        }
        unsigned n = atomic_exchange(&suppressed, 0);
        fl_log(LOG_WARNING, "TLS handshake refused: %s%s", why,
               n ? " (and earlier ones not logged)" : "");
}

static void conn_failed(nng_tls_engine_conn *ec, int rv)
{
        nng_tls_engine_config *cfg = ec->cfg;
        char why[FL_MSG_LEN], what[160];
        uint32_t flags = mbedtls_ssl_get_verify_result(&ec->ssl);
        const char *side = cfg->server ? "client" : "server";

        if (flags != 0 && flags != (uint32_t)-1) {
                char info[256];
                mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
                for (char *p = info; *p; p++)
                        if (*p == '\n')
                                *p = *(p + 1) ? ';' : 0;
                snprintf(why, sizeof(why), "%s certificate rejected: %s", side, info);
        } else if (rv == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE) {
                snprintf(why, sizeof(why),
                         "the %s refused our certificate (it expects another CA or another "
                         "name, or ours is expired)",
                         side);
        } else if (rv == MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE) {
                snprintf(why, sizeof(why), "the client presented no certificate");
        } else {
                tls_strerror(rv, what, sizeof(what));
                snprintf(why, sizeof(why), "%s", what);
        }
        pthread_mutex_lock(&cfg->lock);
        snprintf(cfg->last_error, sizeof(cfg->last_error), "%s", why);
        cfg->failed++;
        pthread_mutex_unlock(&cfg->lock);
        if (cfg->server)
                log_refused(why);
}

static int conn_handshake(nng_tls_engine_conn *ec)
{
        int rv = mbedtls_ssl_handshake(&ec->ssl);
        switch (rv) {
        case MBEDTLS_ERR_SSL_WANT_READ:
        case MBEDTLS_ERR_SSL_WANT_WRITE:
                return NNG_EAGAIN;
        case 0:
                if (!ec->done) {
                        conn_identify(ec);
                        pthread_mutex_lock(&ec->cfg->lock);
                        ec->cfg->ok++;
                        pthread_mutex_unlock(&ec->cfg->lock);
                }
                return 0;
        default:
                conn_failed(ec, rv);
                return tls_err_to_nng(rv);
        }
}

static int conn_recv(nng_tls_engine_conn *ec, uint8_t *buf, size_t *szp)
{
        int rv = mbedtls_ssl_read(&ec->ssl, buf, *szp);
        if (rv < 0)
                return rv == MBEDTLS_ERR_SSL_WANT_READ || rv == MBEDTLS_ERR_SSL_WANT_WRITE
                           ? NNG_EAGAIN
                           : tls_err_to_nng(rv);
        *szp = (size_t)rv;
        return 0;
}

static int conn_send(nng_tls_engine_conn *ec, const uint8_t *buf, size_t *szp)
{
        int rv = mbedtls_ssl_write(&ec->ssl, buf, *szp);
        if (rv < 0)
                return rv == MBEDTLS_ERR_SSL_WANT_READ || rv == MBEDTLS_ERR_SSL_WANT_WRITE
                           ? NNG_EAGAIN
                           : tls_err_to_nng(rv);
        *szp = (size_t)rv;
        return 0;
}

static bool conn_verified(nng_tls_engine_conn *ec)
{
        struct fl_tls_peer *q = tl_peer_query;
        if (q) {
                q->tls = true;
                q->verified = ec->verified;
                q->allowed = ec->allowed;
                snprintf(q->subject, sizeof(q->subject), "%s", ec->subject);
        }
        return ec->verified;
}

static void config_fini(nng_tls_engine_config *cfg)
{
        mbedtls_ssl_config_free(&cfg->ssl);
        mbedtls_x509_crt_free(&cfg->ca);
        mbedtls_x509_crt_free(&cfg->own);
        mbedtls_pk_free(&cfg->key);
        pthread_mutex_destroy(&cfg->lock);
}

static int config_init(nng_tls_engine_config *cfg, nng_tls_mode mode)
{
        cfg->server = mode == NNG_TLS_MODE_SERVER;
        mbedtls_ssl_config_init(&cfg->ssl);
        mbedtls_x509_crt_init(&cfg->ca);
        mbedtls_x509_crt_init(&cfg->own);
        mbedtls_pk_init(&cfg->key);
        pthread_mutex_init(&cfg->lock, NULL);
        int rv = mbedtls_ssl_config_defaults(
            &cfg->ssl, cfg->server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
            MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
        if (rv != 0) {
                config_fini(cfg);
                return NNG_ENOMEM;
        }
        /* Secure by default on both sides: a server that forgets to ask
         * for REQUIRED still verifies clients. */
        mbedtls_ssl_conf_authmode(&cfg->ssl, MBEDTLS_SSL_VERIFY_REQUIRED);
        mbedtls_ssl_conf_min_version(&cfg->ssl, MBEDTLS_SSL_MAJOR_VERSION_3,
                                     MBEDTLS_SSL_MINOR_VERSION_3);
        mbedtls_ssl_conf_max_version(&cfg->ssl, MBEDTLS_SSL_MAJOR_VERSION_3,
                                     MBEDTLS_SSL_MINOR_VERSION_3);
        mbedtls_ssl_conf_rng(&cfg->ssl, tls_random, NULL);
        if (tl_want_cfg)
                tl_new_cfg = cfg;
        return 0;
}

static int config_server(nng_tls_engine_config *cfg, const char *name)
{
        return fl_strlcpy(cfg->server_name, name, sizeof(cfg->server_name)) < 0 ? NNG_EINVAL : 0;
}

static int config_auth(nng_tls_engine_config *cfg, nng_tls_auth_mode mode)
{
        static const int map[] = {[NNG_TLS_AUTH_MODE_NONE] = MBEDTLS_SSL_VERIFY_NONE,
                                  [NNG_TLS_AUTH_MODE_OPTIONAL] = MBEDTLS_SSL_VERIFY_OPTIONAL,
                                  [NNG_TLS_AUTH_MODE_REQUIRED] = MBEDTLS_SSL_VERIFY_REQUIRED};
        if ((unsigned)mode >= FL_ARRAY_SIZE(map))
                return NNG_EINVAL;
        mbedtls_ssl_conf_authmode(&cfg->ssl, map[mode]);
        return 0;
}

static int config_ca_chain(nng_tls_engine_config *cfg, const char *certs, const char *crl)
{
        if (crl)
                return NNG_ENOTSUP; /* revocation: re-issue the fleet instead */
        int rv = mbedtls_x509_crt_parse(&cfg->ca, (const unsigned char *)certs, strlen(certs) + 1);
        if (rv != 0)
                return tls_err_to_nng(rv);
        mbedtls_ssl_conf_ca_chain(&cfg->ssl, &cfg->ca, NULL);
        return 0;
}

static int config_own_cert(nng_tls_engine_config *cfg, const char *cert, const char *key,
                           const char *pass)
{
        if (cfg->has_own)
                return NNG_EBUSY; /* one identity per endpoint */
        int rv = mbedtls_x509_crt_parse(&cfg->own, (const unsigned char *)cert, strlen(cert) + 1);
        if (rv == 0)
                rv = mbedtls_pk_parse_key(&cfg->key, (const unsigned char *)key, strlen(key) + 1,
                                          (const unsigned char *)pass, pass ? strlen(pass) : 0);
        if (rv == 0)
                rv = mbedtls_ssl_conf_own_cert(&cfg->ssl, &cfg->own, &cfg->key);
        if (rv != 0)
                return tls_err_to_nng(rv);
        cfg->has_own = true;
        return 0;
}

static int config_version(nng_tls_engine_config *cfg, nng_tls_version min, nng_tls_version max)
{
        /* TLS 1.2 only: mbedTLS 2.28's 1.3 support is experimental. */
        return min <= NNG_TLS_1_2 && max >= NNG_TLS_1_2 ? 0 : NNG_ENOTSUP;
}

static nng_tls_engine_config_ops config_ops = {
    .size = sizeof(nng_tls_engine_config),
    .init = config_init,
    .fini = config_fini,
    .server = config_server,
    .auth = config_auth,
    .ca_chain = config_ca_chain,
    .own_cert = config_own_cert,
    .version = config_version,
};

static nng_tls_engine_conn_ops conn_ops = {
    .size = sizeof(nng_tls_engine_conn),
    .init = conn_init,
    .fini = conn_fini,
    .close = conn_close,
    .handshake = conn_handshake,
    .recv = conn_recv,
    .send = conn_send,
    .verified = conn_verified,
};

static nng_tls_engine fl_engine = {
    .version = NNG_TLS_ENGINE_VERSION,
    .config_ops = &config_ops,
    .conn_ops = &conn_ops,
    .name = "faultline-mbedtls",
    .description = "faultline mbedTLS engine (peer names, refusal reasons)",
    .fips_mode = false,
};

static int engine_rv;
static void engine_install_once(void)
{
        /* nng registers its built-in engine when the library initialises;
         * asking for the engine's name forces that first, so ours wins. */
        (void)nng_tls_engine_name();
        engine_rv = nng_tls_engine_register(&fl_engine);
}

int fl_tls_engine_install(void)
{
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, engine_install_once);
        return engine_rv ? -EOPNOTSUPP : 0;
}

int fl_tls_config_new(const struct fl_tls_identity *id, enum fl_tls_role role,
                      const char *server_name, const char *const *allowed, size_t n_allowed,
                      nng_tls_config **ret_cfg, struct fl_tls_ctx **ret_ctx)
{
        nng_tls_config *cfg = NULL;
        int rv = fl_tls_engine_install();
        if (rv < 0)
                return rv;
        if (n_allowed > FL_TLS_MAX_SUBJECTS)
                return -E2BIG;
        tl_want_cfg = true;
        tl_new_cfg = NULL;
        rv = nng_tls_config_alloc(&cfg, role == FL_TLS_SERVER ? NNG_TLS_MODE_SERVER
                                                              : NNG_TLS_MODE_CLIENT);
        nng_tls_engine_config *ecfg = tl_new_cfg;
        tl_want_cfg = false;
        tl_new_cfg = NULL;
        if (rv != 0)
                return -ENOMEM;
        if (!ecfg) { /* another engine answered: refuse rather than run unchecked */
                nng_tls_config_free(cfg);
                return -EOPNOTSUPP;
        }
        if ((rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
            (rv = nng_tls_config_ca_chain(cfg, id->ca_pem, NULL)) != 0 ||
            (rv = nng_tls_config_own_cert(cfg, id->cert_pem, id->key_pem, NULL)) != 0 ||
            (server_name && (rv = nng_tls_config_server_name(cfg, server_name)) != 0)) {
                nng_tls_config_free(cfg);
                return -EINVAL;
        }
        for (size_t i = 0; i < n_allowed; i++) {
                if (fl_strlcpy(ecfg->allowed[i], allowed[i], sizeof(ecfg->allowed[i])) < 0) {
                        nng_tls_config_free(cfg);
                        return -ENAMETOOLONG;
                }
        }
        ecfg->n_allowed = n_allowed;
        *ret_cfg = cfg;
        *ret_ctx = (struct fl_tls_ctx *)ecfg;
        return 0;
}

void fl_tls_ctx_last_error(struct fl_tls_ctx *ctx, char *buf, size_t size)
{
        nng_tls_engine_config *cfg = (nng_tls_engine_config *)ctx;
        pthread_mutex_lock(&cfg->lock);
        snprintf(buf, size, "%s", cfg->last_error);
        pthread_mutex_unlock(&cfg->lock);
}

unsigned fl_tls_ctx_handshakes(struct fl_tls_ctx *ctx, unsigned *ret_failed)
{
        nng_tls_engine_config *cfg = (nng_tls_engine_config *)ctx;
        pthread_mutex_lock(&cfg->lock);
        unsigned ok = cfg->ok;
        if (ret_failed)
                *ret_failed = cfg->failed;
        pthread_mutex_unlock(&cfg->lock);
        return ok;
}

void fl_tls_pipe_peer(nng_pipe p, struct fl_tls_peer *ret)
{
        bool v = false;
        memset(ret, 0, sizeof(*ret));
        tl_peer_query = ret;
        int rv = nng_pipe_get_bool(p, NNG_OPT_TLS_VERIFIED, &v);
        tl_peer_query = NULL;
        if (rv != 0)
                memset(ret, 0, sizeof(*ret));
}
