# bench/servers.sh: sourced by bench/run.sh. Starts and stops the four servers
# under test inside the bench namespaces; each start sets SERVER_PID (the root
# of the server's process tree, whose PSS and CPU are measured) and SERVER_ADDR.
#
#   ours        pop3d -D -F, as root (opens mailboxes with the user's fsuid)
#   popa3d-inetd  socat TCP-LISTEN,fork EXEC:popa3d,nofork: one popa3d per
#               connection on fd 0/1, as inetd would start it
#   popa3d-D    popa3d -D: detaches, binds 0.0.0.0:110 (compile-time), forks a
#               child per session; limits are compile-time (500 sessions, 50 per
#               source, each slot busy >= 10 s)
#   dovecot     dovecot -F with the config written below (master, login, auth,
#               one pop3 process per session)
#
# Needs: W, POP3D (our binary), PEERS, say/die from world.sh.
# shellcheck disable=SC2034 # SERVERS, SERVER_ADDR are read by run.sh

SERVERS="ours popa3d-inetd popa3d-D dovecot"
PORT_OURS=1110
PORT_INETD=2110
PORT_POPA3D_D=110 # compiled into Debian's popa3d
PORT_DOVECOT=3110

# Waits until something listens on TCP port $1 (bounded: 10 s). It does not
# connect: a probe would count as a session in popa3d's flood window.
wait_port() {
    local i
    for i in $(seq 1 100); do
        [ -n "$(ss -Hltn "sport = :$1")" ] && return 0
        sleep 0.1
    done
    return 1
}

# Pid of the process listening on TCP port $1 (in this namespace).
listener_pid() {
    ss -Hltnp "sport = :$1" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1
}

# Every pid in the tree of $1, children first.
tree_pids() {
    local c
    for c in $(ps -o pid= --ppid "$1" 2>/dev/null || true); do tree_pids "$c"; done
    echo "$1"
}

# Stops the current server by pid: SIGTERM to its root, then (bounded: 1 s)
# SIGKILL to whatever of its tree is left. popa3d -D's session children are
# not killed by their daemon's death; they are in the tree and go too.
server_stop() {
    [ -n "${SERVER_PID:-}" ] || return 0
    local pids
    pids=$(tree_pids "$SERVER_PID")
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 10); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}

dovecot_conf() { # port
    local d=$W/dovecot
    mkdir -p "$d/run"
    cat >"$d/dovecot.conf" <<EOF
# Dovecot for pop3d's benchmarks: POP3 only, loopback, shadow + passwd.
base_dir = $d/run
instance_name = pop3bench
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
log_path = $d/log
first_valid_uid = 1000
mail_location = mbox:~/mail:INBOX=/var/mail/%u
mail_privileged_group = mail
# Enough processes and connections for 1,000 sessions (defaults: 100 / 1000).
default_process_limit = 1200
default_client_limit = 5000
default_vsz_limit = 1G
passdb {
  driver = shadow
}
userdb {
  driver = passwd
}
protocol pop3 {
  # Default 10 per user and address.
  mail_max_userip_connections = 2000
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $1
  }
  process_limit = 1200
}
service pop3 {
  process_limit = 1200
}
EOF
}

server_start() { # name
    case $1 in
        ours)
            "$POP3D" -D -F --listen "127.0.0.1:$PORT_OURS" --spool /var/mail \
                --passwd /etc/passwd --shadow /etc/shadow --log stderr --fail-delay 0 \
                --max-sessions 1100 --max-per-source 1100 --min-delay 0 \
                --hosts-allow "$W/none.allow" --hosts-deny "$W/none.deny" \
                2>>"$W/ours.log" &
            SERVER_PID=$!
            SERVER_PORT=$PORT_OURS
            ;;
        popa3d-inetd)
            socat "TCP-LISTEN:$PORT_INETD,bind=127.0.0.1,reuseaddr,fork,backlog=128" \
                "EXEC:$PEERS/popa3d/usr/sbin/popa3d,nofork" 2>>"$W/socat.log" &
            SERVER_PID=$!
            SERVER_PORT=$PORT_INETD
            ;;
        popa3d-D)
            "$PEERS/popa3d/usr/sbin/popa3d" -D || die "popa3d -D did not start"
            SERVER_PORT=$PORT_POPA3D_D
            ;;
        dovecot)
            dovecot_conf "$PORT_DOVECOT"
            LD_LIBRARY_PATH=/usr/lib/dovecot "$PEERS/dovecot/usr/sbin/dovecot" -F -c "$W/dovecot/dovecot.conf" \
                2>>"$W/dovecot/stderr" &
            SERVER_PID=$!
            SERVER_PORT=$PORT_DOVECOT
            ;;
        *) die "unknown server $1" ;;
    esac
    wait_port "$SERVER_PORT" || die "$1 did not listen on $SERVER_PORT (logs in $W)"
    # popa3d -D detaches: its daemon is whoever listens on port 110.
    [ "$1" = popa3d-D ] && SERVER_PID=$(listener_pid "$SERVER_PORT")
    [ -n "$SERVER_PID" ] || die "$1: no pid"
    SERVER_ADDR=127.0.0.1:$SERVER_PORT
}
