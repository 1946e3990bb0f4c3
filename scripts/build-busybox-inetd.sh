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
# (debian/config/pkg/deb) with CONFIG_INETD=y added (and pid files off, see
# below): the busybox a Debian user would get if the package had inetd.
#
# The source files come straight from the Debian mirror (no deb-src entry
# needed in apt's sources), checked the way apt would: the suite's InRelease
# verified with gpgv against debian-archive-keyring, the SHA-256 of
# main/source/Sources.xz from it, the SHA-256 of busybox's .dsc and tarballs
# from that. So the build follows Debian's current busybox source (security
# updates included) and a file that does not match stops the script with one
# line.
#
# Needs: curl, gpgv, xz, gcc, make, dpkg-source (dpkg-dev), bzip2
# (install-deps.sh installs what is missing). About 35-45 s on 2 cores.
# Idempotent: an existing binary that has the inetd applet is kept.
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

for tool in curl gpgv gcc make dpkg-source bzip2 xz sha256sum awk; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (run scripts/install-deps.sh as root)"
done

mirror=http://deb.debian.org/debian
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || die "$keyring not found (apt-get install debian-archive-keyring)"
suite=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
[ -n "$suite" ] || die "no VERSION_CODENAME in /etc/os-release: not a Debian release this script knows"

work="$out.build"
rm -rf "$work"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

fetch() { # url file
    curl -fsS --retry 3 -o "$2" "$1" || die "download of $1 failed"
}
check() { # file sha256
    echo "$2  $1" | sha256sum -c --quiet - >/dev/null 2>&1 || die "$(basename "$1") does not match its SHA-256 $2"
}

say "fetch $mirror/dists/$suite/InRelease"
fetch "$mirror/dists/$suite/InRelease" "$work/InRelease"
gpgv --keyring "$keyring" --output "$work/Release" "$work/InRelease" >/dev/null 2>&1 ||
    die "the signature of $suite's InRelease does not verify against $keyring"
sources_sum=$(awk '/^SHA256:/ { on = 1; next } /^[^ ]/ { on = 0 } on && $3 == "main/source/Sources.xz" { print $1 }' "$work/Release")
[ -n "$sources_sum" ] || die "$suite's Release names no main/source/Sources.xz"
say "fetch $mirror/dists/$suite/main/source/Sources.xz"
fetch "$mirror/dists/$suite/main/source/Sources.xz" "$work/Sources.xz"
check "$work/Sources.xz" "$sources_sum"
xz -dc "$work/Sources.xz" | awk 'BEGIN { RS = "" } /^Package: busybox\n/' >"$work/busybox.sources"
dir=$(awk '/^Directory:/ { print $2 }' "$work/busybox.sources")
version=$(awk '/^Version:/ { print $2 }' "$work/busybox.sources")
[ -n "$dir" ] && [ -n "$version" ] || die "no busybox source package in $suite's Sources"
awk '/^Checksums-Sha256:/ { on = 1; next } /^[^ ]/ { on = 0 } on { print $1, $3 }' \
    "$work/busybox.sources" >"$work/files"
[ -s "$work/files" ] || die "busybox $version lists no files in $suite's Sources"
dsc=
while read -r sum name; do
    case $name in
        */* | .*) die "unexpected file name '$name' in busybox's Sources entry" ;;
        *.dsc) dsc=$name ;;
    esac
    say "fetch $mirror/$dir/$name"
    fetch "$mirror/$dir/$name" "$work/$name"
    check "$work/$name" "$sum"
done <"$work/files"
[ -n "$dsc" ] || die "busybox $version has no .dsc in $suite's Sources"

# The files were checked against the signed index above.
(cd "$work" && dpkg-source -q --no-check -x "$dsc" src >/dev/null 2>&1) ||
    die "dpkg-source -x $dsc failed"

src="$work/src"
cp "$src/debian/config/pkg/deb" "$src/.config"
grep -qx '# CONFIG_INETD is not set' "$src/.config" ||
    die "Debian's busybox config no longer has the line '# CONFIG_INETD is not set'"
sed -i 's/^# CONFIG_INETD is not set$/CONFIG_INETD=y/' "$src/.config"
# No pid files: run as root by the tests, busybox inetd would otherwise
# overwrite /run/inetd.pid, which belongs to the system's inetd.
sed -i 's/^CONFIG_FEATURE_PIDFILE=y$/# CONFIG_FEATURE_PIDFILE is not set/' "$src/.config"
say "make busybox $version (Debian's deb config + CONFIG_INETD=y)"
# `yes` dies of SIGPIPE when make is done: only make's status counts here.
if ! (set +o pipefail && cd "$src" && yes "" | make -s oldconfig >"$work/config.log" 2>&1); then
    cat "$work/config.log" >&2
    die "make oldconfig failed"
fi
grep -qx 'CONFIG_INETD=y' "$src/.config" || die "CONFIG_INETD=y did not survive make oldconfig"
grep -q '^CONFIG_FEATURE_PIDFILE=y' "$src/.config" && die "CONFIG_FEATURE_PIDFILE is still on after make oldconfig"
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
