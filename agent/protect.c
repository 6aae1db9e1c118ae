/* Processes no fault may touch: PID 1 always, plus what the agent
 * registers at start (itself, its parent) and the configured list of
 * names (policy.protected-processes, matched against comm).
 *
 * A fixed array because the list is tiny and written only during start-up,
 * before any fault runs; not thread-safe, by contract of fault.h. */
#include <stddef.h>
#include <string.h>

#include "fault.h"
#include "fl_util.h"

#define PROTECT_MAX      64
#define PROTECT_NAME_LEN 16 /* TASK_COMM_LEN */

static pid_t protected_pids[PROTECT_MAX];
static size_t n_protected;
static char protected_names[PROTECT_MAX][PROTECT_NAME_LEN];
static size_t n_protected_names;

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

int agent_name_is_protected(const char *comm)
{
        if (!comm || !comm[0])
                return 0;
        for (size_t i = 0; i < n_protected_names; i++)
                if (strcmp(protected_names[i], comm) == 0)
                        return 1;
        return 0;
}

void agent_protect_name(const char *comm)
{
        /* A name longer than the kernel's comm could never equal one. */
        if (!comm || !comm[0] || strlen(comm) >= PROTECT_NAME_LEN || agent_name_is_protected(comm))
                return;
        if (n_protected_names < FL_ARRAY_SIZE(protected_names))
                fl_strlcpy(protected_names[n_protected_names++], comm, PROTECT_NAME_LEN);
}
