#!/usr/bin/env python3
"""POP3 benchmark client: one scenario per run, prints one number.

    client.py HOST PORT USER PASS SCENARIO [MBOX]

Scenarios (times in seconds, rates per second):
  login      PASS -> +OK, then the first STAT: prints "pass_s stat_s total_s"
  retr1      RETR 1 (one large message) to the final dot: prints "seconds bytes MB/s"
  lockstep   RETR 1..N one command at a time (fetchmail): prints "seconds msgs/s"
  inflight   RETR 1..N with 16 commands in flight: prints "seconds msgs/s"
  dele1      DELE 1 + QUIT (after login): prints "seconds" until QUIT's +OK;
             with MBOX, also the seconds until the mailbox is free again (its
             fcntl lock can be taken and MBOX.lock is gone: the compaction
             is over and an MDA could deliver), "quit_s free_s"
"""
import fcntl
import os
import socket
import sys
import time


class Pop3:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.line()

    def fill(self):
        chunk = self.s.recv(1 << 20)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                l = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return l
            self.fill()

    def send(self, c):
        self.s.sendall(c.encode() + b"\r\n")

    def cmd(self, c):
        self.send(c)
        return self.line()

    def multi_end(self):
        """Skips a multi-line body; returns its length."""
        n = 0
        start = 0
        while True:
            i = self.buf.find(b"\r\n.\r\n", max(start - 4, 0))
            if i >= 0:
                n += i + 2
                del self.buf[:i + 5]
                return n
            if len(self.buf) > 8:
                keep = 8
                n += len(self.buf) - keep
                del self.buf[:len(self.buf) - keep]
            start = len(self.buf)
            self.fill()

    def reply_multi(self):
        first = self.line()
        if not first.startswith(b"+OK"):
            raise RuntimeError(first)
        # A body that is empty ends right away.
        if self.buf.startswith(b".\r\n"):
            del self.buf[:3]
            return 0
        self.buf[0:0] = b"\r\n"
        return self.multi_end() - 2


def login(p, user, pw):
    r = p.cmd("USER " + user)
    assert r.startswith(b"+OK"), r
    t0 = time.perf_counter()
    r = p.cmd("PASS " + pw)
    t1 = time.perf_counter()
    assert r.startswith(b"+OK"), r
    return t1 - t0


def main():
    host, port, user, pw, scen = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    p = Pop3(host, port)
    if scen == "login":
        t0 = time.perf_counter()
        dt_pass = login(p, user, pw)
        t1 = time.perf_counter()
        r = p.cmd("STAT")
        t2 = time.perf_counter()
        assert r.startswith(b"+OK"), r
        print("%.4f %.4f %.4f %s" % (dt_pass, t2 - t1, t2 - t0, r.decode().split()[1]))
    elif scen == "retr1":
        login(p, user, pw)
        t0 = time.perf_counter()
        p.send("RETR 1")
        n = p.reply_multi()
        dt = time.perf_counter() - t0
        print("%.4f %d %.1f" % (dt, n, n / dt / 1e6))
    elif scen in ("lockstep", "inflight"):
        login(p, user, pw)
        count = int(p.cmd("STAT").split()[1])
        window = 1 if scen == "lockstep" else 16
        t0 = time.perf_counter()
        sent = done = 0
        while done < count:
            while sent < count and sent - done < window:
                sent += 1
                p.send("RETR %d" % sent)
            p.reply_multi()
            done += 1
        dt = time.perf_counter() - t0
        print("%.4f %.1f" % (dt, count / dt))
    elif scen == "dele1":
        login(p, user, pw)
        t0 = time.perf_counter()
        r = p.cmd("DELE 1")
        assert r.startswith(b"+OK"), r
        r = p.cmd("QUIT")
        dt = time.perf_counter() - t0
        assert r.startswith(b"+OK"), r
        if len(sys.argv) < 7:
            print("%.4f" % dt)
            return
        mbox = sys.argv[6]
        with open(mbox, "rb+") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            fcntl.lockf(f, fcntl.LOCK_UN)
        while os.path.exists(mbox + ".lock"):
            time.sleep(0.0005)
        print("%.4f %.4f" % (dt, time.perf_counter() - t0))
        return
    p.cmd("QUIT")


if __name__ == "__main__":
    main()
