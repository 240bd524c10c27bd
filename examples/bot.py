#!/usr/bin/env python3
"""A small bot: answers a few commands, and shows stderr and exit codes in the console.

    wsdev examples/bot.py --open

Edit this file while the console is open: wsdev restarts the bot and the console reconnects.
"""

import os
import sys

COMMANDS = "help, time, upper TEXT, count N, env, fail, quit"


def main() -> int:
    print(f"Hi! I am bot.py (pid {os.getpid()}). Commands: {COMMANDS}")
    for line in sys.stdin:
        words = line.strip().split(" ", 1)
        command, rest = words[0].lower(), (words[1] if len(words) > 1 else "")
        if command == "help":
            print(f"Commands: {COMMANDS}")
        elif command == "time":
            import time

            print(time.strftime("%H:%M:%S"))
        elif command == "upper":
            print(rest.upper())
        elif command == "count":
            for i in range(1, int(rest or "3") + 1):
                print(i)
        elif command == "env":
            path, query = os.environ.get("PATH_INFO", ""), os.environ.get("QUERY_STRING", "")
            print(f"path={path} query={query}")
        elif command == "fail":
            print("about to fail: see stderr and the exit status", file=sys.stderr)
            return 3
        elif command == "quit":
            print("bye")
            return 0
        elif command:
            print(f"unknown command {command!r}; try: help", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
