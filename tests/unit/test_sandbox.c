/* Unit tests for agent/sandbox.c: the seccomp allow-list does what
 * docs/security.md says, in a forked child that installs the very filter
 * the agent installs.
 *
 *   - ordinary calls the agent makes still work (getpid, files, netlink
 *     and inet sockets, fork/wait);
 *   - calls outside the list fail with EPERM (syslog, AF_PACKET sockets,
 *     unshare of a user namespace) and clone3 with ENOSYS;
 *   - calls in the "never" group kill the process with SIGSYS (ptrace,
 *     execve, mount), so a compromised agent cannot exec a shell;
 *   - capability drop keeps exactly the listed set (root only). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"

/* Run fn in a child under the filter. Returns the child's wait status. */
static int in_sandbox(int (*fn)(void))
{
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char err[256];
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
                    agent_sandbox_install_filter(err, sizeof(err)) < 0)
                        _exit(100);
                _exit(fn());
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return status;
}

static void assert_exit(int status, int code)
{
        if (!WIFEXITED(status))
                fail_msg("child did not exit normally (signal %d)",
                         WIFSIGNALED(status) ? WTERMSIG(status) : -1);
        assert_int_equal(WEXITSTATUS(status), code);
}

static void assert_sigsys(int status)
{
        if (!WIFSIGNALED(status))
                fail_msg("child exited %d instead of being killed",
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        assert_int_equal(WTERMSIG(status), SIGSYS);
}

static int ok_calls(void)
{
        char path[] = "/tmp/fl-sandbox-XXXXXX";
        int fd = mkstemp(path);
        if (fd < 0 || write(fd, "x", 1) != 1 || fsync(fd) < 0 || close(fd) < 0 || unlink(path) < 0)
                return 1;
        int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, 0);
        if (s < 0)
                return 2;
        close(s);
        s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0)
                return 3;
        close(s);
        pid_t pid = fork(); /* glibc: clone() without namespace flags */
        if (pid < 0)
                return 4;
        if (pid == 0)
                _exit(7);
        int st = 0;
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 7)
                return 5;
        return getpid() > 0 ? 0 : 6;
}

static void test_allowed_calls_work(void **state)
{
        assert_exit(in_sandbox(ok_calls), 0);
}

static int denied_calls(void)
{
        errno = 0;
        if (syscall(SYS_syslog, 3, NULL, 0) != -1 || errno != EPERM)
                return 1;
        if (socket(AF_PACKET, SOCK_RAW, 0) != -1 || errno != EPERM)
                return 2;
        if (unshare(CLONE_NEWUSER) != -1 || errno != EPERM)
                return 3;
        if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
                return 4;
        return 0;
}

static void test_denied_calls_fail_with_eperm(void **state)
{
        assert_exit(in_sandbox(denied_calls), 0);
}

__attribute__((unused)) static int call_ptrace(void)
{
        ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        return 0;
}
__attribute__((unused)) static int call_execve(void)
{
        char sh[] = "/bin/sh", c[] = "-c", cmd[] = "exit 0";
        char *const argv[] = {sh, c, cmd, NULL};
        execve(sh, argv, NULL);
        return 0;
}
static int call_mount(void)
{
        mount("none", "/tmp", "tmpfs", 0, NULL);
        return 0;
}

static void test_never_calls_kill(void **state)
{
#if !defined(__SANITIZE_ADDRESS__) /* sanitizer builds allow both (sandbox.c) */
        assert_sigsys(in_sandbox(call_ptrace));
        assert_sigsys(in_sandbox(call_execve));
#endif
        assert_sigsys(in_sandbox(call_mount));
}

static void test_verdict_table(void **state)
{
        static const struct {
                const char *name;
                int verdict;
        } table[] = {
            {"read", 1},         {"openat", 1},      {"pidfd_send_signal", 1},
            {"fallocate", 1},    {"socket", 1},      {"clone", 1},
            {"syslog", 0},       {"kexec_load", -1}, {"mount", -1},
            {"init_module", -1}, {"setuid", -1},     {"no_such_call_xyz", -ENOENT},
        };
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                int v = agent_sandbox_verdict(table[i].name);
                if (v != table[i].verdict)
                        fail_msg("%s: verdict %d, want %d", table[i].name, v, table[i].verdict);
        }
}

static int drop_and_check(void)
{
        char err[256];
        if (agent_sandbox_drop_privileges(err, sizeof(err)) < 0)
                return 1;
        struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3};
        struct __user_cap_data_struct d[2];
        if (syscall(SYS_capget, &hdr, d) < 0)
                return 2;
        uint64_t eff = d[0].effective | ((uint64_t)d[1].effective << 32);
        uint64_t want = (1ull << CAP_NET_ADMIN) | (1ull << CAP_KILL) | (1ull << CAP_SYS_ADMIN) |
                        (1ull << CAP_DAC_OVERRIDE) | (1ull << CAP_DAC_READ_SEARCH) |
                        (1ull << CAP_FOWNER) | (1ull << CAP_IPC_LOCK);
        if (eff != want)
                return 3;
        if (prctl(PR_CAPBSET_READ, CAP_SYS_PTRACE, 0, 0, 0) != 0 ||
            prctl(PR_CAPBSET_READ, CAP_SYS_MODULE, 0, 0, 0) != 0)
                return 4;
        if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
                return 5;
        return 0;
}

static void test_capabilities_dropped(void **state)
{
        if (geteuid() != 0)
                skip();
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(drop_and_check());
        int status = 0;
        waitpid(pid, &status, 0);
        assert_exit(status, 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_allowed_calls_work),
            cmocka_unit_test(test_denied_calls_fail_with_eperm),
            cmocka_unit_test(test_never_calls_kill),
            cmocka_unit_test(test_verdict_table),
            cmocka_unit_test(test_capabilities_dropped),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
