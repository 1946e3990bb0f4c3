#!/usr/bin/env bash
# Authentication benchmark (not a test). Prints one table:
#  1. crypt(3) verification time per scheme, pop3d (pop3d::auth::crypt::verify,
#     release build for $TARGET) against the system's libxcrypt (crypt_rn from
#     a small C program, gcc -lcrypt), on the same hashes in the same run, as
#     ratios. Hashes come from mkpasswd (libxcrypt) at its default costs, plus
#     a few higher costs. Each figure is the median thread CPU time
#     (CLOCK_THREAD_CPUTIME_ID, user + system) of $RUNS verifications, so that
#     other work on a shared machine distorts it less than wall-clock time;
#     the rounds alternate ours/theirs $ROUNDS times and the lowest median of
#     each side is kept.
#  2. Median wall-clock time from PASS to -ERR through the real server
#     (--fail-delay 0) for an unknown user and for a real user with a wrong
#     password, and their ratio (the dummy verification should make it ~1).
#
# Usage: bench/auth/run.sh            (from anywhere; needs cargo, gcc,
#        libcrypt-dev and mkpasswd from the `whois` package)
# Variables: TARGET (default x86_64-unknown-linux-musl, the shipped build),
#            RUNS (15), ROUNDS (3), LOGINS (40).
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v cargo >/dev/null; then export PATH="$HOME/.cargo/bin:$PATH"; fi

TARGET=${TARGET:-x86_64-unknown-linux-musl}
RUNS=${RUNS:-15}
ROUNDS=${ROUNDS:-3}
LOGINS=${LOGINS:-40}
OUT=target/bench-auth
mkdir -p "$OUT"
for tool in mkpasswd gcc; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing" >&2; exit 1; }
done

# --- build -----------------------------------------------------------------
cargo build --quiet --release --target "$TARGET"
cargo build --quiet --release --target "$TARGET" \
    --manifest-path bench/auth/Cargo.toml --target-dir "$OUT/cargo"
BENCH="$OUT/cargo/$TARGET/release/pop3d-auth-bench"
SERVER="target/$TARGET/release/pop3d"
gcc -O2 -Wall -o "$OUT/xcrypt_bench" bench/auth/xcrypt_bench.c -lcrypt

# --- hashes ----------------------------------------------------------------
PW='correct horse battery staple'
CASES="$OUT/cases.tsv"
: >"$CASES"
add() { # label target mkpasswd-args...
    local label=$1 target=$2
    shift 2
    printf '%s\t%s\t%s\n' "$label" "$PW" "$(mkpasswd "$@" "$PW")" >>"$CASES"
    printf '%s\t%s\n' "$label" "$target" >>"$OUT/targets.tsv"
}
: >"$OUT/targets.tsv"
add 'yescrypt $y$j9T (default)' 1.3 -m yescrypt
add 'yescrypt $y$jBT'           1.3 -m yescrypt -R 7
add 'gost-yescrypt $gy$j9T'     -   -m gost-yescrypt
add 'scrypt $7$CU (default)'    -   -m scrypt
add 'bcrypt $2b$05 (default)'   1.3 -m bcrypt
add 'bcrypt $2b$10'             1.3 -m bcrypt -R 10
add 'bcrypt $2a$10'             1.3 -m bcrypt-a -R 10
add 'sha512crypt (5000)'        1.0 -m sha512crypt
add 'sha512crypt rounds=656000' 1.0 -m sha512crypt -R 656000
add 'sha256crypt (5000)'        1.0 -m sha256crypt
add 'sha256crypt rounds=200000' 1.0 -m sha256crypt -R 200000
add 'md5crypt $1$'              1.0 -m md5crypt
add 'descrypt'                  -   -m descrypt
add 'bsdicrypt _J9.. (725)'     -   -m bsdicrypt

# --- verification ----------------------------------------------------------
for round in $(seq "$ROUNDS"); do
    "$BENCH" verify "$CASES" "$RUNS" >"$OUT/ours.$round"
    "$OUT/xcrypt_bench" "$CASES" "$RUNS" >"$OUT/xcrypt.$round"
done

# --- login failures through the server -------------------------------------
WORLD="$OUT/world"
rm -rf "$WORLD"
mkdir -p "$WORLD/spool"
if [ "$(id -u)" = 0 ]; then uid=4242; else uid=$(id -u); fi
: >"$WORLD/passwd"
: >"$WORLD/shadow"
for i in $(seq 0 19); do
    user=user$i
    [ "$i" = 0 ] && user=alice
    echo "$user:x:$uid:$uid::/home/$user:/bin/sh" >>"$WORLD/passwd"
    echo "$user:$(mkpasswd -m yescrypt "secret $i"):19000:0:99999:7:::" >>"$WORLD/shadow"
done
# The logins all come from 127.0.0.1: lift the flood limits (--min-delay 0:
# a session stops counting when it ends) so that they measure the failure
# path and not the per-source bound.
"$SERVER" -D -F --listen 127.0.0.1:0 --spool "$WORLD/spool" --passwd "$WORLD/passwd" \
    --shadow "$WORLD/shadow" --log stderr --fail-delay 0 --min-delay 0 \
    --max-per-source 500 2>"$OUT/server.log" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true' EXIT
port=
for _ in $(seq 200); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$OUT/server.log")
    [ -n "$port" ] && break
    sleep 0.05
done
[ -n "$port" ] || { cat "$OUT/server.log" >&2; exit 1; }
"$BENCH" logins "$port" alice "$LOGINS" >"$OUT/logins.tsv"
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
trap - EXIT

# --- table -----------------------------------------------------------------
echo
echo "pop3d auth bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc) CPUs," \
    "load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ours = pop3d::auth::crypt::verify, release build for $TARGET;" \
    "libxcrypt = crypt_rn, $(dpkg-query -W -f '${Package} ${Version}' libcrypt1 2>/dev/null || echo libcrypt)"
echo "median thread CPU time of $RUNS verifications, best of $ROUNDS alternating rounds"
echo
awk -F'\t' '
    FILENAME ~ /targets/ { target[$1] = $2; order[++n] = $1; next }
    FILENAME ~ /ours/    { if (!($1 in ours) || $2 < ours[$1]) ours[$1] = $2; next }
    FILENAME ~ /xcrypt/  { if (!($1 in theirs) || $2 < theirs[$1]) theirs[$1] = $2; next }
    END {
        printf "| %-27s | %10s | %13s | %6s | %7s |\n", "scheme", "ours ms", "libxcrypt ms", "ratio", "target"
        printf "|-----------------------------|------------|---------------|--------|---------|\n"
        for (i = 1; i <= n; i++) {
            k = order[i]
            # A zero reading is a broken clock, not a fast hash: no verdict.
            if (ours[k] <= 0 || theirs[k] <= 0) { r = 0; t = "NO READING"; bad = 1 }
            else {
                r = ours[k] / theirs[k]
                t = target[k] == "-" ? "-" : sprintf("<= %s %s", target[k], r <= target[k] ? "ok" : "MISS")
            }
            printf "| %-27s | %10.3f | %13.3f | %6.2f | %7s |\n", k, ours[k] / 1e6, theirs[k] / 1e6, r, t
        }
        if (bad) print "\nsome times read 0: the CPU-time clock is too coarse here" > "/dev/stderr"
    }' "$OUT/targets.tsv" "$OUT"/ours.* "$OUT"/xcrypt.*
echo
awk -F'\t' '
    { v[$1] = $2 }
    END {
        ok = (v["ratio"] >= 0.9 && v["ratio"] <= 1.1) ? "ok" : "MISS"
        printf "login failure through the server (--fail-delay 0, 20 yescrypt accounts, %s logins each, wall clock):\n", '"$LOGINS"'
        printf "  median unknown user %.2f ms, wrong password %.2f ms, ratio %.3f (target 0.9-1.1 %s)\n",
            v["unknown"] / 1e6, v["wrong"] / 1e6, v["ratio"], ok
    }' "$OUT/logins.tsv"
