/* Audit records: who did what to this host, and what came of it.
 *
 * Every record goes to the agent's log as one line starting "AUDIT " with
 * key=value fields (journald keeps it), and optionally as one JSON object
 * per line appended to <state-dir>/audit.log (0600, O_APPEND: each record
 * is a single write(2), so concurrent readers never see half a line). */
#include <fcntl.h>
#include <jansson.h>
#include <time.h>

#include "agent.h"
#include "fl_log.h"
#include "fl_util.h"

static int audit_fd = -1;
static char actor[FL_NAME_LEN + 16];

int agent_audit_open(const char *state_dir, char *err, size_t errlen)
{
        char path[FL_VAL_LEN + 16];
        snprintf(path, sizeof(path), "%s/audit.log", state_dir);
        int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                int e = errno;
                snprintf(err, errlen, "audit log %s: %s", path, strerror(e));
                return -e;
        }
        if (audit_fd >= 0)
                close(audit_fd);
        audit_fd = fd;
        return 0;
}

void agent_audit_set_actor(const char *who)
{
        snprintf(actor, sizeof(actor), "%s", who && *who ? who : "");
}

const char *agent_audit_actor(void)
{
        return actor[0] ? actor : "agent";
}

static void set_str(json_t *o, const char *k, const char *v)
{
        if (v && *v)
                json_object_set_new(o, k, json_string(v));
}

void agent_audit(const char *action, const char *kind, const char *id, const char *target,
                 const char *lease, const char *result, const char *detail)
{
        const char *who = agent_audit_actor();
        /* The log line quotes target and detail: keep their quotes apart. */
        char tq[FL_NAME_LEN], dq[FL_MSG_LEN];
        snprintf(tq, sizeof(tq), "%s", target ? target : "");
        snprintf(dq, sizeof(dq), "%s", detail ? detail : "");
        for (char *p = tq; *p; p++)
                if (*p == '"' || *p == '\n')
                        *p = '\'';
        for (char *p = dq; *p; p++)
                if (*p == '"' || *p == '\n')
                        *p = '\'';
        fl_log(LOG_NOTICE,
               "AUDIT who=\"%s\" action=%s kind=%s id=%s target=\"%s\" lease=%s result=%s%s%s%s",
               who, action ? action : "-", kind && *kind ? kind : "-", id && *id ? id : "-", tq,
               lease && *lease ? lease : "-", result ? result : "-", dq[0] ? " detail=\"" : "", dq,
               dq[0] ? "\"" : "");
        if (audit_fd < 0)
                return;
        json_t *o = json_object();
        if (!o)
                return;
        char ts[40];
        uint64_t now = fl_now_wall_ms();
        time_t t = (time_t)(now / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts + n, sizeof(ts) - n, ".%03uZ", (unsigned)(now % 1000));
        set_str(o, "time", ts);
        set_str(o, "who", who);
        set_str(o, "action", action);
        set_str(o, "kind", kind);
        set_str(o, "id", id);
        set_str(o, "target", target);
        set_str(o, "lease", lease);
        set_str(o, "result", result);
        set_str(o, "detail", detail);
        char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (!line)
                return;
        size_t len = strlen(line);
        line[len] = '\n'; /* json_dumps' NUL becomes the newline: one write */
        if (write(audit_fd, line, len + 1) < 0)
                fl_log(LOG_WARNING, "audit log write failed: %s", strerror(errno));
        free(line);
}
