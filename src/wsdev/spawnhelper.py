"""The spawn helper: a small process that starts wsdev's programs for it (behaviour B16).

``python -m wsdev.spawnhelper FD`` serves one ``SOCK_SEQPACKET`` Unix socket, the other end of
which is wsdev's ``spawner.Spawner``. Each request carries a program's argv and environment, and
its three pipe ends as ``SCM_RIGHTS``; the helper starts the program with ``posix_spawn``, in a
process group of its own, and answers with its pid. When a program exits, the helper reaps it
and sends its wait status.

Why a process of its own: ``posix_spawn`` holds its caller until the program has been exec'd,
and copies the caller's descriptor table; wsdev holds five descriptors per connection, this
helper a handful. Here the wait is spent beside wsdev's event loop rather than in it.

It imports nothing of wsdev's but ``wsdev.spawnwire`` (it starts in a few milliseconds), ends
when wsdev's end of the socket closes, and leaves Ctrl-C to wsdev.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys

from wsdev.spawnwire import (
    DEFAULT_SIGNALS,
    MAX_REQUEST,
    Reply,
    decode_request,
    encode_replies,
    fds_of,
)


def serve(sock: socket.socket) -> None:
    """Start programs on request and report their exits, until wsdev goes away."""
    sock.setblocking(False)
    poller = select.epoll()
    poller.register(sock.fileno(), select.EPOLLIN)
    exits: dict[int, int] = {}  # pidfd → pid
    replies: list[Reply] = [Reply.ready(os.getpid())]
    while True:
        if replies:
            _send(sock, replies)
            replies = []
        for fd, _ in poller.poll():
            if fd == sock.fileno():
                if not _take_requests(sock, poller, exits, replies):
                    return
                continue
            pid = exits.pop(fd)
            poller.unregister(fd)
            os.close(fd)
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = 255 << 8
            replies.append(Reply.exited(pid, status))


def _take_requests(
    sock: socket.socket, poller: select.epoll, exits: dict[int, int], replies: list[Reply]
) -> bool:
    """Start every program asked for so far; False once wsdev has closed its end."""
    ancillary = socket.CMSG_SPACE(3 * 4)
    while True:
        try:
            # Close-on-exec at once: a program must hold its own three pipes only as 0, 1, 2.
            data, ancdata, _, _ = sock.recvmsg(MAX_REQUEST, ancillary, socket.MSG_CMSG_CLOEXEC)
        except BlockingIOError:
            return True
        except ConnectionError:
            return False
        if not data:
            return False
        fds = fds_of(ancdata)
        try:
            request_id, argv, env = decode_request(data)
            if len(fds) != 3:
                replies.append(Reply.failed(request_id, 22))  # EINVAL
                continue
            stdin, stdout, stderr = fds
            try:
                pid = os.posix_spawn(
                    argv[0],
                    argv,
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
            except OSError as exc:
                replies.append(Reply.failed(request_id, exc.errno or 5))  # EIO
                continue
            except ValueError:
                replies.append(Reply.failed(request_id, 22))
                continue
            pidfd = os.pidfd_open(pid)
            exits[pidfd] = pid
            poller.register(pidfd, select.EPOLLIN)
            replies.append(Reply.started(request_id, pid))
        finally:
            for fd in fds:
                os.close(fd)


def _send(sock: socket.socket, replies: list[Reply]) -> None:
    """Send the replies, blocking if wsdev is behind (it reads them on every loop turn)."""
    for message in encode_replies(replies):
        sock.setblocking(True)
        try:
            sock.send(message)
        finally:
            sock.setblocking(False)


def main(argv: list[str]) -> int:
    # Ctrl-C reaches the whole foreground group; wsdev decides, and closes our socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd = int(argv[1])
    os.set_inheritable(fd, False)  # passed to us inheritable; the programs must not hold it
    sock = socket.socket(fileno=fd)
    with contextlib.suppress(BrokenPipeError, ConnectionError):
        serve(sock)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
