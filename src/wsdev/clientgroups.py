"""The dashboard's connections grouped by client (behaviour E4): who a connection belongs to,
and the order the table shows them in, which the keys walk too.

A client is the name its person gave in the console, else its address. While every live
connection comes from one client (a developer alone with the program) the table is as it always
was; from two clients on, each client's connections sit together, the clients in the order they
first connected, and a client with more than one connection gets a row above them that names it
and counts them (a client with one has its name in the connection's own row: a room of thirty
students, one tab each, fills the table with students, not with headings).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from wsdev.tally import ConnectionStats


@dataclass(frozen=True, slots=True)
class ClientHeader:
    """The row above a client's connections: its name (or address) and how many it has."""

    client: str
    count: int


def table_rows(live: Iterable[ConnectionStats]) -> list[ClientHeader | ConnectionStats]:
    """The table's rows, top to bottom: connections oldest first, grouped by client when there
    are several clients."""
    groups: dict[str, list[ConnectionStats]] = {}
    for stats in live:  # oldest first, so each client comes in at its first connection
        groups.setdefault(stats.info.client, []).append(stats)
    if len(groups) <= 1:
        return [stats for members in groups.values() for stats in members]
    rows: list[ClientHeader | ConnectionStats] = []
    for client, members in groups.items():
        if len(members) > 1:
            rows.append(ClientHeader(client, len(members)))
        rows.extend(members)
    return rows


def table_order(live: Iterable[ConnectionStats]) -> list[ConnectionStats]:
    """The live connections in the order the table shows them (what ↑/↓ walk)."""
    return [row for row in table_rows(live) if isinstance(row, ConnectionStats)]
