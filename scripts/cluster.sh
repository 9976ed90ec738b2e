#!/usr/bin/env bash
# A whole cat2rs cluster on loopback, for tests and benchmarks:
#   PostgreSQL (users, catalog, locks), a 3-node Garage cluster (the data,
#   replication factor 3), N stateless cat2rs replicas, and haproxy in front
#   of the replicas (and of the Garage nodes, so that losing one costs nothing).
#
#   scripts/cluster.sh up DIR [--replicas N] [--admin EMAIL:PASSWORD] [--nologin] [--bin PATH]
#   scripts/cluster.sh down DIR
#
# Everything lives under DIR: data, logs (DIR/logs), pid files (DIR/pids/
# replica-1.pid, garage-1.pid, haproxy.pid, postgres.pid), the replicas'
# configuration (DIR/cat2rs.toml), each replica's address (DIR/replica-N.addr),
# and DIR/url, the balancer's URL. DIR/env
# holds what tests need to reach the services directly (sourceable).
# Missing pieces are installed: Debian's postgresql and haproxy, and Garage
# (built once by scripts/install-garage.sh into a folder later runs reuse).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() { sed -n '7,8p' "$0" >&2; exit 2; }
die() { echo "cluster.sh: $*" >&2; exit 1; }

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
random_hex() { python3 -c "import secrets; print(secrets.token_hex($1))"; }

# Waits until "$@" succeeds, for at most $timeout seconds.
wait_for() {
    local what=$1 timeout=$2; shift 2
    local deadline=$(( $(date +%s) + timeout ))
    until "$@" >/dev/null 2>&1; do
        (( $(date +%s) < deadline )) || die "$what did not come up within ${timeout}s (logs in $dir/logs)"
        sleep 0.2
    done
}

pg_bin=/usr/lib/postgresql/15/bin

install_missing() {
    local want=()
    [[ -x $pg_bin/initdb ]] || want+=(postgresql)
    command -v haproxy >/dev/null || want+=(haproxy)
    if (( ${#want[@]} )); then
        echo "installing ${want[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${want[@]}" >&2
    fi
    garage=$("$repo/scripts/install-garage.sh")
}

# Runs a command as the postgres user (PostgreSQL refuses to run as root).
as_postgres() {
    if (( EUID == 0 )); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# A certificate authority of the cluster's own (DIR/pgtls/ca.pem) and the
# database server's certificate for 127.0.0.1, signed by it: the replicas
# connect with sslmode=verify-full and that CA, as they would to a real one.
make_pg_certificates() {
    local tls=$dir/pgtls
    install -d -m 755 "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=cat2rs cluster CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$tls/server.ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
        -days 30 -extfile "$tls/server.ext" -out "$tls/server.pem" 2>/dev/null
    chmod 600 "$tls/server.key" "$tls/ca.key"
    if (( EUID == 0 )); then chown postgres:postgres "$tls/server.key" "$tls/server.pem"; fi
}

start_postgres() {
    local port=$1
    install -d -m 700 "$dir/pg"
    install -d -m 755 "$dir/pgsock"
    if (( EUID == 0 )); then
        chown postgres:postgres "$dir/pg" "$dir/pgsock"
        as_postgres test -x "$dir" || die "$dir must be reachable by the postgres user (chmod o+x its parents)"
    fi
    make_pg_certificates
    as_postgres "$pg_bin/initdb" -D "$dir/pg" -A trust -U postgres --no-sync >"$dir/logs/initdb.log"
    as_postgres "$pg_bin/pg_ctl" -D "$dir/pg" -l "$dir/pgsock/postgres.log" -w -o \
        "-c listen_addresses=127.0.0.1 -p $port -k $dir/pgsock -c max_connections=400 -c fsync=off -c synchronous_commit=off -c ssl=on -c ssl_cert_file=$dir/pgtls/server.pem -c ssl_key_file=$dir/pgtls/server.key" \
        start >/dev/null
    head -n 1 "$dir/pg/postmaster.pid" >"$dir/pids/postgres.pid"
    psql -q -h 127.0.0.1 -p "$port" -U postgres -c "CREATE DATABASE cat2rs" postgres
}

start_garage() {
    local secret token n
    secret=$(random_hex 32)
    token=$(random_hex 16)
    for n in 1 2 3; do
        local node=$dir/garage-$n
        mkdir -p "$node/meta" "$node/data"
        cat >"$node/garage.toml" <<EOF
metadata_dir = "$node/meta"
data_dir = "$node/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "127.0.0.1:${garage_rpc[$n]}"
rpc_public_addr = "127.0.0.1:${garage_rpc[$n]}"
rpc_secret = "$secret"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:${garage_s3[$n]}"
[admin]
api_bind_addr = "127.0.0.1:${garage_admin[$n]}"
admin_token = "$token"
EOF
        "$garage" -c "$node/garage.toml" server >"$dir/logs/garage-$n.log" 2>&1 &
        echo $! >"$dir/pids/garage-$n.pid"
    done
    local g1=$dir/garage-1/garage.toml
    for n in 1 2 3; do
        wait_for "garage node $n" 30 "$garage" -c "$dir/garage-$n/garage.toml" status
    done
    for n in 2 3; do
        "$garage" -c "$g1" node connect "$("$garage" -c "$dir/garage-$n/garage.toml" node id -q)" >/dev/null
    done
    for n in 1 2 3; do
        local id
        id=$("$garage" -c "$dir/garage-$n/garage.toml" node id -q)
        "$garage" -c "$g1" layout assign -z dc1 -c 1G "${id%%@*}" >/dev/null
    done
    "$garage" -c "$g1" layout apply --version 1 >/dev/null
    s3_key_id=GK$(random_hex 12)
    s3_secret=$(random_hex 32)
    wait_for "garage bucket creation" 30 "$garage" -c "$g1" bucket create cat2rs
    "$garage" -c "$g1" key import --yes -n cat2rs "$s3_key_id" "$s3_secret" >/dev/null
    "$garage" -c "$g1" bucket allow --read --write --owner cat2rs --key cat2rs >/dev/null
}

write_haproxy() {
    {
        cat <<EOF
global
    maxconn 2048
    stats socket $dir/haproxy.sock mode 600 level admin
    # Request bodies up to 256 KiB are buffered whole (http-buffer-request),
    # so that a request a killed replica never answered is sent again.
    tune.bufsize 262144
defaults
    mode http
    option http-buffer-request
    # A client that goes away takes its request with it: the replica sees
    # the connection closed and stops what it computes for nobody.
    option abortonclose
    timeout connect 2s
    timeout client 600s
    timeout server 600s
    timeout check 2s
    retries 2
    option redispatch
    retry-on conn-failure empty-response response-timeout
frontend cat2rs
    bind 127.0.0.1:$front_port
    default_backend replicas
backend replicas
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
EOF
        for ((i = 1; i <= replicas; i++)); do
            echo "    server replica-$i 127.0.0.1:${replica_port[$i]} check inter 500ms fall 2 rise 1"
        done
        cat <<EOF
frontend s3
    bind 127.0.0.1:$s3_port
    default_backend garage
backend garage
    balance roundrobin
EOF
        for n in 1 2 3; do
            echo "    server garage-$n 127.0.0.1:${garage_s3[$n]} check inter 500ms fall 2 rise 1"
        done
    } >"$dir/haproxy.cfg"
}

start_replica() {
    local i=$1
    mkdir -p "$dir/replica-$i"
    CATERVA2_SECRET=$(cat "$dir/secret") "$bin" serve --conf "$dir/cat2rs.toml" \
        --statedir "$dir/replica-$i" --listen "127.0.0.1:${replica_port[$i]}" \
        >>"$dir/logs/replica-$i.log" 2>&1 </dev/null &
    echo $! >"$dir/pids/replica-$i.pid"
    echo "127.0.0.1:${replica_port[$i]}" >"$dir/replica-$i.addr"
}

up() {
    local replicas=2 admin="" login=true
    bin=${CAT2RS_BIN:-$repo/target/debug/cat2rs}
    while (( $# )); do
        case $1 in
            --replicas) replicas=$2; shift 2 ;;
            --admin) admin=$2; shift 2 ;;
            --nologin) login=false; shift ;;
            --bin) bin=$2; shift 2 ;;
            *) usage ;;
        esac
    done
    [[ $replicas =~ ^[1-9][0-9]?$ ]] || die "--replicas must be a number from 1 to 99"
    [[ -z $admin || $admin == *:* ]] || die "--admin must be EMAIL:PASSWORD"
    [[ -e $dir/pids ]] && die "$dir holds a cluster already (scripts/cluster.sh down $dir first)"
    [[ -x $bin ]] || (cd "$repo" && cargo build -q -p cat2rs)
    install_missing
    mkdir -p "$dir/pids" "$dir/logs"
    chmod 711 "$dir"
    dir=$(cd "$dir" && pwd)

    local pg_port front_port s3_port n i
    pg_port=$(free_port); front_port=$(free_port); s3_port=$(free_port)
    declare -gA garage_s3 garage_rpc garage_admin replica_port
    for n in 1 2 3; do
        garage_s3[$n]=$(free_port); garage_rpc[$n]=$(free_port); garage_admin[$n]=$(free_port)
    done
    for ((i = 1; i <= replicas; i++)); do replica_port[$i]=$(free_port); done

    start_postgres "$pg_port"
    start_garage
    write_haproxy
    haproxy -f "$dir/haproxy.cfg" -D -p "$dir/pids/haproxy.pid" 2>>"$dir/logs/haproxy.log"

    random_hex 32 >"$dir/secret"
    local url=http://127.0.0.1:$front_port
    cat >"$dir/cat2rs.toml" <<EOF
[server]
login = $login
urlbase = "$url"
# What admin commands (adduser, import, export) spool in; each replica is given its own.
statedir = "$dir/admin"
[storage]
url = "s3://cat2rs/state"
endpoint = "http://127.0.0.1:$s3_port"
region = "garage"
access_key_id = "$s3_key_id"
secret_access_key = "$s3_secret"
[database]
url = "postgresql://postgres@127.0.0.1:$pg_port/cat2rs?sslmode=verify-full&sslrootcert=$dir/pgtls/ca.pem"
EOF
    cat >"$dir/env" <<EOF
CAT2RS_CLUSTER_URL=$url
CAT2RS_CLUSTER_CONF=$dir/cat2rs.toml
CAT2RS_TEST_DATABASE_URL='postgresql://postgres@127.0.0.1:$pg_port/postgres?sslmode=verify-full&sslrootcert=$dir/pgtls/ca.pem'
CAT2RS_TEST_S3_ENDPOINT=http://127.0.0.1:$s3_port
CAT2RS_TEST_S3_BUCKET=cat2rs
CAT2RS_TEST_S3_REGION=garage
CAT2RS_TEST_S3_KEY_ID=$s3_key_id
CAT2RS_TEST_S3_SECRET=$s3_secret
EOF
    if [[ -n $admin ]]; then
        "$bin" adduser --conf "$dir/cat2rs.toml" --superuser "${admin%%:*}" "${admin#*:}" >/dev/null
    fi
    for ((i = 1; i <= replicas; i++)); do start_replica "$i"; done
    for ((i = 1; i <= replicas; i++)); do
        wait_for "replica $i" 60 curl -sf "http://127.0.0.1:${replica_port[$i]}/healthz"
    done
    wait_for "the balancer" 30 curl -sf "$url/healthz"
    echo "$url" >"$dir/url"
    echo "$url"
}

# Stops the processes of pid files, politely first.
stop_pids() {
    local f pid pids=()
    for f in "$@"; do
        [[ -f $f ]] || continue
        pid=$(cat "$f")
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
        rm -f "$f"
    done
    local deadline=$(( $(date +%s) + 15 ))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && (( $(date +%s) < deadline )); do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
}

down() {
    [[ -d $dir/pids ]] || die "no cluster in $dir"
    stop_pids "$dir"/pids/haproxy.pid
    stop_pids "$dir"/pids/replica-*.pid
    stop_pids "$dir"/pids/garage-*.pid
    if [[ -f $dir/pg/postmaster.pid ]]; then
        as_postgres "$pg_bin/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null || true
    fi
    rm -f "$dir/pids/postgres.pid"
    rmdir "$dir/pids" 2>/dev/null || true
}

(( $# >= 2 )) || usage
cmd=$1 dir=$2
shift 2
case $cmd in
    up) mkdir -p "$dir"; up "$@" ;;
    down) down ;;
    *) usage ;;
esac
