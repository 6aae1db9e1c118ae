/* wakeup_floor: CPU one timer wakeup costs on this machine, to put the
 * agent's idle CPU in proportion. Sleeps HZ times a second for SECONDS
 * with nanosleep and reports its own CPU time (every wakeup: timer
 * interrupt, context switch in and out, the syscall).
 *
 *   wakeup_floor [HZ=5] [SECONDS=10]
 *
 * On bare metal a wakeup costs 1-3 us; in a VM, timer programming and
 * idle exits can make it tens of microseconds, which sets a floor under
 * any design that polls. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int main(int argc, char **argv)
{
        long hz = argc > 1 ? atol(argv[1]) : 5, secs = argc > 2 ? atol(argv[2]) : 10;
        if (hz < 1 || hz > 10000 || secs < 1 || secs > 600) {
                fprintf(stderr, "usage: wakeup_floor [HZ 1-10000] [SECONDS 1-600]\n");
                return 2;
        }
        struct timespec period = {.tv_sec = hz == 1, .tv_nsec = hz == 1 ? 0 : 1000000000L / hz};
        struct timespec cpu;
        for (long i = 0; i < hz * secs; i++)
                nanosleep(&period, NULL);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
        double ns = (double)cpu.tv_sec * 1e9 + (double)cpu.tv_nsec;
        printf("wakeup_floor: %ld wakeups/s for %ld s: %.3f ms CPU = %.4f %% of a core, "
               "%.1f us per wakeup\n",
               hz, secs, ns / 1e6, ns / ((double)secs * 1e9) * 100.0,
               ns / 1e3 / (double)(hz * secs));
        return 0;
}
