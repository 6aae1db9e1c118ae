/* The coordinator's side of the fleet: one connection per agent, calls in
 * parallel, and the lease that keeps an agent's faults alive only while
 * this process is alive and can reach the agent.
 *
 * Leases: every fault this coordinator applies carries its lease id. A
 * background thread renews the lease on every agent holding one of its
 * faults, every ttl/5. If this process dies (even SIGKILL) or the network
 * between us is cut, renewals stop and each agent reverts the lease's
 * faults on its own within ttl. The renewer uses its own sockets: an nng
 * req socket carries one request at a time, so sharing would cancel the
 * main thread's calls. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fl_transport.h"
#include "inventory.h"

#define COORD_CALL_TIMEOUT_MS 5000
#define COORD_LEASE_TTL_MS    5000

struct coord_member {
        const struct coord_agent *agent; /* borrowed from the inventory */
        struct fl_conn *conn;            /* owned */
};

struct coord_fleet {
        struct coord_member *m; /* owned */
        size_t n;
};

/* Open a connection to each agent (connections are lazy: an unreachable
 * agent shows up as a timeout on the first call). 0 or -errno. Over
 * tls+tcp:// the agent's certificate must carry its inventory name; the
 * name is remembered for later connections to the same URL (leases). */
int coord_fleet_open(struct coord_fleet *ret, const struct coord_agent *const *agents, size_t n);
void coord_fleet_close(struct coord_fleet *f);
/* Member for an agent name, or NULL. */
struct coord_member *coord_fleet_find(struct coord_fleet *f, const char *name);

/* Same request to every member concurrently (the broadcast path). rcs and
 * replies are arrays of f->n the caller owns; see fl_conn_call_many. */
int coord_fleet_broadcast(struct coord_fleet *f, struct fl_request *req, struct fl_reply *replies,
                          int *rcs, int timeout_ms);

struct coord_lease;
/* Start a lease (random id) renewed every ttl/5 on agents added with
 * coord_lease_add. requester is sent along for the agents' logs. */
int coord_lease_start(uint64_t ttl_ms, const char *requester, struct coord_lease **ret);
const char *coord_lease_id(const struct coord_lease *l);
uint64_t coord_lease_ttl(const struct coord_lease *l);
/* The agent at url now holds faults under this lease. Idempotent. */
int coord_lease_add(struct coord_lease *l, const char *url);
/* Stop renewing (faults then lapse within ttl unless reverted first). */
void coord_lease_stop(struct coord_lease *l);

/* Human-readable transport error ("no answer within 5s", "connection refused"). */
const char *coord_call_error(int rv);
/* Same, with the TLS handshake's own reason when c failed one; may use
 * buf[size]. */
const char *coord_conn_error(const struct fl_conn *c, int rv, char *buf, size_t size);

/* "user@host" of this process, for the requester field. */
void coord_requester_name(char *buf, size_t size);
