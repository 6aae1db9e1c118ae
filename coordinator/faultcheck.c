#include "faultcheck.h"

#include "fault.h"
#include "fl_util.h"

void coord_fault_kinds(char *buf, size_t size)
{
        buf[0] = 0;
        for (size_t i = 0; i < agent_fault_registry_len; i++)
                snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? ", " : "",
                         agent_fault_registry[i]->kind);
}

int coord_fault_check(const char *kind, const struct fl_param *params, size_t n, char *err,
                      size_t errlen)
{
        const struct fault_ops *ops = agent_fault_lookup(kind);
        if (!ops) {
                char kinds[256];
                coord_fault_kinds(kinds, sizeof(kinds));
                snprintf(err, errlen, "unknown fault kind \"%s\" (known: %s)", kind, kinds);
                return -ENOENT;
        }
        for (size_t i = 0; i < n; i++) {
                bool known = false;
                for (const char *const *k = ops->keys; k && *k; k++)
                        known |= strcmp(*k, params[i].key) == 0;
                if (!known) {
                        snprintf(err, errlen, "%s: unknown parameter \"%s\"", kind, params[i].key);
                        return -EINVAL;
                }
        }
        struct agent_fault f = {.ops = ops, .n_params = n, .params = (struct fl_param *)params};
        snprintf(f.id, sizeof(f.id), "f-check");
        int rv = ops->validate(&f, err, errlen);
        if (ops->destroy)
                ops->destroy(&f);
        return rv < 0 ? -EINVAL : 0;
}
