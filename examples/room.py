#!/usr/bin/env python3
"""A quiz room for a workshop: everyone answers the same questions and can talk to the room.

    wsdev examples/room.py --open

Each browser tab gets a process of its own, so what the room shares lives in files: the scores
in scores.json (under a lock) and the chat in chat.log, which every process follows. The folder
is $ROOM_DIR if wsdev passes it on (--passenv=PATH,ROOM_DIR), otherwise /tmp/wsdev-room.

Try: "name Ada", "ask", "answer 4", "scores", "say hello everyone".
"""

import fcntl
import json
import os
import re
import select
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs

ROOM = Path(os.environ.get("ROOM_DIR") or "/tmp/wsdev-room")
QUESTIONS = [
    ("What is 2 + 2?", "4"),
    ("Which program reads stdin and writes stdout for each WebSocket here?", "this one"),
    ("How many processes does wsdev start per connection?", "1"),
    ("What is the capital of France?", "paris"),
]
HELP = 'Commands: "name NAME", "ask", "answer TEXT", "scores", "say TEXT", "help".'


def say(line: str) -> None:
    print(line, flush=True)


class Room:
    """The files every process of the room reads and writes."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.scores_path = folder / "scores.json"
        self.chat_path = folder / "chat.log"
        self.chat_path.touch()
        self.chat_offset = self.chat_path.stat().st_size  # only what is said from now on

    def update_scores(self, name: str, points: int) -> dict[str, int]:
        with open(self.scores_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # two right answers at once both count
            handle.seek(0)
            text = handle.read()
            scores: dict[str, int] = json.loads(text) if text.strip() else {}
            scores[name] = scores.get(name, 0) + points
            handle.seek(0)
            handle.truncate()
            json.dump(scores, handle)
            return scores

    def post(self, name: str, text: str) -> None:
        # One write of one short line is atomic under O_APPEND: lines never interleave.
        with open(self.chat_path, "a") as handle:
            handle.write(json.dumps({"from": name, "text": text}) + "\n")

    def new_chat(self) -> list[dict[str, str]]:
        with open(self.chat_path) as handle:
            handle.seek(self.chat_offset)
            lines = handle.readlines()
        complete = [line for line in lines if line.endswith("\n")]
        self.chat_offset += sum(len(line.encode()) for line in complete)
        return [json.loads(line) for line in complete]


def main() -> None:
    room = Room(ROOM)
    query = parse_qs(os.environ.get("QUERY_STRING", ""))
    name = (query.get("name") or [f"guest-{os.getpid()}"])[0][:24]
    asked = 0
    say(f"Welcome to the quiz room, {name}! {HELP}")
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 0.2)
        for message in room.new_chat():
            if message["from"] != name:
                say(f"[{message['from']}] {message['text']}")
        if not ready:
            continue
        line = sys.stdin.readline()
        if not line:
            return  # the client left
        command, _, rest = line.strip().partition(" ")
        command = command.lower()
        if command == "name" and re.fullmatch(r"[\w-]{1,24}", rest):
            name = rest
            say(f"You are {name} now.")
        elif command == "ask":
            question, _ = QUESTIONS[asked % len(QUESTIONS)]
            say(f"Q{asked % len(QUESTIONS) + 1}: {question}")
        elif command == "answer":
            _, expected = QUESTIONS[asked % len(QUESTIONS)]
            if rest.strip().lower() == expected:
                scores = room.update_scores(name, 1)
                asked += 1
                say(f"Right! {name} has {scores[name]} point(s). Type ask for the next one.")
            else:
                say("Not quite. Try again, or ask for the question again.")
        elif command == "scores":
            scores = room.update_scores(name, 0)
            ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
            say("Scores: " + ", ".join(f"{who} {points}" for who, points in ranked))
        elif command == "say" and rest:
            room.post(name, rest)
            say(f"(to the room) {rest}")
        elif command == "time":
            say(time.strftime("%H:%M:%S"))
        else:
            say(HELP)


if __name__ == "__main__":
    main()
