/* HTTP probe JSON-pointer checks (RFC 6901), table-driven. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "probe.h"

static const char doc[] = "{\"status\":\"ok\",\"n\":42,\"f\":0.5,\"t\":true,\"z\":null,"
                          "\"a\":[{\"x\":\"first\"},{\"x\":\"second\"}],"
                          "\"a/b\":\"slash\",\"m~n\":\"tilde\",\"\":\"empty\",\"o\":{}}";

static void test_table(void **state)
{
        (void)state;
        static const struct {
                const char *body, *pointer, *want;
                int rv;
        } cases[] = {
            {doc, "/status", "ok", 1},
            {doc, "/status", "OK", 0},
            {doc, "/n", "42", 1},
            {doc, "/n", "42.0", 1},
            {doc, "/n", "43", 0},
            {doc, "/n", "forty-two", 0},
            {doc, "/f", "0.5", 1},
            {doc, "/t", "true", 1},
            {doc, "/t", "false", 0},
            {doc, "/z", "null", 1},
            {doc, "/a/1/x", "second", 1},
            {doc, "/a/0/x", "second", 0},
            {doc, "/a/2/x", "x", -EINVAL},  /* index past the end */
            {doc, "/a/01/x", "x", -EINVAL}, /* leading zero: not an index */
            {doc, "/a/-/x", "x", -EINVAL},
            {doc, "/a~1b", "slash", 1}, /* ~1 is '/' */
            {doc, "/m~0n", "tilde", 1}, /* ~0 is '~' */
            {doc, "/", "empty", 1},     /* the empty key */
            {doc, "/o", "{}", 0},       /* objects never equal a scalar */
            {doc, "/missing", "x", -EINVAL},
            {"not json", "/x", "y", -EINVAL},
            {"\"bare\"", "", "bare", 1}, /* "" is the whole document */
            {"[1,2,3]", "/2", "3", 1},
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char got[160];
                int rv = coord_json_pointer_match(cases[i].body, cases[i].pointer, cases[i].want,
                                                  got, sizeof(got));
                if (rv != cases[i].rv)
                        print_error("case %zu: %s want %s: got rv %d (%s)\n", i, cases[i].pointer,
                                    cases[i].want, rv, got);
                assert_int_equal(rv, cases[i].rv);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {cmocka_unit_test(test_table)};
        return cmocka_run_group_tests(tests, NULL, NULL);
}
