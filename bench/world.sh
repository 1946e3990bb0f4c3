# bench/world.sh: sourced by bench/run.sh inside its private mount, network and
# pid namespaces. Builds the benchmark world without changing the host:
#
#   * /etc/passwd, /etc/group, /etc/shadow: copies with the bench users (and
#     popa3d's and Dovecot's pseudo-users if the host lacks them), bind-mounted
#     over the real files in this mount namespace only;
#   * /etc/pam.d: a copy plus popa3d's PAM file from the extracted package;
#   * /usr/lib and /usr/bin: read-only overlays that put the extracted Dovecot
#     (target/peers/dovecot) where its compiled-in paths expect it;
#   * /var/lib and /var/mail: writable overlays whose upper layers live in $W,
#     so popa3d's chroot dir, Dovecot's state and the mailboxes vanish with $W.
#
# Needs: W (scratch dir), ROOT (repo), PEERS, LOAD (pop3-load binary), BIG_BYTES.

BENCH_USER=p3bench
BENCH_BIG=p3big
BENCH_PASS=bench-pw-1
BENCH_UID=61001
BENCH_BIG_UID=61002

say() { printf 'bench: [%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { say "$*"; exit 1; }

# A uid/gid not present in the given passwd/group copy, starting at $2.
free_id() { # file start
    local id=$2
    while cut -d: -f3 "$1" | grep -qx "$id"; do id=$((id + 1)); done
    echo "$id"
}

add_user() { # name uid home
    local name=$1 uid=$2 home=$3
    grep -q "^$name:" "$W/etc/group" || echo "$name:x:$uid:" >>"$W/etc/group"
    local gid
    gid=$(awk -F: -v n="$name" '$1==n {print $3}' "$W/etc/group")
    if ! grep -q "^$name:" "$W/etc/passwd"; then
        echo "$name:x:$uid:$gid:bench:$home:/usr/sbin/nologin" >>"$W/etc/passwd"
    fi
    grep -q "^$name:" "$W/etc/shadow" || echo "$name:*:19000:0:99999:7:::" >>"$W/etc/shadow"
}

add_system_user() { # name home (only if the host lacks it)
    grep -q "^$1:" "$W/etc/passwd" && return 0
    local id
    id=$(free_id "$W/etc/passwd" 900)
    add_user "$1" "$id" "$2"
}

world_setup() {
    mount --make-rprivate /
    ip link set lo up

    # Users and groups.
    mkdir -p "$W/etc"
    cp /etc/passwd /etc/group /etc/shadow "$W/etc/"
    add_user "$BENCH_USER" "$BENCH_UID" "/var/lib/pop3d-bench/home/$BENCH_USER"
    add_user "$BENCH_BIG" "$BENCH_BIG_UID" "/var/lib/pop3d-bench/home/$BENCH_BIG"
    add_system_user popa3d /var/lib/popa3d
    add_system_user dovecot /usr/lib/dovecot
    add_system_user dovenull /nonexistent
    for f in passwd group shadow; do mount --bind "$W/etc/$f" "/etc/$f"; done

    # PAM for popa3d (Debian's file from the package).
    cp -a /etc/pam.d "$W/pam.d"
    cp "$PEERS/popa3d/etc/pam.d/popa3d" "$W/pam.d/popa3d"
    mount --bind "$W/pam.d" /etc/pam.d

    # Extracted Dovecot at its compiled-in paths (read-only overlays).
    mount -t overlay overlay -o "lowerdir=$PEERS/dovecot/usr/lib:/usr/lib" /usr/lib
    mount -t overlay overlay -o "lowerdir=$PEERS/dovecot/usr/bin:/usr/bin" /usr/bin

    # Writable /var/lib and /var/mail whose changes stay in $W.
    local d
    for d in lib mail; do
        mkdir -p "$W/var-$d/up" "$W/var-$d/work"
        chown --reference="/var/$d" "$W/var-$d/up"
        chmod --reference="/var/$d" "$W/var-$d/up"
        mount -t overlay overlay \
            -o "lowerdir=/var/$d,upperdir=$W/var-$d/up,workdir=$W/var-$d/work" "/var/$d"
    done
    mkdir -p /var/lib/popa3d /var/lib/dovecot
    chmod 755 /var/lib/popa3d
    local u
    for u in "$BENCH_USER" "$BENCH_BIG"; do
        mkdir -p "/var/lib/pop3d-bench/home/$u"
        chown "$u:$u" "/var/lib/pop3d-bench/home/$u"
        chmod 700 "/var/lib/pop3d-bench/home/$u"
    done
}

# set_hash md5|yescrypt: both bench users get that kind of hash of $BENCH_PASS.
# /etc/shadow is rewritten in place (it is a bind mount; rename would fail).
set_hash() {
    local h
    case $1 in
        md5) h=$(mkpasswd -m md5crypt "$BENCH_PASS") ;;
        yescrypt) h=$(mkpasswd -m yescrypt "$BENCH_PASS") ;;
        *) die "set_hash: $1?" ;;
    esac
    awk -F: -v OFS=: -v h="$h" -v a="$BENCH_USER" -v b="$BENCH_BIG" \
        '($1==a || $1==b) {$2=h} {print}' "$W/etc/shadow" >"$W/shadow.new"
    cat "$W/shadow.new" >/etc/shadow
    rm -f "$W/shadow.new"
}

# Mailboxes: the small one is rewritten before each server (Dovecot may add
# headers to an mbox it has opened); the big one only when it changed. Both get
# an mtime an hour back: popa3d holds its lock and sleeps 1 s when a mailbox's
# mtime is the current second (so a writer after it changes the mtime), which
# would otherwise turn every session of a fresh fixture into a 1 s session.
old_mtime() { touch -d "@$(($(date +%s) - 3600))" "$1"; }
SMALL_MESSAGES=10
SMALL_SIZE=4096
fresh_small() {
    rm -f "/var/mail/$BENCH_USER"
    "$LOAD" mkmbox --out "/var/mail/$BENCH_USER" --messages "$SMALL_MESSAGES" --size "$SMALL_SIZE"
    chown "$BENCH_USER:mail" "/var/mail/$BENCH_USER"
    chmod 600 "/var/mail/$BENCH_USER"
    old_mtime "/var/mail/$BENCH_USER"
}

# Size and inode: the fairness section moves the mtime on purpose.
big_stamp() { stat -c '%s %i' "/var/mail/$BENCH_BIG" 2>/dev/null; }
BIG_STAMP=
fresh_big() {
    if [ -n "$BIG_STAMP" ] && [ "$(big_stamp)" = "$BIG_STAMP" ]; then
        old_mtime "/var/mail/$BENCH_BIG"
        return 0
    fi
    say "writing a $((BIG_BYTES >> 20)) MiB mailbox (one message)"
    rm -f "/var/mail/$BENCH_BIG"
    "$LOAD" mkmbox --out "/var/mail/$BENCH_BIG" --messages 1 --size "$BIG_BYTES"
    chown "$BENCH_BIG:mail" "/var/mail/$BENCH_BIG"
    chmod 600 "/var/mail/$BENCH_BIG"
    old_mtime "/var/mail/$BENCH_BIG"
    BIG_STAMP=$(big_stamp)
}
