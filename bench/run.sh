#!/usr/bin/env bash
# bench/run.sh: pop3d's daemon benchmarks against popa3d (inetd and -D) and
# Dovecot, all measured in the same run on the same fixtures (issue #4):
#
#   1. sessions/s (connect, USER/PASS, STAT, QUIT), $1$ and $y$ hashes, 1 and 8 clients
#   2. PSS per idle logged-in session at 100, 500 and 1,000 sessions
#   3. 1,000 pipelined NOOPs in one write: commands/s
#   4. NOOP round-trip p99 while another client downloads a 1 GiB message
#
# Prints Markdown tables and writes them to bench/results/<date>.md
# (<date>-quick.md with QUICK=1); KEEP_LOGS=DIR keeps the servers' logs. Needs root: it runs everything in private
# mount, network and pid namespaces (bench/world.sh) so that the bench users,
# PAM file, overlays and popa3d's port 110 never touch the host, and every
# process it started ends with it.
#
#   bash bench/run.sh            full run, about 3.5 minutes on 2 cores
#   QUICK=1 bash bench/run.sh    1 s cells, levels 100/200, 256 MiB download: under a minute
#   ONLY="ours dovecot"          restrict the servers (default: all four)
#   SECTIONS="sessions memory pipeline fairness"   restrict the sections
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS=$ROOT/target/peers
POP3D=$ROOT/target/x86_64-unknown-linux-musl/release/pop3d
LOAD=$ROOT/target/bench-load/release/pop3-load
QUICK=${QUICK:-0}

# ------------------------------------------------------------------ outside
if [ -z "${BENCH_IN_NS:-}" ]; then
    say() { printf 'bench: %s\n' "$*" >&2; }
    [ "$(id -u)" -eq 0 ] || { say "needs root (namespaces; popa3d and Dovecot run as root)"; exit 1; }
    missing=()
    command -v socat >/dev/null || missing+=(socat)
    command -v mkpasswd >/dev/null || missing+=(whois)
    command -v ss >/dev/null || missing+=(iproute2)
    command -v ps >/dev/null || missing+=(procps)
    command -v unshare >/dev/null || missing+=(util-linux)
    if [ ${#missing[@]} -gt 0 ]; then
        say "apt-get install ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    command -v cargo >/dev/null || export PATH=$HOME/.cargo/bin:$PATH
    say "building pop3d (release, musl) and the load generator"
    (cd "$ROOT" && cargo build -q --release --target x86_64-unknown-linux-musl)
    CARGO_TARGET_DIR=$ROOT/target/bench-load cargo build -q --release \
        --manifest-path "$ROOT/bench/load/Cargo.toml"
    bash "$ROOT/scripts/fetch-peers.sh" >/dev/null
    W=$(mktemp -d /tmp/pop3-bench.XXXXXX)
    trap 'rm -rf "$W"' EXIT
    rc=0
    BENCH_IN_NS=1 W=$W unshare --mount --net --pid --fork --mount-proc \
        bash "${BASH_SOURCE[0]}" "$@" || rc=$?
    if [ -n "${KEEP_LOGS:-}" ]; then
        mkdir -p "$KEEP_LOGS"
        cp "$W"/*.log "$W"/*.err "$W"/*.txt "$W"/dovecot/log "$W"/dovecot/dovecot.conf "$KEEP_LOGS"/ 2>/dev/null || true
        say "logs kept in $KEEP_LOGS"
    fi
    exit $rc
fi

# ------------------------------------------------------------------ inside
# shellcheck source=bench/world.sh
. "$ROOT/bench/world.sh"
# shellcheck source=bench/servers.sh
. "$ROOT/bench/servers.sh"

if [ "$QUICK" = 1 ]; then
    SESS_SECS=1
    REPS=1
    LEVELS=100,200
    SETTLE=0.5
    BIG_BYTES=$((256 << 20))
    PIPE_ROUNDS=5
    PIPE_SECS=0.3
else
    SESS_SECS=2
    REPS=3
    LEVELS=100,500,1000
    SETTLE=1
    BIG_BYTES=$((1024 << 20))
    PIPE_ROUNDS=20
    PIPE_SECS=2
fi
SOURCES=200 # client source addresses 127.0.0.2 .. 127.0.0.201
ONLY=${ONLY:-$SERVERS}
SECTIONS=${SECTIONS:-sessions memory pipeline fairness}
# popa3d -D serves at most 500 sessions per 10 s (compile-time MAX_SESSIONS
# slots, each busy for MIN_DELAY); its sessions/s cells stop below that.
POPA3D_D_BURST=450

ulimit -n "$(ulimit -Hn)"
set -E
trap 'say "failed: line $LINENO: $BASH_COMMAND"' ERR
trap 'server_stop' EXIT
world_setup

declare -A R     # R[section|server|variant|key] = value
RAW=$W/raw.txt   # every RESULT line, for the appendix
: >"$RAW"

record() { # section server variant < lines from pop3-load
    local line kv
    while IFS= read -r line; do
        printf '%s %s %s %s\n' "$1" "$2" "$3" "$line" >>"$RAW"
        case $line in RESULT*) ;; *) continue ;; esac
        local variant=$3
        for kv in ${line#RESULT }; do
            [ "${kv%%=*}" = level ] && variant=${kv#*=}
        done
        for kv in ${line#RESULT }; do R["$1|$2|$variant|${kv%%=*}"]=${kv#*=}; done
    done
}

fresh_server() { # name: clean mailboxes (and Dovecot's index files of them), start
    fresh_small
    rm -rf "/var/lib/pop3d-bench/home/$BENCH_USER/mail" "/var/lib/pop3d-bench/home/$BENCH_BIG/mail"
    # Dovecot sometimes leaves a dot-lock behind (it could not unlink it).
    rm -f "/var/mail/$BENCH_USER.lock" "/var/mail/$BENCH_BIG.lock"
    server_start "$1"
}

run_load() { # section server variant -- pop3-load args; failures are recorded, not fatal
    local sec=$1 srv=$2 var=$3
    shift 3
    local out rc=0
    out=$("$LOAD" "$@" 2>>"$W/load.err") || rc=$?
    record "$sec" "$srv" "$var" <<<"$out"
    [ $rc -eq 0 ] || say "$sec $srv $var: pop3-load failed (rc $rc): $(tail -1 "$W/load.err")"
}

# ------------------------------------------------------------------ 1. sessions/s
bench_sessions() {
    local rep hash c s extra
    # Repetitions go round all servers in turn, so a burst of other load on the
    # shared cores hits every server alike; the tables show medians.
    for rep in $(seq 1 "$REPS"); do
        for hash in md5 yescrypt; do
            set_hash $hash
            for s in $ONLY; do
                fresh_server "$s"
                for c in 1 8; do
                    say "sessions: $s, $hash, $c client(s), run $rep/$REPS"
                    extra=()
                    if [ "$s" = popa3d-D ]; then
                        # A fresh daemon (empty session table) for each cell.
                        [ $c = 1 ] || { server_stop; server_start "$s"; }
                        extra=(--max-sessions "$POPA3D_D_BURST")
                    fi
                    run_load sessions "$s" "$hash-$c-r$rep" sessions --addr "$SERVER_ADDR" \
                        --user "$BENCH_USER" --pass "$BENCH_PASS" --clients "$c" \
                        --secs "$SESS_SECS" --sources "$SOURCES" --pid "$SERVER_PID" "${extra[@]}"
                done
                server_stop
            done
        done
    done
    # Medians (failures: sums) over the repetitions.
    local k rep_vals
    for s in $ONLY; do
        for hash in md5 yescrypt; do
            for c in 1 8; do
                for k in rate cpu_ms client_cpu_ms p99_ms; do
                    rep_vals=()
                    for rep in $(seq 1 "$REPS"); do rep_vals+=("$(get "sessions|$s|$hash-$c-r$rep|$k")"); done
                    R["sessions|$s|$hash-$c|$k"]=$(median "${rep_vals[@]}")
                done
                for k in fail_connect fail_closed fail_err fail_timeout fail_io; do
                    local sum=0 x
                    for rep in $(seq 1 "$REPS"); do
                        x=$(get "sessions|$s|$hash-$c-r$rep|$k")
                        sum=$((sum + ${x:-0}))
                    done
                    R["sessions|$s|$hash-$c|$k"]=$sum
                done
            done
        done
    done
}

# Median of numbers (empty and nan skipped; empty if none).
median() {
    printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# ------------------------------------------------------------------ 2. memory
bench_memory() {
    local s warm
    set_hash md5
    for s in $ONLY; do
        say "memory: $s, levels $LEVELS"
        fresh_server "$s"
        # popa3d -D: no warm-up session, it would hold one of the 500 slots.
        warm=1
        [ "$s" = popa3d-D ] && warm=0
        run_load memory "$s" - idle --addr "$SERVER_ADDR" --user "$BENCH_USER" \
            --pass "$BENCH_PASS" --pid "$SERVER_PID" --levels "$LEVELS" \
            --sources "$SOURCES" --warmup "$warm" --threads 8 --settle "$SETTLE"
        server_stop
    done
}

# ------------------------------------------------------------------ 3. pipelining
bench_pipeline() {
    local s
    set_hash md5
    for s in $ONLY; do
        say "pipeline: $s"
        fresh_server "$s"
        run_load pipeline "$s" noop pipeline --addr "$SERVER_ADDR" --user "$BENCH_USER" \
            --pass "$BENCH_PASS" --cmds 1000 --rounds "$PIPE_ROUNDS" --min-secs "$PIPE_SECS" --cmd NOOP
        server_stop
    done
}

# ------------------------------------------------------------------ 4. fairness
# Two variants per server: "old" (the big mailbox's mtime an hour back) and
# "fresh" (mtime = now, as right after a delivery: servers that trust an old
# mtime must re-check the file before they send from it).
bench_fairness() {
    local s v
    set_hash md5
    for s in $ONLY; do
        for v in old fresh; do
            fresh_big
            [ $v = fresh ] && touch "/var/mail/$BENCH_BIG"
            say "fairness: $s, RETR of $((BIG_BYTES >> 20)) MiB, $v mtime"
            fresh_server "$s"
            run_load fairness "$s" "$v" fairness --addr "$SERVER_ADDR" --user "$BENCH_USER" \
                --big-user "$BENCH_BIG" --pass "$BENCH_PASS" --interval-ms 1 --max-secs 120
            server_stop
        done
    done
}

# ------------------------------------------------------------------ tables
label() {
    case $1 in
        ours) echo "ours" ;;
        popa3d-inetd) echo "popa3d inetd" ;;
        popa3d-D) echo "popa3d -D" ;;
        dovecot) echo "Dovecot" ;;
        *) echo "$1" ;;
    esac
}

get() { echo "${R["$1"]:-}"; } # key -> value or empty

# best peer of a list of "value" for a metric: hi (max) or lo (min); empty skipped
best_of() { # hi|lo values...
    local mode=$1 best='' v
    shift
    for v in "$@"; do
        case $v in '' | nan | -) continue ;; esac
        if [ -z "$best" ]; then best=$v; continue; fi
        if [ "$mode" = hi ]; then
            awk -v a="$v" -v b="$best" 'BEGIN{exit !(a>b)}' && best=$v
        else
            awk -v a="$v" -v b="$best" 'BEGIN{exit !(a<b)}' && best=$v
        fi
    done
    echo "$best"
}

ratio() { # a b -> a/b with 2 decimals, or n/a
    case "$1|$2" in *'||'* | '|'* | *'|' | *nan*) echo "n/a"; return ;; esac
    awk -v a="$1" -v b="$2" 'BEGIN{ if (b==0) print "n/a"; else printf "%.2f", a/b }'
}

peers_of() { local s; for s in $ONLY; do [ "$s" = ours ] || echo "$s"; done; }

header_row() { # first columns...
    local s h="|" sep="|" c
    for c in "$@"; do h+=" $c |"; sep+="---|"; done
    for s in $ONLY; do h+=" $(label "$s") |"; sep+="---:|"; done
    echo "$h"
    echo "$sep"
}

fmt_num() { # value [decimals]
    case $1 in '' | nan) echo "—" ;; *) printf "%.${2:-0}f" "$1" ;; esac
}

tables() {
    local s v hash c row vals best ours_v r peers
    peers=$(peers_of)
    echo "## Results"
    echo
    if [[ " $SECTIONS " == *" sessions "* ]]; then
        echo "### 1. Sessions/s (connect, USER/PASS, STAT, QUIT; median of $REPS run(s) of ${SESS_SECS} s per cell)"
        echo
        {
            local h="| hash | clients |" sep="|---|---:|"
            for s in $ONLY; do h+=" $(label "$s") |"; sep+="---:|"; done
            echo "$h best peer | ours / best | target | CPU: best peer / ours |"
            echo "$sep---:|---:|---|---:|"
        }
        for hash in md5 yescrypt; do
            for c in 1 8; do
                v="$hash-$c"
                row="| \`\$$([ $hash = md5 ] && echo 1 || echo y)\$\` | $c |"
                vals=()
                for s in $ONLY; do
                    local x
                    x=$(get "sessions|$s|$v|rate")
                    row+=" $(fmt_num "$x") |"
                    [ "$s" = ours ] && ours_v=$x || vals+=("$x")
                done
                best=$(best_of hi "${vals[@]}")
                r=$(ratio "${ours_v:-}" "$best")
                local tgt="—"
                [ $hash = md5 ] && tgt=$(awk -v r="$r" 'BEGIN{ if (r=="n/a") print "n/a"; else print (r>=3 ? "≥3× met" : "≥3× NOT met") }')
                local cpus=() cbest
                for s in $peers; do cpus+=("$(get "sessions|$s|$v|cpu_ms")"); done
                cbest=$(best_of lo "${cpus[@]}")
                echo "$row $(fmt_num "$best") | ${r}× | $tgt | $(ratio "$cbest" "$(get "sessions|ours|$v|cpu_ms")")× |"
            done
        done
        echo
        echo "CPU per session in ms: the server's whole process tree (reaped children included; 10 ms clock ticks),"
        echo "and in brackets the load generator's own, which runs on the same 2 cores:"
        echo
        header_row "hash" "clients"
        for hash in md5 yescrypt; do
            for c in 1 8; do
                row="| \`\$$([ $hash = md5 ] && echo 1 || echo y)\$\` | $c |"
                for s in $ONLY; do
                    row+=" $(fmt_num "$(get "sessions|$s|$hash-$c|cpu_ms")" 2) ($(fmt_num "$(get "sessions|$s|$hash-$c|client_cpu_ms")" 2)) |"
                done
                echo "$row"
            done
        done
        echo
        echo "Failed sessions (connect / closed / -ERR / timeout, summed over the runs), p99 session latency (ms):"
        echo
        header_row "hash" "clients"
        for hash in md5 yescrypt; do
            for c in 1 8; do
                row="| \`\$$([ $hash = md5 ] && echo 1 || echo y)\$\` | $c |"
                for s in $ONLY; do
                    local k="sessions|$s|$hash-$c"
                    row+=" $(get "$k|fail_connect")/$(get "$k|fail_closed")/$(get "$k|fail_err")/$(get "$k|fail_timeout"), p99 $(fmt_num "$(get "$k|p99_ms")" 1) |"
                done
                echo "$row"
            done
        done
        echo
    fi
    if [[ " $SECTIONS " == *" memory "* ]]; then
        echo "### 2. Memory per idle logged-in session (PSS KiB, minus the idle baseline)"
        echo
        {
            local h="| sessions |" sep="|---:|"
            for s in $ONLY; do h+=" $(label "$s") |"; sep+="---:|"; done
            echo "$h best peer | ours / best | target ≤1/10 and ≤32 KiB |"
            echo "$sep---:|---:|---|"
        }
        local lv
        for lv in ${LEVELS//,/ }; do
            row="| $lv |"
            vals=()
            ours_v=
            for s in $ONLY; do
                local per n
                per=$(get "memory|$s|$lv|per_kib")
                n=$(get "memory|$s|$lv|sessions")
                if [ -n "$n" ] && [ "$n" != "$lv" ]; then
                    row+=" $(fmt_num "$per" 1) (only $n) |"
                else
                    row+=" $(fmt_num "$per" 1) |"
                fi
                [ "$s" = ours ] && ours_v=$per || vals+=("$per")
            done
            best=$(best_of lo "${vals[@]}")
            r=$(ratio "$ours_v" "$best")
            local tgt
            tgt=$(awk -v r="$r" -v o="$ours_v" 'BEGIN{ if (r=="n/a" || o=="") print "n/a"; else print ((r<=0.1 && o<=32) ? "met" : "NOT met") }')
            local inv
            inv=$(awk -v o="$ours_v" -v b="$best" 'BEGIN{ if (o=="" || b=="" || o<=0) print ""; else printf " (1/%.0f)", b/o }')
            echo "$row $(fmt_num "$best" 1) | $r$inv | $tgt |"
        done
        echo
        echo "Whole server (PSS MiB, processes) at each level; baseline first:"
        echo
        header_row "sessions"
        row="| 0 (baseline) |"
        local first=${LEVELS%%,*}
        for s in $ONLY; do row+=" $(awk -v k="$(get "memory|$s|$first|base_kib")" 'BEGIN{ if (k=="") print "—"; else printf "%.1f", k/1024 }') |"; done
        echo "$row"
        for lv in ${LEVELS//,/ }; do
            row="| $lv |"
            for s in $ONLY; do
                row+=" $(awk -v k="$(get "memory|$s|$lv|pss_kib")" -v p="$(get "memory|$s|$lv|procs")" 'BEGIN{ if (k=="") print "—"; else printf "%.1f (%d procs)", k/1024, p }') |"
            done
            echo "$row"
        done
        echo
    fi
    if [[ " $SECTIONS " == *" pipeline "* ]]; then
        echo "### 3. 1,000 pipelined NOOPs in one write (commands/s; at least ${PIPE_ROUNDS} rounds and ${PIPE_SECS} s)"
        echo
        header_row ""
        row="| commands/s (median round) |"
        local row2="| commands/s (all rounds) |" row3="| rounds |"
        vals=()
        ours_v=
        for s in $ONLY; do
            local x
            x=$(get "pipeline|$s|noop|med_rate")
            row+=" $(fmt_num "$x") |"
            row2+=" $(fmt_num "$(get "pipeline|$s|noop|rate")") |"
            row3+=" $(fmt_num "$(get "pipeline|$s|noop|rounds")") |"
            [ "$s" = ours ] && ours_v=$x || vals+=("$x")
        done
        best=$(best_of hi "${vals[@]}")
        r=$(ratio "$ours_v" "$best")
        echo "$row"
        echo "$row2"
        echo "$row3"
        echo
        echo "Best peer $(fmt_num "$best") commands/s; ours / best = ${r}× (target ≥2×: $(awk -v r="$r" 'BEGIN{ if (r=="n/a") print "n/a"; else print (r>=2 ? "met" : "NOT met") }'))."
        echo
    fi
    if [[ " $SECTIONS " == *" fairness "* ]]; then
        echo "### 4. NOOP round trips while another client downloads a $((BIG_BYTES >> 20)) MiB message (RETR)"
        echo
        [ "$QUICK" = 1 ] && echo "QUICK mode: a 256 MiB message instead of 1 GiB." && echo
        echo "NOOP round trip in ms; \"corrected\" adds the samples a probe sent every 1 ms would have"
        echo "seen during a stall (a waiting prober sends nothing, so a long stall is otherwise one sample)."
        echo "\"old mtime\": the mailbox was last written an hour ago; \"fresh mtime\": just now, as right after a delivery."
        echo
        header_row ""
        local key v
        for v in old fresh; do
            for key in p50_ms p99_ms cp99_ms max_ms max_at_s probes mib_s; do
                local name
                case $key in
                    p50_ms) name="p50" ;; p99_ms) name="p99" ;; cp99_ms) name="**p99 corrected**" ;;
                    max_ms) name="max" ;; max_at_s) name="max at (s after RETR)" ;;
                    probes) name="probes" ;; mib_s) name="download MiB/s" ;;
                esac
                row="| $v mtime: $name |"
                for s in $ONLY; do
                    local d=3
                    case $key in probes | mib_s) d=0 ;; max_at_s) d=2 ;; esac
                    row+=" $(fmt_num "$(get "fairness|$s|$v|$key")" $d) |"
                done
                echo "$row"
            done
        done
        echo
        for v in old fresh; do
            vals=()
            for s in $peers; do vals+=("$(get "fairness|$s|$v|cp99_ms")"); done
            best=$(best_of lo "${vals[@]}")
            ours_v=$(get "fairness|ours|$v|cp99_ms")
            echo "- $v mtime: ours p99 (corrected) $(fmt_num "$ours_v" 3) ms, best peer $(fmt_num "$best" 3) ms; target p99 < 10 ms: $(awk -v o="$ours_v" 'BEGIN{ if (o=="") print "n/a"; else print (o<10 ? "met" : "NOT met") }')."
        done
        echo
    fi
}

# ------------------------------------------------------------------ run
START=$(date +%s)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for sec in $SECTIONS; do "bench_$sec"; done
ELAPSED=$(($(date +%s) - START))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

ours_ver=$("$POP3D" -V 2>&1 || true)
popa3d_ver=$("$PEERS/popa3d/usr/sbin/popa3d" -V 2>&1 || true)
dovecot_ver=$(LD_LIBRARY_PATH=/usr/lib/dovecot "$PEERS/dovecot/usr/sbin/dovecot" --version 2>&1 || true)
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=
if git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q .; then
    dirty=" (uncommitted changes)"
fi

report() {
    echo "# pop3d daemon benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Command: \`$([ "$QUICK" = 1 ] && echo 'QUICK=1 ')bash bench/run.sh\` (or \`make bench\`), as root; ${ELAPSED} s."
    echo "Commit $commit$dirty. $ours_ver; $popa3d_ver (Debian build); Dovecot $dovecot_ver."
    echo "Machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/^Mem/ {print $2}') GiB; load average before/after: $LOAD_BEFORE / $LOAD_AFTER (the 2 cores are shared with other work, so expect noise)."
    echo "Client and servers run on the same cores; the load generator is bench/load (Rust, std and socket2)."
    echo
    tables
    cat <<EOF
## How it was measured

- Everything runs inside private mount, network and pid namespaces made by \`bench/run.sh\`:
  loopback only, popa3d -D gets port 110 to itself, the bench users (\`$BENCH_USER\`, \`$BENCH_BIG\`),
  popa3d's PAM file and Dovecot's extracted files exist only there (see \`bench/world.sh\`).
- Fixtures: \`/var/mail/$BENCH_USER\` holds $SMALL_MESSAGES messages of ~$SMALL_SIZE bytes (rewritten before
  every server start); \`/var/mail/$BENCH_BIG\` one message of $((BIG_BYTES >> 20)) MiB. The same files serve all servers.
- Passwords: \`/etc/shadow\` entries made by \`mkpasswd -m md5crypt\` (\`\$1\$\`) or \`mkpasswd -m yescrypt\`
  (\`\$y\$\`, libxcrypt's default cost). Each server reads the same shadow file: ours directly,
  popa3d through PAM (\`pam_unix\`), Dovecot through \`passdb { driver = shadow }\`.
- **ours**: \`pop3d -D -F --listen 127.0.0.1:$PORT_OURS --spool /var/mail --log stderr --fail-delay 0
  --max-sessions 1100 --max-per-source 1100 --min-delay 0\` as root (it opens mailboxes with the user's fsuid).
  \`--min-delay 0\` turns off the popa3d-style flood window (by default every session holds its slot for
  10 s, which would cap a connect/quit loop at max-sessions/10 per second).
- **popa3d inetd**: \`socat TCP-LISTEN:$PORT_INETD,fork EXEC:popa3d,nofork\`, i.e. one popa3d per connection with the
  socket on fd 0/1, as inetd starts it. The socat listener is part of the measured tree (its baseline is subtracted).
- **popa3d -D**: Debian's binary, standalone. Its limits are compile-time: 500 session slots, 50 per source address,
  and a slot stays busy for 10 s after its session started. So it can never sustain more than 50 sessions/s,
  and holds at most 500 sessions. The sessions/s cells stop after $POPA3D_D_BURST sessions (its burst rate, shown as
  measured); the memory levels above 500 report what it allowed. Clients rotate over $SOURCES source addresses
  127.0.0.2-127.0.0.$((1 + SOURCES)) (for every server alike) so the per-source limit does not decide.
- **Dovecot**: the extracted Debian package, \`dovecot -F -c\` with a generated config: pop3 only, \`ssl = no\`,
  shadow passdb, passwd userdb, \`mail_location = mbox:~/mail:INBOX=/var/mail/%u\`, process limits 1200,
  \`mail_max_userip_connections = 2000\`; the default high-security login (one pop3-login process per
  connection) and one pop3 process per session.
- Sessions/s: N client threads loop connect, greeting, USER, PASS, STAT, QUIT and wait for the close; a fresh server
  per hash (for 1 then 8 clients; popa3d -D: per cell, so its session table starts empty). CPU per session: utime+stime (+cutime+cstime of reaped children) over the server's process tree.
- Memory: logged-in sessions (USER/PASS) are opened up to each level and kept idle; after ${SETTLE} s the Pss of every
  process in the server's tree (\`/proc/PID/smaps_rollup\`) is summed; per session = (sum − baseline) / sessions.
  The baseline is taken after one warm-up login (none for popa3d -D, whose slot it would hold).
- Pipelining: after login, 1,000 \`NOOP\\r\\n\` in one write, then read the 1,000 replies; repeated for at least
  $PIPE_ROUNDS rounds and $PIPE_SECS s. The headline is 1,000 / the median round time (robust against other load on the
  shared cores); the all-rounds figure is total commands / total time.
- Fairness: one client sends \`RETR 1\` for the big message and reads it as fast as it can; another
  logged-in client sends NOOP, waits for \`+OK\`, sleeps 1 ms, and so on until the download ends.
- Logging: ours logs to a file (stderr), Dovecot to a file; popa3d's syslog() has no /dev/log to write to here.

## Raw results

\`\`\`
$(cat "$RAW")
\`\`\`
EOF
}

mkdir -p "$ROOT/bench/results"
out=$ROOT/bench/results/$(date -u +%F).md
[ "$QUICK" = 1 ] && out=${out%.md}-quick.md
report >"$out"
tables
say "written: ${out#"$ROOT"/} (${ELAPSED} s)"
