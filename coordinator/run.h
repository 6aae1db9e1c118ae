/* `faultline run`: execute a game day. */
#pragma once

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#define COORD_EXIT_HELD     0 /* hypothesis held before and after */
#define COORD_EXIT_DEVIATED 1 /* hypothesis did not hold */
#define COORD_EXIT_USAGE    2 /* bad usage or invalid input */
#define COORD_EXIT_ABORTED  3 /* aborted by a guardrail or by the operator */
#define COORD_EXIT_FAILURE  4 /* agent or system failure */
#define COORD_EXIT_LOCKED   5 /* another run holds the lock (cron overlap) */

/* Set by SIGINT/SIGTERM handlers in main.c; every wait polls it. */
extern volatile sig_atomic_t coord_interrupted;

struct coord_run_opts {
        const char *inventory_override; /* -i: replaces the file's inventory */
        const char *journal_path;       /* --journal FILE, or NULL */
        const char *junit_path;         /* --junit FILE, or NULL */
        const char *html_path;          /* --html FILE, or NULL */
        const char *lock_path;          /* --lock FILE; NULL: the default under /run */
        bool no_lock;                   /* --no-lock */
        const char *report_dir;         /* --report-dir DIR: timestamped journal + html */
        unsigned keep;                  /* --keep N: reports of this experiment kept; 0 = all */
        int progress;                   /* 1 live TTY progress, 0 plain lines, -1 auto */
        bool dry_run;
        bool quiet;
        int call_timeout_ms;
        const char *requester;
};

/* Returns one of the COORD_EXIT_* codes. */
int coord_run(const char *path, const struct coord_run_opts *opts);

/* `faultline validate`: parse and check only; prints every error. 0 or
 * COORD_EXIT_USAGE. */
int coord_validate(const char *path, const struct coord_run_opts *opts);

/* Sleep up to ms, in small slices, returning early (false) when
 * coord_interrupted is set. */
bool coord_sleep_ms(uint64_t ms);
