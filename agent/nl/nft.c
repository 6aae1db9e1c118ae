/* The agent's `inet faultline` table: rules are written with libnftables
 * (its parser turns the selectors into expressions); reading back and
 * deleting, and the one expression libnftables cannot write (xt NFQUEUE),
 * go straight to nfnetlink through libmnl + libnftnl. */
#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <malloc.h>
#include <nftables/libnftables.h>
#include <poll.h>

#include "fl_log.h"
#include "fl_util.h"
#include "nl/nft.h"

/* The agent is single-threaded; one context for its lifetime. */
static struct nft_ctx *ctx;
/* Our own nfnetlink socket for read-back, delete and xt rules. */
static struct mnl_socket *nl;
static uint32_t nl_seq;

static struct nft_ctx *get_ctx(void)
{
        if (!ctx) {
                ctx = nft_ctx_new(NFT_CTX_DEFAULT);
                if (!ctx)
                        return NULL;
                nft_ctx_buffer_output(ctx);
                nft_ctx_buffer_error(ctx);
        }
        return ctx;
}

void agent_nft_reset(void)
{
        if (nl) {
                mnl_socket_close(nl);
                nl = NULL;
        }
        if (ctx) {
                nft_ctx_free(ctx);
                /* A context holds caches of a megabyte or more; an idle
                 * agent should not keep them resident. */
                malloc_trim(0);
        }
        ctx = NULL;
}

static void copy_error(struct nft_ctx *c, char *err, size_t errlen)
{
        const char *e = nft_ctx_get_error_buffer(c);
        /* The library's message spans lines (command, caret); keep the
         * first line, which says what was wrong. */
        size_t n = e ? strcspn(e, "\n") : 0;
        snprintf(err, errlen, "nftables: %.*s", (int)(n ? n : 7), n ? e : "failed");
}

static int run(const char *script, bool json, char *err, size_t errlen)
{
        struct nft_ctx *c = get_ctx();
        if (!c) {
                snprintf(err, errlen, "nftables: cannot create a context");
                return -ENOMEM;
        }
        nft_ctx_output_set_flags(c, json ? NFT_CTX_OUTPUT_JSON : 0);
        int rv = nft_run_cmd_from_buffer(c, script);
        if (rv != 0) {
                copy_error(c, err, errlen);
                fl_log(LOG_DEBUG, "nft script refused: %s -- script: %s", err, script);
                return -EIO;
        }
        return 0;
}

int agent_nft_run(const char *script, char *err, size_t errlen)
{
        return run(script, false, err, errlen);
}

/* ---- direct nfnetlink (libmnl + libnftnl) -----------------------------------
 * Read-back and delete go straight to nf_tables: libnftables would re-dump
 * its whole cache (generation, tables, chains, sets, objects, rules) for
 * every `list`, which made verify and revert cost more than the apply. */

static struct mnl_socket *get_nl(void)
{
        if (!nl) {
                nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
                if (nl && mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
                        mnl_socket_close(nl);
                        nl = NULL;
                }
                if (!nl_seq)
                        nl_seq = (uint32_t)fl_now_mono_us();
        }
        return nl;
}

/* Send one request and feed every reply to cb until the kernel's DONE (a
 * dump) or ACK. Returns 0 or -errno (the kernel's, for a refused request). */
static int nl_talk(struct nlmsghdr *req, mnl_cb_t cb, void *data)
{
        struct mnl_socket *s = get_nl();
        if (!s)
                return -errno ? -errno : -EIO;
        req->nlmsg_seq = ++nl_seq;
        if (mnl_socket_sendto(s, req, req->nlmsg_len) < 0)
                return -errno;
        uint32_t portid = mnl_socket_get_portid(s);
        char buf[MNL_SOCKET_BUFFER_SIZE];
        for (int rounds = 0; rounds < 100000; rounds++) {
                ssize_t n = mnl_socket_recvfrom(s, buf, sizeof(buf));
                if (n < 0)
                        return -errno;
                int rv = mnl_cb_run(buf, (size_t)n, req->nlmsg_seq, portid, cb, data);
                if (rv < 0)
                        return -errno;
                if (rv == MNL_CB_STOP)
                        return 0;
        }
        return -EIO;
}

static struct nlmsghdr *nl_request(char *buf, uint16_t type, uint16_t flags)
{
        return nftnl_nlmsg_build_hdr(buf, type, NFPROTO_INET, flags, 0);
}

struct chain_list {
        json_t *names;
        const char *want; /* non-NULL: only report whether this one exists */
        bool found;
};

static int on_chain(const struct nlmsghdr *h, void *arg)
{
        struct chain_list *l = arg;
        struct nftnl_chain *c = nftnl_chain_alloc();
        if (!c)
                return MNL_CB_ERROR;
        if (nftnl_chain_nlmsg_parse(h, c) == 0) {
                const char *table = nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE);
                const char *name = nftnl_chain_get_str(c, NFTNL_CHAIN_NAME);
                if (table && name && strcmp(table, AGENT_NFT_TABLE) == 0) {
                        if (l->names)
                                json_array_append_new(l->names, json_string(name));
                        if (l->want && strcmp(name, l->want) == 0)
                                l->found = true;
                }
        }
        nftnl_chain_free(c);
        return MNL_CB_OK;
}

int agent_nft_chains(json_t **ret, char *err, size_t errlen)
{
        char buf[MNL_SOCKET_BUFFER_SIZE];
        struct chain_list l = {.names = json_array()};
        if (!l.names)
                return -ENOMEM;
        struct nlmsghdr *h = nl_request(buf, NFT_MSG_GETCHAIN, NLM_F_DUMP);
        /* The kernel's chain dump cannot filter by table: filter here. */
        int rv = nl_talk(h, on_chain, &l);
        if (rv < 0) {
                json_decref(l.names);
                snprintf(err, errlen, "nftables: listing chains: %s", strerror(-rv));
                return rv;
        }
        *ret = l.names;
        return 0;
}

static int count_rule(const struct nlmsghdr *h, void *arg)
{
        (void)h;
        (*(int *)arg)++;
        return MNL_CB_OK;
}

int agent_nft_chain_rules(const char *chain, char *err, size_t errlen)
{
        char buf[MNL_SOCKET_BUFFER_SIZE];
        struct nftnl_chain *c = nftnl_chain_alloc();
        if (!c)
                return -ENOMEM;
        nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, AGENT_NFT_TABLE);
        nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, chain);
        struct nlmsghdr *h = nl_request(buf, NFT_MSG_GETCHAIN, NLM_F_ACK);
        nftnl_chain_nlmsg_build_payload(h, c);
        nftnl_chain_free(c);
        struct chain_list l = {.want = chain};
        int rv = nl_talk(h, on_chain, &l);
        if (rv == -ENOENT || (rv == 0 && !l.found))
                return -ENOENT;
        if (rv < 0)
                goto fail;
        /* A rule dump filtered by table and chain in the kernel. */
        struct nftnl_rule *r = nftnl_rule_alloc();
        if (!r)
                return -ENOMEM;
        nftnl_rule_set_str(r, NFTNL_RULE_TABLE, AGENT_NFT_TABLE);
        nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
        h = nl_request(buf, NFT_MSG_GETRULE, NLM_F_DUMP);
        nftnl_rule_nlmsg_build_payload(h, r);
        nftnl_rule_free(r);
        int rules = 0;
        rv = nl_talk(h, count_rule, &rules);
        if (rv == -ENOENT)
                return -ENOENT;
        if (rv == 0)
                return rules;
fail:
        snprintf(err, errlen, "nftables: reading chain %s: %s", chain, strerror(-rv));
        return rv;
}

/* Send a batch built in b (BEGIN .. END already added). nf_tables handles
 * a batch inside sendmsg(), so every error is queued on our socket when it
 * returns: drain without waiting and report the first one. */
static int batch_send(struct mnl_nlmsg_batch *b, char *err, size_t errlen, const char *what)
{
        struct mnl_socket *s = get_nl();
        if (!s) {
                snprintf(err, errlen, "nftables: cannot open a netlink socket");
                return -EIO;
        }
        if (mnl_socket_sendto(s, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b)) < 0) {
                int e = errno;
                snprintf(err, errlen, "nftables: %s: %s", what, strerror(e));
                return -e;
        }
        uint32_t portid = mnl_socket_get_portid(s);
        char buf[MNL_SOCKET_BUFFER_SIZE];
        int first = 0;
        for (int rounds = 0; rounds < 1024; rounds++) {
                struct pollfd p = {.fd = mnl_socket_get_fd(s), .events = POLLIN};
                if (poll(&p, 1, 0) <= 0)
                        break;
                ssize_t n = mnl_socket_recvfrom(s, buf, sizeof(buf));
                if (n <= 0)
                        break;
                /* seq 0: accept the replies to every message of the batch. */
                if (mnl_cb_run(buf, (size_t)n, 0, portid, NULL, NULL) < 0 && !first)
                        first = errno ? errno : EIO;
        }
        if (first) {
                snprintf(err, errlen, "nftables: %s: %s", what, strerror(first));
                return -first;
        }
        return 0;
}

static void batch_add_chain_op(struct mnl_nlmsg_batch *b, uint16_t type, const char *chain)
{
        if (type == NFT_MSG_DELRULE) {
                /* DELRULE without a handle flushes the chain. */
                struct nftnl_rule *r = nftnl_rule_alloc();
                nftnl_rule_set_str(r, NFTNL_RULE_TABLE, AGENT_NFT_TABLE);
                nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
                struct nlmsghdr *h = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), type,
                                                           NFPROTO_INET, NLM_F_ACK, ++nl_seq);
                nftnl_rule_nlmsg_build_payload(h, r);
                nftnl_rule_free(r);
        } else {
                struct nftnl_chain *c = nftnl_chain_alloc();
                nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, AGENT_NFT_TABLE);
                nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, chain);
                struct nlmsghdr *h = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), type,
                                                           NFPROTO_INET, NLM_F_ACK, ++nl_seq);
                nftnl_chain_nlmsg_build_payload(h, c);
                nftnl_chain_free(c);
        }
        mnl_nlmsg_batch_next(b);
}

int agent_nft_delete_chains(const char *const *chains, size_t n, char *err, size_t errlen)
{
        json_t *have = NULL;
        int rv = agent_nft_chains(&have, err, errlen);
        if (rv < 0)
                return rv;
        const char *mine[64];
        size_t n_mine = 0, left = 0;
        size_t i;
        json_t *it;
        json_array_foreach(have, i, it)
        {
                const char *name = json_string_value(it);
                bool ours = false;
                for (size_t k = 0; k < n; k++)
                        ours |= strcmp(chains[k], name) == 0;
                if (!ours)
                        left++;
                else if (n_mine < FL_ARRAY_SIZE(mine))
                        mine[n_mine++] = name;
                else {
                        json_decref(have);
                        snprintf(err, errlen, "too many chains to delete at once");
                        return -E2BIG;
                }
        }
        bool drop_table = json_array_size(have) > 0 && left == 0;
        if (n_mine == 0) {
                json_decref(have);
                return 0;
        }
        /* Each message is well under 512 bytes. */
        size_t size = (2 * n_mine + 3) * 512;
        _cleanup_free_ char *buf = malloc(size);
        struct mnl_nlmsg_batch *b = buf ? mnl_nlmsg_batch_start(buf, size) : NULL;
        if (!b) {
                json_decref(have);
                return -ENOMEM;
        }
        nftnl_batch_begin(mnl_nlmsg_batch_current(b), ++nl_seq);
        mnl_nlmsg_batch_next(b);
        /* Flush every chain first, so jumps between them are gone before
         * any chain is deleted, whatever the order. */
        for (i = 0; i < n_mine; i++)
                batch_add_chain_op(b, NFT_MSG_DELRULE, mine[i]);
        for (i = 0; i < n_mine; i++)
                batch_add_chain_op(b, NFT_MSG_DELCHAIN, mine[i]);
        if (drop_table) {
                struct nftnl_table *t = nftnl_table_alloc();
                nftnl_table_set_str(t, NFTNL_TABLE_NAME, AGENT_NFT_TABLE);
                struct nlmsghdr *h =
                    nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), NFT_MSG_DELTABLE,
                                          NFPROTO_INET, NLM_F_ACK, ++nl_seq);
                nftnl_table_nlmsg_build_payload(h, t);
                nftnl_table_free(t);
                mnl_nlmsg_batch_next(b);
        }
        nftnl_batch_end(mnl_nlmsg_batch_current(b), ++nl_seq);
        mnl_nlmsg_batch_next(b);
        rv = batch_send(b, err, errlen, "deleting the fault's chains");
        mnl_nlmsg_batch_stop(b);
        json_decref(have);
        /* The socket stays open: closing an nfnetlink socket right after a
         * table is deleted blocks for 5-25 ms while nf_tables finishes its
         * deferred cleanup, which would land on the revert's latency. */
        return rv;
}

int agent_nft_add_xt_queue(const char *chain, uint16_t queue, bool bypass, char *err, size_t errlen)
{
        /* struct xt_NFQ_info_v3 {u16 queuenum, queues_total, flags}, padded
         * to XT_ALIGN as nft_compat expects. */
        struct nftnl_rule *r = nftnl_rule_alloc();
        struct nftnl_expr *e = nftnl_expr_alloc("target");
        /* The expression takes ownership of the info buffer (frees it). */
        uint16_t *info = calloc(4, sizeof(*info));
        if (!r || !e || !info) {
                nftnl_rule_free(r);
                nftnl_expr_free(e);
                free(info);
                return -ENOMEM;
        }
        info[0] = queue;
        info[1] = 1; /* queues_total */
        info[2] = bypass ? 0x01 /* NFQ_FLAG_BYPASS */ : 0;
        nftnl_expr_set_str(e, NFTNL_EXPR_TG_NAME, "NFQUEUE");
        nftnl_expr_set_u32(e, NFTNL_EXPR_TG_REV, 3);
        nftnl_expr_set(e, NFTNL_EXPR_TG_INFO, info, 4 * sizeof(*info));
        nftnl_rule_set_str(r, NFTNL_RULE_TABLE, AGENT_NFT_TABLE);
        nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
        nftnl_rule_add_expr(r, e); /* the rule owns it now */
        char buf[2048];
        struct mnl_nlmsg_batch *b = mnl_nlmsg_batch_start(buf, sizeof(buf));
        nftnl_batch_begin(mnl_nlmsg_batch_current(b), ++nl_seq);
        mnl_nlmsg_batch_next(b);
        struct nlmsghdr *h =
            nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), NFT_MSG_NEWRULE, NFPROTO_INET,
                                  NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK, ++nl_seq);
        nftnl_rule_nlmsg_build_payload(h, r);
        nftnl_rule_free(r);
        mnl_nlmsg_batch_next(b);
        nftnl_batch_end(mnl_nlmsg_batch_current(b), ++nl_seq);
        mnl_nlmsg_batch_next(b);
        int rv = batch_send(b, err, errlen, "adding the xt NFQUEUE rule");
        mnl_nlmsg_batch_stop(b);
        return rv;
}

const char *agent_nft_unavailable(void)
{
        static int state; /* 0 unknown, 1 ok, 2 missing */
        static char why[256];
        if (state == 0) {
                char err[200];
                struct nft_ctx *c = get_ctx();
                if (!c) {
                        snprintf(why, sizeof(why), "libnftables context unavailable");
                        state = 2;
                } else {
                        /* Check the kernel side without leaving anything: a
                         * throw-away table created and deleted in one batch. */
                        int rv = agent_nft_run("add table inet faultline_probe\n"
                                               "delete table inet faultline_probe\n",
                                               err, sizeof(err));
                        state = rv == 0 ? 1 : 2;
                        if (rv < 0)
                                snprintf(why, sizeof(why), "nf_tables not usable: %s", err);
                        agent_nft_reset();
                }
        }
        return state == 1 ? NULL : why;
}
