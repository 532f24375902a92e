#!/usr/bin/env bash
# A Berth cluster on one machine, for tests and demos: each host a network namespace.
#
#   scripts/cluster.sh up N          N hosts n1..nN (N >= 1): namespaces berth-n1.., a bridge,
#                                    a node agent with two devices in each, the daemon on n1.
#                                    Prints one JSON line last:
#                                    {"nodes":[{"id","netns","address","agent","csi_endpoint","admin_socket"}]}
#   scripts/cluster.sh status        that JSON line again
#   scripts/cluster.sh kill NODE     SIGKILL every process of host NODE
#   scripts/cluster.sh start NODE    start what `kill` stopped (same devices, same state)
#   scripts/cluster.sh partition NODE   drop all of NODE's traffic (nftables in its namespace)
#   scripts/cluster.sh heal NODE        undo partition
#   scripts/cluster.sh throttle NODE RATE   limit NODE's traffic both ways (tc tbf), e.g. 100mbit;
#                                           RATE "off" removes the limit
#   scripts/cluster.sh down          stop everything, unmount, remove namespaces and state
#
# n1's daemon serves CSI and the admin API; other hosts run their agent only (their
# csi_endpoint and admin_socket are null), and with BERTH_METADATA=postgres also a CSI node
# (`VolumeDriver --role csi-node`: csi_endpoint set, admin_socket null) that mounts any
# volume, its namespace under a lease in PostgreSQL. Processes of a host run in its network namespace
# only (nsenter --net), so the mounts its daemon makes are visible from the root namespace.
#
# With BERTH_METADATA=postgres, the cluster state lives in PostgreSQL (Debian's) running in a
# namespace of its own, host "pg" (berth-npg, 10.77.0.9:5432, database berth, and an empty
# berth_scratch for tools and benchmarks): the daemon gets
# --metadata postgres://berth@10.77.0.9:5432/berth, the JSON line a "metadata" field, and
# kill/start/partition/heal/throttle take "pg" as a NODE too.
#
# Environment: BERTH_CLUSTER_DIR (default /tmp/berth-cluster), BERTH_BIN (directory of the
# built VolumeDriver and provisionctl; default the newer of .build/release and .build/debug),
# BERTH_DEVICE_SIZE (default 4Gi per device), BERTH_DAEMON_ARGS (extra daemon flags),
# BERTH_METADATA (postgres: the cluster state in PostgreSQL, above; default cluster.sqlite),
# BERTH_NODE_ARGS (extra flags of the CSI nodes), BERTH_CONTROLLERS (with postgres: N
# controllers, n1 leading and standbys on n2..nN, listed in the JSON line's "controllers").
set -Eeuo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
DIR=${BERTH_CLUSTER_DIR:-/tmp/berth-cluster}
SUBNET=10.77.0
BRIDGE=berth-br0
AGENT_PORT=7440
DEVICE_SIZE=${BERTH_DEVICE_SIZE:-4Gi}

die() { echo "cluster.sh: $*" >&2; exit 2; }

bin_dir() {
  if [ -n "${BERTH_BIN:-}" ]; then echo "$BERTH_BIN"; return; fi
  local best="" newest=0
  for d in "$REPO/.build/release" "$REPO/.build/debug"; do
    [ -x "$d/VolumeDriver" ] || continue
    local t; t=$(stat -c %Y "$d/VolumeDriver")
    if [ "$t" -gt "$newest" ]; then newest=$t; best=$d; fi
  done
  [ -n "$best" ] || die "no built VolumeDriver (run swift build, or set BERTH_BIN)"
  echo "$best"
}

need_tools() {
  local missing=()
  command -v ip >/dev/null || missing+=(iproute2)
  command -v nft >/dev/null || missing+=(nftables)
  command -v nsenter >/dev/null || missing+=(util-linux)
  if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1
  fi
}

count() { cat "$DIR/count" 2>/dev/null || echo 0; }
index_of() {  # NODE -> its number ("pg" for PostgreSQL's host), or die
  local node=$1 n
  if [ "$node" = pg ] && [ -d "$DIR/pg" ]; then echo pg; return; fi
  [[ "$node" =~ ^n([0-9]+)$ ]] || die "unknown node \"$node\" (nodes are n1..n$(count))"
  n=${BASH_REMATCH[1]}
  [ "$n" -ge 1 ] && [ "$n" -le "$(count)" ] || die "unknown node \"$node\" (nodes are n1..n$(count))"
  echo "$n"
}
ns() { echo "berth-n$1"; }
ip_of() { if [ "$1" = pg ]; then echo "$SUBNET.9"; else echo "$SUBNET.$((10 + $1))"; fi; }
PG_PORT=5432
metadata_url() { echo "postgres://berth@$(ip_of pg):$PG_PORT/berth?sslmode=disable"; }
in_ns() { local i=$1; shift; nsenter --net="/run/netns/$(ns "$i")" -- "$@"; }

# Waits for "READY" (or PATTERN) in a log; fails with the log's tail.
wait_ready() {
  local log=$1 pid=$2 what=$3 pattern=${4:-^READY}
  for _ in $(seq 1 600); do
    grep -qE "$pattern" "$log" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { tail -20 "$log" >&2; die "$what exited before it was ready"; }
    sleep 0.1
  done
  tail -20 "$log" >&2; die "$what not ready after 60 s"
}

start_agent() {  # N [--init-devices]
  local i=$1 node="n$1" init=${2:-} b; b=$(bin_dir)
  local home="$DIR/$node"
  mkdir -p "$home/dev"
  : > "$home/agent.log"
  # nsenter itself, not the in_ns function: a function with redirections hands the
  # caller's saved descriptors (its stdout pipe) down to the daemon, and whoever reads
  # this script's output would then wait for EOF forever.
  nsenter --net="/run/netns/$(ns "$i")" -- "$b/VolumeDriver" --role node --tls-dir "$home/tls" --listen "$(ip_of "$i"):$AGENT_PORT" \
    --device "$node-d1=$home/dev/d1,$DEVICE_SIZE" --device "$node-d2=$home/dev/d2,$DEVICE_SIZE" $init \
    >> "$home/agent.log" 2>&1 < /dev/null &
  echo $! > "$home/agent.pid"
  wait_ready "$home/agent.log" "$!" "the agent of $node"
}

start_daemon() {
  local b; b=$(bin_dir)
  local home="$DIR/n1"
  : > "$home/daemon.log"
  # shellcheck disable=SC2086
  nsenter --net="/run/netns/$(ns 1)" -- "$b/VolumeDriver" --config "$DIR/daemon.yaml" --state-dir "$home/state" --node-id n1 \
    --endpoint "unix://$home/csi.sock" --admin-socket "$home/admin.sock" --metrics-address "$(ip_of 1):9810" \
    ${BERTH_DAEMON_ARGS:-} >> "$home/daemon.log" 2>&1 < /dev/null &
  echo $! > "$home/daemon.pid"
  # (Started again while a standby has taken the lead, it waits as a standby itself.)
  wait_ready "$home/daemon.log" "$!" "the daemon of n1" '^(READY|STANDBY)'

}

# A standby controller on host I (BERTH_CONTROLLERS=N: on n2..nN): the same configuration
# as n1's, a state directory and sockets of its own; it prints STANDBY and leads once n1's
# controller is gone (the controller lock in PostgreSQL).
start_standby() {
  local i=$1 b; b=$(bin_dir)
  local home="$DIR/n$i"
  : > "$home/controller.log"
  sed "s|$DIR/n1/tls|$home/tls|" "$DIR/daemon.yaml" > "$home/controller.yaml"
  # shellcheck disable=SC2086
  nsenter --net="/run/netns/$(ns "$i")" -- "$b/VolumeDriver" --config "$home/controller.yaml" --state-dir "$home/controller" \
    --node-id "n$i" --endpoint "unix://$home/controller.sock" --admin-socket "$home/controller-admin.sock" --metrics-address off \
    ${BERTH_DAEMON_ARGS:-} >> "$home/controller.log" 2>&1 < /dev/null &
  echo $! > "$home/controller.pid"
  wait_ready "$home/controller.log" "$!" "the controller of n$i" '^(READY|STANDBY)'
}

# Host I's CSI node (--role csi-node: CSI Node and FUSE, volumes' namespaces under leases in
# PostgreSQL), on every host but n1 when the cluster state is in PostgreSQL.
start_node_daemon() {
  local i=$1 b; b=$(bin_dir)
  local home="$DIR/n$i"
  : > "$home/node.log"
  # shellcheck disable=SC2086
  nsenter --net="/run/netns/$(ns "$i")" -- "$b/VolumeDriver" --role csi-node --metadata "$(metadata_url)" --tls-dir "$home/tls" \
    --state-dir "$home/state" --node-id "n$i" --endpoint "unix://$home/csi.sock" --metrics-address off \
    ${BERTH_NODE_ARGS:-} >> "$home/node.log" 2>&1 < /dev/null &
  echo $! > "$home/node.pid"
  wait_ready "$home/node.log" "$!" "the CSI node of n$i"
}

print_json() {
  local n; n=$(count)
  [ "$n" -gt 0 ] || die "no cluster is up (scripts/cluster.sh up N)"
  local out='{"nodes":[' sep=""
  for i in $(seq 1 "$n"); do
    local csi=null admin=null
    if [ "$i" = 1 ]; then csi="\"unix://$DIR/n1/csi.sock\""; admin="\"$DIR/n1/admin.sock\""; fi
    if [ "$i" != 1 ] && [ -d "$DIR/pg" ]; then csi="\"unix://$DIR/n$i/csi.sock\""; fi
    out+="$sep{\"id\":\"n$i\",\"netns\":\"$(ns "$i")\",\"address\":\"$(ip_of "$i")\",\"agent\":\"$(ip_of "$i"):$AGENT_PORT\",\"csi_endpoint\":$csi,\"admin_socket\":$admin}"
    sep=","
  done
  out+="]"
  if [ -d "$DIR/pg" ]; then out+=",\"metadata\":\"$(metadata_url)\""; fi
  if [ -f "$DIR/controllers" ] && [ "$(cat "$DIR/controllers")" -gt 1 ]; then
    out+=',"controllers":[' sep=""
    for i in $(seq 1 "$(cat "$DIR/controllers")"); do
      local sock="$DIR/n$i/controller.sock" admin="$DIR/n$i/controller-admin.sock"
      [ "$i" = 1 ] && { sock="$DIR/n1/csi.sock"; admin="$DIR/n1/admin.sock"; }
      out+="$sep{\"node\":\"n$i\",\"csi_endpoint\":\"unix://$sock\",\"admin_socket\":\"$admin\"}"
      sep=","
    done
    out+="]"
  fi
  echo "$out}"
}

# A namespace for host I (a number, or pg), its veth on the bridge, its address.
add_host() {
  local i=$1
  ip netns delete "$(ns "$i")" 2>/dev/null || true
  ip netns add "$(ns "$i")"
  ip link delete "bv$i" 2>/dev/null || true
  ip link add "bv$i" type veth peer name eth0 netns "$(ns "$i")"
  ip link set "bv$i" master "$BRIDGE" up
  in_ns "$i" ip addr add "$(ip_of "$i")/24" dev eth0
  in_ns "$i" ip link set eth0 up
  in_ns "$i" ip link set lo up
  in_ns "$i" ip route add default via "$SUBNET.1"
}

# PostgreSQL in the pg namespace (--new: a new data directory and database first). It does
# not run as root: its own user owns the directory.
start_postgres() {
  local home="$DIR/pg" bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$bin/initdb" ] || die "PostgreSQL is not installed (apt-get install postgresql)"
  if [ "${1:-}" = --new ]; then
    mkdir -p "$home"; chown postgres:postgres "$home"
    (cd /tmp && runuser -u postgres -- "$bin/initdb" -D "$home/data" -U berth -A trust -E UTF8 --no-sync) > "$home/initdb.log" 2>&1 \
      || { cat "$home/initdb.log" >&2; die "initdb failed"; }
    echo "host all all $SUBNET.0/24 trust" >> "$home/data/pg_hba.conf"
  elif [ -f "$home/data/postmaster.pid" ]; then
    # A killed server's pid stays alive as a zombie until it is reaped (here about 1.5 s
    # later), and PostgreSQL refuses to start while its old postmaster.pid names a live pid.
    local old; old=$(head -1 "$home/data/postmaster.pid")
    for _ in $(seq 1 100); do [ -d "/proc/$old" ] || break; sleep 0.1; done
  fi
  (cd /tmp && nsenter --net="/run/netns/$(ns pg)" -- runuser -u postgres -- "$bin/pg_ctl" -D "$home/data" -l "$home/log" -w \
    -o "-p $PG_PORT -k $home -c listen_addresses=$(ip_of pg)" start) > /dev/null 2>&1 < /dev/null \
    || { tail -20 "$home/log" >&2; die "PostgreSQL did not start"; }
  if [ "${1:-}" = --new ]; then
    # berth: the cluster's; berth_scratch: for tools and benchmarks beside it.
    for db in berth berth_scratch; do
      (cd /tmp && runuser -u postgres -- "$bin/psql" -h "$(ip_of pg)" -p "$PG_PORT" -U berth -d postgres -qc "CREATE DATABASE $db") \
        || die "cannot create the database $db"
    done
  fi
}

up() {
  local n=${1:-}
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "up takes a host count 1..200"
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces, FUSE)"
  [ "$(count)" = 0 ] || die "a cluster is already up in $DIR (scripts/cluster.sh down first)"
  need_tools
  local b; b=$(bin_dir)
  mkdir -p "$DIR"
  echo "$n" > "$DIR/count"
  # A failed start (a command failing anywhere, or die) leaves nothing behind.
  UP_DONE=0
  trap 'if [ "$UP_DONE" = 0 ]; then echo "cluster.sh: up failed; tearing down" >&2; down >/dev/null 2>&1; fi' EXIT
  "$b/provisionctl" cluster init --dir "$DIR/ca" --force > /dev/null
  # (A bridge being deleted by a `down` just before may still be going away: retry.)
  for _ in $(seq 1 100); do
    ip link show "$BRIDGE" >/dev/null 2>&1 && break
    ip link add "$BRIDGE" type bridge 2>/dev/null && break
    sleep 0.1
  done
  ip addr replace "$SUBNET.1/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  for i in $(seq 1 "$n"); do
    "$b/provisionctl" cluster cert "n$i" --dir "$DIR/ca" --out "$DIR/n$i/tls" > /dev/null
    add_host "$i"
  done
  if [ "${BERTH_METADATA:-}" = postgres ]; then
    add_host pg
    start_postgres --new
  elif [ -n "${BERTH_METADATA:-}" ]; then
    die "BERTH_METADATA=${BERTH_METADATA}: only postgres is known"
  fi
  for i in $(seq 1 "$n"); do start_agent "$i" --init-devices; done
  {
    echo "tlsDir: $DIR/n1/tls"
    if [ -d "$DIR/pg" ]; then echo "metadata: \"$(metadata_url)\""; fi
    echo "devices:"
    for i in $(seq 1 "$n"); do
      for d in 1 2; do
        echo "  - {id: n$i-d$d, host: n$i, rack: rack-$(( (i - 1) % 3 + 1 )), agent: \"$(ip_of "$i"):$AGENT_PORT\"}"
      done
    done
  } > "$DIR/daemon.yaml"
  start_daemon
  if [ -d "$DIR/pg" ]; then for i in $(seq 2 "$n"); do start_node_daemon "$i"; done; fi
  local controllers=${BERTH_CONTROLLERS:-1}
  [[ "$controllers" =~ ^[0-9]+$ ]] && [ "$controllers" -ge 1 ] && [ "$controllers" -le "$n" ] || die "BERTH_CONTROLLERS takes 1..$n"
  [ "$controllers" = 1 ] || [ -d "$DIR/pg" ] || die "BERTH_CONTROLLERS > 1 needs BERTH_METADATA=postgres (leadership is by a lock in PostgreSQL)"
  echo "$controllers" > "$DIR/controllers"
  for i in $(seq 2 "$controllers"); do start_standby "$i"; done
  UP_DONE=1
  print_json
}

kill_node() {
  local i; i=$(index_of "$1")
  local pids; pids=$(ip netns pids "$(ns "$i")" 2>/dev/null || true)
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
  for _ in $(seq 1 100); do [ -z "$(ip netns pids "$(ns "$i")" 2>/dev/null)" ] && break; sleep 0.05; done
  echo "killed $1"
}

start_node() {
  local i; i=$(index_of "$1")
  [ -z "$(ip netns pids "$(ns "$i")" 2>/dev/null)" ] || die "$1 is running"
  if [ "$i" = pg ]; then start_postgres; echo "started pg"; return; fi
  start_agent "$i"
  # What a killed daemon left mounted is dead: its successor mounts the volumes again.
  if [ "$i" = 1 ]; then
    unmount_dead
    start_daemon
  elif [ -d "$DIR/pg" ]; then
    unmount_dead
    start_node_daemon "$i"
    if [ "$i" -le "$(cat "$DIR/controllers" 2>/dev/null || echo 1)" ]; then start_standby "$i"; fi
  fi
  echo "started n$i"
}

partition() {
  local i; i=$(index_of "$1")
  in_ns "$i" nft -f - <<EOF
table inet berth_partition {
  chain input { type filter hook input priority 0; policy drop; iifname "lo" accept; }
  chain output { type filter hook output priority 0; policy drop; oifname "lo" accept; }
}
EOF
  echo "partitioned $1"
}

heal() {
  local i; i=$(index_of "$1")
  in_ns "$i" nft delete table inet berth_partition 2>/dev/null || true
  echo "healed $1"
}

throttle() {
  local i; i=$(index_of "$1") rate=${2:-}
  [ -n "$rate" ] || die "throttle takes NODE RATE (e.g. 100mbit, or off)"
  if [ "$rate" = off ]; then
    in_ns "$i" tc qdisc del dev eth0 root 2>/dev/null || true
    tc qdisc del dev "bv$i" root 2>/dev/null || true
    echo "$1: no limit"; return
  fi
  # Egress of the host, and its ingress as the bridge side's egress.
  in_ns "$i" tc qdisc replace dev eth0 root tbf rate "$rate" burst 256kb latency 50ms
  tc qdisc replace dev "bv$i" root tbf rate "$rate" burst 256kb latency 50ms
  echo "$1: $rate"
}

# Lazily unmounts Berth FUSE mounts whose daemon is gone (they answer ENOTCONN).
unmount_dead() {
  awk '$3 == "fuse.berth" { print $2 }' /proc/mounts | sort -r | while read -r m; do
    m=$(printf '%b' "$m")
    if ! stat "$m" >/dev/null 2>&1; then umount -l "$m" 2>/dev/null || true; fi
  done
}

down() {
  local n; n=$(count)
  if [ "$n" -gt 0 ]; then
    # The daemons first, gracefully: they unmount what they mounted.
    local pids="" pid
    for f in "$DIR"/n*/daemon.pid "$DIR"/n*/node.pid "$DIR"/n*/controller.pid; do
      [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && pids+=" $(cat "$f")"
    done
    for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in $pids; do for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done; done
    for i in $(seq 1 "$n"); do
      local pids; pids=$(ip netns pids "$(ns "$i")" 2>/dev/null || true)
      [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
    done
    sleep 0.2
  fi
  unmount_dead
  # Anything still mounted under the cluster directory.
  awk -v d="$DIR/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l "$(printf '%b' "$m")" 2>/dev/null || true; done
  for netns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^berth-n([0-9]+|pg)$' || true); do
    # Whatever still runs there (a cluster whose directory is gone included).
    local left; left=$(ip netns pids "$netns" 2>/dev/null || true)
    [ -n "$left" ] && kill -9 $left 2>/dev/null || true
    # The veth pair goes now: a namespace the kernel keeps alive a while after its
    # deletion (sockets it still tears down) would keep its end, and the next `up` with it.
    ip link delete "bv${netns#berth-n}" 2>/dev/null || true
    ip netns delete "$netns" 2>/dev/null || true
  done
  ip link delete "$BRIDGE" 2>/dev/null || true
  rm -rf "$DIR"
  echo "down"
}

case "${1:-}" in
  up) up "${2:-}" ;;
  status) print_json ;;
  kill) [ -n "${2:-}" ] || die "kill takes NODE"; kill_node "$2" ;;
  start) [ -n "${2:-}" ] || die "start takes NODE"; start_node "$2" ;;
  partition) [ -n "${2:-}" ] || die "partition takes NODE"; partition "$2" ;;
  heal) [ -n "${2:-}" ] || die "heal takes NODE"; heal "$2" ;;
  throttle) throttle "${2:-}" "${3:-}" ;;
  down) down ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
