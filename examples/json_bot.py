#!/usr/bin/env python3
"""A JSON API over a WebSocket: one JSON request per message, one JSON reply per request.

    wsdev examples/json_bot.py --open

Send {"op": "add", "args": [1, 2]}, {"op": "stats", "args": [3, 1, 4, 1, 5]} or
{"op": "echo", "args": {"any": "thing"}}; the console pretty-prints and folds the replies.
Malformed requests get an error reply and a line on stderr, and the bot keeps going.
"""

import json
import statistics
import sys
from typing import Any


def handle(request: dict[str, Any]) -> object:
    op = request.get("op")
    args: Any = request.get("args")  # checked by the operation itself
    if op == "add":
        return sum(args)
    if op == "stats":
        return {
            "count": len(args),
            "mean": statistics.mean(args),
            "median": statistics.median(args),
            "min": min(args),
            "max": max(args),
        }
    if op == "echo":
        return args
    raise ValueError(f"unknown op {op!r} (try add, stats or echo)")


print(json.dumps({"ready": True, "ops": ["add", "stats", "echo"]}))
for number, line in enumerate(sys.stdin, 1):
    try:
        request = json.loads(line)
        reply = {"id": request.get("id", number), "ok": True, "result": handle(request)}
    except Exception as error:  # a bad request must never end the session
        print(f"request {number}: {error}", file=sys.stderr)
        reply = {"id": number, "ok": False, "error": str(error)}
    print(json.dumps(reply))
