#!/usr/bin/env bash
# Extract Debian's popa3d and Dovecot's POP3 server into target/peers/ for the
# differential tests and benchmarks, WITHOUT installing them.
#
#   target/peers/popa3d/usr/sbin/popa3d
#   target/peers/dovecot/usr/sbin/dovecot, .../usr/lib/dovecot/pop3 (+ libs)
#
# Why not `apt-get install`: popa3d and dovecot-pop3d conflict in apt (installing
# one removes the other), and dovecot in one transaction with qemu-user-static
# ended in "held broken packages". `apt-get download` + `dpkg-deb -x` avoids both.
#
# The extracted programs still need their shared libraries. As root, the lib*
# packages they depend on are installed with apt (plain libraries, no conflicts);
# Dovecot's own private libraries live in the extracted usr/lib/dovecot, so run
# its binaries with LD_LIBRARY_PATH=target/peers/dovecot/usr/lib/dovecot.
#
# Idempotent: a peer whose binary is already extracted is skipped.
# Usage: scripts/fetch-peers.sh [popa3d] [dovecot]    (default: both)
set -euo pipefail

say() { printf 'fetch-peers: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
peers="$repo_root/target/peers"
debs="$peers/debs"

peer_pkgs() {
    case $1 in
        popa3d) echo popa3d ;;
        dovecot) echo dovecot-core dovecot-pop3d ;;
        *) die "unknown peer '$1' (popa3d or dovecot)" ;;
    esac
}
peer_bin() {
    case $1 in
        popa3d) echo "$peers/popa3d/usr/sbin/popa3d" ;;
        dovecot) echo "$peers/dovecot/usr/lib/dovecot/pop3" ;;
    esac
}

want=("$@")
[ ${#want[@]} -gt 0 ] || want=(popa3d dovecot)

todo=()
for p in "${want[@]}"; do
    peer_pkgs "$p" >/dev/null
    [ -x "$(peer_bin "$p")" ] || todo+=("$p")
done
if [ ${#todo[@]} -eq 0 ]; then
    for p in "${want[@]}"; do echo "$(peer_bin "$p")"; done
    exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "no apt-get here: cannot fetch ${todo[*]}"
export DEBIAN_FRONTEND=noninteractive

updated=
apt_update_once() {
    [ -n "$updated" ] && return 0
    if [ "$(id -u)" -eq 0 ]; then
        say "apt-get update"
        apt-get update -qq >/dev/null || die "apt-get update failed"
    fi
    updated=1
}

mkdir -p "$debs"
for p in "${todo[@]}"; do
    read -r -a pkgs <<<"$(peer_pkgs "$p")"
    apt_update_once
    say "apt-get download ${pkgs[*]}"
    (cd "$debs" && rm -f "${pkgs[@]/%/_*.deb}" && apt-get download -qq "${pkgs[@]}" >/dev/null 2>&1) ||
        die "apt-get download ${pkgs[*]} failed"
    rm -rf "${peers:?}/$p"
    mkdir -p "$peers/$p"
    for pkg in "${pkgs[@]}"; do
        for deb in "$debs/${pkg}"_*.deb; do
            dpkg-deb -x "$deb" "$peers/$p"
        done
    done

    # Shared libraries the peer links against, from its packages' Depends.
    libs=()
    for pkg in "${pkgs[@]}"; do
        while read -r dep; do
            case $dep in lib*) ;; *) continue ;; esac
            dpkg-query -W -f='${Status}' "$dep" 2>/dev/null | grep -q 'install ok installed' || libs+=("$dep")
        done < <(apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks \
            --no-replaces --no-enhances "$pkg" | sed -n 's/^ *Depends: //p' | grep -v '^<')
    done
    if [ ${#libs[@]} -gt 0 ]; then
        if [ "$(id -u)" -eq 0 ]; then
            say "apt-get install ${libs[*]}"
            apt-get install -y -qq --no-install-recommends "${libs[@]}" >/dev/null 2>&1 ||
                die "apt-get install ${libs[*]} failed"
        else
            say "warning: $p needs libraries, run as root: apt-get install ${libs[*]}"
        fi
    fi

    bin=$(peer_bin "$p")
    [ -x "$bin" ] || die "$bin missing after extraction"
    if LD_LIBRARY_PATH="$peers/dovecot/usr/lib/dovecot" ldd "$bin" 2>/dev/null | grep -q 'not found'; then
        say "warning: $bin has unresolved libraries:"
        LD_LIBRARY_PATH="$peers/dovecot/usr/lib/dovecot" ldd "$bin" | grep 'not found' >&2
    fi
done

for p in "${want[@]}"; do echo "$(peer_bin "$p")"; done
