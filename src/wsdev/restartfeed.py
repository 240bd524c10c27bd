"""``/_wsdev/restarts``: the console's notice of each restart on edit (behaviour D2).

A console whose program has already ended has no session to be closed with 1012, yet it follows
the edit loop: a broken save ended its program, the fixed save should bring it back. So each
console page also keeps this small socket open. It first says how many restarts there have been
(``{"type": "generation", "generation": N}``), then one ``{"type": "restart", "generation": N,
"files": [...]}`` per restart. The console compares the number with the ``generation`` of its
last program's hello and reconnects when a restart came after it.

Under ``--reload=new`` every notice also says ``"reload": "new"``: a live program is not closed
then, and the console offers to reconnect to the new version instead.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from aiohttp import web

from wsdev.events import Event, EventBus, Restarting, ServerStopping


async def serve_restarts(
    request: web.BaseRequest,
    bus: EventBus,
    generation: Callable[[], int],
    *,
    keeps_open: bool = False,
) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False)
    await ws.prepare(request)
    notices: asyncio.Queue[dict[str, object] | None] = asyncio.Queue()
    mode: dict[str, object] = {"reload": "new"} if keeps_open else {}

    def on_event(event: Event) -> None:
        if isinstance(event, Restarting):
            notices.put_nowait(
                {
                    "type": "restart",
                    "generation": event.generation,
                    "files": list(event.changed),
                    **mode,
                }
            )
        elif isinstance(event, ServerStopping):
            notices.put_nowait(None)

    unsubscribe = bus.subscribe(on_event, messages=False)
    reader = asyncio.ensure_future(ws.receive())
    try:
        await ws.send_str(json.dumps({"type": "generation", "generation": generation(), **mode}))
        while not ws.closed:
            getter = asyncio.ensure_future(notices.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                getter.cancel()
                break
            notice = getter.result()
            if notice is None:
                break
            await ws.send_str(json.dumps(notice))
    finally:
        unsubscribe()
        reader.cancel()
        await ws.close(code=1001, message=b"server shutting down")
    return ws
