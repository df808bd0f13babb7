"""A real headless Chromium looking at a static page: a screenshot, and what the page drew.

Used by the tests of the suite's HTML report and of a results folder's ``report.html``; no
WebDriver, no DevTools client: Chromium's own ``--screenshot`` and ``--dump-dom`` switches.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

#: What :func:`probe` reports, written by a script into the page's DOM once it has loaded.
_PROBE = """<script>window.addEventListener('load', () => {
  const imgs = [...document.images];
  const r = {
    images: imgs.map(i => ({src: i.getAttribute('src'), complete: i.complete,
                            width: i.naturalWidth, height: i.naturalHeight})),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    text: document.body.textContent,
  };
  const pre = document.createElement('pre');
  pre.id = 'mb-probe';
  pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
});</script>"""


def chromium() -> str | None:
    """Path of a Chromium (or Chrome) binary on PATH, or None."""
    names = ("chromium", "chromium-browser", "google-chrome")
    return next((p for n in names if (p := shutil.which(n))), None)


def _browser() -> str:
    path = chromium()
    if path is None:
        raise FileNotFoundError("no chromium binary on PATH (apt-get install chromium)")
    return path


def screenshot(html: Path, png: Path, width: int = 1200, height: int = 2400) -> Path:
    """Headless Chromium's screenshot of the page ``html`` (``width`` x ``height`` px).
    Raises ``FileNotFoundError`` without Chromium, ``CalledProcessError`` if it fails."""
    subprocess.run(
        [
            _browser(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            html.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return png


def probe(html: Path) -> dict[str, Any]:
    """Load ``html`` in headless Chromium and report, after the load event: every image
    (``src``, ``complete``, ``width``/``height`` = naturalWidth/Height, 0 when not drawn),
    the element ids and the body text. The page is copied next to itself with a probe
    script added (same folder, so relative links resolve), then the copy is removed."""
    page = html.with_name(f".probe-{html.name}")
    page.write_text(html.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"))
    try:
        proc = subprocess.run(
            [
                _browser(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--virtual-time-budget=10000",
                "--dump-dom",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        page.unlink(missing_ok=True)
    found = re.search(r'<pre id="mb-probe">(.*?)</pre>', proc.stdout, re.S)
    if found is None:
        raise RuntimeError(f"the page's load event never came: {html}")
    from html import unescape

    return json.loads(unescape(found.group(1)))
