/* Unit tests for common/fl_parse.c: every parser against a table of inputs
 * with the exact expected result or errno, and a check that a failing parse
 * leaves the output untouched. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fl_parse.h"
#include "fl_util.h"

#define SENTINEL64 0xdeadbeefcafef00dULL
#define SENTINEL32 0xdeadbeefU

struct u64_case {
        const char *in;
        int ret;
        uint64_t want;
};

static const struct u64_case duration_cases[] = {
    {"250ms", 0, 250},
    {"5s", 0, 5000},
    {"2m", 0, 120000},
    {"1h", 0, 3600000},
    {"1d", 0, 86400000},
    {"30d", 0, 30ULL * 86400000},
    {"1m30s", 0, 90000},
    {"1h2m3s4ms", 0, 3723004},
    {"1s500ms", 0, 1500},
    {"1500us", 0, 2}, /* rounded up: never shorter than asked */
    {"1000us", 0, 1},
    {"1us", 0, 1},
    {"0s", 0, 0},
    {"0us", 0, 0},
    {"1.5s", 0, 1500},
    {"0.25h", 0, 900000},
    {"007s", 0, 7000},
    {"29d23h59m59s999ms", 0, 30ULL * 86400000 - 1},
    {"", -EINVAL, 0},
    {"5", -EINVAL, 0},
    {"s", -EINVAL, 0},
    {"-5s", -EINVAL, 0},
    {"+5s", -EINVAL, 0},
    {" 5s", -EINVAL, 0},
    {"5s ", -EINVAL, 0},
    {"5 s", -EINVAL, 0},
    {"5x", -EINVAL, 0},
    {"5S", -EINVAL, 0},
    {"5ss", -EINVAL, 0},
    {"1m30", -EINVAL, 0},
    {"30s1m", -EINVAL, 0},
    {"1s1s", -EINVAL, 0},
    {"1.s", -EINVAL, 0},
    {".5s", -EINVAL, 0},
    {"1..5s", -EINVAL, 0},
    {"0x10s", -EINVAL, 0},
    {"31d", -ERANGE, 0},
    {"30d1ms", -ERANGE, 0},
    {"720h1us", -ERANGE, 0},
    {"99999999999999999999s", -ERANGE, 0},
    {"18446744073709551615us", -ERANGE, 0},
};

static const struct u64_case size_cases[] = {
    {"0", 0, 0},
    {"4096", 0, 4096},
    {"4096B", 0, 4096},
    {"10K", 0, 10240},
    {"10k", 0, 10240},
    {"10KB", 0, 10240},
    {"10Ki", 0, 10240},
    {"10KiB", 0, 10240},
    {"1M", 0, 1ULL << 20},
    {"1.5G", 0, 1610612736ULL},
    {"2GB", 0, 2ULL << 30},
    {"3T", 0, 3ULL << 40},
    {"1P", 0, 1ULL << 50},
    {"1024P", 0, 1ULL << 60},
    {"0.5K", 0, 512},
    {"1.0", 0, 1},
    {"1152921504606846976", 0, 1ULL << 60},
    {"", -EINVAL, 0},
    {"K", -EINVAL, 0},
    {"-1", -EINVAL, 0},
    {"+1", -EINVAL, 0},
    {" 1", -EINVAL, 0},
    {"1 ", -EINVAL, 0},
    {"10 K", -EINVAL, 0},
    {"1.5", -EINVAL, 0}, /* a fractional byte */
    {"1.", -EINVAL, 0},
    {"1.5.5K", -EINVAL, 0},
    {"10X", -EINVAL, 0},
    {"10iB", -EINVAL, 0},
    {"10KBB", -EINVAL, 0},
    {"10kb", -EINVAL, 0},
    {"1E", -EINVAL, 0},
    {"0x10", -EINVAL, 0},
    {"1025P", -ERANGE, 0},
    {"1024.5P", -ERANGE, 0},
    {"1152921504606846977", -ERANGE, 0},
    {"18446744073709551616", -ERANGE, 0},
};

static const struct u64_case u64_cases[] = {
    {"0", 0, 0},
    {"7", 0, 7},
    {"007", 0, 7},
    {"18446744073709551615", 0, UINT64_MAX},
    {"18446744073709551616", -ERANGE, 0},
    {"99999999999999999999999", -ERANGE, 0},
    {"", -EINVAL, 0},
    {"-1", -EINVAL, 0},
    {"+1", -EINVAL, 0},
    {" 1", -EINVAL, 0},
    {"1 ", -EINVAL, 0},
    {"1a", -EINVAL, 0},
    {"0x1", -EINVAL, 0},
    {"1.0", -EINVAL, 0},
};

static void run_u64_table(const struct u64_case *cases, size_t n,
                          int (*fn)(const char *, uint64_t *))
{
        for (size_t i = 0; i < n; i++) {
                uint64_t v = SENTINEL64;
                int r = fn(cases[i].in, &v);

                if (r != cases[i].ret || (r == 0 && v != cases[i].want))
                        fail_msg("input '%s': got r=%d v=%llu, want r=%d v=%llu", cases[i].in, r,
                                 (unsigned long long)v, cases[i].ret,
                                 (unsigned long long)cases[i].want);
                if (r < 0)
                        assert_int_equal(v, SENTINEL64);
        }
}

static void test_duration(void **state)
{
        (void)state;
        run_u64_table(duration_cases, FL_ARRAY_SIZE(duration_cases), fl_parse_duration_ms);
        assert_int_equal(fl_parse_duration_ms(NULL, &(uint64_t){0}), -EINVAL);
}

static void test_size(void **state)
{
        (void)state;
        run_u64_table(size_cases, FL_ARRAY_SIZE(size_cases), fl_parse_size);
        assert_int_equal(fl_parse_size(NULL, &(uint64_t){0}), -EINVAL);
}

static void test_u64(void **state)
{
        (void)state;
        run_u64_table(u64_cases, FL_ARRAY_SIZE(u64_cases), fl_parse_u64);
        assert_int_equal(fl_parse_u64(NULL, &(uint64_t){0}), -EINVAL);
}

static void test_percent(void **state)
{
        static const struct {
                const char *in;
                int ret;
                uint32_t want;
        } cases[] = {
            {"0", 0, 0},
            {"50", 0, 5000},
            {"50%", 0, 5000},
            {"12.5%", 0, 1250},
            {"12.50", 0, 1250},
            {"12.500%", 0, 1250},
            {"0.01%", 0, 1},
            {"99.99", 0, 9999},
            {"100", 0, 10000},
            {"100.00%", 0, 10000},
            {"101", -ERANGE, 0},
            {"100.01", -ERANGE, 0},
            {"99999999999999999999999", -ERANGE, 0},
            {"", -EINVAL, 0},
            {"%", -EINVAL, 0},
            {"-1", -EINVAL, 0},
            {"+1", -EINVAL, 0},
            {"1.", -EINVAL, 0},
            {".5", -EINVAL, 0},
            {"12.345", -EINVAL, 0},
            {"50%%", -EINVAL, 0},
            {"50 %", -EINVAL, 0},
            {"50% ", -EINVAL, 0},
            {"5O", -EINVAL, 0},
        };
        (void)state;

        for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
                uint32_t v = SENTINEL32;
                int r = fl_parse_percent(cases[i].in, &v);

                if (r != cases[i].ret || (r == 0 && v != cases[i].want))
                        fail_msg("input '%s': got r=%d v=%u, want r=%d v=%u", cases[i].in, r, v,
                                 cases[i].ret, cases[i].want);
                if (r < 0)
                        assert_int_equal(v, SENTINEL32);
        }
}

static void test_signal(void **state)
{
        static const struct {
                const char *in;
                int ret;
                int want;
        } cases[] = {
            {"SIGKILL", 0, SIGKILL},
            {"KILL", 0, SIGKILL},
            {"kill", 0, SIGKILL},
            {"SigKill", 0, SIGKILL},
            {"sigterm", 0, SIGTERM},
            {"HUP", 0, SIGHUP},
            {"SIGSTOP", 0, SIGSTOP},
            {"CONT", 0, SIGCONT},
            {"USR1", 0, SIGUSR1},
            {"IOT", 0, SIGABRT},
            {"CLD", 0, SIGCHLD},
            {"9", 0, 9},
            {"1", 0, 1},
            {"64", 0, 64},
            {"0", -EINVAL, 0},
            {"65", -EINVAL, 0},
            {"99999999999999999999999", -EINVAL, 0},
            {"-9", -EINVAL, 0},
            {"+9", -EINVAL, 0},
            {"9a", -EINVAL, 0},
            {"", -EINVAL, 0},
            {"SIG", -EINVAL, 0},
            {"SIGFOO", -EINVAL, 0},
            {"SIGSIGKILL", -EINVAL, 0},
            {" KILL", -EINVAL, 0},
            {"KILL ", -EINVAL, 0},
            {"SIG9", -EINVAL, 0},
            {"RTMIN-1", -EINVAL, 0},
            {"RTMAX+1", -EINVAL, 0},
            {"RTMIN+", -EINVAL, 0},
            {"RTMIN+99", -EINVAL, 0},
        };
        (void)state;

        for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
                int v = -12345;
                int r = fl_parse_signal(cases[i].in, &v);

                if (r != cases[i].ret || (r == 0 && v != cases[i].want))
                        fail_msg("input '%s': got r=%d v=%d, want r=%d v=%d", cases[i].in, r, v,
                                 cases[i].ret, cases[i].want);
                if (r < 0)
                        assert_int_equal(v, -12345);
        }

        /* Real-time signals are a runtime value in glibc. */
        int v;
        assert_int_equal(fl_parse_signal("SIGRTMIN", &v), 0);
        assert_int_equal(v, SIGRTMIN);
        assert_int_equal(fl_parse_signal("rtmin+2", &v), 0);
        assert_int_equal(v, SIGRTMIN + 2);
        assert_int_equal(fl_parse_signal("RTMAX-1", &v), 0);
        assert_int_equal(v, SIGRTMAX - 1);
        assert_int_equal(fl_parse_signal("RTMAX", &v), 0);
        assert_int_equal(v, SIGRTMAX);

        /* Names round-trip for every standard signal. */
        assert_string_equal(fl_signal_name(SIGKILL), "KILL");
        assert_string_equal(fl_signal_name(SIGABRT), "ABRT");
        assert_string_equal(fl_signal_name(SIGCHLD), "CHLD");
        assert_string_equal(fl_signal_name(0), "?");
        assert_string_equal(fl_signal_name(-1), "?");
        assert_string_equal(fl_signal_name(1000), "?");
        for (int sig = 1; sig < 32; sig++) {
                const char *name = fl_signal_name(sig);
                int back = 0;

                assert_string_not_equal(name, "?");
                assert_int_equal(fl_parse_signal(name, &back), 0);
                assert_int_equal(back, sig);
        }
}

static void test_bool(void **state)
{
        static const struct {
                const char *in;
                int ret;
                bool want;
        } cases[] = {
            {"true", 0, true},
            {"TRUE", 0, true},
            {"yes", 0, true},
            {"on", 0, true},
            {"1", 0, true},
            {"false", 0, false},
            {"No", 0, false},
            {"off", 0, false},
            {"0", 0, false},
            {"", -EINVAL, false},
            {"2", -EINVAL, false},
            {"y", -EINVAL, false},
            {"true ", -EINVAL, false},
            {"enable", -EINVAL, false},
        };
        (void)state;

        for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
                bool v = !cases[i].want;
                bool before = v;
                int r = fl_parse_bool(cases[i].in, &v);

                if (r != cases[i].ret || (r == 0 && v != cases[i].want))
                        fail_msg("input '%s': got r=%d, want r=%d", cases[i].in, r, cases[i].ret);
                if (r < 0)
                        assert_true(v == before);
        }
}

static void test_format_duration(void **state)
{
        static const struct {
                uint64_t ms;
                const char *want;
        } cases[] = {
            {0, "0s"},           {1, "1ms"},
            {250, "250ms"},      {1000, "1s"},
            {1500, "1s500ms"},   {90000, "1m30s"},
            {3600000, "1h"},     {3723004, "1h2m3s4ms"},
            {86400001, "1d1ms"}, {30ULL * 86400000, "30d"},
        };
        char buf[64];
        (void)state;

        for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
                uint64_t back = 0;

                fl_format_duration(cases[i].ms, buf, sizeof(buf));
                assert_string_equal(buf, cases[i].want);
                /* What we print, we parse back to the same value. */
                assert_int_equal(fl_parse_duration_ms(buf, &back), 0);
                assert_int_equal(back, cases[i].ms);
        }

        /* Too small a buffer: whole components only, always terminated. */
        memset(buf, 'x', sizeof(buf));
        fl_format_duration(90000, buf, 4);
        assert_string_equal(buf, "1m");
        memset(buf, 'x', sizeof(buf));
        fl_format_duration(90000, buf, 1);
        assert_string_equal(buf, "");
        fl_format_duration(90000, buf, 0); /* must not write */
        assert_string_equal(buf, "");
}

static void test_regex_size(void **state)
{
        (void)state;
        char err[160];
        /* What probes and selectors use in practice passes. */
        const char *ok[] = {"role=(primary|promoted)",
                            "seq=([0-9]+)",
                            "^[a-z]+-[0-9]{1,3}$",
                            "([0-9]{1,3}\\.){3}[0-9]{1,3}",
                            "[]a-z]+x*",
                            "[[:alpha:]]+[[:digit:]]{2,4}",
                            "a{1000}",
                            "(a|b|c)?d*e+",
                            "",
                            "unbalanced)paren"};
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                err[0] = 0;
                assert_int_equal(fl_regex_check_size(ok[i], err, sizeof(err)), 0);
        }
        /* Stacked operators (the fuzzer's find: 110 '+' in a row made
         * regcomp allocate over 2 GB), nested bounded repetitions,
         * bounds past the limit, runaway nesting and length. */
        char plus[200] = "se";
        memset(plus + 2, '+', 110);
        strcpy(plus + 112, "q=([0-9]+)");
        char deep[100] = {0}, longre[1100];
        memset(deep, '(', 40);
        memset(longre, 'a', sizeof(longre) - 1);
        longre[sizeof(longre) - 1] = 0;
        const char *bad[] = {
            plus,       "a++",        "a*+", "a{2}{3}", "(a{100}){300}", "((a{30}){30}){30}",
            "a{30000}", "x{1,99999}", deep,  longre};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                err[0] = 0;
                assert_int_equal(fl_regex_check_size(bad[i], err, sizeof(err)), -EINVAL);
                assert_true(strstr(err, "regular expression") != NULL);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_duration),
            cmocka_unit_test(test_size),
            cmocka_unit_test(test_u64),
            cmocka_unit_test(test_percent),
            cmocka_unit_test(test_signal),
            cmocka_unit_test(test_bool),
            cmocka_unit_test(test_format_duration),
            cmocka_unit_test(test_regex_size),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
