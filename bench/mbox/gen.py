#!/usr/bin/env python3
"""Generates benchmark mailboxes (mbox, as procmail writes them).

    gen.py OUT COUNT AVG_BYTES [--single]

COUNT messages of about AVG_BYTES each (sizes vary from 1/4 to 7/4 of it),
with the headers an MTA and an MUA write (Received, Date, Message-ID, From,
To, Subject) and 72-column body lines, some starting with dots or "From ".
--single: one message of AVG_BYTES (for RETR throughput).
Deterministic: the same arguments give the same bytes.
"""
import random
import sys


def main():
    out, count, avg = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(count * 1_000_003 + avg)
    line = (b"The quick brown fox jumps over the lazy dog; pack my box with five "
            b"dozen.\n")
    with open(out, "wb", buffering=1 << 20) as f:
        for k in range(count):
            size = avg if "--single" in sys.argv else rng.randint(avg // 4, avg * 7 // 4)
            day = 1 + k % 28
            head = (
                b"From sender%d@example.org Mon Jan %2d 12:%02d:%02d 2024\n" % (k % 97, day, k % 60, k % 59)
                + b"Received: from mx%d.example.org (mx%d.example.org [192.0.2.%d])\n"
                  b"\tby mail.example.net (Postfix) with ESMTP id %08X\n"
                  b"\tfor <user@example.net>; Mon, %d Jan 2024 12:%02d:%02d +0000\n"
                % (k % 7, k % 7, k % 250, k, day, k % 60, k % 59)
                + b"Date: Mon, %d Jan 2024 12:%02d:%02d +0000\n" % (day, k % 60, k % 59)
                + b"Message-ID: <%d.%d@example.org>\n" % (k, rng.randrange(1 << 30))
                + b"From: Sender %d <sender%d@example.org>\n" % (k % 97, k % 97)
                + b"To: User <user@example.net>\nSubject: Benchmark message %d\n\n" % k
            )
            f.write(head)
            left = max(size - len(head), 1)
            body = bytearray(line)  # never a From_ line right after the header
            while len(body) < left:
                r = rng.random()
                if r < 0.01:
                    body += b".dot-started line\n"
                elif r < 0.015:
                    body += b"From the quoted side\n"
                else:
                    body += line
            f.write(bytes(body[:left - 1]) + b"\n\n")


if __name__ == "__main__":
    main()
