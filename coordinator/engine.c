/* Probe engine: libcurl multi for HTTP/prometheus, worker threads for TCP
 * and command probes. See engine.h.
 *
 * A worker thread signals completion with curl_multi_wakeup (thread-safe
 * by libcurl's contract), so the owning thread sleeps in curl_multi_poll
 * and still hears about non-curl probes at once. */
#include "engine.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fl_util.h"

struct slot {
        struct slot *next;
        uint64_t token;
        struct coord_http_op *op; /* curl probes */
        /* worker-thread probes */
        bool threaded;
        pthread_t th;
        atomic_bool done;
        const struct coord_probe *spec;
        char *marker;
        CURLM *wake; /* the engine's multi handle, for curl_multi_wakeup */
        /* result */
        int rv;
        struct coord_probe_result res;
};

struct coord_engine {
        CURLM *multi;
        struct slot *running; /* in flight */
        struct slot *ready;   /* finished, not yet returned */
        size_t n_running, n_ready;
};

int coord_engine_new(struct coord_engine **ret)
{
        struct coord_engine *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        e->multi = curl_multi_init();
        if (!e->multi) {
                free(e);
                return -ENOMEM;
        }
        /* Reuse connections to the same server across samples; never more
         * than a handful per host, so a guardrail cannot flood a service. */
        curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
        *ret = e;
        return 0;
}

static void slot_free(struct slot *s)
{
        coord_http_op_free(s->op);
        free(s->marker);
        free(s);
}

void coord_engine_free(struct coord_engine *e)
{
        if (!e)
                return;
        for (struct slot *s = e->running, *n; s; s = n) {
                n = s->next;
                if (s->threaded)
                        pthread_join(s->th, NULL);
                else if (s->op)
                        curl_multi_remove_handle(e->multi, coord_http_op_easy(s->op));
                slot_free(s);
        }
        for (struct slot *s = e->ready, *n; s; s = n) {
                n = s->next;
                slot_free(s);
        }
        curl_multi_cleanup(e->multi);
        free(e);
}

size_t coord_engine_inflight(const struct coord_engine *e)
{
        return e->n_running + e->n_ready;
}

static void *worker(void *arg)
{
        struct slot *s = arg;
        s->rv = coord_probe_run_marked(s->spec, s->marker, &s->res);
        atomic_store(&s->done, true);
        curl_multi_wakeup(s->wake);
        return NULL;
}

int coord_engine_submit(struct coord_engine *e, const struct coord_probe *spec, const char *marker,
                        uint64_t token)
{
        if (coord_engine_inflight(e) >= COORD_ENGINE_MAX_INFLIGHT)
                return -EAGAIN;
        struct slot *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->token = token;
        s->spec = spec;
        s->wake = e->multi;
        if (marker && !(s->marker = strdup(marker))) {
                free(s);
                return -ENOMEM;
        }
        if (spec->kind == COORD_PROBE_HTTP || spec->kind == COORD_PROBE_PROMETHEUS) {
                s->res.started_wall_ms = fl_now_wall_ms();
                int r = coord_http_op_start(spec, s->marker, &s->op, &s->res);
                if (r < 0) {
                        slot_free(s);
                        return r;
                }
                if (curl_multi_add_handle(e->multi, coord_http_op_easy(s->op)) != CURLM_OK) {
                        slot_free(s);
                        return -ENOMEM;
                }
        } else {
                s->threaded = true;
                int r = pthread_create(&s->th, NULL, worker, s);
                if (r != 0) {
                        slot_free(s);
                        return -r;
                }
        }
        s->next = e->running;
        e->running = s;
        e->n_running++;
        return 0;
}

static void move_ready(struct coord_engine *e, struct slot *s)
{
        struct slot **pp = &e->running;
        while (*pp && *pp != s)
                pp = &(*pp)->next;
        if (*pp)
                *pp = s->next;
        e->n_running--;
        s->next = e->ready;
        e->ready = s;
        e->n_ready++;
}

/* Harvest finished transfers and threads into e->ready. */
static void harvest(struct coord_engine *e)
{
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(e->multi, &left))) {
                if (m->msg != CURLMSG_DONE)
                        continue;
                CURL *easy = m->easy_handle;
                CURLcode cr = m->data.result;
                struct slot *s = NULL;
                for (struct slot *it = e->running; it; it = it->next)
                        if (it->op && coord_http_op_easy(it->op) == easy) {
                                s = it;
                                break;
                        }
                curl_multi_remove_handle(e->multi, easy);
                if (!s)
                        continue;
                s->rv = coord_http_op_finish(s->op, (int)cr, &s->res);
                s->op = NULL;
                move_ready(e, s);
        }
        for (struct slot *s = e->running, *n; s; s = n) {
                n = s->next;
                if (s->threaded && atomic_load(&s->done)) {
                        pthread_join(s->th, NULL);
                        s->threaded = false;
                        move_ready(e, s);
                }
        }
}

int coord_engine_poll(struct coord_engine *e, int timeout_ms, struct coord_engine_done *out,
                      size_t max)
{
        int still = 0;
        if (curl_multi_perform(e->multi, &still) != CURLM_OK)
                return -EIO;
        harvest(e);
        if (e->n_ready == 0 && timeout_ms > 0) {
                /* Waits even with nothing in flight; _wakeup ends it early. */
                if (curl_multi_poll(e->multi, NULL, 0, timeout_ms, NULL) != CURLM_OK)
                        return -EIO;
                if (curl_multi_perform(e->multi, &still) != CURLM_OK)
                        return -EIO;
                harvest(e);
        }
        size_t got = 0;
        while (e->ready && got < max) {
                struct slot *s = e->ready;
                e->ready = s->next;
                e->n_ready--;
                out[got].token = s->token;
                out[got].rv = s->rv;
                out[got].res = s->res;
                got++;
                slot_free(s);
        }
        return (int)got;
}

void coord_engine_wakeup(struct coord_engine *e)
{
        curl_multi_wakeup(e->multi);
}
