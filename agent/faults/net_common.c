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
#include "cg/cg.h"
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

int net_parse_cidrs(const char *key, const char *v, struct net_cidr *out, size_t max, size_t *ret_n,
                    char *err, size_t errlen)
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
            {"bit", 1}, {"kbit", 1e3}, {"mbit", 1e6}, {"gbit", 1e9},
            {"bps", 8}, {"kbps", 8e3}, {"mbps", 8e6}, {"gbps", 8e9},
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
                        snprintf(err, errlen,
                                 "unit=%s: expected a systemd unit like "
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
                        snprintf(err, errlen,
                                 "dst= and src= share no address family: nothing "
                                 "could match");
                        return -EINVAL;
                }
        }
        return 0;
}

/* ---- cgroup scope ----------------------------------------------------------- */

/* Mount point of the first mount of fstype ("cgroup2", "cgroup") whose
 * super options include opt (NULL: any), from /proc/self/mountinfo. */
static int find_mount(const char *fstype, const char *opt, char *buf, size_t size)
{
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        char line[1024];
        size_t tlen = strlen(fstype);
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                /* "... mountpoint opts ... - fstype source superopts" */
                char *dash = strstr(line, " - ");
                if (!dash || strncmp(dash + 3, fstype, tlen) != 0 || dash[3 + tlen] != ' ')
                        continue;
                char *save = NULL;
                bool has = !opt;
                char *opts = strrchr(dash, ' ');
                for (char *o = strtok_r(opts + 1, ",\n", &save); o && !has;
                     o = strtok_r(NULL, ",\n", &save))
                        has = strcmp(o, opt) == 0;
                if (!has)
                        continue;
                char *tok = strtok_r(line, " ", &save);
                for (int field = 0; tok && field < 4; field++)
                        tok = strtok_r(NULL, " ", &save);
                if (tok)
                        return fl_strlcpy(buf, tok, size);
        }
        return -ENOENT;
}

/* Mount point of the cgroup2 hierarchy (unified, or hybrid's "unified"). */
static int cgroup2_mount(char *buf, size_t size)
{
        return find_mount("cgroup2", NULL, buf, size);
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

static int resolve_cgroup2(struct net_sel *s, const char *mnt, char *err, size_t errlen)
{
        /* nftables looks cgroup paths up below /sys/fs/cgroup. */
        const char *prefix = NULL;
        if (strcmp(mnt, "/sys/fs/cgroup") == 0)
                prefix = "";
        else if (strncmp(mnt, "/sys/fs/cgroup/", 15) == 0)
                prefix = mnt + 15;
        if (!prefix) {
                snprintf(err, errlen,
                         "cgroup2 is mounted at %s; nftables resolves cgroups only "
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

/* Mount point of a cgroup v1 hierarchy carrying net_cls, if any. */
static int netcls_mount(char *buf, size_t size)
{
        return find_mount("cgroup", "net_cls", buf, size);
}

static int read_classid(const char *dir, uint32_t *ret)
{
        uint64_t v = 0;
        int rv = agent_cg_read_u64(dir, "net_cls.classid", &v);
        if (rv == 0 && v > UINT32_MAX)
                rv = -EBADMSG;
        if (rv == 0)
                *ret = (uint32_t)v;
        return rv;
}

static int write_classid(const char *dir, uint32_t v)
{
        char buf[16];
        snprintf(buf, sizeof(buf), "%u", v);
        return agent_cg_write(dir, "net_cls.classid", buf);
}

/* cgroup v1: the target's net_cls classid tags its sockets, matched with
 * `meta cgroup`. A target without a classid (0) gets one of ours for the
 * fault (major 0xfa17, minor from the fault id), restored to 0 on revert
 * if it is still ours; one that has a classid keeps it and is matched by
 * it. Recorded in undo.netcls by prepare, so the journal holds it. */
static int resolve_netcls(struct agent_fault *f, struct net_sel *s, const char *mnt, char *err,
                          size_t errlen)
{
        char rel[256];
        if (s->unit[0]) {
                if (find_unit(mnt, s->unit, rel, sizeof(rel)) < 0) {
                        snprintf(err, errlen, "unit %s has no net_cls cgroup below %s", s->unit,
                                 mnt);
                        return -ENOENT;
                }
        } else {
                snprintf(rel, sizeof(rel), "%s", s->cgroup);
        }
        char dir[300];
        struct stat st;
        int n = snprintf(dir, sizeof(dir), "%s/%s", mnt, rel);
        if (n < 0 || (size_t)n >= sizeof(dir) || stat(dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
                snprintf(err, errlen, "cgroup %s does not exist (cgroup v2 nor net_cls)", rel);
                return -ENOENT;
        }
        uint32_t cur = 0;
        int rv = read_classid(dir, &cur);
        if (rv < 0) {
                snprintf(err, errlen, "cannot read %s/net_cls.classid: %s", dir, strerror(-rv));
                return rv;
        }
        uint32_t h = 2166136261u;
        for (const char *c = f->id; *c; c++)
                h = (h ^ (uint8_t)*c) * 16777619u;
        bool set = cur == 0;
        s->classid = set ? 0xfa170000u | (h & 0xffffu) | (h & 0xffffu ? 0 : 1) : cur;
        json_t *nc = json_pack("{s:s, s:I, s:b}", "path", dir, "classid", (json_int_t)s->classid,
                               "set", set);
        if (!nc)
                return -ENOMEM;
        json_object_set_new(f->undo, "netcls", nc);
        return 0;
}

int net_sel_resolve_cgroup(struct agent_fault *f, struct net_sel *s, char *err, size_t errlen)
{
        if (!s->cgroup[0] && !s->unit[0])
                return 0;
        char mnt[256], v1[256];
        bool have2 = cgroup2_mount(mnt, sizeof(mnt)) == 0;
        bool have1 = netcls_mount(v1, sizeof(v1)) == 0;
        if (!have2 && !have1) {
                snprintf(err, errlen,
                         "cgroup=/unit= scoping needs a cgroup2 hierarchy (nft socket cgroupv2) "
                         "or a cgroup v1 net_cls hierarchy (meta cgroup): neither is mounted");
                return -EOPNOTSUPP;
        }
        /* v2 first; v1 net_cls where the target is not in the v2 tree (a
         * v1 or hybrid host whose services live in the v1 hierarchies). */
        int rv = have2 ? resolve_cgroup2(s, mnt, err, errlen) : -ENOENT;
        if (rv == -ENOENT && have1)
                rv = resolve_netcls(f, s, v1, err, errlen);
        return rv;
}

int net_netcls_apply(const struct agent_fault *f, char *err, size_t errlen)
{
        json_t *nc = json_object_get(f->undo, "netcls");
        if (!nc || !json_is_true(json_object_get(nc, "set")))
                return 0;
        const char *dir = json_string_value(json_object_get(nc, "path"));
        int rv =
            dir ? write_classid(dir, (uint32_t)json_integer_value(json_object_get(nc, "classid")))
                : -EINVAL;
        if (rv < 0)
                snprintf(err, errlen, "setting %s/net_cls.classid: %s", dir ? dir : "?",
                         strerror(-rv));
        return rv;
}

static int netcls_verify(const struct agent_fault *f, char *err, size_t errlen)
{
        json_t *nc = json_object_get(f->undo, "netcls");
        if (!nc)
                return 0;
        const char *dir = json_string_value(json_object_get(nc, "path"));
        uint32_t cur = 0;
        if (!dir || read_classid(dir, &cur) < 0 ||
            cur != (uint32_t)json_integer_value(json_object_get(nc, "classid"))) {
                snprintf(err, errlen, "net_cls.classid of %s is not the fault's", dir ? dir : "?");
                return -EIO;
        }
        return 0;
}

/* Idempotent; leaves a classid someone else set since alone. */
static int netcls_revert(const struct agent_fault *f, char *err, size_t errlen)
{
        json_t *nc = json_object_get(f->undo, "netcls");
        if (!nc || !json_is_true(json_object_get(nc, "set")))
                return 0;
        const char *dir = json_string_value(json_object_get(nc, "path"));
        uint32_t cur = 0;
        if (!dir || read_classid(dir, &cur) < 0)
                return 0; /* the cgroup is gone: nothing to restore */
        if (cur != (uint32_t)json_integer_value(json_object_get(nc, "classid")))
                return 0;
        int rv = write_classid(dir, 0);
        if (rv < 0)
                snprintf(err, errlen, "restoring %s/net_cls.classid: %s", dir, strerror(-rv));
        return rv;
}

/* ---- nftables ------------------------------------------------------------ */

void net_nft_chain(const struct agent_fault *f, const char *prefix, char *buf, size_t size)
{
        const char *id = strncmp(f->id, "f-", 2) == 0 ? f->id + 2 : f->id;
        snprintf(buf, size, "%s_%s", prefix, id);
}

static void chain_name(const struct agent_fault *f, bool ingress, char *buf, size_t size)
{
        net_nft_chain(f, ingress ? "fi" : "fo", buf, size);
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

static void add_addrs(struct sb *b, int family, const char *dir, const struct net_cidr *c, size_t n)
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
        else if (s->classid)
                sb_add(b, " meta cgroup %u", s->classid);
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
        sb_add(b, "add rule inet %s %s %s \"lo\" accept\n", me, chain,
               ingress ? "iifname" : "oifname");
        n++;
        if (policy.control_port) {
                sb_add(b, "add rule inet %s %s tcp sport %u accept\n", me, chain,
                       policy.control_port);
                sb_add(b, "add rule inet %s %s tcp dport %u accept\n", me, chain,
                       policy.control_port);
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
        int rv = net_netcls_apply(f, err, errlen);
        return rv < 0 ? rv : agent_nft_run(buf, err, errlen);
}

int net_nft_verify(const struct agent_fault *f, char *err, size_t errlen)
{
        int crv = netcls_verify(f, err, errlen);
        if (crv < 0)
                return crv;
        static const char *const keys[3] = {"rules_out", "rules_in", "rules_q"};
        static const char *const prefix[3] = {"fo", "fi", NET_NFT_QCHAIN};
        for (int dir = 0; dir < 3; dir++) {
                json_t *want = json_object_get(f->undo, keys[dir]);
                if (!want)
                        continue;
                char chain[64];
                net_nft_chain(f, prefix[dir], chain, sizeof(chain));
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
        char out[64], in[64], q[64];
        chain_name(f, false, out, sizeof(out));
        chain_name(f, true, in, sizeof(in));
        net_nft_chain(f, NET_NFT_QCHAIN, q, sizeof(q));
        const char *const chains[] = {out, in, q};
        int rv = agent_nft_delete_chains(chains, 3, err, errlen);
        /* Rules first: no rule may match a classid we give back. */
        int crv = netcls_revert(f, rv < 0 ? NULL : err, rv < 0 ? 0 : errlen);
        return rv < 0 ? rv : crv;
}

/* ---- qdisc ------------------------------------------------------------------ */

static bool forced(const struct agent_fault *f)
{
        const char *v = param(f, "force");
        bool yes = false;
        return v && fl_parse_bool(v, &yes) == 0 && yes;
}

int net_ingress_sel_check(const struct net_sel *s, char *err, size_t errlen)
{
        if (!(s->dir & NET_INGRESS))
                return 0;
        if (s->cgroup[0] || s->unit[0]) {
                snprintf(err, errlen,
                         "%s= is not supported for direction=%s on a qdisc fault: "
                         "arriving packets are shaped before any socket owns them",
                         s->cgroup[0] ? "cgroup" : "unit", s->dir == NET_BOTH ? "both" : "ingress");
                return -EINVAL;
        }
        if ((s->has_dport && s->dport[0] != s->dport[1]) ||
            (s->has_sport && s->sport[0] != s->sport[1])) {
                snprintf(err, errlen,
                         "port ranges are not supported for direction=%s on a qdisc "
                         "fault (u32 matches one port): give a single port",
                         s->dir == NET_BOTH ? "both" : "ingress");
                return -EINVAL;
        }
        return 0;
}

/* The whole interface is targeted (no selector but the interface): the
 * htb's own u32 filters can pick the packets, exemptions included, and no
 * nftables rule is needed. Not on lo, where the nftables path exempts
 * everything ("oifname lo accept") and u32 would not. Journaled as
 * "steer": "tc" by prepare, so a revert after a crash knows there is no
 * chain to delete. */
static bool tc_steerable(const struct net_sel *s)
{
        return !s->n_dst && !s->n_src && !s->proto && !s->has_dport && !s->has_sport &&
               !s->cgroup[0] && !s->unit[0] && strcmp(s->ifname, "lo") != 0;
}

static bool tc_steered(const struct agent_fault *f)
{
        const char *v = json_string_value(json_object_get(f->undo, "steer"));
        return v && strcmp(v, "tc") == 0;
}

/* The IFB of a fault: "flifb-" + 8 hex digits of a hash of its id (the
 * name must fit IFNAMSIZ; it is journaled, never recomputed on revert). */
static void ifb_name(const struct agent_fault *f, char *buf, size_t size)
{
        uint32_t h = 2166136261u;
        for (const char *c = f->id; *c; c++)
                h = (h ^ (uint8_t)*c) * 16777619u;
        snprintf(buf, size, "flifb-%08x", h);
}

int net_qdisc_prepare(struct agent_fault *f, struct net_sel *s, char *err, size_t errlen)
{
        bool egress = s->dir & NET_EGRESS, ingress = s->dir & NET_INGRESS;
        int rv = net_ingress_sel_check(s, err, errlen);
        if (rv < 0)
                return rv;
        if (!s->ifname[0]) {
                /* Egress: the route to the first destination. Ingress: the
                 * route back to the first source (symmetric routing). */
                const struct net_cidr *via = egress && s->n_dst    ? &s->dst[0]
                                             : ingress && s->n_src ? &s->src[0]
                                                                   : NULL;
                if (!via) {
                        snprintf(err, errlen,
                                 egress ? "interface= is required (or give dst= and the "
                                          "route's interface is used)"
                                        : "interface= is required (or give src= and the "
                                          "interface of the route back to it is used)");
                        return -EINVAL;
                }
                char addr[INET6_ADDRSTRLEN + 5];
                snprintf(addr, sizeof(addr), "%s", via->text);
                *strchr(addr, '/') = 0;
                rv = agent_route_ifname(addr, s->ifname, sizeof(s->ifname));
                if (rv < 0) {
                        snprintf(err, errlen, "no route to %s to pick an interface from: %s", addr,
                                 strerror(-rv));
                        return -EINVAL;
                }
        }
        int ifindex = agent_ifindex(s->ifname);
        if (ifindex < 0) {
                snprintf(err, errlen, "interface %s does not exist", s->ifname);
                return -ENOENT;
        }
        if (ingress) {
                const char *why = agent_ingress_unavailable();
                if (why) {
                        snprintf(err, errlen, "direction=ingress needs an ifb device: %s", why);
                        return -EOPNOTSUPP;
                }
                if (strcmp(s->ifname, "lo") == 0) {
                        snprintf(err, errlen,
                                 "loopback is always exempt: no ingress shaping on lo");
                        return -EINVAL;
                }
        }
        char kind[32];
        uint32_t handle;
        bool is_default;
        if (egress) {
                rv = agent_qdisc_root(ifindex, kind, sizeof(kind), &handle, &is_default, err,
                                      errlen);
                if (rv < 0)
                        return rv;
                if (TC_H_MAJ(handle) == (uint32_t)(AGENT_QDISC_MAJOR << 16)) {
                        snprintf(err, errlen,
                                 "%s already carries a faultline qdisc fault; revert it first",
                                 s->ifname);
                        return -EBUSY;
                }
        }
        bool ingress_created = false;
        if (ingress) {
                int ours = 0, others = 0;
                rv = agent_ingress_state(ifindex, kind, sizeof(kind), &ours, &others, err, errlen);
                if (rv < 0)
                        return rv;
                if (ours) {
                        snprintf(err, errlen,
                                 "%s already carries a faultline ingress fault (u32 filters at "
                                 "priority %u); revert it first",
                                 s->ifname, AGENT_INGRESS_PRIO);
                        return -EBUSY;
                }
                if (kind[0] && !forced(f)) {
                        snprintf(err, errlen,
                                 "%s has an ingress qdisc \"%s\" (%s filters) installed by "
                                 "someone else; refusing to touch it. force=true adds faultline's "
                                 "redirect filters next to theirs (priority %u, after theirs) and "
                                 "removes only those on revert",
                                 s->ifname, kind, others ? "with" : "no", AGENT_INGRESS_PRIO);
                        return -EPERM;
                }
                ingress_created = !kind[0];
        }
        json_object_set_new(f->undo, "ifname", json_string(s->ifname));
        json_object_set_new(f->undo, "egress", json_boolean(egress));
        if (egress && tc_steerable(s))
                json_object_set_new(f->undo, "steer", json_string("tc"));
        if (egress && !is_default) {
                if (!forced(f)) {
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
        if (ingress) {
                /* Journaled before apply creates anything: revert deletes
                 * exactly this device and, if we add it, the ingress qdisc. */
                char ifb[IFNAMSIZ];
                ifb_name(f, ifb, sizeof(ifb));
                if (agent_ifindex(ifb) >= 0) {
                        snprintf(err, errlen, "a device named %s already exists", ifb);
                        return -EEXIST;
                }
                json_object_set_new(f->undo, "ifb", json_string(ifb));
                json_object_set_new(f->undo, "ingress_qdisc_created",
                                    json_boolean(ingress_created));
        }
        snprintf(f->backend, sizeof(f->backend), "htb");
        return 0;
}

/* ---- ingress u32 rules -------------------------------------------------------- */

static void key_raw(struct agent_u32_rule *r, int off, uint32_t val_be, uint32_t mask_be)
{
        if (r->n_keys < AGENT_U32_MAX_KEYS)
                r->keys[r->n_keys++] =
                    (struct agent_u32_key){.val = val_be & mask_be, .mask = mask_be, .off = off};
}

static void key_add(struct agent_u32_rule *r, int off, uint32_t val, uint32_t mask)
{
        key_raw(r, off, htonl(val), htonl(mask));
}

/* Offsets assume no IPv4 options and no IPv6 extension headers, as tc's
 * "match ip dport" does; the IPv4 keys for ports also require IHL 5 and
 * a first fragment, so a packet with options is left alone rather than
 * mismatched. IPv6 matches its next-header byte, which is the transport
 * protocol only when no extension header sits in between. */
static void key_proto(struct agent_u32_rule *r, int fam, int proto)
{
        if (fam == AF_INET)
                key_add(r, 8, (uint32_t)proto << 16, 0x00ff0000u);
        else
                key_add(r, 4, (uint32_t)(proto == IPPROTO_ICMP ? IPPROTO_ICMPV6 : proto) << 8,
                        0x0000ff00u);
}

/* Before the port keys of an IPv4 rule: IHL 5 and a first fragment. */
static void key_l4(struct agent_u32_rule *r, int fam)
{
        if (fam != AF_INET)
                return;
        key_add(r, 0, 0x05000000u, 0x0f000000u);
        key_add(r, 4, 0, 0x00001fffu);
}

static void key_port(struct agent_u32_rule *r, int fam, bool dport, uint16_t port)
{
        int off = fam == AF_INET ? 20 : 40;
        if (dport)
                key_add(r, off, port, 0x0000ffffu);
        else
                key_add(r, off, (uint32_t)port << 16, 0xffff0000u);
}

static void key_cidr(struct agent_u32_rule *r, const struct net_cidr *c, bool src)
{
        char text[INET6_ADDRSTRLEN + 5];
        unsigned char a[16] = {0};
        snprintf(text, sizeof(text), "%s", c->text);
        char *slash = strchr(text, '/');
        if (slash)
                *slash = 0;
        if (inet_pton(c->family, text, a) != 1)
                return;
        int base = c->family == AF_INET ? (src ? 12 : 16) : (src ? 8 : 24);
        int words = c->family == AF_INET ? 1 : 4;
        for (int w = 0; w < words; w++) {
                int bits = (int)c->prefix - 32 * w;
                if (bits <= 0)
                        break;
                uint32_t mask = bits >= 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
                uint32_t v;
                memcpy(&v, a + 4 * w, 4);
                key_raw(r, base + 4 * w, v, htonl(mask));
        }
}

/* The exemptions of one family as u32 rules appended at v[*n] (room for
 * exemption_count()): TCP to or from the control port and every
 * protected port, and the protected CIDRs as source (ingress) or
 * destination (egress). The caller sets what a match does. */
static size_t exemption_count(void)
{
        return 2 * (1 + policy.n_ports) + policy.n_cidrs;
}

static void exemption_rules(int fam, bool ingress, struct agent_u32_rule *v, size_t *n)
{
        uint16_t cp[NET_MAX_PROTECTED + 1];
        size_t ncp = 0;
        if (policy.control_port)
                cp[ncp++] = policy.control_port;
        for (size_t i = 0; i < policy.n_ports; i++)
                cp[ncp++] = policy.ports[i];
        for (size_t i = 0; i < ncp; i++)
                for (int d = 0; d < 2; d++) {
                        struct agent_u32_rule *r = &v[(*n)++];
                        r->family = fam;
                        key_proto(r, fam, IPPROTO_TCP);
                        key_l4(r, fam);
                        key_port(r, fam, d == 1, cp[i]);
                }
        for (size_t i = 0; i < policy.n_cidrs; i++) {
                if (policy.cidrs[i].family != fam)
                        continue;
                struct agent_u32_rule *r = &v[(*n)++];
                r->family = fam;
                key_cidr(r, &policy.cidrs[i], ingress);
        }
}

/* Egress of a whole interface (tc_steerable): per family, the exemptions
 * sent direct (fa17:0), then everything else to our class. */
static int egress_rules(struct agent_u32_rule **ret, size_t *ret_n)
{
        static const int fams[2] = {AF_INET, AF_INET6};
        struct agent_u32_rule *v = calloc(2 * (exemption_count() + 1), sizeof(*v));
        size_t n = 0;
        if (!v)
                return -ENOMEM;
        for (int fi = 0; fi < 2; fi++) {
                size_t first = n;
                exemption_rules(fams[fi], false, v, &n);
                for (size_t i = first; i < n; i++)
                        v[i].classid = AGENT_QDISC_DIRECT;
                v[n].family = fams[fi];
                v[n++].classid = AGENT_QDISC_CLASS; /* no key: matches every packet */
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* Per family: the exemptions (pass), then one redirect rule per
 * src x dst x protocol combination. */
static int ingress_rules(const struct net_sel *s, struct agent_u32_rule **ret, size_t *ret_n,
                         int counts[2])
{
        static const int fams[2] = {AF_INET, AF_INET6};
        size_t cap = 2 * (2 + 2 * policy.n_ports + policy.n_cidrs +
                          (s->n_src ? s->n_src : 1) * (s->n_dst ? s->n_dst : 1) * 2);
        struct agent_u32_rule *v = calloc(cap, sizeof(*v));
        size_t n = 0;
        if (!v)
                return -ENOMEM;
        for (int fi = 0; fi < 2; fi++) {
                int fam = fams[fi];
                if ((s->n_src && !has_family(s->src, s->n_src, fam)) ||
                    (s->n_dst && !has_family(s->dst, s->n_dst, fam)))
                        continue;
                size_t first = n;
                exemption_rules(fam, true, v, &n);
                int protos[2] = {s->proto, 0};
                int np = 1;
                if (!s->proto && (s->has_dport || s->has_sport)) {
                        protos[0] = IPPROTO_TCP;
                        protos[1] = IPPROTO_UDP;
                        np = 2;
                }
                size_t ns = s->n_src ? s->n_src : 1, nd = s->n_dst ? s->n_dst : 1;
                for (size_t i = 0; i < ns; i++) {
                        if (s->n_src && s->src[i].family != fam)
                                continue;
                        for (size_t j = 0; j < nd; j++) {
                                if (s->n_dst && s->dst[j].family != fam)
                                        continue;
                                for (int p = 0; p < np; p++) {
                                        struct agent_u32_rule *r = &v[n++];
                                        r->family = fam;
                                        r->redirect = true;
                                        if (s->n_src)
                                                key_cidr(r, &s->src[i], true);
                                        if (s->n_dst)
                                                key_cidr(r, &s->dst[j], false);
                                        if (protos[p])
                                                key_proto(r, fam, protos[p]);
                                        if (s->has_dport || s->has_sport)
                                                key_l4(r, fam);
                                        if (s->has_dport)
                                                key_port(r, fam, true, s->dport[0]);
                                        if (s->has_sport)
                                                key_port(r, fam, false, s->sport[0]);
                                }
                        }
                }
                counts[fi] = (int)(n - first);
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int ingress_apply(struct agent_fault *f, const struct net_sel *s, int ifindex,
                         const struct agent_qdisc_spec *spec, char *err, size_t errlen)
{
        const char *ifb = json_string_value(json_object_get(f->undo, "ifb"));
        bool created = json_is_true(json_object_get(f->undo, "ingress_qdisc_created"));
        if (!ifb) {
                snprintf(err, errlen, "no ifb recorded by prepare");
                return -EINVAL;
        }
        int rv = agent_ifb_create(ifb, err, errlen);
        if (rv < 0)
                return rv;
        int ifb_index = agent_ifindex(ifb);
        if (ifb_index < 0) {
                snprintf(err, errlen, "ifb device %s vanished", ifb);
                return -ENOENT;
        }
        /* The whole tree on the ifb first, then the filters that feed it. */
        struct agent_qdisc_spec ispec = *spec;
        ispec.default_class = true;
        if ((rv = agent_qdisc_install(ifb_index, &ispec, err, errlen)) < 0)
                return rv;
        _cleanup_free_ struct agent_u32_rule *rules = NULL;
        size_t n = 0;
        int counts[2] = {0, 0};
        if ((rv = ingress_rules(s, &rules, &n, counts)) < 0)
                return rv;
        json_object_set_new(f->undo, "u32_v4", json_integer(counts[0]));
        json_object_set_new(f->undo, "u32_v6", json_integer(counts[1]));
        return agent_ingress_install(ifindex, created, ifb_index, rules, n, err, errlen);
}

int net_qdisc_apply(struct agent_fault *f, const struct net_sel *s,
                    const struct agent_qdisc_spec *spec, char *err, size_t errlen)
{
        int ifindex = agent_ifindex(s->ifname);
        if (ifindex < 0) {
                snprintf(err, errlen, "interface %s vanished", s->ifname);
                return -ENOENT;
        }
        int rv;
        struct agent_qdisc_spec espec = *spec;
        /* Only a root prepare snapshotted may be replaced. */
        espec.replace_root = json_object_get(f->undo, "snapshot") != NULL;
        if ((s->dir & NET_EGRESS) && tc_steered(f)) {
                _cleanup_free_ struct agent_u32_rule *rules = NULL;
                if ((rv = egress_rules(&rules, &espec.n_rules)) < 0)
                        return rv;
                espec.rules = rules;
                if ((rv = agent_qdisc_install(ifindex, &espec, err, errlen)) < 0)
                        return rv;
        } else if (s->dir & NET_EGRESS) {
                if ((rv = agent_qdisc_install(ifindex, &espec, err, errlen)) < 0)
                        return rv;
                /* Steer the selected packets into our class; the rest go direct. */
                char action[64];
                snprintf(action, sizeof(action), "meta priority set %x:%x", AGENT_QDISC_MAJOR, 1u);
                struct net_sel egress = *s;
                egress.dir = NET_EGRESS;
                if ((rv = net_nft_apply(f, &egress, NULL, action, err, errlen)) < 0)
                        return rv;
        }
        if (s->dir & NET_INGRESS)
                return ingress_apply(f, s, ifindex, spec, err, errlen);
        return 0;
}

static bool undo_egress(const struct agent_fault *f)
{
        /* Journals written before ingress support have no "egress" key. */
        json_t *e = json_object_get(f->undo, "egress");
        return !e || json_is_true(e);
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
        int rv;
        if (undo_egress(f) && tc_steered(f)) {
                struct agent_qdisc_spec espec = *spec;
                _cleanup_free_ struct agent_u32_rule *rules = NULL;
                if ((rv = egress_rules(&rules, &espec.n_rules)) < 0)
                        return rv;
                espec.rules = rules;
                if ((rv = agent_qdisc_verify(ifindex, &espec, err, errlen)) < 0)
                        return rv;
        } else if (undo_egress(f)) {
                if ((rv = agent_qdisc_verify(ifindex, spec, err, errlen)) < 0 ||
                    (rv = net_nft_verify(f, err, errlen)) < 0)
                        return rv;
        }
        const char *ifb = json_string_value(json_object_get(f->undo, "ifb"));
        if (!ifb)
                return 0;
        if ((rv = agent_ifb_check(ifb, err, errlen)) < 0)
                return rv == -ENODEV ? -EIO : rv;
        struct agent_qdisc_spec ispec = *spec;
        ispec.default_class = true;
        if ((rv = agent_qdisc_verify(agent_ifindex(ifb), &ispec, err, errlen)) < 0)
                return rv;
        return agent_ingress_verify(
            ifindex, (int)json_integer_value(json_object_get(f->undo, "u32_v4")),
            (int)json_integer_value(json_object_get(f->undo, "u32_v6")), err, errlen);
}

int net_qdisc_revert(const struct agent_fault *f, char *err, size_t errlen)
{
        /* Every step is attempted; the first failure is reported (and the
         * agent retries the whole, idempotent, revert). A tc-steered fault
         * (journaled by prepare) never made an nftables chain. */
        int first = tc_steered(f) ? 0 : net_nft_revert(f, err, errlen), rv;
        char e2[256];
        const char *ifname = json_string_value(json_object_get(f->undo, "ifname"));
        if (!ifname)
                return first; /* prepare never got that far */
        int ifindex = agent_ifindex(ifname);
        const char *ifb = json_string_value(json_object_get(f->undo, "ifb"));
        if (ifb) {
                /* Filters first: a redirect to a deleted device drops. */
                if (ifindex >= 0) {
                        bool created =
                            json_is_true(json_object_get(f->undo, "ingress_qdisc_created"));
                        rv = agent_ingress_remove(ifindex, created, e2, sizeof(e2));
                        if (rv < 0 && first == 0) {
                                first = rv;
                                snprintf(err, errlen, "%s", e2);
                        }
                }
                rv = agent_ifb_delete(ifb, e2, sizeof(e2));
                if (rv < 0 && first == 0) {
                        first = rv;
                        snprintf(err, errlen, "%s", e2);
                }
        }
        if (ifindex < 0 || !undo_egress(f))
                return first; /* the interface, and its qdiscs, are gone */
        rv = agent_qdisc_remove(ifindex, json_object_get(f->undo, "snapshot"), e2, sizeof(e2));
        if (rv < 0 && first == 0) {
                first = rv;
                snprintf(err, errlen, "%s", e2);
        }
        return first;
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
        int rv = net_sel_parse(f, &q->sel, NET_EGRESS, NET_BOTH, err, errlen);
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
                sb_add(&b, " %s",
                       s->proto == IPPROTO_TCP   ? "tcp"
                       : s->proto == IPPROTO_UDP ? "udp"
                                                 : "icmp");
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
        if (!q->use_nft_loss) {
                int irv = net_ingress_sel_check(&q->sel, err, errlen);
                if (irv < 0)
                        return irv;
        }
        int crv = net_sel_resolve_cgroup(f, &q->sel, err, errlen);
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
        const char *ifb = json_string_value(json_object_get(f->undo, "ifb"));
        snprintf(f->target, sizeof(f->target), "%.200s%s%s%s", desc,
                 q->sel.dir == NET_INGRESS ? " ingress"
                 : q->sel.dir == NET_BOTH  ? " both"
                                           : "",
                 ifb ? " via " : "", ifb ? ifb : "");
        snprintf(f->backend, sizeof(f->backend), "%s%s", q->spec.has_netem ? "netem" : "htb",
                 ifb ? "+ifb" : "");
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

int net_prob_validate(struct agent_fault *f, size_t bp_off, size_t corr_off, char *err,
                      size_t errlen)
{
        struct net_qfault *q;
        int rv = net_qfault_begin(f, &q, err, errlen);
        if (rv < 0)
                return rv;
        q->spec.has_netem = true;
        char *ne = (char *)&q->spec.netem;
        if ((rv = net_parse_bp(f, "percent", true, (uint32_t *)(ne + bp_off), err, errlen)) < 0 ||
            (rv = net_parse_bp(f, "correlation", false, (uint32_t *)(ne + corr_off), err, errlen)) <
                0) {
                net_qfault_destroy(f);
                return rv;
        }
        return 0;
}

int net_prob_prepare(struct agent_fault *f, const char *label, size_t bp_off, char *err,
                     size_t errlen)
{
        struct net_qfault *q = f->priv;
        int rv = net_qfault_prepare(f, err, errlen);
        if (rv == 0) {
                uint32_t bp = *(const uint32_t *)((const char *)&q->spec.netem + bp_off);
                size_t len = strlen(f->target);
                snprintf(f->target + len, sizeof(f->target) - len, " %s=%u.%02u%%", label, bp / 100,
                         bp % 100);
        }
        return rv;
}
