#!/usr/bin/env bash
# Mailbox benchmarks: pop3d against popa3d and Dovecot on the same fixtures in
# the same run, on loopback. Prints a Markdown table (also written to
# target/bench/mbox/results.md) with each figure and the ratio of ours to the
# best peer (for times: best peer / ours, so > 1 means we are faster).
#
#   sudo bash bench/mbox/run.sh [quick]
#
# A cold figure is the median of 3 logins, each to a fresh copy of the fixture
# (one login for Dovecot, whose cold index takes 20 s and more; it is never the
# best peer there); a single one moves by 20% and more on this VM.
# "warm" is a second login to the same, unchanged mailbox: the daemon serves it
# from its index cache. pop3d also runs in inetd mode under socat (a new
# process per session, as popa3d does here), where a second session reads the
# index file the first one wrote (.USER.pop3d-index; removed before every cold
# run). pop3d shares a long first scan between one thread per CPU (at most 4);
# one more cold row has it scan on one thread (--scan-threads 1), as on a
# single-core board. Library-level figures come from examples/mbox_timings.rs.
#
# Needs root: popa3d (Debian's build) authenticates through PAM against a real
# user and serves /var/mail/USER, so all three servers serve the system user
# p3dbench (created if missing, password bench-pw) from /var/mail/p3dbench.
#   pop3d:   target/x86_64-unknown-linux-musl/release/pop3d -D -F (`make build` first),
#            and the same binary in inetd mode under socat
#   popa3d:  target/peers/popa3d (scripts/fetch-peers.sh) in inetd mode under socat
#   Dovecot: target/peers/dovecot master with its own config (-c); it runs
#            /usr/bin/doveconf and its services from /usr/lib/dovecot, its
#            compiled-in paths, so the script re-runs itself in a private
#            mount namespace where read-only overlays put the extracted
#            package there (the host's /usr is not changed; no dovecot-core
#            needs to be installed).
#
# Fixtures (target/bench/mbox, generated once by gen.py, deterministic):
#   m100.mbox   20,000 messages, ~100 MB     PASS->+OK, first STAT
#   m1g.mbox    200,000 messages, ~1 GiB     PASS->+OK, first STAT; DELE 1 + QUIT
#   big.mbox    one 200 MiB message          RETR throughput
#   small.mbox  20,000 messages of ~2 KB     RETR lock-step and 16 in flight
# "quick" uses 1/10 of every size.
set -euo pipefail

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (PAM user for popa3d, /var/mail)"
# Everything below runs in a private mount namespace (for Dovecot's overlays).
if [ -z "${BENCH_MBOX_NS:-}" ]; then
    BENCH_MBOX_NS=1 exec unshare --mount --propagation private bash "${BASH_SOURCE[0]}" "$@"
fi
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
here="$repo/bench/mbox"
work="$repo/target/bench/mbox"
mkdir -p "$work"
scale=1
[ "${1:-}" = quick ] && scale=10

bin="$repo/target/x86_64-unknown-linux-musl/release/pop3d"
(cd "$repo" && make build >/dev/null) # a no-op when the binary is up to date
load="$repo/target/bench-load/release/pop3-load"
CARGO_TARGET_DIR="$repo/target/bench-load" cargo build -q --release --manifest-path "$repo/bench/load/Cargo.toml"
bash "$repo/scripts/fetch-peers.sh" popa3d dovecot >/dev/null
popa3d="$repo/target/peers/popa3d/usr/sbin/popa3d"
dovecot="$repo/target/peers/dovecot/usr/sbin/dovecot"
command -v socat >/dev/null || die "socat is needed (apt-get install socat)"
command -v gcc >/dev/null || die "gcc is needed (apt-get install gcc)"
mount -t overlay overlay -o "lowerdir=$repo/target/peers/dovecot/usr/lib:/usr/lib" /usr/lib
mount -t overlay overlay -o "lowerdir=$repo/target/peers/dovecot/usr/bin:/usr/bin" /usr/bin

# popa3d's package would have made these.
id popa3d >/dev/null 2>&1 || useradd --system -M -d /var/lib/popa3d -s /usr/sbin/nologin popa3d
mkdir -p /var/lib/popa3d
# And Dovecot's (its login and service processes run as these).
id dovecot >/dev/null 2>&1 || useradd --system -M -d /usr/lib/dovecot -s /usr/sbin/nologin dovecot
id dovenull >/dev/null 2>&1 || useradd --system -M -d /nonexistent -s /usr/sbin/nologin dovenull
[ -e /etc/pam.d/popa3d ] || cp "$repo/target/peers/popa3d/etc/pam.d/popa3d" /etc/pam.d/popa3d

user=p3dbench pass=bench-pw
id "$user" >/dev/null 2>&1 || useradd -M -d /nonexistent -s /usr/sbin/nologin "$user"
# SHA-512 (5000 rounds, a few ms everywhere), so that PASS->+OK measures the
# mailbox and not the password scheme (Debian's default yescrypt costs pop3d's
# RustCrypto implementation ~0.13 s, libxcrypt ~0.03 s: see the auth module).
echo "$user:$pass" | chpasswd -c SHA512
mbox=/var/mail/$user

gen() { # name count avg [--single]
    local f="$work/$1.s$scale"
    if [ ! -s "$f" ]; then
        say "generating $1 ($2 messages of ~$3 bytes)"
        python3 "$here/gen.py" "$f.tmp" "$2" "$3" ${4:-} && mv "$f.tmp" "$f"
    fi
    echo "$f"
}
m100=$(gen m100 $((20000 / scale)) 5000)
m1g=$(gen m1g $((200000 / scale)) 5370)
big=$(gen big 1 $((200 * 1024 * 1024 / scale)) --single)
small=$(gen small $((20000 / scale)) 2000)

# --- servers ---------------------------------------------------------------
ours_port=11110 popa3d_port=11111 dovecot_port=11112 inetd_port=11113 one_port=11114
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -f "$work/dovecot/run/master.pid" ] && kill "$(cat "$work/dovecot/run/master.pid")" 2>/dev/null || true
    rm -f "$mbox" "$mbox".shift{,.shift-stage} "/var/mail/.$user".pop3d-{uids,journal,index}
}
trap cleanup EXIT

"$bin" -D -F --listen 127.0.0.1:$ours_port --spool /var/mail --log stderr 2>"$work/pop3d.log" &
pids+=($!)
socat TCP-LISTEN:$popa3d_port,bind=127.0.0.1,reuseaddr,fork EXEC:"$popa3d" 2>/dev/null &
pids+=($!)
# Ours in inetd mode too (a new process per session, as popa3d runs here):
# no index in memory, only the index file next to the mailbox.
socat TCP-LISTEN:$inetd_port,bind=127.0.0.1,reuseaddr,fork \
    EXEC:"$bin --spool /var/mail --log stderr" 2>"$work/pop3d-inetd.log" &
pids+=($!)
# And with the first scan on one thread, as on a single-core board (by
# default it is shared by one thread per CPU).
socat TCP-LISTEN:$one_port,bind=127.0.0.1,reuseaddr,fork \
    EXEC:"$bin --spool /var/mail --log stderr --scan-threads 1" 2>"$work/pop3d-one.log" &
pids+=($!)

dv="$work/dovecot"
rm -rf "$dv"
mkdir -p "$dv/run" "$dv/state" "$dv/home/$user"
chown "$user" "$dv/home/$user"
cat >"$dv/dovecot.conf" <<EOF
base_dir = $dv/run
state_dir = $dv/state
log_path = $dv/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
passdb {
  driver = shadow
}
userdb {
  driver = passwd
}
mail_privileged_group = mail
mail_location = mbox:$dv/home/%u:INBOX=/var/mail/%u
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $dovecot_port
  }
}
EOF
LD_LIBRARY_PATH=/usr/lib/dovecot "$dovecot" -c "$dv/dovecot.conf" </dev/null >"$dv/start.log" 2>&1 ||
    die "Dovecot did not start: $(cat "$dv/start.log")"
sleep 1

client() { python3 "$here/client.py" 127.0.0.1 "$1" "$user" "$pass" "$2" ${3:+"$3"}; }
# RETR figures come from the compiled load generator: the Python client
# spends more time per reply than the servers do (it measured 22,000 lock-step
# RETRs/s against pop3d where pop3-load measures 48,000), which would squeeze
# every ratio towards 1. Each figure is the median of 3 rounds in one session.
retr() { # port mode [cpus] -> "secs msgs bytes msgs/s MB/s"
    ${3:+taskset -c "$3"} "$load" retr --addr "127.0.0.1:$1" --user "$user" --pass "$pass" --mode "$2" --rounds 3 |
        sed -n 's/^RESULT .*msgs=\([0-9]*\) bytes=\([0-9]*\) secs=\([0-9.]*\) msgs_per_s=\([0-9.]*\) mb_per_s=\([0-9.]*\).*/\3 \1 \2 \4 \5/p'
}
# A server's processes (all threads, all descendants; children forked later
# inherit it) on the given CPUs.
tree() { # pid -> it and its descendants
    echo "$1"
    local c
    for c in $(pgrep -P "$1"); do tree "$c"; done
}
root_of() { case $1 in ours) echo "${pids[0]}" ;; popa3d) echo "${pids[1]}" ;; dovecot) cat "$dv/run/master.pid" ;; esac; }
pin() { # server cpus
    local p
    # Short-lived children may be gone by the time taskset runs.
    for p in $(tree "$(root_of "$1")"); do taskset -a -p -c "$2" "$p" >/dev/null 2>&1 || true; done
}
pin_to_0() { # server
    pin "$1" 0
    taskset -c -p "$(root_of "$1")" | grep -q ': 0$' || die "could not pin $1 to CPU 0"
}
all_cpus="0-$(($(nproc) - 1))"
port_of() { case $1 in ours) echo $ours_port ;; popa3d) echo $popa3d_port ;; dovecot) echo $dovecot_port ;; inetd) echo $inetd_port ;; esac; }

install_mbox() { # fixture
    # A new file (a new inode), as a new mailbox is: copied over the old
    # one, unchanged bytes would be found unchanged and served from the
    # daemon's index cache.
    rm -f "$mbox"
    cp "$1" "$mbox"
    chown "$user:mail" "$mbox"
    chmod 600 "$mbox"
    touch -d '1 hour ago' "$mbox" # popa3d holds its lock 1 s for a mailbox written this second
    rm -rf "$dv/home/$user/.imap" "/var/mail/.$user".pop3d-{uids,index}
    # The copy's dirty pages go to disk now rather than while the next figure
    # is measured (the kernel's flusher writes a 1 GiB copy back for seconds).
    sync
}

declare -A R
servers=(ours popa3d dovecot)

median() { printf '%s\n' "$@" | sort -g | sed -n "$((($# + 1) / 2))p"; }
# Cold logins to fresh copies of a fixture (3 unless told): sets t (their
# median), ts (all of them) and n (messages); the copy stays for a warm login.
cold() { # port fixture [rounds]
    ts=()
    for _ in $(seq "${3:-3}"); do
        install_mbox "$2"
        read -r _ _ t n < <(client "$1" login)
        ts+=("$t")
    done
    t=$(median "${ts[@]}")
}
for fx in m100 m1g; do
    f=${!fx}
    for s in "${servers[@]}"; do
        rounds=3
        [ "$s" = dovecot ] && rounds=1
        cold "$(port_of "$s")" "$f" $rounds
        read -r _ _ t2 _ < <(client "$(port_of "$s")" login)
        R[$fx.cold.$s]=$t R[$fx.warm.$s]=$t2
        say "$fx $s: cold PASS+STAT ${t}s (of ${ts[*]}), warm ${t2}s ($n messages)"
    done
done
# Ours in inetd mode on the 1 GiB mailbox, against the same peer figures.
cold $inetd_port "$m1g"
read -r _ _ t2 _ < <(client $inetd_port login)
R[icold.ours]=$t R[iwarm.ours]=$t2
for s in popa3d dovecot; do R[icold.$s]=${R[m1g.cold.$s]} R[iwarm.$s]=${R[m1g.warm.$s]}; done
say "m1g ours in inetd mode: cold PASS+STAT ${t}s (of ${ts[*]}), second session ${t2}s"
cold $one_port "$m1g"
R[one.ours]=$t
for s in popa3d dovecot; do R[one.$s]=${R[m1g.cold.$s]}; done
say "m1g ours in inetd mode, --scan-threads 1: cold PASS+STAT ${t}s (of ${ts[*]})"
for s in "${servers[@]}"; do
    install_mbox "$big"
    client "$(port_of "$s")" login >/dev/null
    read -r t _ b _ mbs < <(retr "$(port_of "$s")" big)
    R[big.$s]=$mbs
    say "RETR of $b bytes $s: ${t}s, $mbs MB/s"
done
# Dovecot right after us: this VM's round-trip time drifts over minutes, and
# popa3d's lock-step rows take four of them.
for s in ours dovecot popa3d; do
    install_mbox "$small"
    client "$(port_of "$s")" login >/dev/null
    read -r _ _ _ r1 _ < <(retr "$(port_of "$s")" lockstep)
    read -r _ _ _ r16 _ < <(retr "$(port_of "$s")" inflight)
    # The same with the server and the client on one CPU: no cross-CPU
    # wake-up between them (on a VM, an interrupt through the hypervisor),
    # so what is left is the work each request costs, as on a single-core
    # router.
    pin_to_0 "$s"
    read -r _ _ _ r1c _ < <(retr "$(port_of "$s")" lockstep 0)
    pin "$s" "$all_cpus"
    R[lock.$s]=$r1 R[fly.$s]=$r16 R[lock1.$s]=$r1c
    say "small RETR $s: lock-step $r1/s, 16 in flight $r16/s, lock-step on one CPU $r1c/s"
done
for s in "${servers[@]}"; do
    install_mbox "$m1g"
    client "$(port_of "$s")" login >/dev/null
    read -r t tf < <(client "$(port_of "$s")" dele1 "$mbox")
    R[dele.$s]=$t R[delefree.$s]=$tf
    say "DELE 1 + QUIT on m1g $s: ${t}s, mailbox free after ${tf}s"
done

# --- floors: what this machine allows, with nothing else done ---------------
best3() { # most|least command...: the best of three runs
    local order=$1
    shift
    for _ in 1 2 3; do "$@"; done | sort -g | if [ "$order" = most ]; then tail -1; else head -1; fi
}
# Lock-step: a bare request/reply ping-pong over loopback (most per second).
gcc -O2 -o "$work/pingpong" "$here/pingpong.c"
floor=$(best3 most "$work/pingpong" 20000 2000)
floor1=$(best3 most taskset -c 0 "$work/pingpong" 20000 2000)
say "lock-step floor (pingpong.c): $floor round trips/s, $floor1 on one CPU"
# Cold scan: reading the 1 GiB mailbox from the page cache in 64 KiB reads.
install_mbox "$m1g"
dd_secs() { dd if="$mbox" of=/dev/null bs=64k 2>&1 | sed -n 's/.*copied, \([0-9.e-]*\) s,.*/\1/p'; }
floor_read=$(best3 least dd_secs)
# DELE 1: moving everything after the first message down in place (shift.c),
# once unsafely as popa3d does (plus an fsync) and once staged as a
# power-cut-safe compaction must be; on a copy next to the mailbox.
gcc -O2 -o "$work/shift" "$here/shift.c"
gap=$(python3 -c 'import sys; d = open(sys.argv[1], "rb").read(1 << 20); print(d.index(b"\n\nFrom ") + 2)' "$mbox")
shift_secs() { cp "$mbox" "$mbox.shift" && "$work/shift" "$mbox.shift" "$gap" "$@"; rm -f "$mbox.shift"; }
floor_move=$(best3 least shift_secs)
floor_staged=$(best3 least shift_secs staged)
say "floors: read 1 GiB ${floor_read}s; DELE 1 move ${floor_move}s, staged ${floor_staged}s"

# --- table -------------------------------------------------------------------
row() { # label key kind(time|rate)
    local o=${R[$2.ours]} p=${R[$2.popa3d]} d=${R[$2.dovecot]}
    python3 - "$1" "$3" "$o" "$p" "$d" <<'EOF'
import sys
label, kind, o, p, d = sys.argv[1], sys.argv[2], *map(float, sys.argv[3:])
if kind == "time":
    best = min(p, d); ratio = best / o if o else float("inf"); unit = "s"
    fmt = lambda x: "%.3f s" % x
else:
    best = max(p, d); ratio = o / best if best else float("inf")
    fmt = lambda x: "%.1f" % x
print("| %s | %s | %s | %s | %.2fx |" % (label, fmt(o), fmt(p), fmt(d), ratio))
EOF
}
floors() { # the floors under the figures they bound, against what 2x the best peer needs
    python3 - "$floor" "$floor1" "$floor_read" "$floor_move" "$floor_staged" \
        "${R[lock.ours]}" "${R[lock.popa3d]}" "${R[lock.dovecot]}" \
        "${R[lock1.ours]}" "${R[lock1.popa3d]}" "${R[lock1.dovecot]}" \
        "${R[m1g.cold.ours]}" "${R[m1g.cold.popa3d]}" "${R[m1g.cold.dovecot]}" \
        "${R[delefree.ours]}" "${R[delefree.popa3d]}" "${R[delefree.dovecot]}" <<'EOF'
import sys
(pp, pp1, read, move, staged, lo, lp, ld, l1o, l1p, l1d, co, cp, cd, do, dp, dd) = map(float, sys.argv[1:])
print("Floors of this machine in this run: the same job with nothing else done (best of 3),")
print("against what 2x the best peer needs.")
print()
print("| floor | value | ours | 2x best peer needs |")
print("|---|---|---|---|")
print("| lock-step: bare ping-pong over loopback (pingpong.c), round trips/s | %.0f | %.0f (%.0f%%) | %.0f |"
      % (pp, lo, 100 * lo / pp, 2 * max(lp, ld)))
print("| same, both on one CPU | %.0f | %.0f (%.0f%%) | %.0f |"
      % (pp1, l1o, 100 * l1o / pp1, 2 * max(l1p, l1d)))
print("| cold 1 GiB: reading the mailbox in 64 KiB reads (dd), s | %.3f | %.3f | %.3f |"
      % (read, co, min(cp, cd) / 2))
print("| DELE 1 on 1 GiB: moving the rest down in place + fsync (shift.c), not crash-safe (ours: until the mailbox is free), s | %.3f | %.3f | %.3f |"
      % (move, do, min(dp, dd) / 2))
print("| same, staged through a second file as a power-cut-safe compaction must (shift.c staged), s | %.3f | %.3f | %.3f |"
      % (staged, do, min(dp, dd) / 2))
EOF
}
{
    echo "pop3d $("$bin" -V 2>/dev/null | head -1), $(date -u +%Y-%m-%d), $(nproc) cores, scale 1/$scale"
    echo
    echo "| figure | pop3d | popa3d | Dovecot | ours vs best peer |"
    echo "|---|---|---|---|---|"
    row "PASS→+OK + first STAT, 100 MB / 20k msgs, cold" m100.cold time
    row "same, second login (warm)" m100.warm time
    row "PASS→+OK + first STAT, 1 GiB / 200k msgs, cold" m1g.cold time
    row "same, second login (warm)" m1g.warm time
    row "same, pop3d in inetd mode (a process per session), cold" icold time
    row "same, pop3d in inetd mode, second session (index file)" iwarm time
    row "same, pop3d in inetd mode, cold, first scan on one thread (--scan-threads 1)" one time
    row "RETR of one 200 MiB message, MB/s" big rate
    row "20k small RETR lock-step, msgs/s" lock rate
    row "same, server and client on one CPU, msgs/s" lock1 rate
    row "20k small RETR 16 in flight, msgs/s" fly rate
    row "DELE 1 + QUIT on 1 GiB (to QUIT's +OK)" dele time
    row "same, until the mailbox is free again (compaction over, locks gone)" delefree time
    echo
    floors
} | tee "$work/results.md"
