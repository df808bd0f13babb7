"""``meterbench report FOLDER [--title TEXT]``: write ``FOLDER/report.html``.

``meterbench run`` writes the page itself; this verb builds it for any other results folder
(a sweep's, or a run folder after files were added) with :func:`simulator.report.page.
write_page`: the summary when the folder has ``summary.json``, every picture and table, links
to the other files. Exit status 0, 2 when FOLDER is not a folder.
"""

from __future__ import annotations

import sys
from pathlib import Path

from simulator.cli import EXIT_OK, EXIT_USAGE


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="write FOLDER/report.html: a results folder as one page")
    p.add_argument("folder", type=Path, metavar="FOLDER", help="a run's or a sweep's results")
    p.add_argument("--title", default=None, help="page title (default: the run or folder)")
    p.set_defaults(func=_report)


def _report(args) -> int:
    from simulator.report.page import write_page

    if not args.folder.is_dir():
        print(f"meterbench report: {args.folder} is not a folder", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote: {write_page(args.folder, args.title)}")
    return EXIT_OK
