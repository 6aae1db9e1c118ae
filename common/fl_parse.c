/* Strict unit parsers. Everything a user types into an experiment file or
 * on the command line ends up here, and a drill must never run with a value
 * the user did not mean: so no strtoul() (it accepts "+5", " 5", "-1" and
 * wraps), no locale, no silent truncation. Every parser builds its result in
 * a local and stores it only on success. */
#include "fl_parse.h"

#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "fl_util.h"

/* Parse a run of decimal digits at *p into *ret, advancing *p. At least one
 * digit is required; overflow is -ERANGE. */
static int parse_digits(const char **p, uint64_t *ret)
{
        const char *s = *p;
        uint64_t v = 0;

        if (!isdigit((unsigned char)*s))
                return -EINVAL;
        for (; isdigit((unsigned char)*s); s++) {
                unsigned d = (unsigned)(*s - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *p = s;
        *ret = v;
        return 0;
}

/* A decimal fraction ".ddd" as numerator/denominator, keeping at most 18
 * digits (10^18 still fits u64); further digits must still be digits but
 * are below any unit we scale by. No fraction leaves num=0, den=1. */
static int parse_fraction(const char **p, uint64_t *num, uint64_t *den)
{
        const char *s = *p;
        unsigned kept = 0;

        *num = 0;
        *den = 1;
        if (*s != '.')
                return 0;
        s++;
        if (!isdigit((unsigned char)*s))
                return -EINVAL; /* "1." and "1.x" */
        for (; isdigit((unsigned char)*s); s++)
                if (kept < 18) {
                        *num = *num * 10 + (uint64_t)(*s - '0');
                        *den *= 10;
                        kept++;
                }
        *p = s;
        return 0;
}

int fl_parse_u64(const char *s, uint64_t *ret)
{
        uint64_t v;
        int r;

        if (!s || !ret)
                return -EINVAL;
        r = parse_digits(&s, &v);
        if (r < 0)
                return r;
        if (*s != '\0')
                return -EINVAL;
        *ret = v;
        return 0;
}

/* ---- durations ----------------------------------------------------------- */

#define USEC_PER_MSEC 1000ULL
#define USEC_PER_SEC  (1000ULL * USEC_PER_MSEC)
#define USEC_PER_MIN  (60ULL * USEC_PER_SEC)
#define USEC_PER_HOUR (60ULL * USEC_PER_MIN)
#define USEC_PER_DAY  (24ULL * USEC_PER_HOUR)
#define MAX_DURATION  (30ULL * USEC_PER_DAY)

/* Longest suffix first, so "ms" is not read as "m" followed by junk. The
 * order of the table is also the order components must appear in. */
static const struct {
        const char *suffix;
        uint64_t usec;
} duration_units[] = {
    {"d", USEC_PER_DAY}, {"h", USEC_PER_HOUR}, {"ms", USEC_PER_MSEC},
    {"m", USEC_PER_MIN}, {"s", USEC_PER_SEC},  {"us", 1},
};

/* Rank for ordering: larger unit, smaller rank. */
static int unit_rank(uint64_t usec)
{
        static const uint64_t order[] = {USEC_PER_DAY, USEC_PER_HOUR, USEC_PER_MIN,
                                         USEC_PER_SEC, USEC_PER_MSEC, 1};
        for (size_t i = 0; i < FL_ARRAY_SIZE(order); i++)
                if (order[i] == usec)
                        return (int)i;
        return -1;
}

/* Components "<number>[.<fraction>]<unit>", each unit at most once and from
 * largest to smallest ("1m30s", not "30s1m" or "1s1s": both are far more
 * likely typos than intent). Summed in microseconds, capped at 30 days, then
 * rounded *up* to milliseconds so that a non-zero duration never becomes a
 * zero one. */
int fl_parse_duration_ms(const char *s, uint64_t *ret_ms)
{
        uint64_t total = 0;
        int last_rank = -1;

        if (!s || !ret_ms || *s == '\0')
                return -EINVAL;

        while (*s) {
                uint64_t n, num, den, unit = 0, part;
                size_t slen = 0;
                int r, rank;

                r = parse_digits(&s, &n);
                if (r < 0)
                        return r;
                r = parse_fraction(&s, &num, &den);
                if (r < 0)
                        return r;
                for (size_t i = 0; i < FL_ARRAY_SIZE(duration_units); i++) {
                        slen = strlen(duration_units[i].suffix);
                        if (strncmp(s, duration_units[i].suffix, slen) == 0) {
                                unit = duration_units[i].usec;
                                break;
                        }
                }
                if (unit == 0)
                        return -EINVAL; /* missing or unknown unit */
                rank = unit_rank(unit);
                if (rank <= last_rank)
                        return -EINVAL;
                last_rank = rank;
                s += slen;

                if (n > MAX_DURATION / unit)
                        return -ERANGE;
                /* num < den <= 10^18 and unit <= 86400e6: the product needs
                 * 128 bits, the quotient is below unit. */
                part = n * unit + (uint64_t)((unsigned __int128)num * unit / den);
                if (part > MAX_DURATION - total)
                        return -ERANGE;
                total += part;
        }

        *ret_ms = total / USEC_PER_MSEC + (total % USEC_PER_MSEC != 0);
        return 0;
}

void fl_format_duration(uint64_t ms, char *buf, unsigned size)
{
        static const struct {
                const char *suffix;
                uint64_t ms;
        } units[] = {
            {"d", 86400000ULL}, {"h", 3600000ULL}, {"m", 60000ULL}, {"s", 1000ULL}, {"ms", 1},
        };
        size_t used = 0;

        if (!buf || size == 0)
                return;
        buf[0] = '\0';
        if (ms == 0) {
                snprintf(buf, size, "0s");
                return;
        }
        for (size_t i = 0; i < FL_ARRAY_SIZE(units); i++) {
                uint64_t q = ms / units[i].ms;
                int n;

                if (q == 0)
                        continue;
                ms -= q * units[i].ms;
                n = snprintf(buf + used, size - used, "%llu%s", (unsigned long long)q,
                             units[i].suffix);
                if (n < 0 || (size_t)n >= size - used) {
                        /* Drop the partial component: "1m3" would lie. */
                        buf[used] = '\0';
                        return;
                }
                used += (size_t)n;
        }
}

/* ---- sizes --------------------------------------------------------------- */

#define MAX_SIZE (1ULL << 60)

/* "<number>[.<fraction>][K|M|G|T|P][i][B]", prefixes case-insensitive and
 * always powers of 1024 (a disk fill of "1G" that is 7% short of what the
 * user meant is a surprise; "i" is accepted for those who write it). A
 * fraction needs a prefix: a fractional byte count is an error, and
 * fractions of larger units are rounded down to whole bytes. */
int fl_parse_size(const char *s, uint64_t *ret_bytes)
{
        static const char prefixes[] = "KMGTP";
        uint64_t n, num, den, mult = 1;
        unsigned __int128 v;
        const char *pp;
        int r;

        if (!s || !ret_bytes)
                return -EINVAL;
        r = parse_digits(&s, &n);
        if (r < 0)
                return r;
        r = parse_fraction(&s, &num, &den);
        if (r < 0)
                return r;

        if (*s && (pp = strchr(prefixes, toupper((unsigned char)*s)))) {
                mult = 1ULL << (10 * (pp - prefixes + 1));
                s++;
                if (*s == 'i')
                        s++;
        }
        if (*s == 'B')
                s++;
        if (*s != '\0')
                return -EINVAL;
        if (num != 0 && mult == 1)
                return -EINVAL;

        if (n > MAX_SIZE / mult)
                return -ERANGE;
        v = (unsigned __int128)n * mult + (unsigned __int128)num * mult / den;
        if (v > MAX_SIZE)
                return -ERANGE;
        *ret_bytes = (uint64_t)v;
        return 0;
}

/* ---- percentages --------------------------------------------------------- */

/* "12.5%" -> 1250. Basis points cannot hold more than two decimals; extra
 * digits are accepted only when they are zeros ("12.500"), since rounding a
 * percentage the user spelled out precisely would be a silent change. */
int fl_parse_percent(const char *s, uint32_t *ret_bp)
{
        uint64_t n, frac = 0;
        unsigned digits = 0;
        int r;

        if (!s || !ret_bp)
                return -EINVAL;
        r = parse_digits(&s, &n);
        if (r < 0)
                return r;
        if (*s == '.') {
                s++;
                if (!isdigit((unsigned char)*s))
                        return -EINVAL;
                for (; isdigit((unsigned char)*s); s++, digits++) {
                        if (digits < 2)
                                frac = frac * 10 + (uint64_t)(*s - '0');
                        else if (*s != '0')
                                return -EINVAL;
                }
                if (digits == 1)
                        frac *= 10;
        }
        if (*s == '%')
                s++;
        if (*s != '\0')
                return -EINVAL;
        if (n > 100 || (n == 100 && frac > 0))
                return -ERANGE;
        *ret_bp = (uint32_t)(n * 100 + frac);
        return 0;
}

/* ---- signals ------------------------------------------------------------- */

/* Standard Linux signals. Aliases come after the canonical name so that
 * fl_signal_name() finds the canonical one first. Real-time signals are
 * handled apart ("RTMIN+n") because SIGRTMIN is a runtime value in glibc. */
static const struct {
        const char *name;
        int sig;
} signal_table[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT}, {"ILL", SIGILL},
    {"TRAP", SIGTRAP}, {"ABRT", SIGABRT},     {"BUS", SIGBUS},   {"FPE", SIGFPE},
    {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM}, {"STKFLT", SIGSTKFLT},
    {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},
    {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},
    {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
    {"IO", SIGIO},     {"PWR", SIGPWR},       {"SYS", SIGSYS},   {"IOT", SIGABRT},
    {"CLD", SIGCHLD},  {"POLL", SIGIO},
};

#define SIG_NUM_MAX 64

/* "RTMIN", "RTMIN+3", "RTMAX", "RTMAX-2" (case-insensitive, prefix already
 * stripped). */
static int parse_rt_signal(const char *s, int *ret_sig)
{
        bool from_min;
        uint64_t off = 0;
        long sig;

        if (strncasecmp(s, "RTMIN", 5) == 0)
                from_min = true;
        else if (strncasecmp(s, "RTMAX", 5) == 0)
                from_min = false;
        else
                return -EINVAL;
        s += 5;
        if (*s) {
                if (*s != (from_min ? '+' : '-'))
                        return -EINVAL;
                if (fl_parse_u64(s + 1, &off) < 0 || off > SIG_NUM_MAX)
                        return -EINVAL;
        }
        sig = from_min ? (long)SIGRTMIN + (long)off : (long)SIGRTMAX - (long)off;
        if (sig < SIGRTMIN || sig > SIGRTMAX)
                return -EINVAL;
        *ret_sig = (int)sig;
        return 0;
}

int fl_parse_signal(const char *s, int *ret_sig)
{
        uint64_t n;

        if (!s || !ret_sig || *s == '\0')
                return -EINVAL;
        if (isdigit((unsigned char)*s)) {
                if (fl_parse_u64(s, &n) < 0 || n < 1 || n > SIG_NUM_MAX)
                        return -EINVAL;
                *ret_sig = (int)n;
                return 0;
        }
        if (strncasecmp(s, "SIG", 3) == 0)
                s += 3;
        for (size_t i = 0; i < FL_ARRAY_SIZE(signal_table); i++)
                if (strcasecmp(s, signal_table[i].name) == 0) {
                        *ret_sig = signal_table[i].sig;
                        return 0;
                }
        return parse_rt_signal(s, ret_sig);
}

const char *fl_signal_name(int sig)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(signal_table); i++)
                if (signal_table[i].sig == sig)
                        return signal_table[i].name;
        if (sig == SIGRTMIN)
                return "RTMIN";
        if (sig == SIGRTMAX)
                return "RTMAX";
        return "?";
}

/* ---- booleans ------------------------------------------------------------ */

int fl_parse_bool(const char *s, bool *ret)
{
        static const char *const yes[] = {"1", "true", "yes", "on"};
        static const char *const no[] = {"0", "false", "no", "off"};

        if (!s || !ret)
                return -EINVAL;
        for (size_t i = 0; i < FL_ARRAY_SIZE(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

/* ---- regular expressions from outside ----------------------------------------
 *
 * glibc's regcomp() copies a repeated sub-expression out once per bound of
 * its repetition, and again for every repetition around it: `(a{100}){100}`
 * is ten thousand nodes, and a run of stacked operators (`a+++...+`) doubles
 * the tree at each one. A YAML file or a wire message could make a
 * coordinator or an agent allocate gigabytes (found by the experiment
 * fuzzer). re_size() estimates that expansion by walking the expression the
 * way regcomp nests it; stacked repetition operators, which mean nothing
 * more than one operator in an ERE, are refused outright. */
#define RE_MAX_LEN   1024
#define RE_MAX_NODES 20000
#define RE_MAX_DEPTH 32
#define RE_TOO_BIG   ((size_t)-1)

static size_t re_mul(size_t a, size_t b)
{
        if (a == RE_TOO_BIG || b == RE_TOO_BIG || (b && a > RE_MAX_NODES / b))
                return RE_TOO_BIG;
        return a * b;
}

/* A repetition bound's digits, saturated past RE_MAX_NODES. */
static size_t re_bound(const char **q)
{
        size_t v = 0;
        while (**q >= '0' && **q <= '9') {
                if (v <= RE_MAX_NODES)
                        v = v * 10 + (size_t)(**q - '0');
                (*q)++;
        }
        return v;
}

/* Size of the sequence at *p up to an unmatched ')' or the end. */
static size_t re_size(const char **p, int depth, const char **why)
{
        size_t total = 0;
        while (**p && **p != ')') {
                size_t atom = 1;
                char c = **p;
                if (c == '|') {
                        (*p)++;
                        continue;
                }
                if (c == '(') {
                        if (depth >= RE_MAX_DEPTH) {
                                *why = "groups nested too deep";
                                return RE_TOO_BIG;
                        }
                        (*p)++;
                        size_t inner = re_size(p, depth + 1, why);
                        if (inner == RE_TOO_BIG)
                                return RE_TOO_BIG;
                        atom = inner + 1; /* the group node itself */
                        if (**p == ')')
                                (*p)++;
                } else if (c == '[') {
                        /* A bracket expression is one node: skip to its
                         * closing ']' (a ']' first in it is literal). */
                        (*p)++;
                        if (**p == '^')
                                (*p)++;
                        if (**p == ']')
                                (*p)++;
                        while (**p && **p != ']') {
                                if (**p == '[' &&
                                    ((*p)[1] == ':' || (*p)[1] == '.' || (*p)[1] == '=')) {
                                        char close = (*p)[1];
                                        (*p) += 2;
                                        while (**p && !(**p == close && (*p)[1] == ']'))
                                                (*p)++;
                                        if (**p)
                                                (*p) += 2;
                                        continue;
                                }
                                (*p)++;
                        }
                        if (**p)
                                (*p)++;
                } else if (c == '\\') {
                        (*p)++;
                        if (**p)
                                (*p)++;
                } else {
                        (*p)++;
                }
                int ops = 0;
                for (;;) {
                        size_t mult;
                        if (**p == '*' || **p == '+' || **p == '?') {
                                mult = 2;
                                (*p)++;
                        } else if (**p == '{' && (*p)[1] >= '0' && (*p)[1] <= '9') {
                                const char *q = *p + 1;
                                size_t lo = re_bound(&q), hi = lo;
                                if (*q == ',') {
                                        q++;
                                        if (*q >= '0' && *q <= '9')
                                                hi = re_bound(&q);
                                }
                                if (*q != '}')
                                        break; /* not a bound: regcomp judges it */
                                *p = q + 1;
                                mult = (hi > lo ? hi : lo) + 1;
                                if (mult > RE_MAX_NODES)
                                        mult = RE_MAX_NODES + 1;
                        } else {
                                break;
                        }
                        if (++ops > 1) {
                                *why = "repetition operators follow one another";
                                return RE_TOO_BIG;
                        }
                        atom = re_mul(atom, mult);
                }
                if (atom == RE_TOO_BIG || total + atom > RE_MAX_NODES) {
                        if (!*why)
                                *why = "its repetitions expand to too many states";
                        return RE_TOO_BIG;
                }
                total += atom;
        }
        return total;
}

int fl_regex_check_size(const char *re, char *err, size_t errlen)
{
        if (strlen(re) > RE_MAX_LEN) {
                snprintf(err, errlen, "regular expression longer than %d bytes", RE_MAX_LEN);
                return -EINVAL;
        }
        const char *p = re, *why = NULL;
        size_t n = 0;
        /* Unmatched ')' are left to regcomp: walk past them. */
        for (;;) {
                size_t part = re_size(&p, 0, &why);
                if (part == RE_TOO_BIG || n + part > RE_MAX_NODES) {
                        snprintf(err, errlen, "regular expression too complex: %s",
                                 why ? why : "its repetitions expand to too many states");
                        return -EINVAL;
                }
                n += part;
                if (!*p)
                        return 0;
                p++;
        }
}
