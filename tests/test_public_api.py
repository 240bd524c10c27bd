"""wsdev uses its dependencies through their public APIs only.

Any version ``pyproject.toml`` allows may be installed, and private parts change without notice
between them. This walks every module under ``src/wsdev`` and fails on: an import of an
underscore module or name from outside wsdev; an underscore attribute reached on anything but
``self`` or ``cls`` (wsdev's own classes keep their private parts to themselves as well); a
``getattr`` of an underscore name; and a subclass of a dependency's class that defines private
methods (overriding them is reaching inside).
"""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "wsdev"
# Underscore names that are documented public API.
PUBLIC_UNDERSCORE = {("os", "_exit")}
# Packages whose classes wsdev may subclass only through their public methods.
DEPENDENCIES = ("aiohttp", "asyncio", "websockets", "selectors", "yarl", "rich", "watchfiles")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def violations(tree: ast.AST) -> Iterator[tuple[int, str]]:
    imported: dict[str, str] = {}  # local name -> the module (or module.name) it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "wsdev" and any(
                    _private(part) for part in alias.name.split(".")
                ):
                    yield node.lineno, f"imports private module {alias.name}"
                imported[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module.split(".")[0] in ("wsdev", "__future__") or node.level:
                continue
            if any(_private(part) for part in module.split(".")):
                yield node.lineno, f"imports from private module {module}"
            for alias in node.names:
                if _private(alias.name):
                    yield node.lineno, f"imports private name {alias.name} from {module}"
                imported[alias.asname or alias.name] = f"{module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if isinstance(owner, ast.Name) and (owner.id, node.attr) in PUBLIC_UNDERSCORE:
                continue
            yield node.lineno, f"reaches private attribute .{node.attr}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
        ):
            yield node.lineno, f"{node.func.id} of private name {node.args[1].value}"
        elif isinstance(node, ast.ClassDef):
            for base in node.bases:
                base_class = _resolve(ast.unparse(base), imported)
                if base_class is None:
                    continue
                for item in node.body:
                    if (
                        isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                        and _private(item.name)
                        and hasattr(base_class, item.name)
                    ):
                        yield (
                            item.lineno,
                            f"{node.name} overrides {base_class.__name__}.{item.name}",
                        )


def _resolve(dotted: str, imported: dict[str, str]) -> type | None:
    """The dependency's class a base class expression names, or None for anything else."""
    head, _, rest = dotted.partition(".")
    full = imported.get(head, head) + (f".{rest}" if rest else "")
    if full.split(".")[0] not in DEPENDENCIES:
        return None
    module_name, _, name = full.rpartition(".")
    while module_name:
        try:
            obj: object = importlib.import_module(module_name)
        except ImportError:
            module_name, _, parent = module_name.rpartition(".")
            name = f"{parent}.{name}"
            continue
        for part in name.split("."):
            obj = getattr(obj, part, None)
        return obj if isinstance(obj, type) else None
    return None


@pytest.mark.parametrize("module", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_module_uses_public_apis_only(module: Path) -> None:
    found = list(violations(ast.parse(module.read_text(), str(module))))
    assert not found, "\n".join(f"{module.name}:{line}: {what}" for line, what in found)


@pytest.mark.parametrize(
    "source",
    [
        "from aiohttp._websocket.reader import WebSocketReader",
        "import asyncio.base_events as b\nfrom asyncio import _get_running_loop",
        "def f(request):\n    return request._message",
        "def f(loop):\n    return getattr(loop, '_selector')",
        "from aiohttp import web\nclass R(web.BaseRequest):\n"
        "    async def _prepare_hook(self, r):\n        pass",
        "import asyncio\nclass L(asyncio.SelectorEventLoop):\n"
        "    def _accept_connection(self):\n        pass",
        "from asyncio import SelectorEventLoop as S\nclass L(S):\n"
        "    def _make_socket_transport(self):\n        pass",
    ],
)
def test_the_walker_finds_each_kind_of_private_use(source: str) -> None:
    assert list(violations(ast.parse(source)))


def test_the_walker_allows_public_use() -> None:
    source = (
        "import os, asyncio\nfrom aiohttp import web\n"
        "class P(asyncio.Protocol):\n    def __init__(self):\n        self._x = 1\n"
        "    def _own_helper(self):\n        pass\n"
        "    def data_received(self, data):\n        self._x += 1\n"
        "def bye():\n    os._exit(1)\n"
    )
    assert list(violations(ast.parse(source))) == []
