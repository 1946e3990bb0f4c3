#!/usr/bin/env bash
# Create a small, self-contained world for trying pop3d by hand (`make run`):
#
#   demo/passwd        one user, "demo"
#   demo/shadow        its password "demo" as a real yescrypt hash
#   demo/spool/demo    five RFC 5322 messages in mbox format
#
# demo/ is git-ignored. Re-running this script regenerates everything, so the
# demo can be repeated after DELE + QUIT emptied the mailbox.
#
# Who "demo" is: pop3d refuses uid 0 and, when not run as root, only lets in the
# user whose uid equals its own. So:
#   not root -> demo has your uid/gid (id -u / id -g), files are yours;
#   root     -> demo is 65534:65534 (nobody/nogroup), the mailbox is chowned to
#               it (0600) and so is the spool dir (0755): pop3d makes its dot-lock,
#               expunge journal and UIDL record there as the mail user.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
demo="${DEMO_DIR:-$repo_root/demo}"
spool="$demo/spool"

# `mkpasswd -m yescrypt demo` (whois package), embedded so `make run` needs no mkpasswd.
DEMO_HASH='$y$j9T$P9o66p6ZCp4ayPZzRQhaK1$8XRvXOBipTRfopIWidTk6xAAgzDwmD33wsvLesHH7C3'

if [ "$(id -u)" -eq 0 ]; then
    uid=65534
    gid=65534
else
    uid=$(id -u)
    gid=$(id -g)
fi

mkdir -p "$demo" "$spool"
chmod 0755 "$demo" "$spool"
rm -f "$spool"/demo.lock "$spool"/.demo.* "$spool"/demo.tmp*

umask 022
printf 'demo:x:%s:%s:Demo User:/nonexistent:/usr/sbin/nologin\n' "$uid" "$gid" >"$demo/passwd"
chmod 0644 "$demo/passwd"

umask 077
printf 'demo:%s:19000:0:99999:7:::\n' "$DEMO_HASH" >"$demo/shadow"
chmod 0600 "$demo/shadow"

# The mailbox. From_ lines carry asctime dates; bodies are mbox-escaped (">From ").
tmp="$spool/.demo.new.$$"
cat >"$tmp" <<'MBOX'
From alice@example.org Mon Nov  2 08:41:19 2026
Return-Path: <alice@example.org>
Received: from mail.example.org (mail.example.org [192.0.2.10])
	by mx.example.net (Postfix) with ESMTPS id 4Q7mYk2Hs1z9vGx
	for <demo@example.net>; Mon,  2 Nov 2026 08:41:19 +0000 (UTC)
Date: Mon, 02 Nov 2026 09:41:12 +0100
From: Alice Example <alice@example.org>
To: Demo User <demo@example.net>
Subject: Welcome to pop3d
Message-ID: <20261102084112.GA1187@mail.example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Hi,

this is the first message in your demo mailbox. If you can read it,
pop3d found the spool, checked your yescrypt password against the
demo shadow file and sent the message back over POP3.

Try LIST, UIDL, TOP 2 5 and RETR 3 next.

-- 
Alice

From bob@lists.example.com Thu Nov  5 17:03:52 2026
Return-Path: <bounces+demo=example.net@lists.example.com>
Received: from lists.example.com (lists.example.com [198.51.100.25])
	by mx.example.net (Postfix) with ESMTP id 4Q9bTz0mKcz9vH2
	for <demo@example.net>; Thu,  5 Nov 2026 17:03:52 +0000 (UTC)
Received: from [10.0.0.7] (dsl-203-0-113-44.example.com [203.0.113.44])
	by lists.example.com (Postfix) with ESMTPSA id 8C1F22A0F1
	for <router-users@lists.example.com>; Thu,  5 Nov 2026 17:03:40 +0000 (UTC)
Date: Thu, 05 Nov 2026 18:03:31 +0100
From: Bob Builder <bob@lists.example.com>
To: router-users@lists.example.com
Subject: Re: mbox quirks on the NAS
 (dots, From lines and other traps)
Message-ID: <5f2c9e1a-77b3-4d0e-9a61-0c4f3e2b8d17@lists.example.com>
In-Reply-To: <87h6q2xk1p.fsf@example.net>
References: <87h6q2xk1p.fsf@example.net>
List-Id: Router users <router-users.lists.example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

On Wed, 4 Nov 2026 Demo User wrote:
> does the POP3 server cope with odd lines?

It should. Here are the classic traps, one per line:

.a line that starts with a single dot (sent as "..a line" on the wire)
..and one that starts with two dots
.
The line above is a lone dot; a client must not take it for the end.
>From here on, this line was escaped by the MDA in the mbox file.
>>From this one twice.
A "From " inside a line is harmless; at a line start the MDA escapes it.

Trailing spaces stay:   
and so do tabs	between	words.

Cheers,
Bob

From carol@photos.example.org Thu Nov 12 11:27:45 2026
Return-Path: <carol@photos.example.org>
Received: from smtp.photos.example.org (smtp.photos.example.org [192.0.2.77])
	by mx.example.net (Postfix) with ESMTPS id 4QCwKd5RrYz9vH9
	for <demo@example.net>; Thu, 12 Nov 2026 11:27:45 +0000 (UTC)
Date: Thu, 12 Nov 2026 12:27:38 +0100
From: Carol Sensor <carol@photos.example.org>
To: Demo User <demo@example.net>
Subject: Weekly readings from the weather station
Message-ID: <CAE7x1v4rK0u2@photos.example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="=-=-=_pop3d_demo_b1_=-=-="

This is a multi-part message in MIME format.

--=-=-=_pop3d_demo_b1_=-=-=
Content-Type: multipart/alternative; boundary="=-=-=_pop3d_demo_b2_=-=-="

--=-=-=_pop3d_demo_b2_=-=-=
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hello,

attached are this week's readings. The garden sensor reads 8.1 =C2=B0C.

Carol

--=-=-=_pop3d_demo_b2_=-=-=
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><body><p>Hello,</p>
<p>attached are this week's readings. The garden sensor reads <b>8.1 =C2=
=B0C</b>.</p><p>Carol</p></body></html>

--=-=-=_pop3d_demo_b2_=-=-=--

--=-=-=_pop3d_demo_b1_=-=-=
Content-Type: text/csv; charset=us-ascii; name="readings.csv"
Content-Disposition: attachment; filename="readings.csv"
Content-Transfer-Encoding: base64

c3RhdGlvbix0ZW1wX2MsaHVtaWRpdHkKcm9vZiw3LjUsODEKZ2FyZGVuLDguMSw3NwpjZWxsYXIs
MTIuOSw2NAo=

--=-=-=_pop3d_demo_b1_=-=-=--

From MAILER-DAEMON Fri Nov 20 22:10:03 2026
Return-Path: <>
Received: by mx.example.net (Postfix)
	id 4QJ0cP6zV1z9vHC; Fri, 20 Nov 2026 22:10:03 +0000 (UTC)
Date: Fri, 20 Nov 2026 22:10:03 +0000 (UTC)
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: demo@example.net
Subject: Delayed Mail (still being retried)
Message-ID: <20261120221003.4QJ0cP6zV1z9vHC@mx.example.net>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.net.

Your message to <dave@unreachable.example> could not be delivered yet.
The mail system will keep trying for another 4 days.

<dave@unreachable.example>: connect to unreachable.example[203.0.113.9]:25:
    Connection timed out

From erin@example.net Tue Nov 24 06:58:30 2026
Return-Path: <erin@example.net>
Received: from localhost (localhost [127.0.0.1])
	by mx.example.net (Postfix) with ESMTP id 4QL8sG1bNwz9vHF
	for <demo@example.net>; Tue, 24 Nov 2026 06:58:30 +0000 (UTC)
Date: Tue, 24 Nov 2026 07:58:22 +0100
From: Erin <erin@example.net>
To: demo@example.net
Subject: short one
Message-ID: <e1b7@example.net>

Lunch at noon?
MBOX
chmod 0600 "$tmp"
if [ "$(id -u)" -eq 0 ]; then
    chown "$uid:$gid" "$tmp" "$spool"
fi
mv -f "$tmp" "$spool/demo"

# As root, pop3d opens the mailbox as the demo user (and inetd mode setuid()s to
# it), so every directory above the mailbox must be searchable by "other".
if [ "$(id -u)" -eq 0 ]; then
    d=$spool
    while :; do
        mode=$(stat -c '%a' "$d")
        if [ $((8#$mode & 1)) -eq 0 ]; then
            echo "demo-world: warning: $d (mode $mode) is not searchable by others;" \
                "uid $uid cannot reach demo/spool/demo (chmod o+x $d, or move the checkout)" >&2
        fi
        [ "$d" = / ] && break
        d=$(dirname "$d")
    done
fi

n=$(grep -c '^From ' "$spool/demo")
echo "demo-world: $demo (user demo, password demo, uid $uid, $n messages)"
