"""Mapping a request path onto a program in the ``--dir`` folder (behaviour A2).

The path is walked segment by segment from the folder; the first segment that names a file is
the program: SCRIPT_NAME is the path up to it, PATH_INFO the rest. A segment that could leave
the folder (``..``, ``.``, a NUL, a backslash) or a symlink that resolves outside it maps to
nothing, which the server answers with 404 (a path that cleans to one inside the folder is
moved with a 301 before it is mapped, ``cleanpath``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wsdev.staticfiles import resolve_under


@dataclass(frozen=True, slots=True)
class ScriptMatch:
    file: Path
    script_name: str
    path_info: str


def map_url(root: Path, url_path: str) -> ScriptMatch | None:
    """The program ``url_path`` (decoded) names under ``root``, or None."""
    parts = url_path.lstrip("/").split("/")
    for index, part in enumerate(parts):
        if part in ("", ".", "..") or "\0" in part or "\\" in part:
            return None
        # The static server's containment rule: the segments so far must resolve (symlinks
        # included) to something that exists inside the folder.
        resolved = resolve_under(root, parts[: index + 1])
        if resolved is None:
            return None
        if resolved.is_dir():
            continue
        if not resolved.is_file():
            return None
        script_name = "/" + "/".join(parts[: index + 1])
        rest = parts[index + 1 :]
        path_info = "/" + "/".join(rest) if rest else ""
        return ScriptMatch(root.resolve().joinpath(*parts[: index + 1]), script_name, path_info)
    return None
