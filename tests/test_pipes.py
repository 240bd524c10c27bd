"""``pipes.py`` on real pipes and the running loop: delivery, pausing, buffering, endings."""

from __future__ import annotations

import asyncio
import os

import pytest

from conftest import TurnCounter
from wsdev.pipes import PipeReader, PipeWriter


class Recorder(asyncio.Protocol):
    """Records every callback, in order, and lets a test wait for one."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []
        self.data = bytearray()
        self._changed = asyncio.Event()

    def _note(self, name: str, value: object = None) -> None:
        self.calls.append((name, value))
        self._changed.set()

    def data_received(self, data: bytes) -> None:
        self.data += data
        self._note("data", len(data))

    def eof_received(self) -> bool | None:
        self._note("eof")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._note("lost", exc)

    def pause_writing(self) -> None:
        self._note("pause")

    def resume_writing(self) -> None:
        self._note("resume")

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    async def until(self, name: str) -> None:
        async def wait() -> None:
            while name not in self.names():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(wait(), 5)


def registered(fd: int) -> bool:
    """Whether the running loop's selector still watches ``fd``."""
    selector = asyncio.get_running_loop()._selector  # type: ignore[attr-defined]
    try:
        selector.get_key(fd)
    except KeyError:
        return False
    return True


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


async def test_reader_delivers_data_then_eof_then_closes_its_fd() -> None:
    read_end, write_end = os.pipe()
    protocol = Recorder()
    PipeReader(asyncio.get_running_loop(), read_end, protocol)
    os.write(write_end, b"hello ")
    await protocol.until("data")
    os.write(write_end, b"world")
    os.close(write_end)
    await protocol.until("lost")
    assert bytes(protocol.data) == b"hello world"
    assert protocol.names()[-2:] == ["eof", "lost"]
    assert protocol.calls[-1] == ("lost", None)
    assert not registered(read_end) and not is_open(read_end)


async def test_paused_reader_reads_nothing_until_resumed() -> None:
    read_end, write_end = os.pipe()
    protocol = Recorder()
    reader = PipeReader(asyncio.get_running_loop(), read_end, protocol)
    reader.pause_reading()
    assert not reader.is_reading() and not registered(read_end)
    os.write(write_end, b"waiting")
    # Let the loop run several turns: a paused reader must not be called.
    for _ in range(5):
        await asyncio.sleep(0)
    assert protocol.calls == []
    reader.resume_reading()
    await protocol.until("data")
    assert bytes(protocol.data) == b"waiting"
    os.close(write_end)
    await protocol.until("lost")


async def test_closing_a_reader_unregisters_before_closing_the_fd() -> None:
    read_end, write_end = os.pipe()
    protocol = Recorder()
    reader = PipeReader(asyncio.get_running_loop(), read_end, protocol)
    reader.close()
    reader.close()  # a second close changes nothing
    assert protocol.calls == [("lost", None)]
    assert reader.is_closing() and not registered(read_end) and not is_open(read_end)
    # A new pipe may get the same fd number: it must be watchable from scratch.
    again_read, again_write = os.pipe()
    other = Recorder()
    PipeReader(asyncio.get_running_loop(), again_read, other)
    os.write(again_write, b"x")
    os.close(again_write)
    await other.until("lost")
    assert bytes(other.data) == b"x"
    os.close(write_end)


async def test_reader_takes_at_most_one_buffer_per_readiness() -> None:
    read_end, write_end = os.pipe()
    protocol = Recorder()
    PipeReader(asyncio.get_running_loop(), read_end, protocol)
    payload = os.urandom(300_000)

    async def feed() -> None:
        view = memoryview(payload)
        while view:
            await asyncio.sleep(0)
            try:
                written = os.write(write_end, view[:65536])
            except BlockingIOError:
                continue
            view = view[written:]
        os.close(write_end)

    os.set_blocking(write_end, False)
    await asyncio.gather(feed(), protocol.until("lost"))
    assert bytes(protocol.data) == payload


async def test_writer_writes_at_once_when_the_pipe_has_room() -> None:
    read_end, write_end = os.pipe()
    protocol = Recorder()
    writer = PipeWriter(asyncio.get_running_loop(), write_end, protocol, high=1024)
    writer.write(b"line\n")
    assert writer.get_write_buffer_size() == 0 and not registered(write_end)
    assert os.read(read_end, 100) == b"line\n"
    writer.abort()
    assert protocol.calls == [("lost", None)] and not is_open(write_end)
    os.close(read_end)


async def test_writer_buffers_pauses_and_resumes_without_losing_a_byte() -> None:
    read_end, write_end = os.pipe()
    protocol = Recorder()
    high = 256 * 1024
    writer = PipeWriter(asyncio.get_running_loop(), write_end, protocol, high=high)
    payload = os.urandom(2 * 1024 * 1024)
    for start in range(0, len(payload), 64 * 1024):
        writer.write(payload[start : start + 64 * 1024])
    assert protocol.names() == ["pause"]
    assert writer.get_write_buffer_size() > high and registered(write_end)

    received = bytearray()
    os.set_blocking(read_end, False)
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def drain() -> None:
        try:
            received.extend(os.read(read_end, 1 << 20))
        except BlockingIOError:
            return
        if len(received) == len(payload):
            loop.remove_reader(read_end)
            done.set_result(None)

    loop.add_reader(read_end, drain)
    await asyncio.wait_for(done, 10)
    assert bytes(received) == payload
    assert protocol.names() == ["pause", "resume"]
    assert writer.get_write_buffer_size() == 0 and not registered(write_end)
    writer.abort()
    os.close(read_end)


async def test_writer_reports_a_reader_that_went_away() -> None:
    read_end, write_end = os.pipe()
    protocol = Recorder()
    writer = PipeWriter(asyncio.get_running_loop(), write_end, protocol, high=1024)
    os.close(read_end)
    writer.write(b"nobody reads this\n")
    assert writer.is_closing()
    assert [name for name, _ in protocol.calls] == ["lost"]
    assert isinstance(protocol.calls[0][1], BrokenPipeError)
    writer.write(b"ignored once closed\n")  # no error, no second callback
    assert len(protocol.calls) == 1 and not is_open(write_end)


async def test_writer_with_buffered_bytes_notices_the_reader_leaving() -> None:
    read_end, write_end = os.pipe()
    protocol = Recorder()
    writer = PipeWriter(asyncio.get_running_loop(), write_end, protocol, high=1 << 30)
    writer.write(b"x" * (4 * 1024 * 1024))  # more than the pipe holds: the rest waits
    assert writer.get_write_buffer_size() > 0
    os.close(read_end)
    await protocol.until("lost")
    assert isinstance(protocol.calls[-1][1], BrokenPipeError)
    assert not registered(write_end) and not is_open(write_end)


async def test_flush_writes_every_buffered_byte_waiting_for_the_reader() -> None:
    import threading

    read_end, write_end = os.pipe()
    protocol = Recorder()
    writer = PipeWriter(asyncio.get_running_loop(), write_end, protocol, high=256 * 1024)
    payload = os.urandom(2 * 1024 * 1024)
    writer.write(payload)
    assert protocol.names() == ["pause"] and registered(write_end)
    received = bytearray()

    def read_all() -> None:  # a slow reader of its own, as the recorder's writer process is
        while len(received) < len(payload):
            received.extend(os.read(read_end, 64 * 1024))

    reader = threading.Thread(target=read_all)
    reader.start()
    writer.flush()
    reader.join(10)
    assert bytes(received) == payload
    assert writer.get_write_buffer_size() == 0 and not registered(write_end)
    assert protocol.names() == ["pause", "resume"]
    assert not os.get_blocking(write_end)  # still the loop's non-blocking end
    writer.abort()
    os.close(read_end)


async def test_abort_drops_what_is_buffered() -> None:
    read_end, write_end = os.pipe()
    protocol = Recorder()
    writer = PipeWriter(asyncio.get_running_loop(), write_end, protocol, high=1 << 30)
    writer.write(b"y" * (4 * 1024 * 1024))
    writer.abort()
    assert writer.get_write_buffer_size() == 0
    assert not registered(write_end) and not is_open(write_end)
    assert protocol.calls == [("lost", None)]
    os.close(read_end)


@pytest.mark.parametrize("blocking", [True, False])
async def test_our_end_is_made_non_blocking_only(blocking: bool) -> None:
    """The program's end keeps whatever mode it had; ours never blocks the loop."""
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, blocking)
    reader = PipeReader(asyncio.get_running_loop(), read_end, Recorder())
    assert not os.get_blocking(read_end)
    assert os.get_blocking(write_end) is blocking
    reader.close()
    os.close(write_end)


async def test_an_end_that_comes_with_the_last_output_is_seen_in_the_same_callback() -> None:
    """Output then the end of the pipe, both there at once: one readiness callback reports
    both (no loop turn between the last data and ``eof_received``)."""
    read_end, write_end = os.pipe()
    os.write(write_end, b"last line\n")
    os.close(write_end)
    counter = TurnCounter()
    turns: dict[str, int] = {}

    class TurnRecorder(Recorder):
        def _note(self, name: str, value: object = None) -> None:
            turns.setdefault(name, counter.turn)
            super()._note(name, value)

    recorder = TurnRecorder()
    PipeReader(asyncio.get_running_loop(), read_end, recorder)
    try:
        await recorder.until("lost")
    finally:
        counter.stop()
    assert recorder.names() == ["data", "eof", "lost"]
    assert bytes(recorder.data) == b"last line\n"
    assert turns["eof"] == turns["data"]


async def test_a_pipe_emptied_by_one_read_is_not_read_again_until_it_is_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Output with the writer still there (a program that answered and waits): one read per
    readiness. The second read would only find the pipe empty, and say so with an exception."""
    reads: list[int] = []
    real_read = os.read

    def counted_read(fd: int, size: int) -> bytes:
        reads.append(fd)
        return real_read(fd, size)

    monkeypatch.setattr("wsdev.pipes.os.read", counted_read)
    read_end, write_end = os.pipe()
    recorder = Recorder()
    reader = PipeReader(asyncio.get_running_loop(), read_end, recorder)
    try:
        for line in (b"one\n", b"two\n"):
            os.write(write_end, line)
            await recorder.until("data")
            assert len(reads) == 1, f"{len(reads)} reads for one readiness"
            reads.clear()
            recorder.calls.clear()
        os.close(write_end)
        write_end = -1
        await recorder.until("lost")
        assert recorder.names() == ["eof", "lost"]
    finally:
        if write_end >= 0:
            os.close(write_end)
        reader.close()
