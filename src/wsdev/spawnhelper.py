"""The spawn helper: a small process that starts wsdev's programs for it (behaviour B16).

``python -m wsdev.spawnhelper FD`` serves one ``SOCK_SEQPACKET`` Unix socket, the other end of
which is wsdev's ``spawner.Spawner``. Each request carries a program's argv and environment, and
its three pipe ends as ``SCM_RIGHTS``; the helper starts the program with ``posix_spawn``, in a
process group of its own, and answers with its pid. When a program exits, the helper reaps it
and sends its wait status.

Why a process of its own: ``posix_spawn`` holds its caller until the program has been exec'd,
and copies the caller's descriptor table; wsdev holds five descriptors per connection, this
helper a handful. Here the wait is spent beside wsdev's event loop rather than in it.

It imports nothing of wsdev's but ``wsdev.spawnwire`` (it is ready some 30 ms after it is
launched), ends when wsdev's end of the socket closes, and leaves Ctrl-C and SIGTERM to wsdev.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
import sys

from wsdev.spawnwire import (
    MAX_REQUEST,
    Reply,
    decode_request,
    encode_replies,
    fds_of,
    start_program,
)

# How often programs the helper could not get a pidfd for are looked at.
UNWATCHED_POLL_SECONDS = 0.1


class Helper:
    """The helper's one loop: requests in, programs started, exits out."""

    def __init__(self, sock: socket.socket) -> None:
        # Blocking, for the replies (a send waits if wsdev is behind); requests are read with
        # MSG_DONTWAIT, so the socket's mode is never switched back and forth.
        sock.setblocking(True)
        self.sock = sock
        self.poller = select.epoll()
        self.poller.register(sock.fileno(), select.EPOLLIN)
        self.exits: dict[int, int] = {}  # pidfd → pid of a running program
        # Programs without a pidfd (out of descriptors): looked at every UNWATCHED_POLL_SECONDS.
        self.unwatched: set[int] = set()
        self.replies: list[Reply] = [Reply.ready(os.getpid())]

    def serve(self) -> None:
        """Start programs on request and report their exits, until wsdev goes away."""
        while True:
            if self.replies:
                self._send()
            wait = UNWATCHED_POLL_SECONDS if self.unwatched else -1
            for fd, _ in self.poller.poll(wait):
                if fd == self.sock.fileno():
                    if not self._take_requests():
                        return
                else:
                    self._exited(fd)
            if self.unwatched:
                self._look_at_unwatched()

    def _take_requests(self) -> bool:
        """Start every program asked for so far; False once wsdev has closed its end."""
        ancillary = socket.CMSG_SPACE(3 * 4)
        while True:
            try:
                # Close-on-exec at once: a program holds its three pipes only as 0, 1 and 2.
                data, ancdata, flags, _ = self.sock.recvmsg(
                    MAX_REQUEST, ancillary, socket.MSG_CMSG_CLOEXEC | socket.MSG_DONTWAIT
                )
            except BlockingIOError:
                return True
            except ConnectionError:
                return False
            if not data:
                return False
            fds = fds_of(ancdata)
            try:
                # Pipes lost on the way: the helper is out of descriptors.
                self._start(data, fds, errno.EMFILE if flags & socket.MSG_CTRUNC else 0)
            finally:
                for fd in fds:
                    os.close(fd)
            # Each answer at once: its session waits for it, and in a burst the requests
            # queued behind it take a while (each start waits for the program's loading).
            self._send()

    def _start(self, request: bytes, fds: list[int], problem: int) -> None:
        request_id, argv, env = decode_request(request)
        if problem or len(fds) != 3:
            self.replies.append(Reply.failed(request_id, problem or errno.EINVAL))
            return
        try:
            pid = start_program(argv, env, *fds)
        except OSError as exc:
            self.replies.append(Reply.failed(request_id, exc.errno or errno.EIO))
            return
        except ValueError:
            self.replies.append(Reply.failed(request_id, errno.EINVAL))
            return
        self.replies.append(Reply.started(request_id, pid))
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            self.unwatched.add(pid)
            return
        self.exits[pidfd] = pid
        self.poller.register(pidfd, select.EPOLLIN)

    def _exited(self, pidfd: int) -> None:
        pid = self.exits.pop(pidfd)
        self.poller.unregister(pidfd)
        os.close(pidfd)
        self._reap(pid, 0)

    def _look_at_unwatched(self) -> None:
        for pid in list(self.unwatched):
            if self._reap(pid, os.WNOHANG):
                self.unwatched.discard(pid)

    def _reap(self, pid: int, flags: int) -> bool:
        try:
            reaped, status = os.waitpid(pid, flags)
        except ChildProcessError:
            reaped, status = pid, 255 << 8
        if reaped == 0:
            return False
        self.replies.append(Reply.exited(pid, status))
        return True

    def _send(self) -> None:
        """Send the replies, blocking if wsdev is behind (it reads them on every loop turn)."""
        replies, self.replies = self.replies, []
        for message in encode_replies(replies):
            self.sock.send(message)


def main(argv: list[str]) -> int:
    # Ctrl-C reaches the whole foreground group, and a service manager's SIGTERM the whole
    # service: wsdev decides what they mean, and ends the helper by closing its socket.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    fd = int(argv[1])
    os.set_inheritable(fd, False)  # passed to us inheritable; the programs must not hold it
    sock = socket.socket(fileno=fd)
    with contextlib.suppress(BrokenPipeError, ConnectionError):
        Helper(sock).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
