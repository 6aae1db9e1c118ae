/* libFuzzer target: the experiment (game day) YAML parser and validator,
 * with the same fault-parameter hook `faultline validate` uses, so the
 * agent's parameter parsers are fuzzed through it as well. */
#include <stdint.h>
#include <string.h>

#include "experiment.h"
#include "faultcheck.h"
#include "inventory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_fault(void *ud, const char *kind, const struct fl_param *params, size_t n,
                       char *err, size_t errlen)
{
        (void)ud;
        return coord_fault_check(kind, params, n, err, errlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const struct coord_validate_hooks hooks = {.validate_fault = check_fault};
        if (size > COORD_FILE_MAX)
                return 0;
        struct coord_experiment e;
        struct coord_diags d = {0};
        /* A relative inventory path resolves under a directory that does
         * not exist: the fuzzer never reads real files. */
        if (coord_experiment_load_buffer("fuzz.yaml", (const char *)data, size,
                                         "/nonexistent-fuzz-dir", &hooks, &e, &d) == 0)
                coord_experiment_free(&e);
        coord_diags_free(&d);
        return 0;
}
