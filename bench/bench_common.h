/* Helpers shared by the faultline benchmarks: child processes the bench
 * owns (agents, sleep targets), scratch directories, timing and
 * percentiles.
 *
 * Every process started here is recorded and is stopped by
 * bench_cleanup() (SIGTERM, then SIGKILL after a bounded wait), and every
 * directory made here is removed by it. Children also get
 * PR_SET_PDEATHSIG, so a bench killed with SIGKILL still takes its agents
 * and sleep targets with it. Nothing here touches a process the bench did
 * not start. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "fl_transport.h"

#define BENCH_MAX_CHILDREN 256
#define BENCH_MAX_DIRS     160

/* Set by SIGINT/SIGTERM (installed by bench_init); loops poll it. */
extern volatile int bench_stop_requested;

/* Install signal handlers and register bench_cleanup with atexit. */
void bench_init(void);
/* Stop every child and remove every directory recorded so far. */
void bench_cleanup(void);

uint64_t bench_now_ns(void);

/* mkdtemp("<parent>/fl-bench-<tag>-XXXXXX"), mode 0700, recorded for
 * removal. Writes the path to ret[size]. 0 or -errno. */
int bench_mkdtemp(const char *parent, const char *tag, char *ret, size_t size);

/* Start "agent --foreground --listen url --state-dir state_dir", stderr
 * and stdout to log_path (or /dev/null when NULL). 0 and *ret_pid, or
 * -errno. */
int bench_spawn_agent(const char *agent, const char *url, const char *state_dir,
                      const char *log_path, pid_t *ret_pid);
/* Start "/bin/sleep 3600" as a fault target. 0 and *ret_pid, or -errno. */
int bench_spawn_sleep(pid_t *ret_pid);
/* fork+exec argv with stdout to out_path (NULL: /dev/null); wait for it,
 * at most timeout_ms (then SIGKILL). Returns its exit status, or -errno /
 * -ETIMEDOUT. */
int bench_run(const char *const argv[], const char *out_path, int timeout_ms);
/* posix_spawnp argv, stdout and stderr to out_path (truncated) or, when
 * NULL, to /dev/null, and wait for it (no timeout: for short commands
 * like tc and nft, timed by the caller). Not recorded as a child. Returns
 * its exit status (0 = ok), 128+signal, or -errno. */
int bench_spawn_wait(const char *const argv[], const char *out_path);
/* bench_spawn_wait each of cmds[0..n) in turn; the first failure is
 * printed (prefixed with tag) and gives -EIO. */
int bench_spawn_all(const char *tag, const char *const *const cmds[], size_t n);
/* The exec path chaosd/ChaosBlade take for the same faults, one process
 * per command (the net_apply and net_backend benches time them):
 *   loss apply   nft add table inet flbench; nft add chain inet flbench out
 *                { type filter hook output priority 0; }; nft add rule inet
 *                flbench out ip daddr DST numgen random mod 100 < 10 drop
 *   loss revert  nft delete table inet flbench
 *   bw apply     tc qdisc add dev IF root tbf rate 1mbit burst 32kbit latency 400ms
 *   bw revert    tc qdisc del dev IF root
 *   true         /bin/true (what one spawn + wait costs)
 * The bandwidth cap with the exemptions faultline always makes (ssh and
 * the agent's control port), run the way ChaosBlade runs a tc fault with
 * --exclude-port 22,PORT --ignore-peer-port (exec/network/tc: each step
 * through `/bin/sh -c`, the rest of the tree as one `&&` chain; its
 * txqueuelen probe left out). ChaosBlade's tree is a `prio` root with the
 * fault in bands 1-3; this kernel has no sch_prio, so the same steps build
 * faultline's tree instead (htb root whose default class is capped, the
 * exemptions sent direct):
 *   apply   sh -c "tc qdisc add dev IF root handle 1: htb default 1"
 *           sh -c "tc class add dev IF parent 1: classid 1:1 htb rate 1mbit
 *                  burst 32kbit && tc filter add dev IF parent 1: prio 4
 *                  protocol ip u32 match ip dport 22 0xffff flowid 1: &&
 *                  (sport 22, dport PORT, sport PORT)"
 *   revert  sh -c "tc filter show dev IF parent 1: prio 4"
 *           sh -c "tc filter del dev IF parent 1: prio 4"
 *           sh -c "tc qdisc del dev IF root"
 * Each returns 0 or -EIO (the failing command printed, prefixed by tag). */
int bench_exec_loss_apply(const char *tag, const char *nft, const char *dst);
int bench_exec_loss_revert(const char *tag, const char *nft);
int bench_exec_bw_apply(const char *tag, const char *tc, const char *ifname);
int bench_exec_bw_revert(const char *tag, const char *tc, const char *ifname);
int bench_exec_bw_exempt_apply(const char *tag, const char *tc, const char *ifname,
                               unsigned control_port);
int bench_exec_bw_exempt_revert(const char *tag, const char *tc, const char *ifname);
int bench_exec_true(const char *tag);
/* Run argv with its output to scratch and look for needle in it: 1 found,
 * 0 not, or -errno. */
int bench_output_has(const char *const argv[], const char *needle, const char *scratch);
/* True when this process runs in the network namespace `ip netns add
 * name` made (its /run/netns/name is our /proc/self/ns/net). Benches
 * that touch interfaces refuse to run anywhere else. */
bool bench_in_netns(const char *name);

/* Stop one recorded child now (SIGTERM, bounded wait, SIGKILL). */
void bench_stop_child(pid_t pid);

/* HELLO until the agent answers, at most timeout_ms. 0 or -ETIMEDOUT. */
int bench_wait_agent(struct fl_conn *c, int timeout_ms);

/* APPLY process-pause pid=<pid> for duration_ms under lease (ttl_ms).
 * On success copies the fault id to ret_id. Returns 0, a transport -errno,
 * or -EIO (agent said no; reason printed). */
int bench_apply_pause(struct fl_conn *c, pid_t pid, const char *lease, uint64_t duration_ms,
                      uint64_t ttl_ms, char ret_id[FL_ID_LEN]);
int bench_revert(struct fl_conn *c, const char *fault_id);

/* Summary of n samples (ns), sorted in place. Nearest-rank percentiles. */
struct bench_stats {
        size_t n;
        double min_us, p50_us, p90_us, p99_us, max_us, mean_us;
};
void bench_stats_compute(uint64_t *ns, size_t n, struct bench_stats *ret);
void bench_stats_print(const char *label, const struct bench_stats *s);
