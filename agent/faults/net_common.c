/* Selector parsing, nftables rules and qdisc plumbing shared by the
 * network faults. See net.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <sys/stat.h>
#include <linux/pkt_sched.h>
#include <math.h>

#include "faults/net.h"
#include "fl_log.h"
#include "fl_parse.h"
#include "fl_util.h"
#include "nl/nft.h"
#include "nl/qdisc.h"

static struct agent_net_policy policy = {.ports = {22}, .n_ports = 1};

void agent_net_policy_set(const struct agent_net_policy *p)
{
        policy = *p;
}

const struct agent_net_policy *agent_net_policy(void)
{
        return &policy;
}

static const char *param(const struct agent_fault *f, const char *key)
{
        return fl_params_get(f->params, f->n_params, key);
}

int net_parse_cidrs(const char *key, const char *v, struct net_cidr *out, size_t max,
                    size_t *ret_n, char *err, size_t errlen)
{
        char buf[FL_VAL_LEN];
        size_t n = 0;
        if (fl_strlcpy(buf, v, sizeof(buf)) < 0 || !*v) {
                snprintf(err, errlen, "%s=: expected address[/prefix][,...]", key);
                return -EINVAL;
        }
        char *save = NULL;
        for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                if (n == max) {
                        snprintf(err, errlen, "%s=: at most %zu addresses", key, max);
                        return -EINVAL;
                }
                char *slash = strchr(tok, '/');
                unsigned prefix = 0;
                int family = strchr(tok, ':') ? AF_INET6 : AF_INET;
                unsigned maxp = family == AF_INET ? 32 : 128;
                if (slash) {
                        uint64_t p;
                        *slash = 0;
                        if (fl_parse_u64(slash + 1, &p) < 0 || p > maxp) {
                                snprintf(err, errlen, "%s=%s: prefix must be 0..%u", key, v, maxp);
                                return -EINVAL;
                        }
                        prefix = (unsigned)p;
                } else {
                        prefix = maxp;
                }
                unsigned char addr[16];
                if (inet_pton(family, tok, addr) != 1) {
                        snprintf(err, errlen, "%s=: \"%s\" is not an IPv4 or IPv6 address", key,
                                 tok);
                        return -EINVAL;
                }
                /* Zero the host bits: nft refuses "10.1.2.3/8" otherwise. */
                for (unsigned bit = prefix; bit < maxp; bit++)
                        addr[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
                char text[INET6_ADDRSTRLEN];
                inet_ntop(family, addr, text, sizeof(text));
                out[n].family = family;
                out[n].prefix = prefix;
                snprintf(out[n].text, sizeof(out[n].text), "%s/%u", text, prefix);
                n++;
        }
        *ret_n = n;
        return 0;
}

int net_parse_ports(const char *key, const char *v, uint16_t range[2], char *err, size_t errlen)
{
        char buf[32];
        uint64_t lo, hi;
        if (fl_strlcpy(buf, v, sizeof(buf)) < 0)
                goto bad;
        char *dash = strchr(buf, '-');
        if (dash)
                *dash = 0;
        if (fl_parse_u64(buf, &lo) < 0 || lo == 0 || lo > 65535)
                goto bad;
        hi = lo;
        if (dash && (fl_parse_u64(dash + 1, &hi) < 0 || hi < lo || hi > 65535))
                goto bad;
        range[0] = (uint16_t)lo;
        range[1] = (uint16_t)hi;
        return 0;
bad:
        snprintf(err, errlen, "%s=%s: expected a port 1..65535 or a range like 8000-8100", key, v);
        return -EINVAL;
}

int net_parse_rate(const char *v, uint64_t *ret_bps)
{
        static const struct {
                const char *unit;
                double mult;
        } units[] = {
                {"bit", 1},      {"kbit", 1e3},  {"mbit", 1e6},  {"gbit", 1e9},
                {"bps", 8},      {"kbps", 8e3},  {"mbps", 8e6},  {"gbps", 8e9},
        };
        char *end = NULL;
        if (!v || !isdigit((unsigned char)v[0]))
                return -EINVAL;
        double x = strtod(v, &end);
        if (end == v || !isfinite(x) || x <= 0)
                return -EINVAL;
        for (size_t i = 0; i < FL_ARRAY_SIZE(units); i++) {
                if (strcasecmp(end, units[i].unit) == 0) {
                        double bps = x * units[i].mult;
                        if (bps < 1000 || bps > 1e12)
                                return -ERANGE;
                        *ret_bps = (uint64_t)bps;
                        return 0;
                }
        }
        return -EINVAL;
}

int net_parse_bp(const struct agent_fault *f, const char *key, bool required, uint32_t *ret,
                 char *err, size_t errlen)
{
        const char *v = param(f, key);
        *ret = 0;
        if (!v) {
                if (required) {
                        snprintf(err, errlen, "%s= is required (e.g. %s=10%%)", key, key);
                        return -EINVAL;
                }
                return 0;
        }
        if (fl_parse_percent(v, ret) < 0 || (*ret == 0 && required)) {
                snprintf(err, errlen, "%s=%s: expected a percentage in (0,100]", key, v);
                return -EINVAL;
        }
        return 0;
}

static bool ifname_ok(const char *s)
{
        size_t n = strlen(s);
        if (n == 0 || n >= IFNAMSIZ)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!isalnum((unsigned char)s[i]) && !strchr("._-@", s[i]))
                        return false;
        return true;
}

static bool cgroup_path_ok(const char *s)
{
        if (!*s || *s == '/' || strstr(s, ".."))
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && !strchr("._-@:/", *s))
                        return false;
        return true;
}

int net_sel_parse(const struct agent_fault *f, struct net_sel *s, enum net_dir default_dir,
                  unsigned allowed_dirs, char *err, size_t errlen)
{
        const char *v;
        int rv;
        memset(s, 0, sizeof(*s));
        s->dir = default_dir;
        if ((v = param(f, "interface"))) {
                if (!ifname_ok(v)) {
                        snprintf(err, errlen, "interface=%s: not an interface name", v);
                        return -EINVAL;
                }
                snprintf(s->ifname, sizeof(s->ifname), "%s", v);
        }
        if ((v = param(f, "dst")) &&
            (rv = net_parse_cidrs("dst", v, s->dst, NET_MAX_CIDRS, &s->n_dst, err, errlen)) < 0)
                return rv;
        if ((v = param(f, "src")) &&
            (rv = net_parse_cidrs("src", v, s->src, NET_MAX_CIDRS, &s->n_src, err, errlen)) < 0)
                return rv;
        if ((v = param(f, "protocol"))) {
                if (strcmp(v, "tcp") == 0)
                        s->proto = IPPROTO_TCP;
                else if (strcmp(v, "udp") == 0)
                        s->proto = IPPROTO_UDP;
                else if (strcmp(v, "icmp") == 0)
                        s->proto = IPPROTO_ICMP;
                else {
                        snprintf(err, errlen, "protocol=%s: expected tcp, udp or icmp", v);
                        return -EINVAL;
                }
        }
        if ((v = param(f, "dport"))) {
                if ((rv = net_parse_ports("dport", v, s->dport, err, errlen)) < 0)
                        return rv;
                s->has_dport = true;
        }
        if ((v = param(f, "sport"))) {
                if ((rv = net_parse_ports("sport", v, s->sport, err, errlen)) < 0)
                        return rv;
                s->has_sport = true;
        }
        if (s->proto == IPPROTO_ICMP && (s->has_dport || s->has_sport)) {
                snprintf(err, errlen, "dport=/sport= make no sense with protocol=icmp");
                return -EINVAL;
        }
        if ((v = param(f, "cgroup"))) {
                if (!cgroup_path_ok(v) || strlen(v) >= sizeof(s->cgroup)) {
                        snprintf(err, errlen,
                                 "cgroup=%s: expected a cgroup v2 path relative to the cgroup2 "
                                 "mount, like system.slice/nginx.service",
                                 v);
                        return -EINVAL;
                }
                snprintf(s->cgroup, sizeof(s->cgroup), "%s", v);
        }
        if ((v = param(f, "unit"))) {
                size_t n = strlen(v);
                bool ok = n > 0 && n < sizeof(s->unit) && !strchr(v, '/') && v[0] != '.';
                for (size_t i = 0; ok && i < n; i++)
                        ok = isalnum((unsigned char)v[i]) || strchr("._-@:\\", v[i]);
                if (!ok || !strchr(v, '.')) {
                        snprintf(err, errlen, "unit=%s: expected a systemd unit like "
                                              "nginx.service",
                                 v);
                        return -EINVAL;
                }
                if (s->cgroup[0]) {
                        snprintf(err, errlen, "give unit= or cgroup=, not both");
                        return -EINVAL;
                }
                snprintf(s->unit, sizeof(s->unit), "%s", v);
        }
        if ((v = param(f, "direction"))) {
                if (strcmp(v, "egress") == 0)
                        s->dir = NET_EGRESS;
                else if (strcmp(v, "ingress") == 0)
                        s->dir = NET_INGRESS;
                else if (strcmp(v, "both") == 0)
                        s->dir = NET_BOTH;
                else {
                        snprintf(err, errlen, "direction=%s: expected egress, ingress or both", v);
                        return -EINVAL;
                }
                if ((s->dir & allowed_dirs) != s->dir) {
                        snprintf(err, errlen, "direction=%s is not supported by %s", v,
                                 f->ops->kind);
                        return -EINVAL;
                }
        }
        if (s->n_dst && s->n_src) {
                bool common = false;
                for (size_t i = 0; i < s->n_dst; i++)
                        for (size_t j = 0; j < s->n_src; j++)
                                common |= s->dst[i].family == s->src[j].family;
                if (!common) {
                        snprintf(err, errlen, "dst= and src= share no address family: nothing "
                                              "could match");
                        return -EINVAL;
                }
        }
        return 0;
}

/* ---- cgroup scope ----------------------------------------------------------- */

/* Mount point of the cgroup2 hierarchy (unified, or hybrid's "unified"). */
static int cgroup2_mount(char *buf, size_t size)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[1024];
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                /* "... mountpoint opts ... - fstype source superopts" */
                char *dash = strstr(line, " - ");
                if (!dash || strncmp(dash + 3, "cgroup2 ", 8) != 0)
                        continue;
                char *save = NULL, *tok = strtok_r(line, " ", &save);
                for (int field = 0; tok && field < 4; field++)
                        tok = strtok_r(NULL, " ", &save);
                if (tok)
                        return fl_strlcpy(buf, tok, size);
        }
        return -ENOENT;
}

/* Find the directory named unit below root (breadth-first, depth <= 4),
 * the way systemd lays units out (system.slice/nginx.service). */
static int find_unit(const char *root, const char *unit, char *rel, size_t size)
{
        char queue[64][256];
        size_t head = 0, tail = 0;
        queue[tail++][0] = 0;
        while (head < tail) {
                char *dir = queue[head++];
                char path[600];
                int pn = snprintf(path, sizeof(path), "%s/%s", root, dir);
                if (pn < 0 || (size_t)pn >= sizeof(path))
                        continue;
                DIR *d = opendir(path);
                if (!d)
                        continue;
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (de->d_type != DT_DIR || de->d_name[0] == '.')
                                continue;
                        char child[256];
                        int n = snprintf(child, sizeof(child), "%s%s%s", dir, *dir ? "/" : "",
                                         de->d_name);
                        if (n < 0 || (size_t)n >= sizeof(child))
                                continue;
                        if (strcmp(de->d_name, unit) == 0) {
                                closedir(d);
                                return fl_strlcpy(rel, child, size);
                        }
                        unsigned depth = 1;
                        for (const char *p = child; *p; p++)
                                depth += *p == '/';
                        if (depth < 4 && tail < FL_ARRAY_SIZE(queue))
                                snprintf(queue[tail++], sizeof(queue[0]), "%s", child);
                }
                closedir(d);
        }
        return -ENOENT;
}

int net_sel_resolve_cgroup(struct net_sel *s, char *err, size_t errlen)
{
        if (!s->cgroup[0] && !s->unit[0])
                return 0;
        char mnt[256];
        if (cgroup2_mount(mnt, sizeof(mnt)) < 0) {
                snprintf(err, errlen, "no cgroup2 hierarchy is mounted: cgroup=/unit= scoping "
                                      "needs cgroup v2 (or a hybrid host's unified mount)");
                return -EOPNOTSUPP;
        }
        /* nftables looks cgroup paths up below /sys/fs/cgroup. */
        const char *prefix = NULL;
        if (strcmp(mnt, "/sys/fs/cgroup") == 0)
                prefix = "";
        else if (strncmp(mnt, "/sys/fs/cgroup/", 15) == 0)
                prefix = mnt + 15;
        if (!prefix) {
                snprintf(err, errlen, "cgroup2 is mounted at %s; nftables resolves cgroups only "
                                      "below /sys/fs/cgroup",
                         mnt);
                return -EOPNOTSUPP;
        }
        char rel[256];
        if (s->unit[0]) {
                if (find_unit(mnt, s->unit, rel, sizeof(rel)) < 0) {
                        snprintf(err, errlen, "unit %s has no cgroup below %s (not running?)",
                                 s->unit, mnt);
                        return -ENOENT;
                }
        } else {
                snprintf(rel, sizeof(rel), "%s", s->cgroup);
        }
        char full[600];
        struct stat st;
        snprintf(full, sizeof(full), "%s/%s", mnt, rel);
        if (stat(full, &st) < 0 || !S_ISDIR(st.st_mode)) {
                snprintf(err, errlen, "cgroup %s does not exist", full);
                return -ENOENT;
        }
        s->cg_level = 1;
        for (const char *p = rel; *p; p++)
                s->cg_level += *p == '/';
        int n = snprintf(s->cg_nft, sizeof(s->cg_nft), "%s%s%s", prefix, *prefix ? "/" : "", rel);
        if (n < 0 || (size_t)n >= sizeof(s->cg_nft)) {
                snprintf(err, errlen, "cgroup path too long");
                return -ENAMETOOLONG;
        }
        return 0;
}

/* ---- nftables ------------------------------------------------------------ */

static void chain_name(const struct agent_fault *f, bool ingress, char *buf, size_t size)
{
        const char *id = strncmp(f->id, "f-", 2) == 0 ? f->id + 2 : f->id;
        snprintf(buf, size, "%s_%s", ingress ? "fi" : "fo", id);
}

struct sb {
        char *buf;
        size_t size, len;
        bool overflow;
};

static void sb_add(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(struct sb *b, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->buf + b->len, b->size - b->len, fmt, ap);
        va_end(ap);
        if (n < 0 || (size_t)n >= b->size - b->len)
                b->overflow = true;
        else
                b->len += (size_t)n;
}

static void add_ports(struct sb *b, const char *l4, const char *dir, const uint16_t r[2])
{
        if (r[0] == r[1])
                sb_add(b, " %s %s %u", l4, dir, r[0]);
        else
                sb_add(b, " %s %s %u-%u", l4, dir, r[0], r[1]);
}

static void add_addrs(struct sb *b, int family, const char *dir, const struct net_cidr *c,
                      size_t n)
{
        const char *sep = NULL;
        for (size_t i = 0; i < n; i++) {
                if (c[i].family != family)
                        continue;
                if (!sep)
                        sb_add(b, " %s %s {", family == AF_INET ? "ip" : "ip6", dir);
                sb_add(b, "%s %s", sep ? sep : "", c[i].text);
                sep = ",";
        }
        if (sep)
                sb_add(b, " }");
}

static bool has_family(const struct net_cidr *c, size_t n, int family)
{
        for (size_t i = 0; i < n; i++)
                if (c[i].family == family)
                        return true;
        return false;
}

/* Everything but addresses: interface, protocol, ports, cgroup. */
static void add_common(struct sb *b, const struct net_sel *s, bool ingress)
{
        if (s->ifname[0])
                sb_add(b, " %s \"%s\"", ingress ? "iifname" : "oifname", s->ifname);
        const char *l4 = s->proto == IPPROTO_TCP ? "tcp" : s->proto == IPPROTO_UDP ? "udp" : "th";
        if (s->proto == IPPROTO_TCP)
                sb_add(b, " meta l4proto tcp");
        else if (s->proto == IPPROTO_UDP)
                sb_add(b, " meta l4proto udp");
        else if (s->proto == IPPROTO_ICMP)
                sb_add(b, " meta l4proto { icmp, ipv6-icmp }");
        else if (s->has_dport || s->has_sport)
                sb_add(b, " meta l4proto { tcp, udp }");
        if (s->has_dport)
                add_ports(b, l4, "dport", s->dport);
        if (s->has_sport)
                add_ports(b, l4, "sport", s->sport);
        if (s->cg_nft[0])
                sb_add(b, " socket cgroupv2 level %u \"%s\"", s->cg_level, s->cg_nft);
}

/* One rule per address family the selector names (or one rule when it
 * names none). Returns the number of rules. */
static int add_rules(struct sb *b, const char *chain, const struct net_sel *s, bool ingress,
                     const char *action)
{
        static const int families[] = {AF_INET, AF_INET6};
        int n = 0;
        if (!s->n_dst && !s->n_src) {
                sb_add(b, "add rule inet %s %s", AGENT_NFT_TABLE, chain);
                add_common(b, s, ingress);
                sb_add(b, " %s\n", action);
                return 1;
        }
        for (size_t i = 0; i < FL_ARRAY_SIZE(families); i++) {
                int fam = families[i];
                if ((s->n_dst && !has_family(s->dst, s->n_dst, fam)) ||
                    (s->n_src && !has_family(s->src, s->n_src, fam)))
                        continue;
                sb_add(b, "add rule inet %s %s", AGENT_NFT_TABLE, chain);
                add_addrs(b, fam, "daddr", s->dst, s->n_dst);
                add_addrs(b, fam, "saddr", s->src, s->n_src);
                add_common(b, s, ingress);
                sb_add(b, " %s\n", action);
                n++;
        }
        return n;
}

/* The exemptions come first in every chain: an accept ends this chain's
 * evaluation, so the fault's own rule never sees control traffic. */
static int add_exemptions(struct sb *b, const char *chain, bool ingress)
{
        const char *me = AGENT_NFT_TABLE;
        int n = 0;
        sb_add(b, "add rule inet %s %s %s \"lo\" accept\n", me, chain, ingress ? "iifname" : "oifname");
        n++;
        if (policy.control_port) {
                sb_add(b, "add rule inet %s %s tcp sport %u accept\n", me, chain, policy.control_port);
                sb_add(b, "add rule inet %s %s tcp dport %u accept\n", me, chain, policy.control_port);
                n += 2;
        }
        for (size_t i = 0; i < policy.n_ports; i++) {
                sb_add(b, "add rule inet %s %s tcp dport %u accept\n", me, chain, policy.ports[i]);
                sb_add(b, "add rule inet %s %s tcp sport %u accept\n", me, chain, policy.ports[i]);
                n += 2;
        }
        for (size_t i = 0; i < policy.n_cidrs; i++) {
                const struct net_cidr *c = &policy.cidrs[i];
                sb_add(b, "add rule inet %s %s %s %s %s accept\n", me, chain,
                       c->family == AF_INET ? "ip" : "ip6", ingress ? "saddr" : "daddr", c->text);
                n++;
        }
        return n;
}

int net_nft_apply(struct agent_fault *f, const struct net_sel *egress,
                  const struct net_sel *ingress, const char *action, char *err, size_t errlen)
{
        size_t size = 16384;
        _cleanup_free_ char *buf = malloc(size);
        if (!buf)
                return -ENOMEM;
        struct sb b = {.buf = buf, .size = size};
        buf[0] = 0;
        sb_add(&b, "add table inet %s\n", AGENT_NFT_TABLE);
        const struct net_sel *sels[2] = {egress, ingress};
        for (int dir = 0; dir < 2; dir++) {
                if (!sels[dir])
                        continue;
                char chain[64];
                chain_name(f, dir == 1, chain, sizeof(chain));
                /* priority -160: after raw/conntrack, before mangle and the
                 * host's own filter chains. */
                sb_add(&b,
                       "add chain inet %s %s { type filter hook %s priority -160; policy accept; "
                       "}\n",
                       AGENT_NFT_TABLE, chain, dir == 1 ? "input" : "output");
                int ex = add_exemptions(&b, chain, dir == 1);
                int rules = add_rules(&b, chain, sels[dir], dir == 1, action);
                json_object_set_new(f->undo, dir == 1 ? "rules_in" : "rules_out",
                                    json_integer(ex + rules));
        }
        if (b.overflow) {
                snprintf(err, errlen, "nft script too large");
                return -E2BIG;
        }
        return agent_nft_run(buf, err, errlen);
}

int net_nft_verify(const struct agent_fault *f, char *err, size_t errlen)
{
        static const char *const keys[2] = {"rules_out", "rules_in"};
        for (int dir = 0; dir < 2; dir++) {
                json_t *want = json_object_get(f->undo, keys[dir]);
                if (!want)
                        continue;
                char chain[64];
                chain_name(f, dir == 1, chain, sizeof(chain));
                int have = agent_nft_chain_rules(chain, err, errlen);
                if (have < 0) {
                        if (have == -ENOENT)
                                snprintf(err, errlen, "chain %s missing after apply", chain);
                        return have == -ENOENT ? -EIO : have;
                }
                if (have != json_integer_value(want)) {
                        snprintf(err, errlen, "chain %s holds %d rules, expected %lld", chain, have,
                                 (long long)json_integer_value(want));
                        return -EIO;
                }
        }
        return 0;
}

int net_nft_revert(const struct agent_fault *f, char *err, size_t errlen)
{
        char out[64], in[64];
        chain_name(f, false, out, sizeof(out));
        chain_name(f, true, in, sizeof(in));
        const char *const chains[] = {out, in};
        return agent_nft_delete_chains(chains, 2, err, errlen);
}

/* ---- qdisc ------------------------------------------------------------------ */

int net_qdisc_prepare(struct agent_fault *f, struct net_sel *s, char *err, size_t errlen)
{
        if (!s->ifname[0]) {
                if (!s->n_dst) {
                        snprintf(err, errlen, "interface= is required (or give dst= and the "
                                              "route's interface is used)");
                        return -EINVAL;
                }
                char addr[INET6_ADDRSTRLEN + 5];
                snprintf(addr, sizeof(addr), "%s", s->dst[0].text);
                *strchr(addr, '/') = 0;
                int rv = agent_route_ifname(addr, s->ifname, sizeof(s->ifname));
                if (rv < 0) {
                        snprintf(err, errlen, "no route to %s to pick an interface from: %s",
                                 addr, strerror(-rv));
                        return -EINVAL;
                }
        }
        int ifindex = agent_ifindex(s->ifname);
        if (ifindex < 0) {
                snprintf(err, errlen, "interface %s does not exist", s->ifname);
                return -ENOENT;
        }
        char kind[32];
        uint32_t handle;
        bool is_default;
        int rv = agent_qdisc_root(ifindex, kind, sizeof(kind), &handle, &is_default, err, errlen);
        if (rv < 0)
                return rv;
        if (TC_H_MAJ(handle) == (uint32_t)(AGENT_QDISC_MAJOR << 16)) {
                snprintf(err, errlen, "%s already carries a faultline qdisc fault; revert it first",
                         s->ifname);
                return -EBUSY;
        }
        json_object_set_new(f->undo, "ifname", json_string(s->ifname));
        if (!is_default) {
                const char *force = param(f, "force");
                bool yes = false;
                if (!force || fl_parse_bool(force, &yes) < 0 || !yes) {
                        snprintf(err, errlen,
                                 "%s has a root qdisc \"%s\" (handle %x:) installed by someone "
                                 "else; refusing to replace it. force=true snapshots it and "
                                 "restores it exactly on revert",
                                 s->ifname, kind, TC_H_MAJ(handle) >> 16);
                        return -EPERM;
                }
                json_t *snap = NULL;
                if ((rv = agent_qdisc_snapshot(ifindex, &snap, err, errlen)) < 0)
                        return rv;
                json_object_set_new(f->undo, "snapshot", snap);
                json_object_set_new(f->undo, "replaced", json_string(kind));
        }
        snprintf(f->backend, sizeof(f->backend), "htb");
        return 0;
}

int net_qdisc_apply(struct agent_fault *f, const struct net_sel *s,
                    const struct agent_qdisc_spec *spec, char *err, size_t errlen)
{
        int ifindex = agent_ifindex(s->ifname);
        if (ifindex < 0) {
                snprintf(err, errlen, "interface %s vanished", s->ifname);
                return -ENOENT;
        }
        int rv = agent_qdisc_install(ifindex, spec, err, errlen);
        if (rv < 0)
                return rv;
        /* Steer the selected packets into our class; the rest go direct. */
        char action[64];
        snprintf(action, sizeof(action), "meta priority set %x:%x", AGENT_QDISC_MAJOR, 1u);
        struct net_sel egress = *s;
        return net_nft_apply(f, &egress, NULL, action, err, errlen);
}

int net_qdisc_verify(const struct agent_fault *f, const struct agent_qdisc_spec *spec, char *err,
                     size_t errlen)
{
        const char *ifname = json_string_value(json_object_get(f->undo, "ifname"));
        int ifindex = ifname ? agent_ifindex(ifname) : -ENODEV;
        if (ifindex < 0) {
                snprintf(err, errlen, "interface vanished");
                return -EIO;
        }
        int rv = agent_qdisc_verify(ifindex, spec, err, errlen);
        return rv < 0 ? rv : net_nft_verify(f, err, errlen);
}

int net_qdisc_revert(const struct agent_fault *f, char *err, size_t errlen)
{
        int rv = net_nft_revert(f, err, errlen);
        if (rv < 0)
                return rv;
        const char *ifname = json_string_value(json_object_get(f->undo, "ifname"));
        if (!ifname)
                return 0; /* prepare never got that far */
        int ifindex = agent_ifindex(ifname);
        if (ifindex < 0)
                return 0; /* the interface, and its qdiscs, are gone */
        return agent_qdisc_remove(ifindex, json_object_get(f->undo, "snapshot"), err, errlen);
}

const char *net_nft_supported(void)
{
        return agent_nft_unavailable();
}

const char *net_netem_supported(void)
{
        const char *why = agent_qdisc_unavailable("htb");
        return why ? why : agent_qdisc_unavailable("netem");
}

const char *net_htb_supported(void)
{
        const char *why = agent_nft_unavailable();
        return why ? why : agent_qdisc_unavailable("htb");
}

/* ---- generic qdisc-backed fault ---------------------------------------------- */

void net_qfault_destroy(struct agent_fault *f)
{
        free(f->priv);
        f->priv = NULL;
}

int net_qfault_begin(struct agent_fault *f, struct net_qfault **ret, char *err, size_t errlen)
{
        net_qfault_destroy(f);
        struct net_qfault *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        int rv = net_sel_parse(f, &q->sel, NET_EGRESS, NET_EGRESS, err, errlen);
        if (rv < 0) {
                free(q);
                return rv;
        }
        f->priv = q;
        *ret = q;
        return 0;
}

int net_parse_us(const struct agent_fault *f, const char *key, bool required, uint32_t *ret,
                 char *err, size_t errlen)
{
        const char *v = param(f, key);
        *ret = 0;
        if (!v) {
                if (required) {
                        snprintf(err, errlen, "%s= is required (e.g. %s=100ms)", key, key);
                        return -EINVAL;
                }
                return 0;
        }
        uint64_t ms = 0;
        /* Sub-millisecond values ("500us") are parsed by fl_parse_duration_ms
         * rounding up; accept an explicit "us" suffix here for precision. */
        size_t n = strlen(v);
        if (n > 2 && strcmp(v + n - 2, "us") == 0) {
                char buf[32];
                uint64_t us;
                if (n - 2 < sizeof(buf)) {
                        memcpy(buf, v, n - 2);
                        buf[n - 2] = 0;
                        if (fl_parse_u64(buf, &us) == 0 && us > 0 && us <= 60000000u) {
                                *ret = (uint32_t)us;
                                return 0;
                        }
                }
        } else if (fl_parse_duration_ms(v, &ms) == 0 && ms > 0 && ms <= 60000) {
                *ret = (uint32_t)(ms * 1000u);
                return 0;
        }
        snprintf(err, errlen, "%s=%s: expected a duration between 1us and 60s (e.g. 100ms)", key,
                 v);
        return -EINVAL;
}

void net_sel_describe(const struct net_sel *s, char *buf, size_t size)
{
        struct sb b = {.buf = buf, .size = size};
        buf[0] = 0;
        sb_add(&b, "%s", s->ifname[0] ? s->ifname : "any");
        for (size_t i = 0; i < s->n_dst; i++)
                sb_add(&b, "%s%s", i ? "," : " dst=", s->dst[i].text);
        for (size_t i = 0; i < s->n_src; i++)
                sb_add(&b, "%s%s", i ? "," : " src=", s->src[i].text);
        if (s->proto)
                sb_add(&b, " %s", s->proto == IPPROTO_TCP ? "tcp" : s->proto == IPPROTO_UDP ? "udp" : "icmp");
        if (s->has_dport)
                sb_add(&b, " dport=%u-%u", s->dport[0], s->dport[1]);
        if (s->has_sport)
                sb_add(&b, " sport=%u-%u", s->sport[0], s->sport[1]);
        if (s->cgroup[0])
                sb_add(&b, " cgroup=%s", s->cgroup);
        if (s->unit[0])
                sb_add(&b, " unit=%s", s->unit);
}

int net_qfault_prepare(struct agent_fault *f, char *err, size_t errlen)
{
        struct net_qfault *q = f->priv;
        char desc[FL_NAME_LEN];
        int crv = net_sel_resolve_cgroup(&q->sel, err, errlen);
        if (crv < 0)
                return crv;
        if (q->use_nft_loss) {
                net_sel_describe(&q->sel, desc, sizeof(desc));
                snprintf(f->target, sizeof(f->target), "%s", desc);
                snprintf(f->backend, sizeof(f->backend), "nftables");
                return 0;
        }
        int rv = net_qdisc_prepare(f, &q->sel, err, errlen);
        if (rv < 0)
                return rv;
        net_sel_describe(&q->sel, desc, sizeof(desc));
        snprintf(f->target, sizeof(f->target), "%s", desc);
        snprintf(f->backend, sizeof(f->backend), "%s", q->spec.has_netem ? "netem" : "htb");
        return 0;
}

int net_qfault_apply(struct agent_fault *f, char *err, size_t errlen)
{
        struct net_qfault *q = f->priv;
        if (q->use_nft_loss) {
                char action[96];
                snprintf(action, sizeof(action), "numgen random mod 10000 < %u drop", q->loss_bp);
                return net_nft_apply(f, q->sel.dir & NET_EGRESS ? &q->sel : NULL,
                                     q->sel.dir & NET_INGRESS ? &q->sel : NULL, action, err,
                                     errlen);
        }
        return net_qdisc_apply(f, &q->sel, &q->spec, err, errlen);
}

int net_qfault_verify(struct agent_fault *f, char *err, size_t errlen)
{
        struct net_qfault *q = f->priv;
        if (q->use_nft_loss)
                return net_nft_verify(f, err, errlen);
        return net_qdisc_verify(f, &q->spec, err, errlen);
}

int net_qfault_revert(struct agent_fault *f, char *err, size_t errlen)
{
        /* Works from the journal alone: chains are named after the fault
         * id, the interface and any snapshot are in f->undo. */
        return net_qdisc_revert(f, err, errlen);
}
