/* proc_sample: one line of resource figures for a process, for
 * agent_idle.sh.
 *
 *   proc_sample PID
 *
 * Prints "rss_kib=N hwm_kib=N threads=N ticks=N cpu_ns=N": VmRSS, VmHWM
 * and Threads from /proc/PID/status, utime+stime from /proc/PID/stat (in
 * clock ticks, 10 ms each here), and the process's CPU-time clock
 * (clock_getcpuclockid: every thread, nanosecond resolution). The tick
 * count is too coarse for an idle agent over a minute (12 ms of CPU is
 * the whole 0.02 % budget), hence the second figure. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long status_field(const char *text, const char *key)
{
        const char *p = strstr(text, key);
        return p ? atol(p + strlen(key)) : -1;
}

int main(int argc, char **argv)
{
        if (argc != 2 || atol(argv[1]) < 1) {
                fprintf(stderr, "usage: proc_sample PID\n");
                return 2;
        }
        pid_t pid = (pid_t)atol(argv[1]);
        char path[64], buf[8192];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *fp = fopen(path, "r");
        if (!fp) {
                fprintf(stderr, "proc_sample: %s: %s\n", path, strerror(errno));
                return 4;
        }
        size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        long rss = status_field(buf, "\nVmRSS:"), hwm = status_field(buf, "\nVmHWM:"),
             threads = status_field(buf, "\nThreads:");

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fp = fopen(path, "r");
        if (!fp) {
                fprintf(stderr, "proc_sample: %s: %s\n", path, strerror(errno));
                return 4;
        }
        n = fread(buf, 1, sizeof(buf) - 1, fp);
        fclose(fp);
        buf[n] = '\0';
        /* Fields after the last ')' (comm may hold spaces): state is field
         * 3, utime 14, stime 15. */
        char *p = strrchr(buf, ')');
        unsigned long long utime = 0, stime = 0;
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                         &stime) != 2) {
                fprintf(stderr, "proc_sample: cannot parse %s\n", path);
                return 4;
        }

        clockid_t clk;
        struct timespec ts;
        int rv = clock_getcpuclockid(pid, &clk);
        if (rv != 0 || clock_gettime(clk, &ts) < 0) {
                fprintf(stderr, "proc_sample: cpu clock of %d: %s\n", (int)pid,
                        strerror(rv ? rv : errno));
                return 4;
        }
        printf("rss_kib=%ld hwm_kib=%ld threads=%ld ticks=%llu cpu_ns=%llu\n", rss, hwm, threads,
               utime + stime,
               (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec);
        return 0;
}
