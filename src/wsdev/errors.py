"""The exceptions wsdev raises for mistakes a user can make.

Every error the command line can meet is a ``WsdevError``; ``cli.main`` turns one into a single
line on stderr and the error's exit code, so no traceback reaches a user::

    WsdevError                 exit 1
    ├── UsageError             exit 2   bad flags, as Go's flag package (and so websocketd) exits
    ├── ConfigError            exit 1   flags that parse but cannot work together, missing files
    └── ServeError             exit 1   the server could not start (address in use, TLS files)
"""

from __future__ import annotations


class WsdevError(Exception):
    """A mistake a user can fix; its message is one line that says what to do."""

    exit_code = 1


class UsageError(WsdevError):
    """The command line itself is malformed: unknown flag, missing value, bad number."""

    exit_code = 2


class ConfigError(WsdevError):
    """The command line parses but describes something that cannot run."""


class ServeError(WsdevError):
    """The server could not start listening."""
