#!/usr/bin/env bash
# The scaled-out tests (called by scripts/test-all.sh), on real parts started
# here on loopback and stopped at the end:
#   1. the storage behaviour tests and the users' rules of cat2-cloud on moto's
#      S3 server and on a Garage cluster, both with PostgreSQL;
#   2. the integration suite on clusters: its read tests through a cluster's
#      balancer (2 replicas, fixtures imported with `cat2rs import`), and its
#      login-mode tests each on 2 replicas and a balancer of their own over the
#      same PostgreSQL and Garage (conformance/tests/loginmode.py);
#   3. faults and concurrency on a cluster of 3 replicas (conformance/cluster).
# Needs the conformance venv's python as $1 (conformance/setup-venv.sh) and a
# built target/debug/cat2rs.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${1:?usage: scripts/test-cluster.sh PYTHON}
cd "$repo"

# Reachable by the postgres user (cluster.sh runs PostgreSQL as it).
work=$(mktemp -d /tmp/cat2rs-test-cluster.XXXXXX)
chmod 711 "$work"
moto_pid=""
cleanup() {
    [[ -n $moto_pid ]] && kill "$moto_pid" 2>/dev/null || true
    [[ -d $work/cluster/pids ]] && scripts/cluster.sh down "$work/cluster" || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "--- a cluster for the read suite: PostgreSQL, 3 Garage nodes, 2 replicas, haproxy"
scripts/cluster.sh up "$work/cluster" --replicas 2 --nologin

echo "--- cat2-cloud on Garage + PostgreSQL"
(
    set -a
    . "$work/cluster/env"
    set +a
    CAT2RS_REQUIRE_CLOUD=1 cargo test -q -p cat2-cloud
)

echo "--- cat2-cloud on moto + PostgreSQL"
moto_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$(dirname "$python")/moto_server" -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
moto_pid=$!
for _ in $(seq 100); do
    curl -sf -X PUT "http://127.0.0.1:$moto_port/cat2rs" >/dev/null && break
    sleep 0.1
done
(
    set -a
    . "$work/cluster/env"
    set +a
    CAT2RS_TEST_S3_ENDPOINT=http://127.0.0.1:$moto_port CAT2RS_TEST_S3_REGION=us-east-1 \
        CAT2RS_REQUIRE_CLOUD=1 cargo test -q -p cat2-cloud
)

echo "--- the integration suite on clusters"
CAT2RS_CLUSTER=$work/cluster "$python" -m pytest -q -p no:cacheprovider -rfE conformance/tests

scripts/cluster.sh down "$work/cluster"

echo "--- faults and concurrency on a cluster of 3 replicas"
"$python" -m pytest -q -p no:cacheprovider -rfE conformance/cluster
