"""Generated documentation files: one way to write them (docs that are never typed by hand).

A generator module exposes ``main(argv)`` that calls :func:`write_generated` with its default
path and its text function; a test regenerates the text and compares it with the file.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path


def write_generated(default: Path, text: Callable[[], str], argv: list[str] | None = None) -> int:
    """Write ``text()`` to ``argv[0]`` (default: ``sys.argv[1:]``) or else ``default``, say
    where, and return exit status 0. Raises ``OSError`` if the file cannot be written."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else default
    path.write_text(text(), encoding="utf-8")
    print(f"wrote {path}")
    return 0
