/* Mutual TLS for the control channel (nng tls+tcp://).
 *
 * faultline registers its own nng TLS engine, a small mbedTLS wrapper in
 * fl_tls.c, in place of the one built into libnng. The stock engine of
 * nng 1.5 verifies the peer against the CA but cannot tell the
 * application WHO the peer is (NNG_OPT_TLS_PEER_CN arrived in nng 1.6).
 * Our engine records the verified peer's names at the end of the
 * handshake, so the agent can check them against its allowed-subjects
 * list and write them into its audit log, and it records why a handshake
 * failed so the coordinator can say "the agent refused our certificate"
 * instead of "no answer".
 *
 * Identity files are PEM: the fleet CA certificate, our certificate and
 * our private key (unencrypted; readable by the daemon's user only).
 * `faultline pki` creates them (coordinator/pki.c).
 *
 * Thread safety: identities and contexts are immutable after creation
 * except for the last-error text, which is guarded. */
#pragma once

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdbool.h>
#include <stddef.h>

#include "fl_wire.h"

#define FL_TLS_MAX_SUBJECTS 16
#define FL_TLS_MAX_PEM      (64 * 1024) /* biggest CA/cert/key file read */

/* What a certificate may be used for: agents are TLS servers, the
 * coordinator a TLS client; `faultline pki issue` writes the matching
 * extendedKeyUsage, so an agent's certificate cannot drive other agents. */
enum fl_tls_role {
        FL_TLS_CLIENT = 0, /* coordinator */
        FL_TLS_SERVER = 1, /* agent */
};

struct fl_tls_identity; /* opaque: CA + own certificate + key, as PEM */

/* Read and check the three files (each must parse; the key must match the
 * certificate; the certificate must chain to the CA). A private key file
 * readable by group or others is refused. Returns 0 and *ret (caller
 * frees with fl_tls_identity_free), or -errno with a reason in err:
 * -ENOENT/-EACCES (unreadable), -EFBIG (over FL_TLS_MAX_PEM), -EPERM (key
 * file mode), -EINVAL (bad PEM, mismatch, not signed by the CA). */
int fl_tls_identity_load(const char *ca_path, const char *cert_path, const char *key_path,
                         struct fl_tls_identity **ret, char *err, size_t errlen);
void fl_tls_identity_free(struct fl_tls_identity *id); /* accepts NULL */
/* Common name of our own certificate ("" if none). */
const char *fl_tls_identity_name(const struct fl_tls_identity *id);

/* Replace libnng's TLS engine by faultline's. Idempotent; call before any
 * TLS configuration is created. 0 or -errno. */
int fl_tls_engine_install(void);

struct fl_tls_ctx; /* our side of one nng_tls_config (borrowed, see below) */

/* Create an nng TLS configuration for one dialer (FL_TLS_CLIENT: presents
 * our certificate, requires the server's to chain to the CA and to carry
 * server_name as CN or DNS SAN) or one listener (FL_TLS_SERVER: requires
 * a client certificate from the CA; allowed, when n_allowed > 0, lists the
 * subject names — CN or DNS SAN — that get service, which the caller
 * enforces per request with fl_tls_pipe_peer()). On success *ret_cfg is
 * the caller's reference (nng_tls_config_free) and *ret_ctx points into
 * it: valid until that reference is dropped. Returns 0 or -errno. */
int fl_tls_config_new(const struct fl_tls_identity *id, enum fl_tls_role role,
                      const char *server_name, const char *const *allowed, size_t n_allowed,
                      nng_tls_config **ret_cfg, struct fl_tls_ctx **ret_ctx);

/* Why the last handshake made with this context failed ("" if none did),
 * e.g. "server certificate: not signed by the fleet CA". */
void fl_tls_ctx_last_error(struct fl_tls_ctx *ctx, char *buf, size_t size);
/* Handshakes completed / failed with this context. */
unsigned fl_tls_ctx_handshakes(struct fl_tls_ctx *ctx, unsigned *ret_failed);

/* The peer of a pipe: for TLS pipes, the verified certificate's subject
 * (its CN, else its first DNS SAN) and whether it is in the listener's
 * allowed list (true when the list is empty). */
struct fl_tls_peer {
        bool tls;      /* the pipe is a faultline-engine TLS connection */
        bool verified; /* certificate chain verified against the CA */
        bool allowed;  /* subject passes the listener's allowed-subjects */
        char subject[FL_NAME_LEN];
};
/* Fill *ret for pipe p. Never fails: a non-TLS pipe gives tls=false. */
void fl_tls_pipe_peer(nng_pipe p, struct fl_tls_peer *ret);
