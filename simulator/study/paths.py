"""Dotted paths into a TOML document, as sweep files write them.

TOML's key syntax: ``receivers.grid``; a part holding a dot is quoted
(``'plugin.properties."filter.manufacturer"'``); a whole number indexes an array
(``gateway.reports.0.schedule``).
"""

from __future__ import annotations

import copy
from typing import Any

from simulator.scenario import _split_key


def split_path(text: str) -> tuple[Any, ...]:
    """``'a.b.0."c.d"'`` -> ``("a", "b", 0, "c.d")`` (integer parts index arrays)."""
    parts: list[Any] = []
    for piece in _split_key(text):
        parts.append(int(piece) if piece.isdigit() else piece)
    return tuple(parts)


def set_path(data: dict[str, Any], parts: tuple[Any, ...], value: Any) -> str | None:
    """Set ``value`` at ``parts`` in ``data`` (missing tables are created); a message when the
    path cannot be followed (through a value, an index past an array's end), else None."""
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(str(p) for p in parts[: i + 1])
        if isinstance(node, list):
            if not isinstance(part, int) or not 0 <= part < len(node):
                return f"{where}: the array has {len(node)} elements (index 0..{len(node) - 1})"
        elif isinstance(node, dict):
            if isinstance(part, int):
                part = str(part)
            if not last and part not in node:
                node[part] = {}
        else:
            return f"{where}: cannot go into a {type(node).__name__} value"
        if last:
            node[part] = copy.deepcopy(value)
        else:
            node = node[part]
    return None
