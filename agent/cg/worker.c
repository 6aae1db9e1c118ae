/* Worker processes for the stress faults. Forked (not exec'd) children of
 * the agent: the agent has nng's threads running, so between fork() and
 * _exit() a worker only makes raw system calls — no malloc, no stdio —
 * and everything it needs (paths, the seccomp program) is prepared by the
 * parent before the fork.
 *
 * Start-up handshake: the child blocks on a "go" pipe until the parent has
 * moved it into every directory of its group, so not one cycle of load is
 * spent outside the limits; it answers on a "ready" pipe with one byte,
 * 0 or an errno, once its load is in place. */
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cg.h"
#include "fl_log.h"
#include "fl_util.h"

#define IO_CHUNK   (1024 * 1024)
#define PAGE       4096u
#define MADV_POP_W 23 /* MADV_POPULATE_WRITE, Linux 5.14 */
#define MLOCK_ONF  1  /* MLOCK_ONFAULT */
#define READY_FD   3
#define MAX_FILTER 256

/* --- seccomp: built once in the parent, installed by each child ------- */

static struct sock_filter filter[MAX_FILTER];
static unsigned short filter_len;
static bool filter_tried;

/* What a worker does after set-up: spin, touch and hold memory, direct
 * I/O on its file, report readiness, sleep, die. Anything else kills it. */
static void build_filter(void)
{
        static const int allow[] = {
            SCMP_SYS(read),
            SCMP_SYS(write),
            SCMP_SYS(pread64),
            SCMP_SYS(pwrite64),
            SCMP_SYS(mmap),
            SCMP_SYS(munmap),
            SCMP_SYS(madvise),
            SCMP_SYS(mlock),
            SCMP_SYS(mlock2),
            SCMP_SYS(nanosleep),
            SCMP_SYS(clock_nanosleep),
            SCMP_SYS(clock_gettime),
            SCMP_SYS(pause),
            SCMP_SYS(rt_sigreturn),
            SCMP_SYS(restart_syscall),
            SCMP_SYS(fdatasync),
            SCMP_SYS(fsync),
            SCMP_SYS(close),
            SCMP_SYS(exit),
            SCMP_SYS(exit_group),
            SCMP_SYS(gettid),
            SCMP_SYS(sched_yield),
            SCMP_SYS(rt_sigprocmask),
            /* sanitizer runtimes switch signal stacks */ SCMP_SYS(sigaltstack),
            SCMP_SYS(getpid),
        };
        filter_tried = true;
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
        if (!ctx)
                return;
        for (size_t i = 0; i < FL_ARRAY_SIZE(allow); i++)
                if (seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allow[i], 0) < 0)
                        goto out;
        int fd = memfd_create("fl-seccomp", MFD_CLOEXEC);
        if (fd < 0)
                goto out;
        if (seccomp_export_bpf(ctx, fd) == 0) {
                off_t len = lseek(fd, 0, SEEK_CUR);
                if (len > 0 && (size_t)len <= sizeof filter && len % sizeof filter[0] == 0 &&
                    pread(fd, filter, (size_t)len, 0) == len)
                        filter_len = (unsigned short)(len / (off_t)sizeof filter[0]);
        }
        close(fd);
out:
        seccomp_release(ctx);
        if (!filter_len)
                fl_log(LOG_WARNING, "worker seccomp filter unavailable; workers run without it");
}

/* --- the child side: raw system calls only ---------------------------- */

static void report(int code)
{
        unsigned char b = (unsigned char)(code > 255 ? 255 : code);
        ssize_t n = write(READY_FD, &b, 1);
        (void)n;
}

static __attribute__((noreturn)) void die(int code)
{
        report(code);
        _exit(1);
}

static void ms_sleep(long ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static uint64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static __attribute__((noreturn)) void hold_forever(void)
{
        for (;;)
                pause();
}

static __attribute__((noreturn)) void run_cpu(void)
{
        report(0);
        /* The group's cpu.max / cfs_quota decides how much of this runs. */
        for (volatile unsigned long n = 0;; n++)
                ;
}

static __attribute__((noreturn)) void run_mem(const struct agent_worker_spec *w)
{
        size_t len = (size_t)w->bytes;
        unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
                die(errno);
        if (w->ramp_ms == 0) {
                /* Raw mlock (sanitizer runtimes turn the libc one into a
                 * no-op); then populate for writing, which is cheap where
                 * mlock already faulted everything in; touch as a last
                 * resort (kernels before 5.14). */
                if (w->lock)
                        (void)syscall(SYS_mlock, p, len);
                if (madvise(p, len, MADV_POP_W) < 0)
                        for (size_t off = 0; off < len; off += PAGE)
                                p[off] = 1;
                report(0);
                hold_forever();
        }
        if (w->lock)
                (void)syscall(SYS_mlock2, p, len, MLOCK_ONF);
        report(0);
        uint64_t start = mono_ms();
        size_t pages = (len + PAGE - 1) / PAGE;
        for (size_t i = 0; i < pages; i++) {
                p[i * PAGE] = 1;
                if ((i & 255) == 0) {
                        /* Stay on the straight line from 0 to len over ramp_ms. */
                        uint64_t due =
                            start + (uint64_t)((unsigned __int128)i * w->ramp_ms / pages);
                        uint64_t now = mono_ms();
                        if (due > now)
                                ms_sleep((long)(due - now));
                }
        }
        hold_forever();
}

static __attribute__((noreturn)) void run_io(const struct agent_worker_spec *w, int fd)
{
        unsigned char *buf =
            mmap(NULL, IO_CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (buf == MAP_FAILED)
                die(errno);
        for (size_t i = 0; i < IO_CHUNK; i++)
                buf[i] = (unsigned char)(i * 131u + 7u);
        bool ready = false;
        for (;;) {
                for (uint64_t off = 0; off < w->bytes; off += IO_CHUNK) {
                        size_t n = w->bytes - off < IO_CHUNK ? (size_t)(w->bytes - off) : IO_CHUNK;
                        if (pwrite(fd, buf, n, (off_t)off) < 0) {
                                if (!ready)
                                        die(errno);
                                ms_sleep(100);
                        }
                        if (!ready) {
                                ready = true;
                                report(0);
                        }
                }
                for (uint64_t off = 0; off < w->bytes; off += IO_CHUNK) {
                        size_t n = w->bytes - off < IO_CHUNK ? (size_t)(w->bytes - off) : IO_CHUNK;
                        if (pread(fd, buf, n, (off_t)off) < 0)
                                ms_sleep(100);
                }
        }
}

static __attribute__((noreturn)) void child_main(const struct agent_worker_spec *w, int go_fd,
                                                 int ready_fd, pid_t parent)
{
        /* Die with the agent; if it is already gone, do not start. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                _exit(1);
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        sigaction(SIGTERM, &dfl, NULL);
        sigaction(SIGINT, &dfl, NULL);
        sigaction(SIGPIPE, &dfl, NULL);
        char b;
        if (read(go_fd, &b, 1) != 1)
                _exit(1);
        if (dup2(ready_fd, READY_FD) < 0)
                _exit(1);
        if (syscall(SYS_close_range, READY_FD + 1, ~0u, 0) < 0)
                for (int fd = READY_FD + 1; fd < 4096; fd++)
                        close(fd);
        if (w->kind == AGENT_WORKER_MEM) {
                /* If the host runs short anyway, this is the process to go. */
                int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
                if (fd >= 0) {
                        ssize_t n = write(fd, "1000", 4);
                        (void)n;
                        close(fd);
                }
        }
        int io_fd = -1;
        if (w->kind == AGENT_WORKER_IO) {
                /* Opened before the filter, which has no open(). */
                io_fd = open(w->path, O_RDWR | O_DIRECT | O_CLOEXEC);
                if (io_fd < 0 && errno == EINVAL) /* tmpfs and friends: no O_DIRECT */
                        io_fd = open(w->path, O_RDWR | O_DSYNC | O_CLOEXEC);
                if (io_fd < 0)
                        die(errno);
        }
        if (filter_len) {
                struct sock_fprog prog = {.len = filter_len, .filter = filter};
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
                    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
                        die(errno);
        }
        switch (w->kind) {
        case AGENT_WORKER_CPU:
                run_cpu();
        case AGENT_WORKER_MEM:
                run_mem(w);
        case AGENT_WORKER_IO:
                run_io(w, io_fd);
        }
        _exit(1);
}

/* --- the parent side --------------------------------------------------- */

int agent_worker_spawn(const struct agent_cg_group *g, const struct agent_worker_spec *w,
                       pid_t *ret_pid, char *err, size_t errlen)
{
        int go[2], ready[2];
        if (!filter_tried)
                build_filter();
        if (pipe2(go, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(ready, O_CLOEXEC) < 0) {
                int r = -errno;
                close(go[0]);
                close(go[1]);
                return r;
        }
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid == 0) {
                close(go[1]);
                close(ready[0]);
                child_main(w, go[0], ready[1], parent);
        }
        int r = pid < 0 ? -errno : 0;
        close(go[0]);
        close(ready[1]);
        if (r < 0) {
                snprintf(err, errlen, "fork: %s", strerror(-r));
                goto out;
        }
        if ((r = agent_cg_group_attach(g, pid, err, errlen)) < 0)
                goto kill;
        if (write(go[1], "g", 1) != 1) {
                r = -EIO;
                snprintf(err, errlen, "starting worker %d: %s", (int)pid, strerror(errno));
                goto kill;
        }
        struct pollfd pfd = {.fd = ready[0], .events = POLLIN};
        int pr;
        do
                pr = poll(&pfd, 1, w->ready_timeout_ms > 0 ? w->ready_timeout_ms : 5000);
        while (pr < 0 && errno == EINTR);
        unsigned char code = 0;
        if (pr == 0) {
                r = -ETIMEDOUT;
                snprintf(err, errlen, "worker %d not ready after %d ms", (int)pid,
                         w->ready_timeout_ms);
                goto kill;
        }
        if (pr < 0 || read(ready[0], &code, 1) != 1) {
                r = -ECHILD;
                snprintf(err, errlen, "worker %d died while starting", (int)pid);
                goto kill;
        }
        if (code) {
                r = -(int)code;
                snprintf(err, errlen, "worker %d failed to start: %s", (int)pid, strerror(code));
                goto kill;
        }
        *ret_pid = pid;
        goto out;
kill:
        kill(pid, SIGKILL);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
out:
        close(go[1]);
        close(ready[0]);
        return r;
}

int agent_worker_record(json_t *undo, pid_t pid)
{
        json_t *arr = json_object_get(undo, "workers");
        if (!arr) {
                arr = json_array();
                if (!arr || json_object_set_new(undo, "workers", arr) < 0)
                        return -ENOMEM;
        }
        return json_array_append_new(arr, json_integer(pid)) < 0 ? -ENOMEM : 0;
}

int agent_worker_alive(const json_t *undo, const char *dir)
{
        _cleanup_free_ pid_t *pids = NULL;
        int n = agent_cg_procs(dir, false, &pids);
        if (n < 0)
                return n;
        int alive = 0;
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(undo, "workers"), i, v)
        {
                pid_t pid = (pid_t)json_integer_value(v);
                bool member = false;
                for (int k = 0; k < n && !member; k++)
                        member = pids[k] == pid;
                if (!member)
                        continue;
                char path[64], buf[256];
                snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
                _cleanup_fclose_ FILE *f = fopen(path, "re");
                const char *rp = f && fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
                if (rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X')
                        alive++;
        }
        return alive;
}
