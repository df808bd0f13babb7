"""``meterbench record --port URL [--baud 2400] [--primary | --secondary] [--out DIR]``.

Acts as the M-Bus master through a master level converter (any pyserial URL) and writes every
meter's telegrams as golden fixtures (fixtures/telegrams format: ``.hex`` + ``.json``) and a
``recorded.toml`` scenario that replays them as simulated slaves
(:mod:`simulator.bridge.recorder`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from simulator.cli import EXIT_BENCH_FAULT, EXIT_CHECKS_FAILED, EXIT_OK, EXIT_USAGE, out_dir
from simulator.core.text import decimal


def add_parser(sub) -> None:
    p = sub.add_parser("record", help="record a real M-Bus into golden telegram fixtures")
    p.add_argument(
        "--port",
        required=True,
        metavar="URL",
        help="pyserial URL of the master level converter (/dev/ttyUSB0, socket://...)",
    )
    p.add_argument("--baud", type=int, default=2400, help="bus baud rate (bit/s, default 2400)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--primary", action="store_true", help="primary scan (default)")
    how.add_argument("--secondary", action="store_true", help="secondary wildcard search")
    p.add_argument(
        "--addresses", default="0-250", metavar="A-B", help="primary scan range (default 0-250)"
    )
    p.add_argument("--mask", default="FFFFFFFFFFFFFFFF", help="secondary search mask")
    p.add_argument(
        "--parity",
        choices=("E", "N"),
        default="E",
        help="UART parity of the port (E for a real converter; N for a pty/TCP)",
    )
    p.add_argument("--echo", action="store_true", help="the converter echoes our bytes")
    p.add_argument("--retries", type=int, default=2, help="extra attempts per request")
    p.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="first-byte wait in s (default: (330+11) bit times + 150 ms)",
    )
    p.add_argument(
        "--out",
        type=out_dir,
        default=Path("fixtures") / "telegrams" / "recorded",
        help="folder for the fixtures and recorded.toml",
    )
    p.set_defaults(func=main)


def _range(text: str) -> range:
    lo, sep, hi = text.partition("-")
    a, b = decimal(lo), decimal(hi) if sep else decimal(lo)
    if a is None or b is None:
        raise ValueError(f"--addresses: expected A-B, got {text!r}")
    if not 0 <= a <= b <= 250:
        raise ValueError(f"--addresses: primary addresses are 0..250, got {text!r}")
    return range(a, b + 1)


def main(args) -> int:
    from simulator.bridge.recorder import Recorder, RecorderError, write_fixtures

    try:
        addresses = _range(args.addresses)
        rec = Recorder(
            args.port,
            baud=args.baud,
            parity=args.parity,
            echo=args.echo,
            retries=args.retries,
            timeout=args.timeout,
            log=lambda m: print(m, file=sys.stderr, flush=True),
        )
    except ValueError as exc:
        print(f"meterbench record: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RecorderError as exc:  # the port cannot be opened: the bench, not the meters
        print(f"meterbench record: {exc}", file=sys.stderr)
        return EXIT_BENCH_FAULT
    try:
        result = rec.search_secondary(args.mask) if args.secondary else rec.scan_primary(addresses)
    finally:
        rec.close()
    files = write_fixtures(
        result, args.out, source=f"meterbench record {args.port} {args.baud} bit/s"
    )
    for m in result.meters:
        print(
            f"{m.address}  primary={m.primary if m.primary is not None else '-'}  "
            f"telegrams={len(m.frames)}"
        )
    for problem in result.problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"recorded {len(result.meters)} meter(s); wrote {len(files)} file(s) to {args.out}")
    return EXIT_OK if result.meters else EXIT_CHECKS_FAILED
