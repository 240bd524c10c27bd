"""``receiver``: a session's incoming bytes, split into messages however they arrive."""

from __future__ import annotations

import os
import random
import struct

from websockets.protocol import State
from websockets.server import ServerProtocol

from wsdev.receiver import Receiver

LIMIT = 4096


class Recorder:
    def __init__(self, engine: ServerProtocol) -> None:
        self.engine = engine
        self.messages: list[tuple[bytes, bool]] = []
        self.controls = 0
        self.sent: list[bytes] = []

    def message(self, payload: bytes, binary: bool) -> None:
        self.messages.append((payload, binary))

    def control(self) -> None:
        self.controls += 1

    def engine_spoke(self) -> None:
        self.sent.extend(self.engine.data_to_send())


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", first, (0x80 if mask else 0) | size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, size)
    else:
        head = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, size)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def receiver() -> tuple[Receiver, Recorder]:
    engine = ServerProtocol(state=State.OPEN, max_size=LIMIT)
    recorder = Recorder(engine)
    return Receiver(engine, LIMIT, recorder), recorder


CONVERSATION = [
    (frame(0x1, b"hello"), (b"hello", False)),
    (frame(0x2, bytes(range(256)) * 3), (bytes(range(256)) * 3, True)),
    (frame(0x1, "héllo wörld".encode()), ("héllo wörld".encode(), False)),
    (frame(0x9, b"ping"), None),
    (frame(0x1, b"frag", fin=False) + frame(0x0, "mé".encode()), ("fragmé".encode(), False)),
    (frame(0x1, b""), (b"", False)),
    (frame(0x2, b"x" * LIMIT), (b"x" * LIMIT, True)),
]


def test_messages_arrive_whole_however_the_bytes_are_cut() -> None:
    stream = b"".join(data for data, _ in CONVERSATION)
    expected = [message for _, message in CONVERSATION if message is not None]
    rng = random.Random(6455)
    for _ in range(200):
        recv, recorder = receiver()
        position = 0
        while position < len(stream):
            step = rng.choice((1, 2, 3, 7, 64, 1000, len(stream)))
            recv.feed(stream[position : position + step])
            position += step
        assert recorder.messages == expected
        assert recorder.controls == 1
        assert recorder.sent == [frame(0xA, b"ping", mask=False)]  # the pong, nothing else


def _close_code(sent: list[bytes]) -> int:
    [close] = [data for data in sent if data[:1] == b"\x88"]
    return int.from_bytes(close[2:4], "big")


def test_a_frame_that_breaks_a_rule_goes_to_the_engine_which_fails_the_connection() -> None:
    for bad, code in [
        (frame(0x1, b"unmasked", mask=False), 1002),
        (frame(0x1 | 0x40, b"rsv1"), 1002),
        (frame(0x3, b"reserved opcode"), 1002),
        (frame(0x1, b"\xff\xfe"), 1007),
        (frame(0x2, b"x" * (LIMIT + 1)), 1009),
        (frame(0x1, b"a", fin=False) + frame(0x1, b"b"), 1002),
    ]:
        recv, recorder = receiver()
        recv.feed(frame(0x1, b"before") + bad + frame(0x1, b"after"))
        assert recorder.messages == [(b"before", False)], bad
        assert _close_code(recorder.sent) == code, bad
        assert recorder.engine.state is not State.OPEN
