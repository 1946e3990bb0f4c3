/*
 * The loopback floor for lock-step RETR: the round trips per second two
 * processes reach over TCP on 127.0.0.1 when one sends an 8-byte request and
 * the other answers with a fixed reply at once (no file, no parsing). A
 * POP3 server does more per request, so it cannot expect to answer lock-step
 * RETRs much faster than this on the machine (the figure moves by 10-20%
 * between runs, like the others); bench/mbox/run.sh prints it under its table.
 *
 *   pingpong [ROUNDS] [REPLY_BYTES]      (defaults 20000 and 2000)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "floor.h"

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 20000;
    long reply_len = argc > 2 ? atol(argv[2]) : 2000;
    if (rounds < 1 || reply_len < 1 || reply_len > 65536) {
        fprintf(stderr, "usage: pingpong [ROUNDS] [REPLY_BYTES <= 65536]\n");
        return 2;
    }
    int on = 1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int lis = socket(AF_INET, SOCK_STREAM, 0);
    if (lis < 0 || bind(lis, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lis, 1) < 0)
        die("listen on 127.0.0.1");
    socklen_t len = sizeof addr;
    if (getsockname(lis, (struct sockaddr *)&addr, &len) < 0)
        die("getsockname");

    char *buf = malloc(65536);
    if (!buf)
        die("malloc");
    memset(buf, 'x', 65536);
    pid_t child = fork();
    if (child < 0)
        die("fork");
    if (child == 0) {
        /* The answering side: a reply for every request read. */
        int c = accept(lis, NULL, NULL);
        if (c < 0)
            die("accept");
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        char req[4096];
        while (read(c, req, sizeof req) > 0)
            if (write(c, buf, reply_len) != reply_len)
                die("write reply");
        _exit(0);
    }
    close(lis);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) < 0)
        die("connect");
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    double start = seconds();
    for (long i = 0; i < rounds; i++) {
        if (write(s, "RETR 1\r\n", 8) != 8)
            die("write request");
        long got = 0;
        while (got < reply_len) {
            ssize_t n = read(s, buf, 65536);
            if (n <= 0)
                die("read reply");
            got += n;
        }
    }
    double secs = seconds() - start;
    close(s);
    waitpid(child, NULL, 0);
    printf("%.1f\n", rounds / secs);
    return 0;
}
