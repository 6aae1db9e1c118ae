/* Logging core: one line per event on stderr, syslog levels, key=value
 * context. journald captures stderr of a service, so no syslog socket.
 *
 *   fl_log(LOG_INFO, "fault applied id=%s kind=%s lease=%s", ...);
 *
 * Output: "2026-11-23T10:00:00.123Z faultline-agent[123] info: <msg>". */
#pragma once

#include <syslog.h>

void fl_log_init(const char *ident, int max_level);
void fl_log_set_level(int max_level);
int fl_log_get_level(void);
/* "debug", "info", "notice", "warning", "err", "crit" -> LOG_*; -EINVAL otherwise. */
int fl_log_level_from_string(const char *s);
void fl_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
