#!/usr/bin/env bash
# Runs the Autobahn|Testsuite fuzzing client (the standard WebSocket conformance suite) against
# `wsdev cat`, and with --websocketd against `websocketd cat` too, for comparison; then prints,
# per case group, how many cases were OK / NON-STRICT / INFORMATIONAL / FAILED and which failed.
#
#   scripts/autobahn.sh                   cases 1–7 and 10 against wsdev
#   scripts/autobahn.sh --websocketd      … and against websocketd
#   scripts/autobahn.sh --cases='6.*,7.*' other cases (9 is performance, 12 and 13 compression)
#   scripts/autobahn.sh --allow=          count group 1.2's failures too (see --allow below)
#
# wstest is Python 2 code: this makes a Python 2.7 virtualenv in .autobahn/venv (once; again when
# scripts/autobahn-requirements.txt changes) from a Python 2.7 found as $AUTOBAHN_PYTHON2,
# python2.7 or python2 on PATH, or pyenv's versions. Reports go to $AUTOBAHN_OUT (default
# .autobahn/reports), one folder per server, each with wstest's index.json and HTML pages and a
# summary.json (see scripts/autobahn_summary.py). wsdev runs as $WSDEV (default: the project's
# .venv python -m wsdev, with src/ first on PYTHONPATH).
#
# --allow=GROUP,… (default 1.2): groups whose failures are expected. In its text mode wsdev does
# not echo a binary message as binary (by design), so group 1.2 (binary messages) fails.
#
# Exit status: 0  the suite ran, and wsdev failed no case outside the allowed groups
#              1  the suite ran, and wsdev failed a case outside them (listed at the end)
#              2  the harness itself failed (a server did not start, wstest crashed)
#              77 skipped: no Python 2.7 here, or the suite could not be installed (the reason
#                 is printed on a line starting "skipped:")
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CASES='1.*,2.*,3.*,4.*,5.*,6.*,7.*,10.*'
ALLOW='1.2'
WITH_WEBSOCKETD=0
for arg in "$@"; do
  case $arg in
    --websocketd) WITH_WEBSOCKETD=1 ;;
    --cases=*) CASES=${arg#--cases=} ;;
    --allow=*) ALLOW=${arg#--allow=} ;;
    -h | --help) sed -n '2,/^set /p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "autobahn.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
  esac
done

STATE=$ROOT/.autobahn
OUT=${AUTOBAHN_OUT:-$STATE/reports}
REQUIREMENTS=$ROOT/scripts/autobahn-requirements.txt
mkdir -p "$STATE" "$OUT"

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
skip() { echo "skipped: $*"; exit 77; }

# ---------------------------------------------------------------- Python 2.7

is_python27() {
  [ -n "$1" ] && [ -x "$1" ] &&
    "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' >/dev/null 2>&1
}

find_python27() {
  local candidate
  for candidate in "${AUTOBAHN_PYTHON2:-}" "$(command -v python2.7)" "$(command -v python2)" \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/2.7*/bin/python /usr/bin/python2.7; do
    if is_python27 "$candidate"; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

PY2=$(find_python27) || skip "no Python 2.7 (wstest needs one: set AUTOBAHN_PYTHON2, or 'pyenv install 2.7.18')"

# ---------------------------------------------------------------- the suite

VENV=$STATE/venv
STAMP=$VENV/.requirements
INSTALL_LOG=$STATE/install.log
if ! cmp -s "$REQUIREMENTS" "$STAMP" || [ ! -x "$VENV/bin/wstest" ]; then
  started=$(now)
  echo "installing Autobahn|Testsuite into .autobahn/venv with $PY2 (log: .autobahn/install.log)"
  rm -rf "$VENV" "$STATE/virtualenv"
  # virtualenv 20.15.1 is the last that runs on Python 2.7 (whose pip installs it); on Python 3,
  # 20.21.1 is the last that makes 2.7 environments (for a Python 2.7 without pip).
  host=$PY2
  if ! "$PY2" -m pip install -q --target "$STATE/virtualenv" 'virtualenv==20.15.1' \
    >"$INSTALL_LOG" 2>&1; then
    host=python3
    rm -rf "$STATE/virtualenv"
    python3 -m pip install -q --target "$STATE/virtualenv" 'virtualenv==20.21.1' \
      >>"$INSTALL_LOG" 2>&1 || skip "could not install virtualenv (see $INSTALL_LOG)"
  fi
  PYTHONPATH=$STATE/virtualenv "$host" -m virtualenv -q -p "$PY2" "$VENV" >>"$INSTALL_LOG" 2>&1 ||
    skip "could not make a Python 2.7 virtualenv (see $INSTALL_LOG)"
  "$VENV/bin/pip" install --no-cache-dir -r "$REQUIREMENTS" >>"$INSTALL_LOG" 2>&1 ||
    skip "could not install the pinned Autobahn|Testsuite (see $INSTALL_LOG)"
  "$VENV/bin/wstest" -a >>"$INSTALL_LOG" 2>&1 || skip "wstest does not run (see $INSTALL_LOG)"
  cp "$REQUIREMENTS" "$STAMP"
  echo "installed in $(since "$started") s"
fi

# ---------------------------------------------------------------- servers

PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null
  done
}
trap cleanup EXIT
trap 'exit 2' INT TERM

fail() { echo "autobahn.sh: $*" >&2; exit 2; }

# Waits up to $3 seconds for a line matching the regex $2 in the file $1; prints the match.
wait_for_line() {
  local deadline=$((SECONDS + $3)) match
  while [ $SECONDS -lt "$deadline" ]; do
    if match=$(grep -m1 -oE "$2" "$1" 2>/dev/null); then
      echo "$match"
      return 0
    fi
    sleep 0.1
  done
  return 1
}

# Each start_* sets URL to the server's address (no command substitution: the server must be a
# child of this shell, for the cleanup to end it, and a failure must end the script).
URL=
start_wsdev() {
  local log=$OUT/wsdev.log
  local python=python3
  [ -x "$ROOT/.venv/bin/python" ] && python=$ROOT/.venv/bin/python
  # shellcheck disable=SC2086 # $WSDEV is a command line
  PYTHONPATH=$ROOT/src${PYTHONPATH:+:$PYTHONPATH} ${WSDEV:-$python -m wsdev} --port=0 \
    --address=127.0.0.1 --no-dashboard --no-reload --loglevel=info cat >"$log" 2>&1 &
  PIDS+=($!)
  URL=$(wait_for_line "$log" 'ws://127\.0\.0\.1:[0-9]+' 30) || fail "wsdev did not start: $(cat "$log")"
}

start_websocketd() {
  local log=$OUT/websocketd.log port
  command -v websocketd >/dev/null || return 1
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  websocketd --port="$port" --address=127.0.0.1 cat >"$log" 2>&1 &
  PIDS+=($!)
  wait_for_line "$log" 'Serving|Starting WebSocket server' 30 >/dev/null ||
    fail "websocketd did not start: $(cat "$log")"
  URL=ws://127.0.0.1:$port
}

# ---------------------------------------------------------------- the run

STATUS=0

# Runs the fuzzing client against agent $1 at URL $2 and summarises; sets STATUS for wsdev.
fuzz() {
  local agent=$1 url=$2 dir=$OUT/$1 spec started cases_json
  rm -rf "$dir"
  mkdir -p "$dir"
  spec=$dir/spec.json
  cases_json=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1].split(",")))' "$CASES")
  cat >"$spec" <<EOF
{"outdir": "$dir", "servers": [{"agent": "$agent", "url": "$url"}],
 "cases": $cases_json, "exclude-cases": [], "exclude-agent-cases": {}}
EOF
  echo "== $agent at $url: cases $CASES"
  started=$(now)
  (cd "$dir" && timeout 900 "$VENV/bin/wstest" -m fuzzingclient -s "$spec") >"$dir/wstest.log" 2>&1 ||
    fail "wstest failed against $agent: $(tail -20 "$dir/wstest.log")"
  [ -f "$dir/index.json" ] || fail "wstest wrote no report for $agent (see $dir/wstest.log)"
  echo "$agent: the suite ran in $(since "$started") s (report: $dir/index.html)"
  local allow=() groups group
  IFS=, read -ra groups <<<"$ALLOW"
  for group in "${groups[@]}"; do allow+=(--allow "$group"); done
  python3 "$ROOT/scripts/autobahn_summary.py" "$dir/index.json" --agent "$agent" \
    --json "$dir/summary.json" "${allow[@]}"
  local rc=$?
  if [ "$agent" = wsdev ]; then
    case $rc in 0) ;; 1) STATUS=1 ;; *) fail "could not summarise $dir/index.json" ;; esac
  fi
}

start_wsdev
fuzz wsdev "$URL"
if [ "$WITH_WEBSOCKETD" = 1 ]; then
  if start_websocketd; then
    fuzz websocketd "$URL"
  else
    echo "websocketd: not installed, not compared (apt-get install websocketd)"
  fi
fi
exit $STATUS
