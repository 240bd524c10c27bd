"""The all-connections event feed for tools: ``/_wsdev/events``, loopback only (behaviour C3).

Each event goes out as one JSON object with a ``type`` (the event's class name). A reader that
falls behind loses events rather than growing wsdev's memory: its queue is bounded and a full
queue drops the newest event and counts it, reported in the next object as ``dropped``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from aiohttp import web

from wsdev.events import ConnectionInfo, Event, EventBus, ExitStatus

QUEUE_LIMIT = 10_000
PAYLOAD_PREVIEW = 4096


def event_to_json(event: Event) -> dict[str, Any]:
    """A JSON-ready dict of ``event``; payloads are decoded text or hex, cut to a preview."""
    out: dict[str, Any] = {"type": type(event).__name__.rstrip("_")}
    for f in dataclasses.fields(event):
        out[f.name] = _value(getattr(event, f.name))
    return out


def _value(value: Any) -> Any:
    if isinstance(value, ConnectionInfo):
        return {
            "id": value.id,
            "seq": value.seq,
            "remote": value.remote,
            "path": value.path,
            "query": value.query,
            "pid": value.pid,
            "console": value.console,
            "name": value.client_name,  # given in the console (behaviour C9)
        }
    if isinstance(value, ExitStatus):
        return {"status": value.describe(), "code": value.code, "signal": value.signal}
    if isinstance(value, bytes):
        try:
            return value[:PAYLOAD_PREVIEW].decode()
        except UnicodeDecodeError:
            return {"hex": value[:PAYLOAD_PREVIEW].hex()}
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value]
    return value


async def serve_feed(request: web.BaseRequest, bus: EventBus) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False, heartbeat=30)
    await ws.prepare(request)
    queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_LIMIT)
    dropped = 0

    def on_event(event: Event) -> None:
        nonlocal dropped
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:
            dropped += 1

    unsubscribe = bus.subscribe(on_event)
    reader = asyncio.ensure_future(ws.receive())
    try:
        while not ws.closed:
            getter = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                getter.cancel()
                break
            obj = event_to_json(getter.result())
            if dropped:
                obj["dropped"], dropped = dropped, 0
            await ws.send_str(json.dumps(obj, ensure_ascii=False))
    finally:
        unsubscribe()
        reader.cancel()
        await ws.close()
    return ws
