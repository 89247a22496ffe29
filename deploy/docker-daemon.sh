#!/usr/bin/env bash
# Ensure a Docker daemon for builds and container tests on a CI machine or sandbox.
#
#   bash deploy/docker-daemon.sh start   # reuse a running daemon, else install + start one
#   bash deploy/docker-daemon.sh stop    # stop only the daemon this script started (by PID)
#   bash deploy/docker-daemon.sh status
#
# When no daemon answers and we are root, Debian's docker.io (and mmdebstrap, for
# deploy/base-image.sh) are installed with apt-get, and dockerd is started without a bridge
# (--bridge=none --iptables=false --ip-masq=false): builds and containers use --network host.
# The PID goes to $CRASHED_DOCKERD_PIDFILE; `stop` kills that PID only, waits, and unmounts
# /run/docker/netns/default if dockerd left it behind.
set -euo pipefail

PIDFILE=${CRASHED_DOCKERD_PIDFILE:-/run/crashed-dockerd.pid}
LOG=${CRASHED_DOCKERD_LOG:-/tmp/crashed-dockerd.log}
TIMEOUT=${CRASHED_DOCKERD_TIMEOUT:-60}

say() { echo "docker-daemon: $*" >&2; }

daemon_answers() { command -v docker >/dev/null && docker info >/dev/null 2>&1; }

ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null || missing+=(docker.io)
  command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "missing ${missing[*]} and cannot install them (needs root and apt-get)"
    return 1
  fi
  say "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start() {
  if daemon_answers; then
    say "a daemon already answers ($(docker info --format '{{.ServerVersion}}' 2>/dev/null))"
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    say "no Docker daemon answers and we are not root: cannot start one"
    return 1
  fi
  ensure_packages
  say "starting dockerd (log: $LOG, pidfile: $PIDFILE)"
  # setsid: the daemon survives the caller's process group (make, a CI step).
  # dockerd writes its own PID to the pidfile; $! is only used to notice an early exit.
  setsid dockerd --bridge=none --iptables=false --ip-masq=false \
    --pidfile "$PIDFILE" >"$LOG" 2>&1 </dev/null &
  local launched=$!
  local waited=0
  until daemon_answers; do
    if ! kill -0 "$launched" 2>/dev/null; then
      say "dockerd exited; last lines of $LOG:"
      tail -n 20 "$LOG" >&2
      return 1
    fi
    if [ "$waited" -ge "$((TIMEOUT * 2))" ]; then
      say "dockerd did not answer within ${TIMEOUT}s (see $LOG)"
      return 1
    fi
    sleep 0.5
    waited=$((waited + 1))
  done
  say "ready (pid $(cat "$PIDFILE"))"
}

stop() {
  if [ ! -f "$PIDFILE" ]; then
    say "no pidfile $PIDFILE: nothing started by this script"
    return 0
  fi
  local pid
  pid=$(cat "$PIDFILE")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 $((TIMEOUT * 2))); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "dockerd $pid did not stop in ${TIMEOUT}s: killing it"
      kill -KILL "$pid" || true
    fi
  fi
  rm -f "$PIDFILE"
  if [ -e /run/docker/netns/default ] && mountpoint -q /run/docker/netns/default 2>/dev/null; then
    umount /run/docker/netns/default || say "could not unmount /run/docker/netns/default"
  fi
  say "stopped (pid $pid)"
}

status() {
  if daemon_answers; then
    echo "running"
  else
    echo "stopped"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
