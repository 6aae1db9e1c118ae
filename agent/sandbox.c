/* The agent's sandbox: capabilities, no-new-privs, seccomp allow-list.
 *
 * The allow-list is built from named groups of system calls (the shape of
 * systemd's @system-service sets), each a reason to exist. Anything not
 * listed fails with EPERM rather than killing the agent: an agent killed
 * mid-fault leaves the fault in place until its restart recovers it,
 * while a failed call is an error the agent reports and reverts from.
 * The calls in the "never" group are different: nothing in the agent
 * makes them, so one of them means the process is no longer running our
 * code (exec of a shell, ptrace of a neighbour, a module load). Those
 * kill the process at once (SCMP_ACT_KILL_PROCESS); systemd restarts it
 * and recovery reverts its faults from the journal.
 *
 * Argument filters close the wide doors of otherwise needed calls:
 * socket() only for AF_UNIX/INET/INET6/NETLINK, unshare() only
 * CLONE_NEWNET (the qdisc probes), clone() never with a new user, mount
 * or PID namespace, clone3() answers ENOSYS (its flags sit behind a
 * pointer seccomp cannot read; glibc then falls back to clone()).
 *
 * Children inherit the filter; stress workers add their own, stricter one
 * (agent/cg/worker.c), so prctl/seccomp stay allowed for that. */
#include <linux/capability.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include "agent.h"
#include "fl_log.h"
#include "fl_util.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif

/* ---- capabilities --------------------------------------------------------- */

/* What the faults need, and nothing else (docs/security.md has the table):
 * NET_ADMIN   qdiscs, filters, nftables (every net-* fault)
 * KILL        signals to other users' processes (process-kill/-pause)
 * SYS_ADMIN   cgroup writes on v1, unshare(CLONE_NEWNET) for probes
 * DAC_OVERRIDE, DAC_READ_SEARCH, FOWNER
 *             files and cgroups owned by other users (disk faults in a
 *             service's data directory, /proc of other users)
 * IPC_LOCK    memory-stress lock=true beyond RLIMIT_MEMLOCK
 * Dropped notably: SYS_PTRACE (pidfds need no ptrace access), SYS_MODULE,
 * SYS_RAWIO, SETUID/SETGID, NET_RAW, SYS_BOOT, SYS_TIME, MKNOD, BPF. */
static const int keep_caps[] = {
    CAP_NET_ADMIN,       CAP_KILL,   CAP_SYS_ADMIN, CAP_DAC_OVERRIDE,
    CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_IPC_LOCK,
};

static bool cap_kept(int cap)
{
        for (size_t i = 0; i < FL_ARRAY_SIZE(keep_caps); i++)
                if (keep_caps[i] == cap)
                        return true;
        return false;
}

int agent_sandbox_drop_privileges(char *err, size_t errlen)
{
        struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct data[2];
        memset(data, 0, sizeof(data));
        if (syscall(SYS_capget, &hdr, data) < 0) {
                snprintf(err, errlen, "capget: %s", strerror(errno));
                return -errno;
        }
        /* Bounding set first (needs CAP_SETPCAP, which goes next). Without
         * CAP_SETPCAP (a unit that bounded us already) only what is still
         * in the set matters, and capset below removes it from use. */
        unsigned stuck = 0;
        for (int cap = 0; cap <= CAP_LAST_CAP; cap++) {
                if (cap_kept(cap) || prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 1)
                        continue;
                if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
                        if (errno != EPERM) {
                                snprintf(err, errlen,
                                         "dropping capability %d from the bounding set: %s", cap,
                                         strerror(errno));
                                return -errno;
                        }
                        stuck++;
                }
        }
        if (stuck)
                fl_log(LOG_WARNING,
                       "sandbox: %u capabilities stay in the bounding set (no CAP_SETPCAP); "
                       "they are still removed from the permitted set",
                       stuck);
        prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        uint32_t keep[2] = {0, 0};
        for (size_t i = 0; i < FL_ARRAY_SIZE(keep_caps); i++)
                keep[keep_caps[i] / 32] |= 1u << (keep_caps[i] % 32);
        for (int w = 0; w < 2; w++) {
                /* Never add what we did not have (an unprivileged test run). */
                data[w].permitted &= keep[w];
                data[w].effective &= keep[w];
                data[w].inheritable = 0;
        }
        if (syscall(SYS_capset, &hdr, data) < 0) {
                snprintf(err, errlen, "capset: %s", strerror(errno));
                return -errno;
        }
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
                snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
                return -errno;
        }
        return 0;
}

/* ---- seccomp ----------------------------------------------------------------- */

struct sc_group {
        const char *name;
        const char *const *calls;
};

#define GROUP(n, ...)                                                                              \
        {                                                                                          \
                n, (const char *const[])                                                           \
                {                                                                                  \
                        __VA_ARGS__, NULL                                                          \
                }                                                                                  \
        }

/* Allowed unconditionally. Names unknown on this architecture are skipped. */
static const struct sc_group allow_groups[] = {
    GROUP("basic-io", "read", "write", "readv", "writev", "pread64", "pwrite64", "lseek", "close",
          "dup", "dup2", "dup3", "fcntl", "ioctl", "pipe", "pipe2", "flock", "fsync", "fdatasync",
          "sync", "syncfs", "sync_file_range"),
    GROUP("file-system", "open", "openat", "openat2", "creat", "stat", "fstat", "lstat",
          "newfstatat", "statx", "statfs", "fstatfs", "access", "faccessat", "faccessat2",
          "readlink", "readlinkat", "getdents", "getdents64", "getcwd", "chdir", "fchdir", "mkdir",
          "mkdirat", "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "ftruncate",
          "truncate", "fallocate", "fadvise64", "chmod", "fchmod", "fchmodat", "umask",
          "memfd_create", "utimensat", "getxattr", "fgetxattr", "lgetxattr"),
    GROUP("memory", "mmap", "munmap", "mprotect", "madvise", "brk", "mremap", "mlock", "mlock2",
          "munlock", "mlockall", "munlockall", "mincore", "msync", "membarrier"),
    GROUP("threads", "futex", "futex_waitv", "set_robust_list", "get_robust_list", "rseq",
          "set_tid_address", "gettid", "sched_yield", "sched_getaffinity", "sched_setaffinity",
          "sched_getparam", "sched_getscheduler", "getpriority", "setpriority", "exit",
          "exit_group"),
    GROUP("time", "nanosleep", "clock_nanosleep", "clock_gettime", "clock_getres", "gettimeofday",
          "time", "timerfd_create", "timerfd_settime", "timerfd_gettime", "timer_create",
          "timer_settime", "timer_gettime", "timer_delete", "setitimer", "getitimer", "alarm"),
    GROUP("signals", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigtimedwait",
          "rt_sigsuspend", "rt_sigpending", "sigaltstack", "restart_syscall", "pause"),
    GROUP("events", "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1",
          "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2"),
    GROUP("network", "socketpair", "bind", "listen", "accept", "accept4", "connect", "getsockname",
          "getpeername", "setsockopt", "getsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg",
          "sendmmsg", "recvmmsg", "shutdown"),
    /* the faults themselves: signals by pidfd, waiting for workers */
    GROUP("process", "kill", "tgkill", "tkill", "pidfd_open", "pidfd_send_signal", "wait4",
          "waitid", "getpid", "getppid", "getpgid", "getsid", "vfork", "fork"),
    GROUP("identity", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
          "getgroups", "capget", "uname", "sysinfo", "getrandom", "getrusage", "times", "prlimit64",
          "getrlimit", "getcpu"),
    /* workers install their own, stricter filter */
    GROUP("child-sandbox", "prctl", "seccomp"),
};

/* Never made by the agent: the process is compromised. Kill it. */
static const struct sc_group kill_group = GROUP(
    "never",
#ifndef SANDBOX_SANITIZER
    "execve", "execveat",
#endif
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsmount",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
    "swapon", "swapoff", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key",
    "request_key", "open_by_handle_at", "iopl", "ioperm", "acct", "settimeofday", "clock_settime",
    "adjtimex", "clock_adjtime", "setns", "setuid", "setgid", "setreuid", "setregid", "setresuid",
    "setresgid", "setfsuid", "setfsgid", "setgroups", "capset", "personality", "process_vm_writev",
#ifndef SANDBOX_SANITIZER
    "ptrace", "process_vm_readv"
#else
    "uselib"
#endif
);

#ifdef SANDBOX_SANITIZER
/* LeakSanitizer stops the world with ptrace at exit; reports exec
 * llvm-symbolizer. Sanitizer builds are for tests only. */
static const struct sc_group sanitizer_group =
    GROUP("sanitizer", "ptrace", "process_vm_readv", "execve");
#endif

static int add_group(scmp_filter_ctx ctx, const struct sc_group *g, uint32_t action)
{
        for (const char *const *c = g->calls; *c; c++) {
                int nr = seccomp_syscall_resolve_name(*c);
                if (nr == __NR_SCMP_ERROR)
                        continue; /* not on this architecture */
                int rv = seccomp_rule_add(ctx, action, nr, 0);
                if (rv < 0 && rv != -EEXIST)
                        return rv;
        }
        return 0;
}

/* Allowed with argument checks (see the comment at the top). */
static int add_conditional(scmp_filter_ctx ctx)
{
        static const int families[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};
        int rv;
        for (size_t i = 0; i < FL_ARRAY_SIZE(families); i++)
                if ((rv = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                                           SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)families[i]))) < 0)
                        return rv;
        if ((rv = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(unshare), 1,
                                   SCMP_A0(SCMP_CMP_EQ, CLONE_NEWNET))) < 0)
                return rv;
        const scmp_datum_t ns = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWCGROUP |
                                CLONE_NEWIPC | CLONE_NEWUTS;
        if ((rv = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                                   SCMP_A0(SCMP_CMP_MASKED_EQ, ns, 0))) < 0)
                return rv;
        int nr = seccomp_syscall_resolve_name("clone3");
        if (nr != __NR_SCMP_ERROR &&
            (rv = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0)) < 0)
                return rv;
        return 0;
}

static int build(scmp_filter_ctx *ret)
{
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
        int rv;
        if (!ctx)
                return -ENOMEM;
        for (size_t i = 0; i < FL_ARRAY_SIZE(allow_groups); i++)
                if ((rv = add_group(ctx, &allow_groups[i], SCMP_ACT_ALLOW)) < 0)
                        goto fail;
#ifdef SANDBOX_SANITIZER
        if ((rv = add_group(ctx, &sanitizer_group, SCMP_ACT_ALLOW)) < 0)
                goto fail;
#endif
        if ((rv = add_group(ctx, &kill_group, SCMP_ACT_KILL_PROCESS)) < 0 ||
            (rv = add_conditional(ctx)) < 0)
                goto fail;
        *ret = ctx;
        return 0;
fail:
        seccomp_release(ctx);
        return rv;
}

int agent_sandbox_install_filter(char *err, size_t errlen)
{
        scmp_filter_ctx ctx = NULL;
        int rv = build(&ctx);
        if (rv < 0) {
                snprintf(err, errlen, "building the seccomp filter: %s", strerror(-rv));
                return rv;
        }
        /* Every thread (nng's included), not just this one. */
        if ((rv = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0 ||
            (rv = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 1)) < 0 ||
            (rv = seccomp_load(ctx)) < 0) {
                snprintf(err, errlen, "loading the seccomp filter: %s", strerror(-rv));
                seccomp_release(ctx);
                return rv;
        }
        seccomp_release(ctx);
        return 0;
}

static bool in_group(const struct sc_group *g, const char *name)
{
        for (const char *const *c = g->calls; *c; c++)
                if (strcmp(*c, name) == 0)
                        return true;
        return false;
}

int agent_sandbox_verdict(const char *name)
{
        if (seccomp_syscall_resolve_name(name) == __NR_SCMP_ERROR)
                return -ENOENT;
        if (in_group(&kill_group, name))
                return -1;
        for (size_t i = 0; i < FL_ARRAY_SIZE(allow_groups); i++)
                if (in_group(&allow_groups[i], name))
                        return 1;
        if (!strcmp(name, "socket") || !strcmp(name, "unshare") || !strcmp(name, "clone"))
                return 1; /* with argument checks */
        return 0;
}
