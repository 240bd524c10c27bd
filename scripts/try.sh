#!/usr/bin/env bash
# Installs wsdev into .venv and serves an example bot with its console open in a browser.
#   ./scripts/try.sh                       examples/bot.py
#   ./scripts/try.sh examples/greeter.sh   any other program
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
"$VENV/bin/pip" install -q .
exec "$VENV/bin/wsdev" "${@:-examples/bot.py}" --open
