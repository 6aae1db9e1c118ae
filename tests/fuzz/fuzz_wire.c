/* libFuzzer target: the wire decoders (common/fl_wire.c), the agent's
 * first line of defence. Every input is decoded as a request and as a
 * reply; whatever decodes must encode again, and the re-encoding must
 * decode to the same message type (a round-trip property, so a decoder
 * that accepts what the encoder cannot produce is found too). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fl_transport.h"
#include "fl_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char err[FL_MSG_LEN];
        if (size > FL_TRANSPORT_MAX_FRAME) /* nng drops these before us */
                return 0;
        struct fl_request req;
        if (fl_request_decode(data, size, &req, err, sizeof(err)) == 0) {
                void *buf = NULL;
                size_t len = 0;
                if (fl_request_encode(&req, &buf, &len) != 0)
                        abort(); /* decoded but cannot be encoded */
                struct fl_request again;
                if (fl_request_decode(buf, len, &again, err, sizeof(err)) != 0 ||
                    again.type != req.type || again.seq != req.seq)
                        abort();
                fl_request_free(&again);
                free(buf);
        } else if (!err[0]) {
                abort(); /* every refusal carries a reason */
        }
        fl_request_free(&req);

        struct fl_reply rep;
        if (fl_reply_decode(data, size, &rep, err, sizeof(err)) == 0) {
                void *buf = NULL;
                size_t len = 0;
                if (fl_reply_encode(&rep, &buf, &len) != 0)
                        abort();
                struct fl_reply again;
                if (fl_reply_decode(buf, len, &again, err, sizeof(err)) != 0 ||
                    again.status != rep.status)
                        abort();
                fl_reply_free(&again);
                free(buf);
        }
        fl_reply_free(&rep);
        return 0;
}
