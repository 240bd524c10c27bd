#!/usr/bin/env python3
"""A chat-like bot that remembers what you tell it during one connection.

    wsdev examples/chat.py --open

Try: "hi", "my name is Ada", "what is my name?", "remember milk", "what do you remember?".
Edit a reply below and save: the console reconnects to the new code.
"""

import re
import sys

name = None
memory: list[str] = []


def reply(text: str) -> str:
    global name
    lowered = text.lower().strip()
    if match := re.match(r"(my name is|i am|i'm) (\w+)", lowered):
        name = match.group(2).capitalize()
        return f"Nice to meet you, {name}!"
    if "my name" in lowered:
        return f"You are {name}." if name else "You have not told me your name yet."
    if lowered.startswith("remember "):
        memory.append(text.strip()[len("remember ") :])
        return f"Noted. I remember {len(memory)} thing(s)."
    if "remember" in lowered:
        return "You asked me to remember: " + ", ".join(memory) if memory else "Nothing yet."
    if lowered in ("hi", "hello", "hey"):
        greeting = f"Hello, {name}!" if name else "Hello!"
        return f"{greeting} Tell me your name, or ask me to remember something."
    if lowered in ("bye", "quit"):
        return "Bye!"
    return f"You said {text.strip()!r}. I only know small talk, names and remembering."


print("chat bot ready: say hi")
for line in sys.stdin:
    answer = reply(line)
    print(answer)
    if answer == "Bye!":
        break
