"""The ``meterbench`` command line.

Each verb lives in its own module under :mod:`simulator.commands` and exposes
``add_parser(subparsers)``, which registers the verb and sets ``func`` on its parser. A verb
whose module is not there yet is simply absent from ``--help``.

Conventions every verb follows (docs/cli.md):

- exit status: :data:`EXIT_OK` 0 ok, :data:`EXIT_CHECKS_FAILED` 1 the checks ran and something
  failed them (a test, a frame's checksum, a trace line), :data:`EXIT_USAGE` 2 usage or input
  error (bad option, unreadable or invalid file, ``--out`` naming a file), :data:`EXIT_BENCH_FAULT`
  3 the bench itself could not work (port or adapter missing, a receiver that cannot bind);
  130 when interrupted;
- environment variables start with :data:`ENV_PREFIX` (``MBENCH_RIG``, ``MBENCH_SMS_KEY``);
- ``--out`` of a verb writing a folder refuses an existing file (:func:`out_dir`), of a verb
  writing one file refuses an existing folder (:func:`out_file`): argparse's usage error, 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_CHECKS_FAILED = 1
EXIT_USAGE = 2
EXIT_BENCH_FAULT = 3
EXIT_INTERRUPTED = 130

ENV_PREFIX = "MBENCH_"


def env(name: str, *, old: str | None = None) -> str | None:
    """``$MBENCH_<name>``; else the pre-convention variable ``old`` (with a warning on stderr)."""
    value = os.environ.get(ENV_PREFIX + name)
    if value is None and old is not None and (value := os.environ.get(old)) is not None:
        print(f"meterbench: ${old} is deprecated, use ${ENV_PREFIX}{name}", file=sys.stderr)
    return value


def out_dir(text: str) -> Path:
    """argparse type of a folder ``--out``: an existing file is a usage error."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; --out names a folder")
    return path


def out_file(text: str) -> Path:
    """argparse type of a file ``--out``: an existing folder is a usage error."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; --out names a file")
    return path


VERBS = [
    "run", "decode", "serve", "record", "suite", "sms", "meter", "trace", "bench", "sweep",
    "report",
]  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meterbench",
        description="Hardware-in-the-loop bench and simulator for M-Bus metering gateways.",
    )
    from simulator import __version__

    parser.add_argument("--version", action="version", version=f"meterbench {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in VERBS:
        name = f"simulator.commands.{verb}"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
