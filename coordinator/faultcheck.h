/* Check a fault request before it leaves the coordinator, with the very
 * validators the agent will run (each agent/faults/ file's validate()), so
 * `faultline validate` and `--dry-run` catch a bad parameter without an
 * agent. The agent validates again: this is a convenience, not a trust
 * boundary. */
#pragma once

#include <stddef.h>

#include "fl_wire.h"

/* 0, or -EINVAL / -ENOENT (unknown kind) with a one-line reason in err. */
int coord_fault_check(const char *kind, const struct fl_param *params, size_t n, char *err,
                      size_t errlen);
/* Comma-separated list of the fault kinds this build knows. */
void coord_fault_kinds(char *buf, size_t size);
