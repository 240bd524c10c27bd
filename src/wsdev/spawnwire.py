"""What wsdev and its spawn helper say to each other (``spawner`` ↔ ``spawnhelper``), and the
one way both start a program (``start_program``).

A request is one ``SOCK_SEQPACKET`` message: a header (request id, argument count), then the
arguments and the environment's ``NAME=value`` items, each followed by a NUL byte, with the
program's stdin, stdout and stderr as ``SCM_RIGHTS``. Replies are 9-byte records, as many to a
message as fit: ``R`` the helper is ready (its pid), ``S`` request started (pid), ``F`` request
failed (errno), ``X`` a program exited (pid, wait status).
"""

from __future__ import annotations

import array
import os
import signal
import socket
import struct
from collections.abc import Iterator, Mapping, Sequence
from typing import NamedTuple

# Python ignores SIGPIPE (and friends) for itself, and an ignored signal survives exec: reset
# every catchable signal so `seq 1 1000000` dies of SIGPIPE like it would under a shell.
DEFAULT_SIGNALS = tuple(
    s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)
)

_HEADER = struct.Struct("<II")
_RECORD = struct.Struct("<cIi")

# The largest request the helper takes: bigger ones (a huge environment) are started by wsdev
# itself. Linux's default socket buffer holds about 200 KiB.
MAX_REQUEST = 128 * 1024
# Replies per message: wsdev reads one message per receive.
_RECORDS_PER_MESSAGE = 1024


class Reply(NamedTuple):
    kind: bytes  # b"R", b"S", b"F" or b"X"
    key: int  # request id (S, F) or pid (R, X)
    value: int  # pid (S), errno (F), wait status (X); 0 for R

    @classmethod
    def ready(cls, pid: int) -> Reply:
        return cls(b"R", pid, 0)

    @classmethod
    def started(cls, request_id: int, pid: int) -> Reply:
        return cls(b"S", request_id, pid)

    @classmethod
    def failed(cls, request_id: int, errno: int) -> Reply:
        return cls(b"F", request_id, errno)

    @classmethod
    def exited(cls, pid: int, status: int) -> Reply:
        return cls(b"X", pid, status)


def start_program(
    argv: Sequence[str | bytes],
    env: Mapping[str, str] | Mapping[bytes, bytes],
    stdin: int,
    stdout: int,
    stderr: int,
) -> int:
    """``posix_spawn`` argv[0] (a path) in a process group of its own, with ``stdin``,
    ``stdout`` and ``stderr`` as 0, 1 and 2 and every signal at its default; the pid.

    The one way a program is started, in wsdev (``process.spawn``) and in its helper.
    """
    return os.posix_spawn(
        argv[0],
        list(argv),
        env,
        file_actions=[
            (os.POSIX_SPAWN_DUP2, stdin, 0),
            (os.POSIX_SPAWN_DUP2, stdout, 1),
            (os.POSIX_SPAWN_DUP2, stderr, 2),
        ],
        setpgroup=0,
        setsigdef=DEFAULT_SIGNALS,
        setsigmask=(),
    )


def encode_request(request_id: int, argv: Sequence[str], env: Mapping[str, str]) -> bytes:
    """The request's bytes; ValueError if an argument or variable holds a NUL byte."""
    items = [*argv, *(f"{name}={value}" for name, value in env.items())]
    body = "\0".join(items)
    if "\0" in argv[0] or body.count("\0") != len(items) - 1:
        raise ValueError("embedded null byte")
    return _HEADER.pack(request_id, len(argv)) + body.encode("utf-8", "surrogateescape") + b"\0"


def decode_request(data: bytes) -> tuple[int, list[bytes], dict[bytes, bytes]]:
    request_id, argc = _HEADER.unpack_from(data)
    items = data[_HEADER.size : -1].split(b"\0")
    env: dict[bytes, bytes] = {}
    for item in items[argc:]:
        name, _, value = item.partition(b"=")
        env[name] = value
    return request_id, items[:argc], env


def encode_replies(replies: Sequence[Reply]) -> Iterator[bytes]:
    for start in range(0, len(replies), _RECORDS_PER_MESSAGE):
        yield b"".join(
            _RECORD.pack(*reply) for reply in replies[start : start + _RECORDS_PER_MESSAGE]
        )


def decode_replies(data: bytes) -> Iterator[Reply]:
    for kind, key, value in _RECORD.iter_unpack(data):
        yield Reply(kind, key, value)


REPLY_BUFFER = _RECORD.size * _RECORDS_PER_MESSAGE


def fds_of(ancdata: list[tuple[int, int, bytes]]) -> list[int]:
    """The descriptors an ``SCM_RIGHTS`` message carried."""
    fds = array.array("i")
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
    return list(fds)
