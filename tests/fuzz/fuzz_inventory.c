/* libFuzzer target: the inventory parser (coordinator/inventory.c) and
 * target selection on whatever it accepts. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inventory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size > COORD_FILE_MAX)
                return 0;
        yaml_document_t doc;
        struct coord_diags d = {0};
        if (coord_yload_buffer("fuzz-inventory.yaml", (const char *)data, size, &doc, &d) == 0) {
                struct coord_inventory inv;
                if (coord_inventory_from_node(&doc, yaml_document_get_root_node(&doc),
                                              "fuzz-inventory.yaml", &inv, &d) == 0) {
                        static const char *const sels[] = {"all", "tag:web", "h1", "tag:a,b"};
                        for (size_t i = 0; i < sizeof(sels) / sizeof(sels[0]); i++) {
                                struct coord_selector sel;
                                const struct coord_agent **agents = NULL;
                                char err[256];
                                if (coord_selector_parse(sels[i], &sel, err, sizeof(err)) < 0)
                                        continue;
                                sel.percent_bp = i == 1 ? 5000 : 0;
                                if (coord_inventory_select(&inv, &sel, &agents, err, sizeof(err)) >=
                                    0)
                                        free(agents);
                                coord_selector_free(&sel);
                        }
                        coord_inventory_free(&inv);
                }
                yaml_document_delete(&doc);
        }
        coord_diags_free(&d);
        return 0;
}
