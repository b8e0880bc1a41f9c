#!/usr/bin/env bash
# Local services for hazmon on Debian 12, as root, idempotently:
#   scripts/services.sh up      install what is missing and start Mosquitto + PostgreSQL 15 with TimescaleDB
#   scripts/services.sh status  say what runs
# The TimescaleDB build follows ../shared/notes/timescaledb.md: Debian 13's source package (Apache
# part only), built against PostgreSQL 15, with the source index kept in a private apt state folder.
set -euo pipefail

PG_VERSION=15
PG_LIB=/usr/lib/postgresql/$PG_VERSION/lib
PG_CONF=/etc/postgresql/$PG_VERSION/main/postgresql.conf
MQTT_PORT=${HAZMON_LOCAL_MQTT_PORT:-1883}

log() { printf '[services] %s\n' "$*" >&2; }

need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (installs Debian packages and configures PostgreSQL); try: sudo $0 $*"
    exit 1
  fi
}

apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated -eq 0 ]; then log "apt-get update"; apt-get update -qq; apt_updated=1; fi
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

MOSQ_CONF=/etc/mosquitto/mosquitto.conf
HERE=$(cd "$(dirname "$0")" && pwd)

mosquitto_configure() {
  # hazmon's broker limits (deploy/mosquitto/hazmon.conf) in conf.d, included from the main file
  local changed=0
  mkdir -p /etc/mosquitto/conf.d
  if ! cmp -s "$HERE/../deploy/mosquitto/hazmon.conf" /etc/mosquitto/conf.d/hazmon.conf; then
    cp "$HERE/../deploy/mosquitto/hazmon.conf" /etc/mosquitto/conf.d/hazmon.conf; changed=1
  fi
  if ! grep -Eq '^include_dir +/etc/mosquitto/conf.d' "$MOSQ_CONF"; then
    printf '\ninclude_dir /etc/mosquitto/conf.d\n' >>"$MOSQ_CONF"; changed=1
  fi
  return $((1 - changed))
}

mosquitto_up() {
  apt_install mosquitto mosquitto-clients
  local reload=0
  mosquitto_configure && reload=1
  if port_open "$MQTT_PORT"; then
    if [ $reload -eq 0 ]; then log "mosquitto already listening on 127.0.0.1:$MQTT_PORT"; return 0; fi
    # A SIGHUP reload does not apply max_queued_messages (measured on 2.0.11): restart, which
    # saves the persistent sessions on the way down.
    log "restarting mosquitto with hazmon's broker limits"
    local pid
    pid=$(cat /run/mosquitto/mosquitto.pid 2>/dev/null || pgrep -x mosquitto | head -1 || true)
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  log "starting mosquitto"
  mkdir -p /run/mosquitto /var/log/mosquitto /var/lib/mosquitto
  chown mosquitto: /run/mosquitto /var/log/mosquitto /var/lib/mosquitto 2>/dev/null || true
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  for _ in $(seq 50); do port_open "$MQTT_PORT" && return 0; sleep 0.1; done
  log "mosquitto did not start: see /var/log/mosquitto/mosquitto.log"; exit 1
}

timescaledb_build() {
  if [ -f "$PG_LIB/timescaledb.so" ]; then log "timescaledb already installed"; return 0; fi
  apt_install "postgresql-server-dev-$PG_VERSION" cmake dpkg-dev build-essential xz-utils
  local d uri A
  d=$(mktemp -d); mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
  uri=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=http://deb.debian.org/debian
  printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" >"$d/src.sources"
  A=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$d" -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache")
  log "fetching the timescaledb source package (private apt state in $d)"
  apt-get "${A[@]}" update -qq
  (cd "$d" && apt-get "${A[@]}" source --download-only timescaledb >/dev/null && tar xf timescaledb_*.orig.tar.xz)
  log "building timescaledb (about a minute on 2 cores)"
  (cd "$d"/timescaledb-*/ && ./bootstrap -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DAPACHE_ONLY=1 \
      -DWARNINGS_AS_ERRORS=OFF -DLINTER=OFF -DPG_CONFIG=/usr/lib/postgresql/$PG_VERSION/bin/pg_config >/dev/null \
    && make -s -C build -j"$(nproc)" >/dev/null && make -s -C build install >/dev/null)
  rm -rf "$d"
}

postgres_up() {
  apt_install "postgresql-$PG_VERSION" postgresql-client
  timescaledb_build
  local restart=0
  if ! grep -Eq "^shared_preload_libraries *= *'[^']*timescaledb" "$PG_CONF"; then
    log "adding timescaledb to shared_preload_libraries"
    printf "\n# added by hazmon scripts/services.sh\nshared_preload_libraries = 'timescaledb'\n" >>"$PG_CONF"
    restart=1
  fi
  local max_conn
  max_conn=$(awk -F'[= \t]+' '/^max_connections/{v=$2} END{print v+0}' "$PG_CONF")
  if [ "$max_conn" -lt 300 ]; then
    # tests run many isolated databases and pools side by side
    printf "max_connections = 300\n" >>"$PG_CONF"; restart=1
  fi
  if pg_lsclusters -h | awk '$2=="main" && $4=="online"' | grep -q .; then
    if [ $restart -eq 1 ]; then log "restarting PostgreSQL $PG_VERSION"; pg_ctlcluster --skip-systemctl-redirect $PG_VERSION main restart; fi
  else
    log "starting PostgreSQL $PG_VERSION"; pg_ctlcluster --skip-systemctl-redirect $PG_VERSION main start
  fi
  for _ in $(seq 100); do port_open 5432 && break; sleep 0.1; done
  su postgres -c "psql -qAtc \"select 1\"" >/dev/null
  # trust auth on 127.0.0.1 is how these machines come; say so if it is not the case
  if ! psql -h 127.0.0.1 -U postgres -qAtc 'select 1' >/dev/null 2>&1; then
    log "cannot connect as postgres on 127.0.0.1:5432 without a password; set HAZMON_DATABASE_URL with credentials"
  fi
}

tools_up() {
  # promtool checks the /metrics exposition in the tests
  apt_install prometheus
}

status() {
  port_open "$MQTT_PORT" && log "mosquitto: up on $MQTT_PORT" || log "mosquitto: down"
  port_open 5432 && log "postgresql: up on 5432" || log "postgresql: down"
  [ -f "$PG_LIB/timescaledb.so" ] && log "timescaledb: installed" || log "timescaledb: missing"
}

case "${1:-up}" in
  up) need_root "$@"; mosquitto_up; postgres_up; tools_up; status ;;
  status) status ;;
  *) echo "usage: $0 up|status" >&2; exit 2 ;;
esac
