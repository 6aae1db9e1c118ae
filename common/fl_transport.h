/* Transport: nng req/rep carrying fl_wire messages.
 *
 * URLs are nng URLs: "tcp://127.0.0.1:7070" or "tls+tcp://host:7070".
 * TLS is a configuration change, not a new code path: a process installs
 * its identity once (fl_transport_set_tls) and every tls+tcp:// endpoint
 * it opens afterwards is mutually authenticated (see fl_tls.h).
 *
 * The coordinator holds one fl_conn per agent. fl_conn_call() is one
 * request/reply round trip with a timeout. fl_conn_call_many() sends one
 * request to many agents concurrently (one nng aio each) and waits for all
 * of them: this is the broadcast path used by abort and health, so a fleet
 * of N answers in roughly one round trip rather than N. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "fl_tls.h"
#include "fl_wire.h"

struct fl_conn; /* opaque */

/* Process-wide TLS settings for tls+tcp:// endpoints opened afterwards.
 * The identity is borrowed: it must outlive every endpoint (in practice,
 * the process). allowed (n <= FL_TLS_MAX_SUBJECTS, copied) is the
 * listeners' allowed-subjects list; n = 0 accepts any certificate the CA
 * signed. Not thread-safe: call at start-up. Without it, opening a
 * tls+tcp:// endpoint fails with -ENOKEY. */
void fl_transport_set_tls(const struct fl_tls_identity *id, const char *const *allowed, size_t n);

/* Open a req socket dialing url (non-blocking dial: nng reconnects in the
 * background). Returns 0 and *ret (caller owns, fl_conn_close) or -EINVAL
 * for a bad URL, -ENOMEM, or another -errno mapped from nng. */
int fl_conn_open(const char *url, struct fl_conn **ret);
/* Same, naming the peer: for tls+tcp:// the agent's certificate must carry
 * server_name as its CN or a DNS SAN (fl_conn_open uses the URL's host).
 * -ENOKEY if no TLS identity was installed. */
int fl_conn_open_named(const char *url, const char *server_name, struct fl_conn **ret);
void fl_conn_close(struct fl_conn *c); /* accepts NULL */
const char *fl_conn_url(const struct fl_conn *c);

/* One round trip. req->seq is filled by the call. On success *ret_reply is
 * filled (caller fl_reply_free's it) and 0 is returned — also when the
 * agent answered with a non-OK status (check reply->status). Transport
 * failures: -ETIMEDOUT, -ECONNREFUSED, -EBADMSG (undecodable reply),
 * -EPROTO (reply type/seq mismatch), and for tls+tcp:// -EKEYREJECTED
 * when no TLS session could be set up (fl_conn_error says why). */
int fl_conn_call(struct fl_conn *c, struct fl_request *req, struct fl_reply *ret_reply,
                 int timeout_ms);

/* Broadcast: send req to every conn concurrently. rcs[i] gets the result
 * of conn i (same meaning as fl_conn_call's return) and replies[i] the
 * reply when rcs[i] == 0. The caller fl_reply_free's every replies[i]
 * (zeroed when rcs[i] != 0). Returns the number of conns that answered. */
int fl_conn_call_many(struct fl_conn **conns, size_t n, struct fl_request *req,
                      struct fl_reply *replies, int *rcs, int timeout_ms);

/* Why the last TLS handshake of this connection failed, "" if none did
 * (e.g. "server certificate rejected: The certificate Common Name (CN)
 * does not match with the expected CN"). */
void fl_conn_error(const struct fl_conn *c, char *buf, size_t size);

/* Server side: a rep socket listening on url. tls+tcp:// requires a
 * client certificate signed by the CA (-ENOKEY without an identity). */
struct fl_server;
int fl_server_open(const char *url, struct fl_server **ret);
void fl_server_close(struct fl_server *s);
/* Wait up to timeout_ms for one request frame. Returns 1 and a frame the
 * caller frees with free(), 0 on timeout, -errno on error. Two caps: frames
 * up to FL_TRANSPORT_MAX_FRAME reach the caller, whose decoder answers
 * anything above FL_MAX_FRAME with a clear "too large" reply; beyond
 * FL_TRANSPORT_MAX_FRAME nng closes the connection without reading it. */
#define FL_TRANSPORT_MAX_FRAME (4 * FL_MAX_FRAME)
int fl_server_recv(struct fl_server *s, void **ret_buf, size_t *ret_len, int timeout_ms);

/* Who sent a request: the remote address ("10.0.0.1:51234") and, over
 * tls+tcp://, the verified certificate (fl_tls.h). */
struct fl_peer {
        char addr[64];
        struct fl_tls_peer tls;
};
/* fl_server_recv that also describes the sender (zeroed on 0/-errno). */
int fl_server_recv_peer(struct fl_server *s, void **ret_buf, size_t *ret_len,
                        struct fl_peer *ret_peer, int timeout_ms);
/* Make a blocked fl_server_recv() return -EBADF, from any thread (e.g. a
 * signal-handling thread). The server must still be fl_server_close'd. */
void fl_server_shutdown(struct fl_server *s);
/* Send the reply to the request last received. Takes ownership of nothing. */
int fl_server_send(struct fl_server *s, const void *buf, size_t len);

/* Map an nng error code to -errno. */
int fl_errno_from_nng(int nng_rv);
