#!/bin/sh
# A tiny key-value store backend written in shell: one store per connection.
#   wsdev examples/backend.sh --open
# Commands: set KEY VALUE | get KEY | del KEY | list | help
store=$(mktemp)
trap 'rm -f "$store"' EXIT
echo "kv store ready (commands: set KEY VALUE, get KEY, del KEY, list)"
while read -r cmd key value; do
  case "$cmd" in
    set) grep -v "^$key=" "$store" > "$store.new"; mv "$store.new" "$store"
         echo "$key=$value" >> "$store"; echo "ok" ;;
    get) line=$(grep "^$key=" "$store") && echo "${line#*=}" || echo "no such key: $key" >&2 ;;
    del) grep -v "^$key=" "$store" > "$store.new"; mv "$store.new" "$store"; echo "deleted $key" ;;
    list) if [ -s "$store" ]; then cat "$store"; else echo "(empty)"; fi ;;
    help|"") echo "commands: set KEY VALUE, get KEY, del KEY, list" ;;
    *) echo "unknown command: $cmd" >&2 ;;
  esac
done
