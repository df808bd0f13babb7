"""The ``meterbench`` command line.

Each verb lives in its own module under :mod:`simulator.commands` and exposes
``add_parser(subparsers)``, which registers the verb and sets ``func`` on its parser. A verb
whose module is not there yet is simply absent from ``--help``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

VERBS = ["run", "decode", "serve", "record", "suite", "sms", "meter", "trace"]


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
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
