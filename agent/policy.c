/* Agent-side policy that needs a request's parameters. The coordinator is
 * not trusted to be careful: these rules hold whatever it sends.
 *
 * allowed-paths: disk-fill and io-stress write files; they may only do so
 * under a configured directory. Both sides are resolved with realpath()
 * first, so "..", symlinks and bind tricks cannot step outside.
 *
 * protected-ports / protected-cidrs: network faults always exempt this
 * traffic (agent/faults/net_common.c). A request that targets nothing but
 * protected traffic — net-port-block port=22, a partition of a protected
 * subnet — could only ever do nothing, so it is refused outright. */
#include <arpa/inet.h>
#include <limits.h>
#include <stdlib.h>

#include "agent.h"
#include "faults/net.h"
#include "fl_util.h"

static bool kind_writes_files(const struct fault_ops *ops)
{
        return strcmp(ops->kind, "disk-fill") == 0 || strcmp(ops->kind, "io-stress") == 0;
}

/* true if path is dir or below it (both canonical). */
static bool path_under(const char *path, const char *dir)
{
        size_t n = strlen(dir);
        if (n == 1 && dir[0] == '/')
                return true;
        return strncmp(path, dir, n) == 0 && (path[n] == 0 || path[n] == '/');
}

/* The address bytes of a parsed CIDR ("10.0.0.0/8" in ->text). */
static bool cidr_addr(const struct net_cidr *c, unsigned char out[16])
{
        char buf[sizeof(c->text)];
        snprintf(buf, sizeof(buf), "%s", c->text);
        buf[strcspn(buf, "/")] = 0;
        return inet_pton(c->family, buf, out) == 1;
}

/* true if c lies entirely inside p. */
static bool cidr_inside(const struct net_cidr *c, const struct net_cidr *p)
{
        unsigned char a[16], b[16];
        if (c->family != p->family || c->prefix < p->prefix || !cidr_addr(c, a) || !cidr_addr(p, b))
                return false;
        unsigned bits = p->prefix;
        for (unsigned i = 0; bits; i++) {
                unsigned take = bits >= 8 ? 8 : bits;
                unsigned char mask = (unsigned char)(0xff << (8 - take));
                if ((a[i] & mask) != (b[i] & mask))
                        return false;
                bits -= take;
        }
        return true;
}

static bool port_protected(const struct agent_net_policy *np, unsigned port)
{
        if (np->control_port && port == np->control_port)
                return true;
        for (size_t i = 0; i < np->n_ports; i++)
                if (np->ports[i] == port)
                        return true;
        return false;
}

static int check_net(const struct fault_ops *ops, const struct fl_param *params, size_t n,
                     char *err, size_t errlen)
{
        const struct agent_net_policy *np = agent_net_policy();
        static const char *const cidr_keys[] = {"dst", "src", "peers"};
        static const char *const port_keys[] = {"port", "dport", "sport"};
        for (size_t k = 0; k < FL_ARRAY_SIZE(cidr_keys); k++) {
                const char *v = fl_params_get(params, n, cidr_keys[k]);
                struct net_cidr c[NET_MAX_CIDRS];
                size_t nc = 0;
                char e[FL_MSG_LEN];
                if (!v || net_parse_cidrs(cidr_keys[k], v, c, NET_MAX_CIDRS, &nc, e, sizeof(e)) < 0)
                        continue; /* the fault reports bad values */
                size_t hit = 0;
                const struct net_cidr *by = NULL;
                for (size_t i = 0; i < nc; i++) {
                        for (size_t j = 0; j < np->n_cidrs; j++) {
                                if (cidr_inside(&c[i], &np->cidrs[j])) {
                                        hit++;
                                        by = &np->cidrs[j];
                                        break;
                                }
                        }
                }
                if (nc && hit == nc) {
                        snprintf(err, errlen,
                                 "policy: %s=%.100s lies inside protected-cidrs (%s): %s "
                                 "would have no effect",
                                 cidr_keys[k], v, by->text, ops->kind);
                        return -EPERM;
                }
        }
        for (size_t k = 0; k < FL_ARRAY_SIZE(port_keys); k++) {
                const char *v = fl_params_get(params, n, port_keys[k]);
                uint16_t r[2];
                char e[FL_MSG_LEN];
                if (!v || net_parse_ports(port_keys[k], v, r, e, sizeof(e)) < 0)
                        continue;
                bool all = true;
                for (unsigned p = r[0]; p <= r[1] && all; p++)
                        all = port_protected(np, p);
                if (all) {
                        snprintf(err, errlen,
                                 "policy: %s=%.40s is protected (the control port and "
                                 "protected-ports are always exempt)",
                                 port_keys[k], v);
                        return -EPERM;
                }
        }
        return 0;
}

int agent_policy_check_params(const struct agent_policy *p, const struct fault_ops *ops,
                              const struct fl_param *params, size_t n, char *err, size_t errlen)
{
        if (strncmp(ops->kind, "net-", 4) == 0)
                return check_net(ops, params, n, err, errlen);
        if (p->n_allowed_paths == 0 || !kind_writes_files(ops))
                return 0;
        const char *path = fl_params_get(params, n, "path");
        if (!path) /* the fault itself reports the missing parameter */
                return 0;
        char real[PATH_MAX], dir[PATH_MAX];
        if (!realpath(path, real)) {
                snprintf(err, errlen,
                         "policy: path %.200s cannot be resolved (%s); allowed-paths "
                         "applies",
                         path, strerror(errno));
                return -EPERM;
        }
        for (size_t i = 0; i < p->n_allowed_paths; i++)
                if (realpath(p->allowed_paths[i], dir) && path_under(real, dir))
                        return 0;
        char list[FL_MSG_LEN / 2] = "";
        for (size_t i = 0; i < p->n_allowed_paths; i++)
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                         p->allowed_paths[i]);
        snprintf(err, errlen, "policy: path %.160s is outside allowed-paths (%s)", real, list);
        return -EPERM;
}
