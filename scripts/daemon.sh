#!/usr/bin/env bash
# Start, stop or check ONE pcmoe daemon in the background, with a PID file and a log file, so a
# participant can run only its own party (or the hub) on its own machine.
#   scripts/daemon.sh start hub   configs/hub.yaml     [--set key=value ...]
#   scripts/daemon.sh start party configs/party-a.yaml [--set key=value ...]
#   scripts/daemon.sh stop  hub|party CONFIG     (SIGTERM: checkpoint and exit; SIGKILL after 60 s)
#   scripts/daemon.sh status hub|party CONFIG
# Files in $PCMOE_RUN_DIR (default runs/daemons): <kind>-<config name>.pid, .log (the daemon's JSON
# log lines only: hub.log_file / run.log_file point there unless a --set says otherwise) and .out
# (its stdout and stderr: human messages such as a party's memory table or a fatal error).
# Exit codes: 0 ok, 1 failed, 2 usage.
set -uo pipefail
usage() { sed -n '2,9p' "$0" >&2; exit 2; }
[[ $# -ge 3 ]] || usage
action=$1 kind=$2 config=$3
shift 3
case $kind in hub | party) ;; *) usage ;; esac
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${PCMOE_BIN:-$ROOT/build/apps}
RUN_DIR=${PCMOE_RUN_DIR:-$ROOT/runs/daemons}
name="$kind-$(basename "${config%.*}")"
pidfile=$RUN_DIR/$name.pid
logfile=$RUN_DIR/$name.log
outfile=$RUN_DIR/$name.out
mkdir -p "$RUN_DIR"
logkey=run.log_file
[[ $kind == hub ]] && logkey=hub.log_file

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case $action in
  start)
    if running; then
      echo "$name: already running (pid $(cat "$pidfile"))" >&2
      exit 1
    fi
    [[ -x $BIN/pcmoe-$kind ]] || { echo "$name: $BIN/pcmoe-$kind not built (cmake --preset default && cmake --build --preset default)" >&2; exit 1; }
    # Check the configuration first: a bad config fails here with its message, not in the log.
    "$BIN/pcmoe-$kind" --config "$config" --set "$logkey=$logfile" "$@" --print-config >/dev/null || exit 2
    nohup "$BIN/pcmoe-$kind" --config "$config" --set "$logkey=$logfile" "$@" >>"$outfile" 2>&1 &
    echo $! >"$pidfile"
    sleep 0.5
    if ! running; then
      echo "$name: exited at once; last lines of $outfile and $logfile:" >&2
      tail -5 "$outfile" "$logfile" 2>/dev/null >&2
      exit 1
    fi
    echo "$name: started (pid $(cat "$pidfile"), log $logfile, output $outfile)"
    ;;
  stop)
    if ! running; then
      echo "$name: not running"
      rm -f "$pidfile"
      exit 0
    fi
    pid=$(cat "$pidfile")
    kill -TERM "$pid"
    for _ in $(seq 1 600); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name: still running after 60 s; sending SIGKILL" >&2
      kill -KILL "$pid"
    fi
    rm -f "$pidfile"
    echo "$name: stopped"
    ;;
  status)
    if running; then echo "$name: running (pid $(cat "$pidfile"), log $logfile)"; else echo "$name: not running"; exit 1; fi
    ;;
  *) usage ;;
esac
