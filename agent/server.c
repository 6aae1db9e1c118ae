/* One frame in, one frame out. Undecodable input still gets an answer (a
 * clear error reply), and never reaches the fault table. */
#include "agent.h"
#include "fl_log.h"
#include "fl_util.h"

int agent_serve_frame(struct agent *a, const void *buf, size_t len, void **ret_buf, size_t *ret_len)
{
        return agent_serve_frame_peer(a, NULL, buf, len, ret_buf, ret_len);
}

/* Anyone who reaches the port can send garbage: log it, but at most a few
 * lines a second, so a flood cannot fill the disk through the journal. */
static void log_bad_request(const struct fl_peer *peer, size_t len, const char *err)
{
        static uint64_t window_ms;
        static unsigned in_window, dropped;
        uint64_t now = fl_now_mono_ms();
        if (now - window_ms >= 1000) {
                if (dropped)
                        fl_log(LOG_WARNING, "%u more bad request(s) not logged", dropped);
                window_ms = now;
                in_window = dropped = 0;
        }
        if (++in_window > 10) {
                dropped++;
                return;
        }
        fl_log(LOG_WARNING, "bad request (%zu bytes) from %s: %s", len, peer ? peer->addr : "local",
               err);
}

/* Who a peer is, for refusals and the audit log. */
static void peer_name(const struct fl_peer *peer, char *buf, size_t size)
{
        if (!peer)
                snprintf(buf, size, "local");
        else if (peer->tls.tls)
                snprintf(buf, size, "%s", peer->tls.subject[0] ? peer->tls.subject : "?");
        else
                snprintf(buf, size, "insecure:%s", peer->addr);
}

static bool audited(enum fl_msg_type t)
{
        return t == FL_MSG_APPLY || t == FL_MSG_REVERT || t == FL_MSG_ABORT;
}

/* One audit record per APPLY (the fault, or why there is none) and per
 * refused REVERT/ABORT; reverts that happen are audited by core.c, once
 * per fault. */
static void audit_request(const struct fl_request *req, const struct fl_reply *rep)
{
        if (req->type == FL_MSG_APPLY && rep->status == FL_ST_OK && rep->n_faults == 1) {
                const struct fl_fault_info *fi = &rep->faults[0];
                char dur[64];
                snprintf(dur, sizeof(dur), "duration=%llums",
                         (unsigned long long)(fi->expires_ms - fi->started_ms));
                agent_audit("apply", fi->kind, fi->id, fi->target, fi->lease, "ok", dur);
        } else if (rep->status != FL_ST_OK && audited(req->type) &&
                   !(req->type != FL_MSG_APPLY && rep->status == FL_ST_NOT_FOUND)) {
                /* A revert of what is already gone changed nothing: not audited. */
                agent_audit(fl_msg_type_name(req->type), req->kind, req->fault_id, "", req->lease,
                            fl_status_name(rep->status), rep->msg);
        }
}

int agent_serve_frame_peer(struct agent *a, const struct fl_peer *peer, const void *buf, size_t len,
                           void **ret_buf, size_t *ret_len)
{
        struct fl_request req;
        struct fl_reply rep;
        char err[FL_MSG_LEN] = "";
        int rv = fl_request_decode(buf, len, &req, err, sizeof(err));

        if (rv < 0) {
                memset(&rep, 0, sizeof(rep));
                rep.version = FL_PROTO_VERSION;
                rep.type = req.type > FL_MSG_INVALID && req.type < FL_MSG_TYPE_MAX ? req.type
                                                                                   : FL_MSG_HELLO;
                rep.seq = req.seq;
                rep.status = fl_status_from_decode_error(rv);
                snprintf(rep.msg, sizeof(rep.msg), "rejected: %.*s", (int)sizeof(rep.msg) - 16,
                         err);
                log_bad_request(peer, len, err);
                fl_request_free(&req);
        } else if (peer && peer->tls.tls && !(peer->tls.verified && peer->tls.allowed)) {
                /* Verified by the CA but not one of ours: no service at all,
                 * not even HELLO. Nothing below is reached. */
                char who[FL_NAME_LEN + 16];
                peer_name(peer, who, sizeof(who));
                memset(&rep, 0, sizeof(rep));
                rep.version = FL_PROTO_VERSION;
                rep.type = req.type;
                rep.seq = req.seq;
                rep.status = FL_ST_REFUSED;
                snprintf(rep.msg, sizeof(rep.msg),
                         "certificate \"%.100s\" is not in this agent's tls.allowed-subjects", who);
                fl_log(LOG_WARNING, "request %s from %s (%s) refused: %s",
                       fl_msg_type_name(req.type), who, peer->addr, rep.msg);
                agent_audit_set_actor(who);
                if (audited(req.type))
                        agent_audit(fl_msg_type_name(req.type), req.kind, req.fault_id, "",
                                    req.lease, "refused", rep.msg);
                agent_audit_set_actor(NULL);
                fl_request_free(&req);
        } else {
                char who[FL_NAME_LEN + 16];
                peer_name(peer, who, sizeof(who));
                agent_audit_set_actor(who);
                agent_handle(a, &req, &rep);
                if (rep.status != FL_ST_OK)
                        fl_log(LOG_INFO, "request %s from=%s (%s) refused: %s: %s",
                               fl_msg_type_name(req.type), req.requester[0] ? req.requester : "?",
                               who, fl_status_name(rep.status), rep.msg);
                audit_request(&req, &rep);
                agent_audit_set_actor(NULL);
                fl_request_free(&req);
        }
        rv = fl_reply_encode(&rep, ret_buf, ret_len);
        fl_reply_free(&rep);
        if (rv < 0) {
                /* Should not happen (the table only holds bounded strings);
                 * answer with a bare error so the caller is not left waiting. */
                struct fl_reply bare = {
                    .version = FL_PROTO_VERSION, .type = FL_MSG_HELLO, .status = FL_ST_INTERNAL};
                snprintf(bare.msg, sizeof(bare.msg), "agent could not encode its reply");
                fl_log(LOG_ERR, "reply encode failed: %s", strerror(-rv));
                rv = fl_reply_encode(&bare, ret_buf, ret_len);
        }
        return rv;
}
