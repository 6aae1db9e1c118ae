/* Small helpers shared by every program: cleanup attributes, ownership
 * transfer, monotonic/wall clocks, bounded string copy. Header-only. */
#pragma once

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Transfer ownership out of a cleanup-managed variable. */
#define FL_TAKE_PTR(p)                                                                             \
        ({                                                                                         \
                __typeof__(p) _fl_tmp = (p);                                                       \
                (p) = NULL;                                                                        \
                _fl_tmp;                                                                           \
        })

static inline void fl_freep(void *p)
{
        free(*(void **)p);
}
static inline void fl_closep(int *fd)
{
        if (*fd >= 0)
                close(*fd);
}
static inline void fl_fclosep(FILE **f)
{
        if (*f)
                fclose(*f);
}
#define _cleanup_free_   __attribute__((cleanup(fl_freep)))
#define _cleanup_close_  __attribute__((cleanup(fl_closep)))
#define _cleanup_fclose_ __attribute__((cleanup(fl_fclosep)))

/* Monotonic clock in milliseconds / microseconds. */
static inline uint64_t fl_now_mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
static inline uint64_t fl_now_mono_us(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
/* Wall clock (UNIX epoch) in milliseconds: for journals and reports only. */
static inline uint64_t fl_now_wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Copy src into dst[size], always NUL-terminated. Returns -ENAMETOOLONG
 * (and copies nothing) when src does not fit. */
static inline int fl_strlcpy(char *dst, const char *src, size_t size)
{
        size_t n = strlen(src);
        if (n >= size)
                return -ENAMETOOLONG;
        memcpy(dst, src, n + 1);
        return 0;
}
