#!/usr/bin/env bash
# Installs (when missing) and starts the database servers the tests use, on loopback:
# PostgreSQL, MariaDB, Redis and a MongoDB-wire-compatible server (secantusdb).
# Idempotent and fast when everything already runs.
#
#   scripts/services.sh up [pg|mysql|redis|mongo]...   install + start (default: all)
#   scripts/services.sh env                            print the TENANTCTL_TEST_* variables
#   scripts/services.sh down                           stop them
#
# Needs Debian's apt and root (or sudo); with Docker instead, use compose.yaml and skip this script.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE="$ROOT/.services"
mkdir -p "$STATE"

PG_URL="postgres://postgres:postgres@127.0.0.1:5432/postgres"
MYSQL_URL="mysql://root:root@127.0.0.1:3306"
REDIS_URL="redis://127.0.0.1:6379"
MONGO_URL="mongodb://127.0.0.1:27017"

log() { printf '[services] %s\n' "$*" >&2; }

# Root on CI machines; elsewhere (a GitHub runner, a laptop) go through sudo.
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 120); do
    port_open "$port" && return 0
    sleep 0.5
  done
  log "$name did not open port $port; see $STATE/*.log"
  return 1
}

APT_UPDATED=0
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    $SUDO apt-get update -qq >"$STATE/apt.log" 2>&1
    APT_UPDATED=1
  fi
  log "installing ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>"$STATE/apt.log" 2>&1
}

up_pg() {
  if ! port_open 5432; then
    apt_install postgresql
    local version
    version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    pg_lsclusters -h 2>/dev/null | grep -q "^$version main" || $SUDO pg_createcluster "$version" main >>"$STATE/pg.log" 2>&1
    $SUDO pg_ctlcluster "$version" main start >>"$STATE/pg.log" 2>&1 || true
    wait_port 5432 PostgreSQL
  fi
  # Idempotent: a server that was already running may never have had the password set.
  $SUDO su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >>"$STATE/pg.log" 2>&1 || true
  log "PostgreSQL ready at 127.0.0.1:5432"
}

up_mysql() {
  if ! port_open 3306; then
    apt_install mariadb-server
    ($SUDO service mariadb start || $SUDO service mysql start) >>"$STATE/mysql.log" 2>&1 || true
    wait_port 3306 MariaDB
  fi
  $SUDO mysql -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA unix_socket OR mysql_native_password USING PASSWORD('root')" >>"$STATE/mysql.log" 2>&1 || true
  log "MariaDB ready at 127.0.0.1:3306"
}

up_redis() {
  if ! port_open 6379; then
    apt_install redis-server
    redis-server --port 6379 --bind 127.0.0.1 --daemonize yes --logfile "$STATE/redis.log" --dir "$STATE" >/dev/null
    wait_port 6379 Redis
  fi
  log "Redis ready at 127.0.0.1:6379"
}

up_mongo() {
  if ! port_open 27017; then
    local venv="$ROOT/.venv-mongo"
    if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import secantus' 2>/dev/null; then
      log "installing secantusdb (MongoDB-wire-compatible server) into .venv-mongo"
      python3 -m venv "$venv"
      "$venv/bin/pip" install -q secantusdb >"$STATE/mongo-install.log" 2>&1
    fi
    nohup setsid "$venv/bin/python" -m secantus --host 127.0.0.1 --port 27017 --storage-path :memory: --standalone \
      >"$STATE/mongo.log" 2>&1 &
    wait_port 27017 "MongoDB-compatible server"
  fi
  log "MongoDB-compatible server ready at 127.0.0.1:27017"
}

cmd=${1:-up}
shift || true
case "$cmd" in
  up)
    services=("$@")
    [ ${#services[@]} -eq 0 ] && services=(pg mysql redis mongo)
    for s in "${services[@]}"; do "up_$s"; done
    ;;
  env)
    echo "export TENANTCTL_TEST_PG_URL=$PG_URL"
    echo "export TENANTCTL_TEST_MYSQL_URL=$MYSQL_URL"
    echo "export TENANTCTL_TEST_REDIS_URL=$REDIS_URL"
    echo "export TENANTCTL_TEST_MONGO_URL=$MONGO_URL"
    ;;
  down)
    $SUDO pg_ctlcluster "$(ls /usr/lib/postgresql | sort -V | tail -n 1)" main stop 2>/dev/null || true
    $SUDO service mariadb stop >/dev/null 2>&1 || true
    redis-cli -p 6379 shutdown nosave >/dev/null 2>&1 || true
    pkill -f 'secantus --host 127.0.0.1 --port 27017' 2>/dev/null || true
    log "stopped"
    ;;
  *)
    echo "usage: $0 up [pg|mysql|redis|mongo]... | env | down" >&2
    exit 2
    ;;
esac
