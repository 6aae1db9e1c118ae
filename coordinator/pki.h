/* `faultline pki`: a fleet CA and per-host / coordinator certificates,
 * made with mbedTLS (no openssl, no exec).
 *
 *   DIR/ca.crt, DIR/ca.key          the fleet CA (EC P-256, 10 years)
 *   DIR/NAME.crt, DIR/NAME.key      one identity: CN = NAME and a DNS SAN
 *                                   NAME; extendedKeyUsage serverAuth
 *                                   (agent) or clientAuth (coordinator)
 *
 * Every file is written 0600 (write to a temporary file, fsync, rename);
 * DIR is created 0700. Existing files are never overwritten unless
 * force is set. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "fl_tls.h"

struct coord_pki_opts {
        unsigned days; /* validity; 0 = default (CA 3650, others 825) */
        bool expired;  /* valid from 2 days ago to 1 day ago (tests, drills of refusal) */
        bool force;    /* overwrite existing files */
};

/* Create DIR/ca.crt and DIR/ca.key; ca_name is the CA's CN. Returns 0 or
 * -errno with a reason in err (-EEXIST when a CA is already there). */
int coord_pki_init(const char *dir, const char *ca_name, const struct coord_pki_opts *o, char *err,
                   size_t errlen);

/* Issue DIR/NAME.crt and DIR/NAME.key signed by DIR's CA. name must be a
 * valid inventory name. role FL_TLS_SERVER = agent, FL_TLS_CLIENT =
 * coordinator. Returns 0 or -errno with a reason in err. */
int coord_pki_issue(const char *dir, const char *name, enum fl_tls_role role,
                    const struct coord_pki_opts *o, char *err, size_t errlen);

/* The `faultline pki` command line: argv[0] is "pki". Returns an exit code. */
int coord_pki_main(int argc, char **argv);
