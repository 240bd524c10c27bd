#!/usr/bin/env bash
# The dependency matrix: proves pyproject.toml's lower bounds. On Python 3.10 and on the newest
# Python this machine has, it installs the LOWEST version of each runtime dependency that
# pyproject.toml allows (honouring its environment markers), from wheels only, into a fresh
# .venv-matrix/<version>, and runs a named subset of the tests there. A bound that does not
# install or does not pass is one to raise.
#   ./scripts/matrix.sh              both interpreters (./scripts/test.sh runs this after pytest)
#   ./scripts/matrix.sh -x           extra arguments go to pytest
# Interpreters are found through pyenv and python3.N on PATH; a missing one is skipped, and
# said so. uv makes the environments: with its cache warm, that takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
[ -x "$VENV/bin/uv" ] || "$VENV/bin/pip" install -q uv
UV=$VENV/bin/uv
export UV_PYTHON_DOWNLOADS=never # this machine's interpreters only

# The named subset: what leans most on the dependencies. websockets: the bridge, its close
# codes and back-pressure, the protocol rules, the console's socket. aiohttp: the HTTP server,
# CGI, static files. yarl: how request targets are decoded. watchfiles: reload. rich: the
# dashboard. segno: the room's QR code. About a minute per interpreter (the comparisons with
# websocketd's HTTP answers are left to the main run, to keep CI under ten minutes).
TESTS=(
  tests/test_protocol_rules.py
  tests/test_handshake.py
  tests/test_receiver.py
  tests/test_sessions.py
  tests/test_spawner.py
  tests/test_bridge.py
  tests/test_bridge_close.py
  tests/test_robustness.py
  tests/test_console_ws.py
  tests/test_reload.py
  tests/test_cgi.py
  tests/test_server.py
  tests/test_staticfiles.py
  tests/test_dashboard.py
  tests/test_lan.py
  tests/test_limits.py
)
SELECT=(-m "not browser and not autobahn")
# Left to the main run: slow tests of wsdev's own bookkeeping more than of its dependencies
# (the two memory floods take half a minute between them; the CGI signal ladder is also
# timing-sensitive under load).
for test in \
  test_bridge.py::test_child_that_never_reads_stdin_does_not_grow_memory \
  test_bridge.py::test_slow_client_does_not_grow_memory \
  test_bridge.py::test_maxforks_frees_the_slot_once_the_program_ended \
  test_bridge.py::test_output_without_newline_is_hinted \
  test_robustness.py::test_nul_in_path_is_a_clean_spawn_failure \
  test_robustness.py::test_closed_log_pipe_gives_no_traceback \
  test_robustness.py::test_daemonized_grandchild_does_not_outlive_shutdown \
  test_reload.py::test_broken_save_shows_failure_and_next_save_recovers \
  test_reload.py::test_open_launches_the_browser_on_the_console \
  test_reload.py::test_open_says_so_without_a_browser \
  test_cgi.py::test_a_script_ignoring_sigint_and_sigterm_is_killed_through_the_ladder \
  test_dashboard.py::test_idle_redraws_once_a_second \
  test_dashboard.py::test_redraws_at_most_four_times_a_second_under_load; do
  SELECT+=(--deselect "tests/$test")
done
TEST_TOOLS=(pytest pytest-asyncio pytest-timeout trustme packaging)

# Prints "VERSION PATH" for every final CPython >= 3.10 found, one a line.
interpreters() {
  local candidates=() roots=("${PYENV_ROOT:-$HOME/.pyenv}") root dir n
  command -v pyenv >/dev/null && roots+=("$(pyenv root)")
  for root in "${roots[@]}"; do
    for dir in "$root"/versions/*/bin; do
      [ -x "$dir/python3" ] && candidates+=("$dir/python3")
    done
  done
  for n in $(seq 10 30); do
    command -v "python3.$n" >/dev/null && candidates+=("$(command -v "python3.$n")")
  done
  command -v python3 >/dev/null && candidates+=("$(command -v python3)")
  for python in "${candidates[@]}"; do
    # pyenv's shims fail for a version that is installed but not selected: those are skipped.
    "$python" -c 'import sys; v = sys.version_info
if sys.implementation.name == "cpython" and v >= (3, 10) and v.releaselevel == "final":
    print(f"{v.major}.{v.minor}.{v.micro}", sys.executable)' 2>/dev/null || true
  done
}

# Checks that each runtime dependency sits at its declared lower bound (the resolver would
# silently take a higher one when the lowest has no wheel for this Python), and prints them
# as "name==version ...". Runs in the matrix environment, so markers are evaluated for it.
CHECK_LOWEST='
import importlib.metadata as metadata, sys
from packaging.requirements import Requirement
from packaging.version import Version

pins, wrong = [], []
for line in metadata.requires("wsdev") or []:
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    installed = metadata.version(req.name)
    lowest = [s.version for s in req.specifier if s.operator in (">=", "~=", "==")]
    pins.append(f"{req.name}=={installed}")
    if not lowest:
        wrong.append(f"{req.name} has no lower bound in pyproject.toml")
    elif Version(installed) != Version(lowest[0]):
        wrong.append(
            f"{req.name}>={lowest[0]} gave {installed} here (no wheel of {lowest[0]} for"
            " this Python, or another dependency asks for more)"
        )
print(" ".join(pins))
for problem in wrong:
    print(f"matrix: {problem}: raise the bound", file=sys.stderr)
sys.exit(1 if wrong else 0)
'

passed=0 failed=0 skipped=0 status=0

# run_one VERSION PYTHON [pytest arguments...]
run_one() {
  local version=$1 python=$2
  shift 2
  local env=.venv-matrix/$version
  echo "matrix: Python $version ($python): installing the lowest declared versions"
  rm -rf "$env"
  if ! {
    "$UV" venv -q --python "$python" "$env" &&
      "$UV" pip install -q --python "$env/bin/python" --only-binary :all: \
        --resolution lowest-direct -r pyproject.toml &&
      "$UV" pip freeze -q --python "$env/bin/python" >"$env/lowest.txt" &&
      "$UV" pip install -q --python "$env/bin/python" --only-binary :all: \
        -c "$env/lowest.txt" "${TEST_TOOLS[@]}" &&
      "$UV" pip install -q --python "$env/bin/python" --no-deps -e .
  }; then
    echo "matrix: Python $version: could not install the lowest declared versions (see above)"
    failed=$((failed + 1)) status=1
    return
  fi
  local pins
  if ! pins=$("$env/bin/python" -c "$CHECK_LOWEST"); then
    echo "matrix: Python $version with $pins: not the declared lower bounds"
    failed=$((failed + 1)) status=1
    return
  fi
  local log=$env/pytest.log rc=0
  "$env/bin/python" -m pytest -q -p no:cacheprovider "${SELECT[@]}" "$@" "${TESTS[@]}" \
    >"$log" 2>&1 || rc=$?
  local summary
  summary=$(tail -n 1 "$log" | sed -E 's/^=+ //; s/ =+$//; s/ in [0-9.]+s.*$//')
  if [ "$rc" != 0 ]; then
    tail -n 150 "$log"
    status=1
    [[ $summary =~ (passed|failed|error) ]] || failed=$((failed + 1)) # crashed: count the run
  fi
  local count
  for count in passed failed error skipped; do
    local n
    n=$(grep -oE "[0-9]+ $count" <<<"$summary" | cut -d' ' -f1 || true)
    case $count in
      passed) passed=$((passed + ${n:-0})) ;;
      failed | error) failed=$((failed + ${n:-0})) ;;
      skipped) skipped=$((skipped + ${n:-0})) ;;
    esac
  done
  echo "matrix: Python $version with $pins: $summary"
}

found=$(interpreters | sort -u -V -k1,1)
py310=$(grep -E '^3\.10\.' <<<"$found" | tail -n 1 || true)
newest=$(tail -n 1 <<<"$found")
if [ -n "$py310" ]; then
  read -r version python <<<"$py310"
  run_one "$version" "$python" "$@"
else
  echo "matrix: skipped Python 3.10: no interpreter found"
fi
if [ -z "$newest" ]; then
  echo "matrix: skipped the newest Python: no interpreter found"
elif [ "$newest" = "$py310" ]; then
  echo "matrix: skipped the newest Python: none newer than ${py310%% *} found"
else
  read -r version python <<<"$newest"
  run_one "$version" "$python" "$@"
fi
if [ -n "$found" ]; then
  echo "matrix: $passed passed, $failed failed, $skipped skipped"
fi
exit $status
