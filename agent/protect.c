/* Processes no fault may touch: PID 1 always, plus what the agent
 * registers at start (itself, its parent) and the configured list.
 *
 * A fixed array because the list is tiny and written only during start-up,
 * before any fault runs; not thread-safe, by contract of fault.h. */
#include <stddef.h>

#include "fault.h"
#include "fl_util.h"

#define PROTECT_MAX 64

static pid_t protected_pids[PROTECT_MAX];
static size_t n_protected;

int agent_pid_is_protected(pid_t pid)
{
        /* 0 and negative values mean "process group" to kill(2); no fault
         * should ever get that far, but refusing them here is free. */
        if (pid <= 1)
                return 1;
        for (size_t i = 0; i < n_protected; i++)
                if (protected_pids[i] == pid)
                        return 1;
        return 0;
}

void agent_protect_pid(pid_t pid)
{
        if (agent_pid_is_protected(pid))
                return;
        /* A full list cannot report failure through this prototype; a
         * protected list of 64 entries is far beyond any configuration, so
         * the extra entry is dropped rather than overwriting one. */
        if (n_protected < FL_ARRAY_SIZE(protected_pids))
                protected_pids[n_protected++] = pid;
}
