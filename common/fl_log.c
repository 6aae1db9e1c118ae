/* Logging core. Each line is formatted completely in a stack buffer and
 * handed to the kernel in one write(2): lines from different threads then
 * never interleave (a pipe, which is what journald gives a service, keeps
 * writes up to PIPE_BUF = 4096 bytes atomic, and our lines stay below it).
 * stdio is avoided on purpose: its buffer is shared and a line could be
 * split across two flushes. */
#include "fl_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "fl_util.h"

#define LOG_LINE_MAX 4096

static char log_ident[64] = "faultline";
static atomic_int log_max_level = LOG_INFO;

static const char *const level_names[] = {
    [LOG_EMERG] = "emerg",     [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "err",
    [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

static int clamp_level(int level)
{
        if (level < LOG_EMERG)
                return LOG_EMERG;
        if (level > LOG_DEBUG)
                return LOG_DEBUG;
        return level;
}

/* Called once at start-up, before threads exist: the ident is not guarded. */
void fl_log_init(const char *ident, int max_level)
{
        if (ident && *ident)
                snprintf(log_ident, sizeof(log_ident), "%s", ident);
        fl_log_set_level(max_level);
}

void fl_log_set_level(int max_level)
{
        atomic_store(&log_max_level, clamp_level(max_level));
}

int fl_log_get_level(void)
{
        return atomic_load(&log_max_level);
}

int fl_log_level_from_string(const char *s)
{
        /* Aliases users commonly type; syslog's own spellings come first. */
        static const struct {
                const char *name;
                int level;
        } aliases[] = {
            {"error", LOG_ERR},
            {"warn", LOG_WARNING},
        };

        if (!s)
                return -EINVAL;
        for (int l = LOG_EMERG; l <= LOG_DEBUG; l++)
                if (strcasecmp(s, level_names[l]) == 0)
                        return l;
        for (size_t i = 0; i < FL_ARRAY_SIZE(aliases); i++)
                if (strcasecmp(s, aliases[i].name) == 0)
                        return aliases[i].level;
        return -EINVAL;
}

/* "2026-11-23T10:00:00.123Z": UTC, so lines from hosts in different zones
 * sort together in a game-day report. */
static size_t format_timestamp(char *buf, size_t size)
{
        struct timespec ts;
        struct tm tm;
        size_t n;

        clock_gettime(CLOCK_REALTIME, &ts);
        if (!gmtime_r(&ts.tv_sec, &tm))
                return 0;
        n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
        if (n == 0)
                return 0;
        n += (size_t)snprintf(buf + n, size - n, ".%03ldZ", ts.tv_nsec / 1000000L);
        return n < size ? n : size - 1;
}

void fl_log(int level, const char *fmt, ...)
{
        char line[LOG_LINE_MAX];
        int saved_errno = errno; /* callers log and then look at errno */
        size_t n, msg_start, len;
        const char *p;
        va_list ap;
        int k;

        level = clamp_level(level);
        if (level > atomic_load(&log_max_level))
                return;

        n = format_timestamp(line, sizeof(line));
        k = snprintf(line + n, sizeof(line) - n, " %s[%ld] %s: ", log_ident, (long)getpid(),
                     level_names[level]);
        if (k > 0)
                n += (size_t)k;
        if (n >= sizeof(line) - 1)
                n = sizeof(line) - 2;
        msg_start = n;

        va_start(ap, fmt);
        errno = saved_errno; /* so %m reports the caller's errno */
        k = vsnprintf(line + n, sizeof(line) - 1 - n, fmt, ap);
        va_end(ap);
        if (k < 0)
                k = 0;
        len = n + (size_t)k;
        if (len > sizeof(line) - 2) {
                /* Truncated: say so rather than cut a value silently. */
                len = sizeof(line) - 2;
                memcpy(line + len - 3, "...", 3);
        }

        /* One event, one line: a newline in a message (a peer's error text,
         * a target name) must not forge a second log line. */
        for (size_t i = msg_start; i < len; i++)
                if (line[i] == '\n' || line[i] == '\r' || line[i] == '\0')
                        line[i] = ' ';
        line[len++] = '\n';

        for (p = line; len > 0;) {
                ssize_t w = write(STDERR_FILENO, p, len);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        break; /* nowhere left to report it */
                }
                p += w;
                len -= (size_t)w;
        }
        errno = saved_errno;
}
