/* libnftables wrapper for the agent's `inet faultline` table. */
#include <malloc.h>
#include <nftables/libnftables.h>

#include "fl_log.h"
#include "fl_util.h"
#include "nl/nft.h"

/* The agent is single-threaded; one context for its lifetime. */
static struct nft_ctx *ctx;

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

static int list_table(json_t **ret, char *err, size_t errlen)
{
        *ret = NULL;
        /* An absent table is an error for `list`; it is the normal state. */
        int rv = run("list tables inet", true, err, errlen);
        if (rv < 0)
                return rv;
        json_t *all = json_loads(nft_ctx_get_output_buffer(ctx), 0, NULL);
        bool present = false;
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(all, "nftables"), i, it)
        {
                const char *name =
                    json_string_value(json_object_get(json_object_get(it, "table"), "name"));
                if (name && strcmp(name, AGENT_NFT_TABLE) == 0)
                        present = true;
        }
        json_decref(all);
        if (!present)
                return 0;
        rv = run("list table inet " AGENT_NFT_TABLE, true, err, errlen);
        if (rv < 0)
                return rv;
        *ret = json_loads(nft_ctx_get_output_buffer(ctx), 0, NULL);
        return *ret ? 0 : -EBADMSG;
}

int agent_nft_chains(json_t **ret, char *err, size_t errlen)
{
        json_t *table = NULL, *out = json_array();
        int rv = list_table(&table, err, errlen);
        if (rv < 0 || !out) {
                json_decref(out);
                return rv < 0 ? rv : -ENOMEM;
        }
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(table, "nftables"), i, it)
        {
                json_t *chain = json_object_get(it, "chain");
                const char *name = json_string_value(json_object_get(chain, "name"));
                if (name)
                        json_array_append_new(out, json_string(name));
        }
        json_decref(table);
        *ret = out;
        return 0;
}

int agent_nft_chain_rules(const char *chain, char *err, size_t errlen)
{
        json_t *table = NULL;
        int rv = list_table(&table, err, errlen);
        if (rv < 0)
                return rv;
        int rules = 0;
        bool found = false;
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(table, "nftables"), i, it)
        {
                const char *c =
                    json_string_value(json_object_get(json_object_get(it, "chain"), "name"));
                const char *r =
                    json_string_value(json_object_get(json_object_get(it, "rule"), "chain"));
                if (c && strcmp(c, chain) == 0)
                        found = true;
                if (r && strcmp(r, chain) == 0)
                        rules++;
        }
        json_decref(table);
        return found ? rules : -ENOENT;
}

int agent_nft_delete_chains(const char *const *chains, size_t n, char *err, size_t errlen)
{
        json_t *have = NULL;
        int rv = agent_nft_chains(&have, err, errlen);
        if (rv < 0)
                return rv;
        char script[4096] = "";
        size_t left = 0, len = 0;
        size_t i;
        json_t *it;
        json_array_foreach(have, i, it)
        {
                const char *name = json_string_value(it);
                bool mine = false;
                for (size_t k = 0; k < n; k++)
                        mine |= strcmp(chains[k], name) == 0;
                if (!mine) {
                        left++;
                        continue;
                }
                len += (size_t)snprintf(script + len, sizeof(script) - len,
                                        "delete chain inet %s %s\n", AGENT_NFT_TABLE, name);
                if (len >= sizeof(script)) {
                        json_decref(have);
                        snprintf(err, errlen, "too many chains to delete at once");
                        return -E2BIG;
                }
        }
        size_t total = json_array_size(have);
        json_decref(have);
        if (total > 0 && left == 0)
                snprintf(script + len, sizeof(script) - len, "delete table inet %s\n",
                         AGENT_NFT_TABLE);
        if (!script[0])
                return 0;
        /* The context stays: closing its netlink socket right after the
         * table is deleted blocks for 5-25 ms while nf_tables finishes its
         * deferred cleanup, which would land on the revert's latency. */
        return agent_nft_run(script, err, errlen);
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
