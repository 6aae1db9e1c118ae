/* The agent's own nftables table, `inet faultline`, through libnftables
 * (netlink underneath; no exec of nft). Every fault owns base chains named
 * after its id, so revert is "delete my chains", never a search through
 * rules, and nothing outside our table is ever read or written. Our table
 * coexists with iptables-legacy and with the host's own nft tables: every
 * base chain on a hook runs, and a drop in ours drops.
 *
 * Scripts passed in are built by the agent from validated parameters only
 * (addresses, ports, numbers); no user text reaches them verbatim. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_NFT_TABLE "faultline"

/* Run an nft script (one or more commands) atomically: libnftables sends
 * one netlink batch, so either every command applies or none does.
 * Returns 0 or -EIO with the library's message in err. */
int agent_nft_run(const char *script, char *err, size_t errlen);

/* Names of the chains in our table (JSON array of strings; caller
 * json_decref's). An absent table gives an empty array. */
int agent_nft_chains(json_t **ret, char *err, size_t errlen);

/* Number of rules in chain, or -ENOENT if the chain does not exist. */
int agent_nft_chain_rules(const char *chain, char *err, size_t errlen);

/* Delete the chains given (those that exist; missing ones are fine), and
 * the table when no chain is left. Idempotent. */
int agent_nft_delete_chains(const char *const *chains, size_t n, char *err, size_t errlen);

/* Append to chain (a regular chain of our table) one rule holding only the
 * xtables NFQUEUE target (revision 3) for queue, with bypass: a packet for
 * a queue nobody listens on is accepted. libnftables can list such a rule
 * but not write one; this is the path iptables-nft uses on kernels whose
 * nf_tables lacks the native `queue` expression. */
int agent_nft_add_xt_queue(const char *chain, uint16_t queue, bool bypass, char *err,
                           size_t errlen);

/* Drop the cached context (its netlink socket belongs to the namespace it
 * was opened in); the next call opens a new one. For forked probes. */
void agent_nft_reset(void);

/* NULL if nftables is usable here (a dry-run of our table succeeds), else
 * a reason. Cached after the first call. */
const char *agent_nft_unavailable(void);
