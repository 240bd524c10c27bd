#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs it:
# websocketd (the reference the comparison tests run against), chromium (the console tests),
# tmux (the dashboard test), zbar-tools (reads back the QR code wsdev prints), nginx and haproxy
# (tests/test_nginx.py and tests/test_proxy_haproxy.py run docs/deploy.md's configurations), the
# Python packages into .venv; then lint, types and pytest, and then scripts/matrix.sh: a subset
# of the tests with the lowest dependency versions that pyproject.toml declares, on Python 3.10
# and on the newest Python here.
#   ./scripts/test.sh                          the whole suite and the matrix (as CI runs it)
#   ./scripts/test.sh -k bridge                extra arguments go to the main pytest run
#   WSDEV_MATRIX=0 ./scripts/test.sh -k bridge without the matrix
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  missing=()
  declare -A PACKAGE_OF=([zbarimg]=zbar-tools)
  for tool in websocketd chromium tmux zbarimg nginx haproxy; do
    command -v "$tool" >/dev/null || missing+=("${PACKAGE_OF[$tool]:-$tool}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
source scripts/venv.sh
"$VENV/bin/pip" install -q --upgrade pip >/dev/null
"$VENV/bin/pip" install -q -e ".[test]"
"$VENV/bin/ruff" check src tests bench scripts examples
"$VENV/bin/ruff" format --check src tests bench scripts examples
"$VENV/bin/mypy"
status=0
"$VENV/bin/python" -m pytest "$@" || status=$?
if [ "${WSDEV_MATRIX:-1}" != 0 ]; then
  [ "$status" = 0 ] || echo "test.sh: the main run failed (pytest exit $status); the matrix runs all the same"
  ./scripts/matrix.sh || status=$((status ? status : 1))
fi
exit "$status"
