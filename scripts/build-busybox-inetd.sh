#!/usr/bin/env bash
# Build Debian's busybox with its inetd applet switched on, into
#
#   target/peers/busybox/busybox
#
# Debian 12 ships busybox (and busybox-static) without the inetd applet
# (`busybox inetd` says "applet not found"), yet busybox inetd is what many
# router and NAS images start pop3d from. So the test suite builds it from
# Debian's own source package: the pristine upstream tarball, Debian's
# patches (dpkg-source -x) and Debian's configuration for the busybox .deb
# (debian/config/pkg/deb) with CONFIG_INETD=y added: the busybox a Debian
# user would get if the package had inetd.
#
# The three source files come straight from the Debian mirror's pool (no
# deb-src entry needed in apt's sources) and are checked against pinned
# SHA-256 sums; a mismatch or a missing file stops the script with one line.
#
# Needs: curl, gcc, make, dpkg-source (dpkg-dev), bzip2, xz (install-deps.sh
# installs them). About 35 s on 2 cores. Idempotent: an existing binary that
# has the inetd applet is kept.
set -euo pipefail

say() { printf 'build-busybox-inetd: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out="$repo_root/target/peers/busybox"
bin="$out/busybox"

has_inetd() {
    local help
    help=$("$1" inetd --help 2>&1 || true)
    grep -q 'Usage: inetd' <<<"$help"
}

if [ -x "$bin" ] && has_inetd "$bin"; then
    echo "$bin"
    exit 0
fi

for tool in curl gcc make dpkg-source bzip2 xz sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run scripts/install-deps.sh as root)"
done

pool=http://deb.debian.org/debian/pool/main/b/busybox
version=1.35.0-4+deb12u1
files=(
    "busybox_$version.dsc 9c01fe128b0eeded371c70e37d474fdb5055f71b5d0a778db44c6b0c62d3a7fa"
    "busybox_1.35.0.orig.tar.bz2 faeeb244c35a348a334f4a59e44626ee870fb07b6884d68c10ae8bc19f83a694"
    "busybox_$version.debian.tar.xz 1cacbe095ef4880ea7879933c8e3c5075d1527cd6fbcb626a9b41e5daefd1a46"
)

work="$out.build"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

for entry in "${files[@]}"; do
    name=${entry% *}
    sum=${entry#* }
    say "fetch $pool/$name"
    curl -fsS --retry 3 -o "$work/$name" "$pool/$name" || die "download of $pool/$name failed"
    echo "$sum  $work/$name" | sha256sum -c --quiet - >/dev/null 2>&1 ||
        die "$name does not have the pinned SHA-256 $sum"
done

(cd "$work" && dpkg-source -q --no-check -x "busybox_$version.dsc" src >/dev/null 2>&1) ||
    die "dpkg-source -x busybox_$version.dsc failed"

src="$work/src"
cp "$src/debian/config/pkg/deb" "$src/.config"
grep -qx '# CONFIG_INETD is not set' "$src/.config" ||
    die "Debian's busybox config no longer has the line '# CONFIG_INETD is not set'"
sed -i 's/^# CONFIG_INETD is not set$/CONFIG_INETD=y/' "$src/.config"
say "make busybox (Debian's deb config + CONFIG_INETD=y)"
# `yes` dies of SIGPIPE when make is done: only make's status counts here.
if ! (set +o pipefail && cd "$src" && yes "" | make -s oldconfig >"$work/config.log" 2>&1); then
    cat "$work/config.log" >&2
    die "make oldconfig failed"
fi
grep -qx 'CONFIG_INETD=y' "$src/.config" || die "CONFIG_INETD=y did not survive make oldconfig"
jobs=$(nproc 2>/dev/null || echo 2)
if ! (cd "$src" && make -s -j"$jobs" busybox >"$work/build.log" 2>&1); then
    tail -40 "$work/build.log" >&2
    die "building busybox failed"
fi
has_inetd "$src/busybox" || die "the built busybox has no inetd applet"
mkdir -p "$out"
install -m 0755 "$src/busybox" "$bin"
say "built $bin"
echo "$bin"
