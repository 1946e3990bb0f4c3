/* What the floor programs (pingpong.c, shift.c) share: failing loudly and a
 * monotonic clock. */
#ifndef BENCH_MBOX_FLOOR_H
#define BENCH_MBOX_FLOOR_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void die(const char *what) {
    perror(what);
    exit(1);
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

#endif
