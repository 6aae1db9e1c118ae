/* Userspace packet delayer for kernels without sch_netem (RHEL without
 * kernel-modules-extra, minimal kernels): an nftables rule sends the
 * selected packets to an NFQUEUE with `bypass`, and a worker process bound
 * to that queue holds each packet for delay (± jitter) before accepting it.
 *
 * Failure direction: the worker dies with the agent (PR_SET_PDEATHSIG), and
 * with no listener bound `bypass` lets packets through — a dead agent
 * removes the delay, it never blackholes traffic. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct agent_nfq_opts {
        uint32_t delay_us, jitter_us; /* each packet: delay ± uniform jitter */
        /* 0: the worker sleeps whenever nothing is due (an arrival costs a
         * wake-up, ~15-30 us on a VM). Else it keeps reading without
         * sleeping until this long after the last arrival: no wake-up per
         * packet, at the price of one busy CPU while traffic flows. */
        uint32_t busy_poll_us;
};

/* Fork a worker bound to queue `queue` (0..65535). Returns 0 once the
 * worker is bound and ready, with its pid; -EBUSY if the queue is taken. */
int agent_nfq_delayer_start(uint16_t queue, const struct agent_nfq_opts *o, pid_t *ret_pid,
                            char *err, size_t errlen);
/* Stop a worker this process started (SIGKILL + reap). A pid that is not
 * our child (e.g. after an agent restart) is left alone. */
void agent_nfq_delayer_stop(pid_t pid);
/* True while our worker runs. */
int agent_nfq_delayer_alive(pid_t pid);

/* NULL if nftables can queue packets here, else a reason. Probed once in
 * a throw-away network namespace: the native `queue` expression first,
 * then the xtables NFQUEUE target through nf_tables' compat expression
 * (kernels built without nft_queue but with xt_NFQUEUE, as iptables-nft
 * uses it). */
const char *agent_nfq_unavailable(void);
/* True when queueing works only through the xt NFQUEUE target: the rule
 * must then be added with agent_nft_add_xt_queue(). */
bool agent_nfq_use_xt(void);
