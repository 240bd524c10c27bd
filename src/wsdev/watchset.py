"""What restart on edit watches (behaviour D1): the script and the sources it can load, or exactly
the ``--watch`` paths.

By default a save of the program, of a module it imports or of the data it reads restarts it; a
note beside it (``notes.md``, ``todo.txt``) does not.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from wsdev.config import Config
from wsdev.scripts import inspect_script

# Configuration and data a program of any language commonly reads (".env" also as a whole name).
CONFIG_SUFFIXES = (".json", ".toml", ".yaml", ".yml", ".ini", ".env", ".sh")
# Never a reason to restart, unless --watch names them.
DOC_SUFFIXES = (".md", ".txt", ".rst")


@dataclass(frozen=True)
class WatchSet:
    """The roots handed to the watcher, and which changed files under them count."""

    roots: tuple[Path, ...]
    # Files under the roots whose names end so; None: every file but documentation.
    suffixes: tuple[str, ...] | None = None
    # Files that count whatever their name (the script itself, which may have no extension).
    files: frozenset[Path] = frozenset()
    # --watch: every change under the roots counts, documentation included.
    exact: bool = False

    def __bool__(self) -> bool:
        return bool(self.roots)

    def wants(self, path: str) -> bool:
        if self.exact or Path(path) in self.files:
            return True
        name = os.path.basename(path)
        if self.suffixes is None:
            return not name.endswith(DOC_SUFFIXES)
        return name.endswith(self.suffixes)

    def describe(self, cwd: Path) -> tuple[str, ...]:
        """One short line per watched thing, for the start-up log and the dashboard header."""
        if self.exact:
            return tuple(str(root) for root in self.roots)
        shown: list[str] = []
        for root in self.roots:
            if root in self.files:
                shown.append(_display(root, cwd))
            elif self.suffixes is None:
                shown.append(f"{_display(root, cwd)}/** (not {', '.join(DOC_SUFFIXES)})")
            else:
                shown += [
                    _display(f, cwd)
                    for f in sorted(self.files)
                    if f.is_relative_to(root) and not f.name.endswith(self.suffixes)
                ]
                names = ",".join(s.lstrip(".") for s in self.suffixes)
                pattern = f"*.{{{names}}}" if len(self.suffixes) > 1 else f"*{self.suffixes[0]}"
                shown.append(f"{_display(root, cwd)}/**/{pattern}")
        return tuple(shown)


def watch_set(config: Config, script: Path | None, cwd: Path) -> WatchSet:
    """What to watch for ``config``; ``script`` is the file COMMAND names, if any."""
    if config.watch:
        return WatchSet(config.watch, exact=True)
    if config.script_dir is not None:
        # Any file of the folder may be a program, extension or not.
        return WatchSet((config.script_dir,))
    if script is None:
        return WatchSet(())
    script = script.resolve()
    if not script.is_relative_to(cwd):
        # Run from elsewhere (``wsdev ~/bin/tool``): its folder may be large and not the user's
        # project; watch the file alone.
        return WatchSet((script,), files=frozenset({script}))
    if config.python_child or inspect_script(script).python:
        # Python puts the script's folder on sys.path: it may import any module under it.
        suffixes: tuple[str, ...] = (".py",)
    else:
        own = (script.suffix,) if script.suffix and script.suffix not in DOC_SUFFIXES else ()
        suffixes = tuple(dict.fromkeys((*own, *CONFIG_SUFFIXES)))
    return WatchSet((script.parent,), suffixes, frozenset({script}))


def _display(path: Path, cwd: Path) -> str:
    if path == cwd:
        return "."
    if path.is_relative_to(cwd):
        return str(path.relative_to(cwd))
    return str(path)
