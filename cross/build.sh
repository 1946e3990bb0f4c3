#!/usr/bin/env bash
# Build (or test under qemu-user) pop3d for one board target.
#
#   cross/build.sh TARGET [build|test]
#
#   TARGET                              toolchain               CI?
#   x86_64-unknown-linux-musl           stable                  yes (make, make test)
#   aarch64-unknown-linux-musl          stable, rust-lld        yes (make cross, make test)
#   armv7-unknown-linux-musleabihf      nightly -Z build-std,   NO: maintainer recipe
#                                       Debian's armhf musl as sysroot
#   armv7-unknown-linux-gnueabihf       stable, static glibc    NO: maintainer fallback
#
# The armv7 recipes install Debian packages and, for musl, temporarily add the
# armhf dpkg architecture to download musl:armhf (then remove it again). Run
# them as root on a Debian 12 build machine. See cross/README.md.
set -euo pipefail

say() { printf 'cross: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ $# -ge 1 ] || die "usage: cross/build.sh TARGET [build|test]"
target=$1
action=${2:-build}
case $action in build | test) ;; *) die "action must be build or test, not '$action'" ;; esac

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo_root"
# shellcheck source=/dev/null
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export DEBIAN_FRONTEND=noninteractive

apt_need() { # apt_need COMMAND PACKAGE...
    command -v "$1" >/dev/null 2>&1 && return 0
    shift
    [ "$(id -u)" -eq 0 ] || die "missing, run as root: apt-get install $*"
    say "apt-get install $*"
    apt-get update -qq >/dev/null || true
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

cargo_action() { # cargo_action TOOLCHAIN_ARGS... -- CARGO_ARGS...
    local tc=()
    while [ "$1" != -- ]; do tc+=("$1"); shift; done
    shift
    if [ "$action" = build ]; then
        cargo "${tc[@]}" build --release --target "$target" "$@"
        echo "target/$target/release/pop3d"
    else
        cargo "${tc[@]}" test --target "$target" "$@"
    fi
}

case $target in
x86_64-unknown-linux-musl)
    rustup target add "$target" >/dev/null
    cargo_action --
    ;;

aarch64-unknown-linux-musl)
    # Linker and qemu runner come from .cargo/config.toml.
    rustup target add "$target" >/dev/null
    [ "$action" = build ] || apt_need qemu-aarch64-static qemu-user-static
    cargo_action --
    ;;

armv7-unknown-linux-musleabihf)
    # No rust-std for this target is published here (stable or nightly), so std is
    # built from source (-Z build-std, nightly only). The musl crt objects and
    # libc.a that rust-std would bring come from Debian's musl:armhf instead, and
    # gcc-arm-linux-gnueabihf links (libgcc_eh.a stands in for libunwind.a).
    apt_need arm-linux-gnueabihf-gcc gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
    [ "$action" = build ] || apt_need qemu-arm-static qemu-user-static
    rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
    rustup component add rust-src --toolchain nightly >/dev/null

    sysroot=$repo_root/target/cross/armv7-musl-sysroot
    extra=$repo_root/target/cross/armv7-musl-extra
    musl_lib=$sysroot/usr/lib/arm-linux-musleabihf
    if [ ! -f "$musl_lib/libc.a" ]; then
        [ "$(id -u)" -eq 0 ] || die "need root once, to download musl:armhf into $sysroot"
        added_arch=
        if ! dpkg --print-foreign-architectures | grep -qx armhf; then
            say "dpkg --add-architecture armhf (temporarily, to download musl:armhf)"
            dpkg --add-architecture armhf
            added_arch=1
        fi
        apt-get update -qq >/dev/null || say "apt-get update reported errors (an armhf index may be missing); trying the download anyway"
        dl=$(mktemp -d)
        status=0
        (cd "$dl" && apt-get download -qq musl:armhf musl-dev:armhf >/dev/null 2>&1) || status=$?
        if [ -n "$added_arch" ]; then
            dpkg --remove-architecture armhf
            apt-get update -qq >/dev/null || true
        fi
        [ "$status" -eq 0 ] || die "apt-get download musl:armhf musl-dev:armhf failed"
        mkdir -p "$sysroot"
        for deb in "$dl"/*.deb; do dpkg-deb -x "$deb" "$sysroot"; done
        rm -rf "$dl"
        [ -f "$musl_lib/libc.a" ] || die "no libc.a in $musl_lib after extraction"
    fi
    libgcc_eh=$(ls /usr/lib/gcc-cross/arm-linux-gnueabihf/*/libgcc_eh.a 2>/dev/null | sort -V | tail -n 1)
    [ -n "$libgcc_eh" ] || die "libgcc_eh.a of arm-linux-gnueabihf-gcc not found"
    mkdir -p "$extra"
    ln -sf "$libgcc_eh" "$extra/libunwind.a"

    export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_LINKER=arm-linux-gnueabihf-gcc
    export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_RUSTFLAGS="-C link-self-contained=no -C link-arg=-B$musl_lib -L native=$musl_lib -L native=$extra"
    export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_MUSLEABIHF_RUNNER="env TEST_EXEC_RUNNER=qemu-arm-static qemu-arm-static"
    # Only for crates that compile C: glibc headers, musl libc.a (works for ring; not a real musl gcc).
    export CC_armv7_unknown_linux_musleabihf=arm-linux-gnueabihf-gcc
    export AR_armv7_unknown_linux_musleabihf=arm-linux-gnueabihf-ar
    if [ "$action" = build ]; then
        # The release profile has panic = "abort".
        cargo_action +nightly -- -Z build-std=std,panic_abort
    else
        cargo_action +nightly -- -Z build-std
    fi
    ;;

armv7-unknown-linux-gnueabihf)
    # Static glibc: stable rust-std exists. Caveat: glibc's NSS (getpwnam, host
    # names) does not work in a static binary; pop3d reads passwd/shadow itself
    # and binds IP literals, so it does not need NSS.
    apt_need arm-linux-gnueabihf-gcc gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
    [ "$action" = build ] || apt_need qemu-arm-static qemu-user-static
    rustup target add "$target" >/dev/null
    export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
    export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUSTFLAGS="-C target-feature=+crt-static"
    export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER="env TEST_EXEC_RUNNER=qemu-arm-static qemu-arm-static"
    export CC_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-gcc
    export AR_armv7_unknown_linux_gnueabihf=arm-linux-gnueabihf-ar
    cargo_action --
    ;;

*)
    die "no recipe for $target (see cross/README.md to add one)"
    ;;
esac
