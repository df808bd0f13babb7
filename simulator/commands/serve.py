"""``meterbench serve [SCENARIO] (--pty [--pty-link P] | --port URL | --tcp HOST:PORT)``.

Puts the scenario's simulated M-Bus (its slaves; no simulated master) on real ports in real
time, so a physical or external master can read it:

* ``--pty``: a pseudo-terminal pair; the path to open is printed (``--pty-link`` adds a stable
  symlink). Open it 8N1: Linux ptys do not take PARENB, so a master that insists on 8E1 and
  checks its termios (libmbus: "Failed to set baud rate") cannot use a pty; point such
  masters at ``--tcp`` instead.
* ``--port URL``: any pyserial URL (``/dev/ttyUSB0`` behind an M-Bus slave adapter,
  ``socket://``, ``rfc2217://``, ``loop://``).
* ``--tcp HOST:PORT``: transparent M-Bus over TCP (seed 002 §6.26): one client at a time
  (``--tcp-busy refuse|queue`` says what happens to a second one), ``--idle-timeout``,
  ``--packing mbus|transparent`` and ``--packing-interval``.

Each master session (a TCP client; a program's open..close of the pty; on a serial line,
traffic until ``--session-idle`` s of silence) ends with everything it left queued dropped
and traced: nothing one master sent is answered to another (docs/bridge.md "Sessions").

Several transports may be given at once. The trace (every byte with world and wall times)
is written to ``--trace`` when the service stops (Ctrl-C or ``--seconds``).
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from simulator.cli import EXIT_BENCH_FAULT, EXIT_CHECKS_FAILED, EXIT_USAGE
from simulator.core.accounting import AccountingError
from simulator.scenario import DEFAULT_SCENARIO, ScenarioError

PARITY_NOTE = (
    "Linux ptys reject PARENB: open the pty 8N1; masters that insist on 8E1 "
    "(libmbus) must use --tcp."
)


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a scenario's simulated M-Bus on a pty, serial port or TCP port, in real time",
        description=__doc__.split("\n\n")[1],
        epilog=PARITY_NOTE,
    )
    p.add_argument(
        "scenario",
        nargs="?",
        type=Path,
        default=None,
        help="mbus scenario TOML (default: the building scenario shipped with meterbench)",
    )
    p.add_argument("--pty", action="store_true", help="create a pseudo-terminal pair (8N1)")
    p.add_argument("--pty-link", type=Path, default=None, help="symlink to the pty's path")
    p.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="URL",
        help="pyserial URL or device path (repeatable)",
    )
    p.add_argument(
        "--tcp",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="transparent M-Bus over TCP service (repeatable)",
    )
    p.add_argument(
        "--baud",
        type=int,
        default=None,
        help="master-side baud rate (bit/s); default: the scenario's bus baud",
    )
    p.add_argument(
        "--echo", action="store_true", help="echo the master's bytes (like some level converters)"
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=15.0,
        help="TCP: close a silent client after this many s (0 = never; default 15)",
    )
    p.add_argument(
        "--tcp-busy",
        choices=("refuse", "queue"),
        default="refuse",
        help="TCP: a second client while one is served is refused (default) or waits its turn",
    )
    p.add_argument(
        "--session-idle",
        type=float,
        default=None,
        metavar="S",
        help="serial lines (--port): silence that ends a master session (default 2 s)",
    )
    p.add_argument(
        "--packing",
        choices=("mbus", "transparent"),
        default="mbus",
        help="TCP: forward whole frames (mbus) or bytes after the packing interval",
    )
    p.add_argument(
        "--packing-interval",
        type=float,
        default=None,
        metavar="MS",
        help="TCP transparent packing: ms of client silence before forwarding",
    )
    p.add_argument(
        "--reply-timeout",
        type=float,
        default=None,
        metavar="S",
        help="how long to listen for slave replies (default: the EN 13757-2 window + 20 ms)",
    )
    p.add_argument("--seconds", type=float, default=None, help="stop after this long")
    p.add_argument("--trace", type=Path, default=None, help="write the trace (JSON lines) here")
    p.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    p.set_defaults(func=main)


def slave_listing(slaves) -> str:
    """One line per slave: secondary address (libmbus 16-hex form), primary address, baud rates.

    A master needs these to address the meters (e.g. the default building's meters all have
    primary address 0, so they are read by secondary address).
    """
    lines = ["  secondary         primary  bit/s"]
    for s in slaves:
        bauds = "/".join(str(b) for b in s.bauds)
        lines.append(f"  {s.address}  {s.primary:>7}  {bauds}")
    return "\n".join(lines)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(args) -> int:
    from simulator.bridge.pty import PtyTransport
    from simulator.bridge.serve import BridgeService, parse_host_port, realtime_segment
    from simulator.bridge.tcp_service import TcpServerTransport
    from simulator.bridge.transports import SerialTransport

    if not (args.pty or args.port or args.tcp):
        print("meterbench serve: give --pty, --port URL or --tcp HOST:PORT", file=sys.stderr)
        return 2
    path = args.scenario or DEFAULT_SCENARIO
    try:
        seg = realtime_segment(path, seed=args.seed)
    except ScenarioError as exc:
        print(f"meterbench serve: {path}: {exc}", file=sys.stderr)
        return 2
    baud = args.baud or seg.bus.baud
    service = BridgeService(seg.world, seg.bus)
    common = dict(baud=baud, echo=args.echo, reply_timeout=args.reply_timeout)
    try:
        if args.pty:
            pty = PtyTransport(link=args.pty_link)
            service.attach(pty, **common)
            link = f" (link {args.pty_link})" if args.pty_link else ""
            print(f"pty: {pty.path}{link}  -- open it 8N1 at {baud} bit/s", flush=True)
        for url in args.port:
            service.attach(
                SerialTransport(url, baud=baud), session_idle=args.session_idle, **common
            )
            print(f"port: {url} at {baud} bit/s", flush=True)
        for spec in args.tcp:
            host, port = parse_host_port(spec)
            tcp = TcpServerTransport(host, port, idle_timeout=args.idle_timeout, busy=args.tcp_busy)
            gap = args.packing_interval / 1000 if args.packing_interval else None
            service.attach(tcp, packing=args.packing, gap=gap, **common)
            print(
                f"tcp: {tcp.address[0]}:{tcp.address[1]} (transparent M-Bus, "
                f"packing {args.packing}, second client: {args.tcp_busy})",
                flush=True,
            )
    except (OSError, ValueError) as exc:
        print(f"meterbench serve: {exc}", file=sys.stderr)
        for b in service.bridges:
            b.close()
        # a port, pty or TCP address that cannot be opened is a bench fault; a bad value usage
        return EXIT_USAGE if isinstance(exc, ValueError) else EXIT_BENCH_FAULT
    # SIGTERM (kill, systemd, timeout) stops like Ctrl-C, so the trace is still written; and
    # SIGINT works even when a non-interactive shell started us in the background (SIG_IGN)
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        # inside the try: a SIGTERM right after the "serving" line still ends in a trace
        print(
            f"serving {len(seg.slaves)} simulated slave(s) from {path.name}; Ctrl-C to stop",
            flush=True,
        )
        print(slave_listing(seg.slaves), flush=True)
        service.run(until=args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
        if args.trace:
            seg.world.trace.write_jsonl(args.trace)
            print(f"wrote: {args.trace}")
    try:
        service.check()  # every byte in = traced (issue 14); after the trace is written
    except AccountingError as exc:
        print(f"meterbench serve: {exc}", file=sys.stderr)
        return EXIT_CHECKS_FAILED
    counters = {k: sum(b.counters[k] for b in service.bridges) for k in service.bridges[0].counters}
    print("bridge: " + ", ".join(f"{k}={v}" for k, v in counters.items()))
    return 0
