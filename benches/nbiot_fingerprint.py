"""A hash of every module's outcome of the bench's NB-IoT fleet with the trace off.

Speed work on the statistics-only path must not change a single outcome: run this on the old
and the new code and compare the hashes (issue 15). The trace-off fleet writes no trace to
compare, so the hash covers, per module: its summary (counters, state times, energy), the
delivered and dropped sequence numbers, the transmission windows, the LwM2M counters, the
server's latencies, and for the fleet: both data channels' bookings and waits, the NPRACH
claims and collisions, the server's uplinks and duplicates.

Run from the checkout to measure (the old code in another worktree, on its own path)::

    PYTHONPATH=$PWD python3 benches/nbiot_fingerprint.py 7         # days, default 7
    PYTHONPATH=$PWD python3 benches/nbiot_fingerprint.py 7 500     # and modules, default 2000

Prints the hash, the simulated time, wall and CPU seconds of the run and the peak RSS.
"""

from __future__ import annotations

import dataclasses
import hashlib
import resource
import sys

from bench_nbiot import _scenario, run_fleet  # this folder: the script's own sys.path entry


def fingerprint(days: float, modules: int) -> tuple[str, dict]:
    """(sha256 hex of the outcome, run figures) of ``modules`` modules for ``days`` days."""
    end = days * 24 * 3600  # s, the end run_fleet runs and catches up to
    _, server, mods, wall, cpu = run_fleet(_scenario("off", modules), hours=days * 24)
    h = hashlib.sha256()
    for m in mods:
        parts = (
            sorted(m.summary(end).items()),
            list(m.at_server),
            list(m.dropped),
            list(m.tx_window_s),
            dataclasses.asdict(m.radio.times),
            (m.lifetime_updates, m.registration_lapses, m.transmissions, m._seq),
            list(server.latencies.get(m.name, [])),
        )
        h.update("|".join(map(repr, parts)).encode())
    for ch in mods[0].radio.channels or ():
        h.update(repr((ch.busy_s, ch.bookings, sorted(ch.waits.tolist()))).encode())
    cell = mods[0].radio.cell
    if cell is not None:
        h.update(repr((cell.collisions, cell.claims)).encode())
    h.update(repr((server.uplinks, server.duplicates)).encode())
    return h.hexdigest(), {
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "uplinks": server.uplinks,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


if __name__ == "__main__":
    days = float(sys.argv[1]) if len(sys.argv) > 1 else 7.0
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    digest, info = fingerprint(days, n)
    print(f"{n} modules x {days:g} days: {digest} {info}")
