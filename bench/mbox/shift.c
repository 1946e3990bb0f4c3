/*
 * The floor for DELE 1 on a large mailbox: how long this machine takes to
 * move everything after the first GAP bytes of FILE down by GAP, in place,
 * then truncate and fsync, with nothing else (no parsing, no lock, no
 * journal). That is all popa3d's expunge does (it fsyncs once at the end
 * too); it is not crash-safe (a crash in the middle leaves a damaged file).
 *
 * With "staged", each 16 MiB block goes first into a second file next to
 * FILE, which is fsynced, and then into place, and FILE is fdatasynced after
 * every block: the least a compaction that survives a power cut at any byte
 * must do when the gap is smaller than a block (pop3d's journal does this,
 * with a record and a check of each block). Staged copies start the
 * write-back of each chunk at once, as pop3d's do. bench/mbox/run.sh prints both under its
 * table. FILE is changed: run it on a copy.
 *
 *   shift FILE GAP [staged]      prints the seconds
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "floor.h"

#define CHUNK (1 << 20)
#define BLOCK (16 << 20)

/* Copies n bytes from (from, at) to (to, dest) through buf; with early, the
 * write-back of each chunk is started at once (sync_file_range), so that the
 * fsync after the block waits less. */
static void copy(int from, off_t at, int to, off_t dest, off_t n, char *buf, int early) {
    while (n > 0) {
        ssize_t want = n < CHUNK ? n : CHUNK;
        ssize_t got = pread(from, buf, want, at);
        if (got <= 0)
            die("pread");
        if (pwrite(to, buf, got, dest) != got)
            die("pwrite");
        if (early)
            sync_file_range(to, dest, got, SYNC_FILE_RANGE_WRITE);
        at += got;
        dest += got;
        n -= got;
    }
}

int main(int argc, char **argv) {
    if (argc < 3 || (argc > 3 && strcmp(argv[3], "staged") != 0)) {
        fprintf(stderr, "usage: shift FILE GAP [staged]\n");
        return 2;
    }
    off_t gap = atoll(argv[2]);
    int staged = argc > 3;
    int fd = open(argv[1], O_RDWR);
    if (fd < 0)
        die(argv[1]);
    struct stat st;
    if (fstat(fd, &st) < 0)
        die("fstat");
    if (gap <= 0 || gap > st.st_size) {
        fprintf(stderr, "shift: GAP must be 1..size\n");
        return 2;
    }
    char *buf = malloc(CHUNK);
    if (!buf)
        die("malloc");
    char side[4096];
    snprintf(side, sizeof side, "%s.shift-stage", argv[1]);
    int stage = -1;
    double start = seconds();
    if (staged && (stage = open(side, O_RDWR | O_CREAT | O_TRUNC, 0600)) < 0)
        die(side);
    for (off_t pos = gap; pos < st.st_size;) {
        off_t n = st.st_size - pos < BLOCK ? st.st_size - pos : BLOCK;
        if (staged) {
            copy(fd, pos, stage, 0, n, buf, 1);
            if (fsync(stage) < 0)
                die("fsync");
            copy(stage, 0, fd, pos - gap, n, buf, 1);
            if (fdatasync(fd) < 0)
                die("fdatasync");
        } else {
            copy(fd, pos, fd, pos - gap, n, buf, 0);
        }
        pos += n;
    }
    if (ftruncate(fd, st.st_size - gap) < 0 || fsync(fd) < 0)
        die("truncate and fsync");
    double secs = seconds() - start;
    if (staged) {
        close(stage);
        unlink(side);
    }
    printf("%.3f\n", secs);
    return 0;
}
