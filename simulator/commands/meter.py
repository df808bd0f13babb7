"""``meterbench meter from-telegram HEX [--name N] [--out FILE]`` and ``meterbench meter check``.

``from-telegram`` writes a meter type file (:mod:`simulator.meters`) modelled on a real
telegram: a wired long frame with a CI 72 header, or a wM-Bus telegram from its L-field
(:mod:`simulator.commands.meter_from_telegram`). ``HEX`` may have spaces; ``@FILE`` reads the hex from
a file (the libmbus ``.hex`` files). Without ``--out`` the file goes to stdout. ``check FILE``
loads meter files and checks their golden telegrams. Exit status 0 ok, 1 a bad telegram or file.
"""

from __future__ import annotations

import sys
from pathlib import Path

from simulator.cli import out_file


def add_parser(sub) -> None:
    p = sub.add_parser("meter", help="meter type files: write one from a telegram, check them")
    verbs = p.add_subparsers(dest="meter_verb", metavar="ACTION", required=True)
    f = verbs.add_parser("from-telegram", help="write a meter type file from a real telegram")
    f.add_argument("hex", nargs="+", help="telegram bytes in hex, or @FILE")
    f.add_argument("--name", default=None, help="meter type name (default from the header)")
    f.add_argument("--out", type=out_file, default=None, help="file to write (default: stdout)")
    f.set_defaults(func=from_telegram)
    c = verbs.add_parser("check", help="load meter files and check their golden telegrams")
    c.add_argument("files", nargs="+", type=Path)
    c.set_defaults(func=check)


def from_telegram(args, out=None, err=None) -> int:
    from simulator.commands.decode import InputError, clean_hex
    from simulator.commands.meter_from_telegram import meter_file_text
    from simulator.mbus.errors import MBusError

    out, err = out or sys.stdout, err or sys.stderr
    text = " ".join(args.hex)
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    try:
        toml = meter_file_text(clean_hex(text, "argument"), args.name)
    except (InputError, MBusError, ValueError) as exc:
        print(f"meterbench meter from-telegram: {type(exc).__name__}: {exc}", file=err)
        return 1
    if args.out is None:
        out.write(toml)
    else:
        args.out.write_text(toml, encoding="utf-8")
        print(f"wrote {args.out}", file=err)
    return 0


def check(args, out=None, err=None) -> int:
    from simulator.commands.meter_golden import check_golden
    from simulator.meters.types import load_meter_file
    from simulator.scenario import ScenarioError

    out, err = out or sys.stdout, err or sys.stderr
    status = 0
    for path in args.files:
        try:
            problems = check_golden(load_meter_file(path))
        except ScenarioError as exc:
            problems = [str(i) for i in exc.issues]
        for p in problems:
            print(f"{path}: {p}" if not p.startswith(str(path)) else p, file=err)
        status |= bool(problems)
        if not problems:
            print(f"{path}: ok", file=out)
    return int(status)
