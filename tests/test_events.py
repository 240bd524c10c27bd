"""The event bus: message events reach only the subscribers that take them, and while none
does, the bridge makes none at all."""

from __future__ import annotations

import pytest

from conftest import ScriptWriter, converse, local_config
from wsdev import bridge
from wsdev.events import (
    ConnectionInfo,
    Event,
    EventBus,
    MessageIn,
    MessagesOut,
    ProcessStarted,
)
from wsdev.server import Server

CONN = ConnectionInfo(
    id="c1", seq=1, remote="127.0.0.1", path="/", query="", url="ws://x/", origin="", command="cat"
)


def test_a_subscriber_without_messages_gets_every_other_event() -> None:
    bus = EventBus()
    quiet: list[Event] = []
    bus.subscribe(quiet.append, messages=False)
    assert not bus.wants_messages
    bus.publish(ProcessStarted(CONN, 42))
    bus.publish_message(MessageIn(CONN, "hello"))
    assert quiet == [ProcessStarted(CONN, 42)]


def test_wants_messages_follows_the_subscribers_that_take_them() -> None:
    bus = EventBus()
    everything: list[Event] = []
    bus.subscribe(lambda event: None, messages=False)
    unsubscribe = bus.subscribe(everything.append)
    assert bus.wants_messages
    message = MessagesOut(CONN, (b"hi",), 2, False)
    bus.publish_message(message)
    assert everything == [message]
    unsubscribe()
    assert not bus.wants_messages
    bus.publish_message(message)
    assert everything == [message]


@pytest.mark.parametrize("listening", [False, True], ids=["nobody-listens", "someone-listens"])
async def test_message_events_are_made_only_while_someone_takes_them(
    tmp_script: ScriptWriter, monkeypatch: pytest.MonkeyPatch, listening: bool
) -> None:
    made: list[object] = []

    def counted(kind: type[MessageIn] | type[MessagesOut]) -> object:
        def make(*args: object) -> object:
            made.append(kind)
            return kind(*args)  # type: ignore[arg-type]

        return make

    monkeypatch.setattr(bridge, "MessageIn", counted(MessageIn))
    monkeypatch.setattr(bridge, "MessagesOut", counted(MessagesOut))
    script = tmp_script("echo.sh", '#!/bin/sh\nread line\necho "got $line"\n')
    bus = EventBus()
    others: list[Event] = []
    messages: list[Event] = []
    bus.subscribe(others.append, messages=False)
    if listening:
        bus.subscribe(lambda event: messages.append(event) if _is_message(event) else None)
    server = Server(local_config(script), bus)
    await server.start()
    try:
        transcript = await converse(f"ws://127.0.0.1:{server.port}/", ["ping"])
    finally:
        await server.close()
    assert transcript.messages == ["got ping"]
    assert any(isinstance(event, ProcessStarted) for event in others)
    assert not any(_is_message(event) for event in others)
    if listening:
        assert [type(event) for event in messages] == [MessageIn, MessagesOut]
        assert made == [MessageIn, MessagesOut]
    else:
        assert made == [], "message events were made with nobody to take them"


def _is_message(event: Event) -> bool:
    return isinstance(event, (MessageIn, MessagesOut))
