/* Strict parsers for the units users type: durations, sizes, percentages,
 * signals. Every parser rejects trailing garbage, negative numbers and
 * overflow with -EINVAL / -ERANGE and leaves *ret untouched on failure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "250ms", "5s", "2m", "1h", "1500us", "1m30s". A bare number is an error
 * (units are mandatory). Result in milliseconds; "0s" is allowed, the caller
 * decides whether zero is acceptable. Max 30 days. */
int fl_parse_duration_ms(const char *s, uint64_t *ret_ms);

/* "4096", "10K", "10KiB", "1.5G", "2GB" (powers of 1024; B suffix optional).
 * Max 2^60. */
int fl_parse_size(const char *s, uint64_t *ret_bytes);

/* "50", "50%", "12.5%". Range [0,100]. Result in hundredths of a percent
 * (basis points): "12.5%" -> 1250. */
int fl_parse_percent(const char *s, uint32_t *ret_bp);

/* Unsigned decimal integer with no sign, no spaces, no trailing bytes. */
int fl_parse_u64(const char *s, uint64_t *ret);

/* "SIGKILL", "KILL", "kill", "9". Returns -EINVAL for unknown names and
 * numbers outside 1..64. */
int fl_parse_signal(const char *s, int *ret_sig);
/* Name of a signal without the SIG prefix ("KILL"), or "?" */
const char *fl_signal_name(int sig);

/* "true/false/yes/no/1/0/on/off". */
int fl_parse_bool(const char *s, bool *ret);

/* Format a duration in ms as "1m30s" / "250ms" into buf. */
void fl_format_duration(uint64_t ms, char *buf, unsigned size);

/* Refuse a regular expression whose compiled form would be huge (glibc
 * copies bounded repetitions out, nested ones multiplied) or that stacks
 * repetition operators (`a++`): -EINVAL with the reason in err. Call
 * before regcomp() on anything from outside. */
int fl_regex_check_size(const char *re, char *err, size_t errlen);
