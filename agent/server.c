/* One frame in, one frame out. Undecodable input still gets an answer (a
 * clear error reply), and never reaches the fault table. */
#include "agent.h"
#include "fl_log.h"
#include "fl_util.h"

int agent_serve_frame(struct agent *a, const void *buf, size_t len, void **ret_buf, size_t *ret_len)
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
                fl_log(LOG_WARNING, "bad request (%zu bytes): %s", len, err);
                fl_request_free(&req);
        } else {
                agent_handle(a, &req, &rep);
                if (rep.status != FL_ST_OK)
                        fl_log(LOG_INFO, "request %s from=%s refused: %s: %s",
                               fl_msg_type_name(req.type), req.requester[0] ? req.requester : "?",
                               fl_status_name(rep.status), rep.msg);
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
