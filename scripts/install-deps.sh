#!/usr/bin/env bash
# Install what building and testing pop3d needs, and nothing that is already there.
#
#   rustup: targets x86_64-unknown-linux-musl, aarch64-unknown-linux-musl;
#           components rustfmt, clippy
#   apt:    the real POP3 clients, MDAs and helpers that the test suite drives
#           (curl fetchmail mpop getmail6 procmail mkpasswd dotlockfile socat
#           openbsd-inetd python3), what scripts/build-busybox-inetd.sh needs
#           to build Debian's busybox with its inetd applet (gcc make dpkg-dev
#           bzip2 xz-utils gpgv), and qemu-user-static for the aarch64 tests.
#
# Idempotent: every item is checked first (command -v, rustup ... list), so on a
# warm machine this costs well under a second. As root, missing apt packages are
# installed (one `apt-get update` first). As non-root, a missing apt package makes
# the script fail with one line naming what to install.
#
# popa3d and dovecot-pop3d are deliberately NOT installed here: they conflict
# with each other in apt, and dovecot in one transaction with qemu-user-static
# ended in "held broken packages". scripts/fetch-peers.sh extracts both into
# target/peers/ without installing them.
set -euo pipefail

# shellcheck source=/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

say() { printf 'install-deps: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# --- Rust -------------------------------------------------------------------

command -v cargo >/dev/null 2>&1 || die "cargo not found: install a Rust toolchain (rustup) first"

RUST_TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
RUST_COMPONENTS=(rustfmt clippy)

if command -v rustup >/dev/null 2>&1; then
    installed_targets=$(rustup target list --installed 2>/dev/null || true)
    missing_targets=()
    for t in "${RUST_TARGETS[@]}"; do
        grep -qx "$t" <<<"$installed_targets" || missing_targets+=("$t")
    done
    if [ ${#missing_targets[@]} -gt 0 ]; then
        say "rustup target add ${missing_targets[*]}"
        rustup target add "${missing_targets[@]}" >/dev/null
    fi

    missing_components=()
    for c in "${RUST_COMPONENTS[@]}"; do
        # `rustfmt --version` fails through rustup's proxy when the component is absent.
        case $c in
            rustfmt) cargo fmt --version >/dev/null 2>&1 || missing_components+=(rustfmt) ;;
            clippy) cargo clippy --version >/dev/null 2>&1 || missing_components+=(clippy) ;;
        esac
    done
    if [ ${#missing_components[@]} -gt 0 ]; then
        say "rustup component add ${missing_components[*]}"
        rustup component add "${missing_components[@]}" >/dev/null
    fi
else
    # No rustup (a distribution Rust): we cannot add targets, only check them.
    sysroot=$(rustc --print sysroot)
    for t in "${RUST_TARGETS[@]}"; do
        [ -d "$sysroot/lib/rustlib/$t" ] || die "missing Rust std for $t: install rustup and run 'rustup target add $t'"
    done
fi

# --- Debian packages ----------------------------------------------------------
# "command that proves it is there" -> "Debian package that provides it"

APT_CHECKS=(
    "curl:curl"
    "fetchmail:fetchmail"
    "mpop:mpop"
    "getmail:getmail6"
    "procmail:procmail"
    "mkpasswd:whois"
    "dotlockfile:liblockfile-bin"
    "socat:socat"
    "strace:strace"
    "gcc:gcc"
    "make:make"
    "dpkg-source:dpkg-dev"
    "bzip2:bzip2"
    "xz:xz-utils"
    "gpgv:gpgv"
    "/usr/sbin/inetd:openbsd-inetd"
    "python3:python3"
)
QEMU_CHECK="qemu-aarch64-static:qemu-user-static"

# Pure Rust needs no C cross compiler (rust-lld links aarch64). Crates that build
# C (ring, aws-lc-sys: a TLS provider) need musl-gcc for x86_64-musl and the
# aarch64 gcc that .cargo/config.toml names in CC_aarch64_unknown_linux_musl.
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -f "$repo_root/Cargo.lock" ] && grep -qE '^name = "(ring|aws-lc-sys|openssl-sys|cc)"$' "$repo_root/Cargo.lock"; then
    APT_CHECKS+=("musl-gcc:musl-tools" "aarch64-linux-gnu-gcc:gcc-aarch64-linux-gnu")
fi

have() {
    case $1 in
        /*) [ -x "$1" ] ;;
        *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

missing_pkgs=()
for pair in "${APT_CHECKS[@]}"; do
    have "${pair%%:*}" || missing_pkgs+=("${pair#*:}")
done
missing_qemu=()
have "${QEMU_CHECK%%:*}" || missing_qemu+=("${QEMU_CHECK#*:}")

if [ ${#missing_pkgs[@]} -eq 0 ] && [ ${#missing_qemu[@]} -eq 0 ]; then
    exit 0
fi

all_missing=("${missing_pkgs[@]}" "${missing_qemu[@]}")
if ! is_root; then
    die "missing packages, run as root: apt-get install ${all_missing[*]}"
fi
command -v apt-get >/dev/null 2>&1 || die "no apt-get here; install by hand: ${all_missing[*]}"

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

apt_install() {
    say "apt-get install $*"
    # -qq still lets dpkg print its unpack lines; keep them out of the test log
    # unless the install fails.
    local log
    log=$(mktemp)
    if ! apt-get install "${APT_OPTS[@]}" "$@" >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "apt-get install $* failed"
    fi
    rm -f "$log"
}

say "apt-get update"
apt-get update -qq >/dev/null || die "apt-get update failed"

[ ${#missing_pkgs[@]} -eq 0 ] || apt_install "${missing_pkgs[@]}"
# On its own: together with other packages it once ended in "held broken packages".
[ ${#missing_qemu[@]} -eq 0 ] || apt_install "${missing_qemu[@]}"

# Check again: a package that installed but did not provide the command is a bug here.
for pair in "${APT_CHECKS[@]}" "$QEMU_CHECK"; do
    have "${pair%%:*}" || die "${pair#*:} installed but ${pair%%:*} is still missing"
done
say "done"
