/* The one list of fault kinds. Adding a fault: write agent/faults/<x>.c
 * ending in `const struct fault_ops agent_fault_<x>`, then add X(<x>) to
 * AGENT_FAULTS in fault.h. No constructors, no dlopen: what the agent can do is
 * readable here. */
#include <string.h>

#include "fault.h"

#define AGENT_FAULT_ENTRY(n) &agent_fault_##n,
const struct fault_ops *const agent_fault_registry[] = {AGENT_FAULTS(AGENT_FAULT_ENTRY)};

const size_t agent_fault_registry_len =
    sizeof agent_fault_registry / sizeof agent_fault_registry[0];

const struct fault_ops *agent_fault_lookup(const char *kind)
{
        if (!kind)
                return NULL;
        for (size_t i = 0; i < agent_fault_registry_len; i++)
                if (strcmp(agent_fault_registry[i]->kind, kind) == 0)
                        return agent_fault_registry[i];
        return NULL;
}
