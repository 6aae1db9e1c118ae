/* Reports rendered from a run journal (the JSON document run.c writes;
 * schema in docs/cli.md): JUnit XML for CI and a single self-contained
 * HTML page with SVG charts. `faultline report` renders old journals with
 * the same code, so a report never knows more than its journal.
 *
 * Both return 0 or -errno (the file is written to PATH.tmp and renamed, so
 * a reader never sees half a report). */
#pragma once

#include <jansson.h>

int coord_report_junit(const json_t *journal, const char *path);
int coord_report_html(const json_t *journal, const char *path);

/* Load a journal file. 0 and *ret (json_decref it), or -errno with a
 * message on stderr. */
int coord_journal_load(const char *path, json_t **ret);
