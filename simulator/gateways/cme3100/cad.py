"""Auto-configuration by CAD file (seed 003 §9.1 and §6.2).

A CAD file is ``Key: value`` lines::

    Sync-Mode: server                                  required, must be "server"
    Sync-Id: sm_elv                                    optional, echoed in the notification
    Sync-Notify-URL: http://hes/notify                 optional, where the result is posted
    Sync-Config-0: receiving.server.url=http://x/|/currentpluginconfig/stream.cfg
    Sync-File-0-URL: http://x/keys.csv,/config/keys.csv

``Sync-Config-N: <key>=<value>[|<config file>]`` and ``Sync-File-N-URL: <remote url>,<local
file>`` are numbered from 0 with no gaps. The value of a config item may itself contain ``|``
(cron combinations); only a final ``|/path`` is read as the config file. Items for the Stream
Plugin's file (``/currentpluginconfig/stream.cfg``, or no file) set plugin properties
(:mod:`.settings`); other config files are outside this model and are reported as problems.
Blank lines and lines starting with ``#`` are skipped (a bench allowance).

:func:`parse_cad` raises :class:`CadError` listing **every** problem with its line number.
:class:`AutoConfiguration` fetches the file over HTTP (``User-Agent`` as §9.1; still a real
GET from the model), downloads the files, validates the settings and only then applies
everything at once; on any problem nothing changes. It hands the result for
``Sync-Notify-URL`` to the plugin's sink (:mod:`simulator.sinks.base`) (body: ``<code> <text>`` on the first
line, then ``Sync-Id: <id>`` and any error lines; the manual does not define the body, this is
the bench's form) and expects "200" with "OK" in the body (§9.1):

====  ==========================================================
900   Success: synchronization completed successfully
920   Incompatible synchronizing mode: Sync-Mode was not "server"
921   Error synchronizing files. <error>: any other failure
====  ==========================================================

Trace events (source ``plugin/<serial>``): ``cad_sync`` (code, url, sync_id, applied,
problems).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from simulator.core import events as ev
from simulator.gateways.cme3100.settings import SettingsError
from simulator.gateways.cme3100.stream import REPORT_CONTENT_TYPE, StreamPlugin
from simulator.sinks.base import Report, Sink, Source, WorldSource
from simulator.sinks.http_client import PushError

STREAM_CONFIG_FILE = "/currentpluginconfig/stream.cfg"
SUCCESS, INCOMPATIBLE_MODE, SYNC_ERROR = 900, 920, 921
RESULT_TEXT = {
    SUCCESS: "Success",
    INCOMPATIBLE_MODE: "Incompatible synchronizing mode",
    SYNC_ERROR: "Error synchronizing files.",
}


class CadError(ValueError):
    """A CAD file with problems; ``problems`` is a list of ``(line, message)``."""

    def __init__(self, problems: list[tuple[int | None, str]], source: str = "cad") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(
            "; ".join(f"{source}:{ln}: {m}" if ln else f"{source}: {m}" for ln, m in self.problems)
        )


@dataclass(frozen=True)
class ConfigItem:
    key: str
    value: str
    path: str | None
    line: int


@dataclass(frozen=True)
class FileItem:
    url: str
    local: str
    line: int


@dataclass
class CadFile:
    """A parsed CAD file."""

    mode: str
    sync_id: str | None = None
    notify_url: str | None = None
    configs: list[ConfigItem] = field(default_factory=list)
    files: list[FileItem] = field(default_factory=list)


_LINE = re.compile(r"^([A-Za-z0-9-]+)\s*:\s?(.*)$")
_CONFIG = re.compile(r"^Sync-Config-([0-9]{1,9})$", re.I)
_FILE = re.compile(r"^Sync-File-([0-9]{1,9})-URL$", re.I)


def _is_url(text: str) -> bool:
    try:  # urlsplit raises ValueError for "http://[::1" and bad ports
        p = urlsplit(text)
        return p.scheme in ("http", "https") and bool(p.hostname) and (p.port or 1) > 0
    except ValueError:
        return False


def parse_cad(text: str, source: str = "cad") -> CadFile:
    """Parse CAD ``text``; :class:`CadError` lists every problem with its line number."""
    problems: list[tuple[int | None, str]] = []
    seen: dict[str, int] = {}
    mode = sync_id = notify = None
    configs: dict[int, ConfigItem] = {}
    files: dict[int, FileItem] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            problems.append((n, f"not a 'Key: value' line: {line[:60]!r}"))
            continue
        key, value = m.group(1), m.group(2).strip()
        norm = key.lower()
        if norm in seen:
            problems.append((n, f"{key} repeats line {seen[norm]}"))
            continue
        seen[norm] = n
        if norm == "sync-mode":
            mode = value
        elif norm == "sync-id":
            sync_id = value
        elif norm == "sync-notify-url":
            if _is_url(value):
                notify = value
            else:
                problems.append((n, f"Sync-Notify-URL {value!r} is not an http(s) URL"))
        elif (c := _CONFIG.match(key)) is not None:
            k, sep, rest = value.partition("=")
            if not sep or not k.strip():
                problems.append((n, f"{key}: expected <key>=<value>, got {value!r}"))
                continue
            path = None
            head, bar, tail = rest.rpartition("|")
            if bar and tail.strip().startswith("/"):
                rest, path = head, tail.strip()
            configs[int(c.group(1))] = ConfigItem(k.strip(), rest.strip(), path, n)
        elif (f := _FILE.match(key)) is not None:
            url, comma, local = value.partition(",")
            if not comma or not _is_url(url.strip()) or not local.strip():
                problems.append((n, f"{key}: expected <remote url>,<local file>, got {value!r}"))
                continue
            files[int(f.group(1))] = FileItem(url.strip(), local.strip(), n)
        else:
            problems.append(
                (
                    n,
                    f"unknown parameter {key!r} (Sync-Mode, Sync-Id, "
                    "Sync-Notify-URL, Sync-Config-N, Sync-File-N-URL)",
                )
            )
    for name, items in (("Sync-Config", configs), ("Sync-File", files)):
        if items and max(items) >= len(items):
            # Only indexes below the item count can be missing; a huge index (10000000) must
            # not make this list (or anything else) that long.
            missing = [i for i in range(len(items)) if i not in items]
            problems.append(
                (
                    None,
                    f"{name} indexes must start at 0 and be continuous; "
                    f"missing {', '.join(map(str, missing))} (highest given {max(items)})",
                )
            )
    if mode is None:
        problems.append((None, "Sync-Mode is missing (must be 'server')"))
    if problems:
        raise CadError(problems, source)
    return CadFile(
        mode,
        sync_id,
        notify,
        [configs[i] for i in sorted(configs)],
        [files[i] for i in sorted(files)],
    )


@dataclass
class SyncResult:
    code: int
    problems: list[str]
    applied: dict[str, str]

    @property
    def text(self) -> str:
        return RESULT_TEXT[self.code]


class AutoConfiguration:
    """Fetches and applies CAD files for one :class:`StreamPlugin` (``sync.enabled``,
    ``configuration.server.url``, ``configuration.server.cron``). Downloaded files are kept in
    :attr:`files` (local path -> bytes)."""

    def __init__(
        self, plugin: StreamPlugin, source: Source | None = None, notify_sink: Sink | None = None
    ) -> None:
        self.plugin = plugin
        self.world = plugin.world
        #: where files come from: in-world by default (no I/O in virtual time); a run that
        #: talks to a real configuration server passes :class:`~simulator.sinks.http_client.HttpGet`
        self.source: Source = source if source is not None else WorldSource()
        #: where result notifications go (Sync-Notify-URL): the plugin's sink unless the
        #: result server is a sink of its own (a run keeps them apart from stream reports)
        self.notify_sink: Sink | None = notify_sink
        self.files: dict[str, bytes] = {}
        self.results: list[SyncResult] = []

    def _get(self, url: str) -> bytes:
        headers = (("User-Agent", self.plugin.identity.user_agent()),)
        # a gateway target may log in (HTTP Basic, 002 §6.31.1); the plugin has no login
        headers += getattr(self.plugin, "auth_headers", ())
        got = self.source.fetch(url, headers)
        if not got.ok:
            raise PushError(got.reason, got.status)
        return got.reply

    def sync(self, url: str | None = None) -> SyncResult:
        """One synchronisation from ``url`` (default ``configuration.server.url``)."""
        url = url or self.plugin.settings.configuration_server_url
        cad: CadFile | None = None
        notify = None
        try:
            if url is None:
                raise PushError("configuration.server.url is not set")
            text = self._get(url).decode("utf-8", errors="replace")
            notify = _notify_url_of(text)
            cad = parse_cad(text, url)
            result = self._apply(cad)
        except CadError as exc:
            result = SyncResult(SYNC_ERROR, [str(exc)], {})
        except PushError as exc:
            result = SyncResult(SYNC_ERROR, [exc.reason], {})
        sync_id = cad.sync_id if cad else None
        notify = cad.notify_url if cad else notify
        self.results.append(result)
        self.world.emit(
            ev.CadSync(
                source=self.plugin.source,
                code=result.code,
                url=url,
                sync_id=sync_id,
                applied=sorted(result.applied),
                problems=result.problems,
            )
        )
        if notify:
            body = [f"{result.code} {result.text}\n", f"Sync-Id: {sync_id or ''}\n"]
            body += [f"{p}\n" for p in result.problems]
            ua = (("User-Agent", self.plugin.identity.user_agent()),)
            report = Report(notify, tuple(b.encode() for b in body), REPORT_CONTENT_TYPE, ua)
            delivery = (self.notify_sink or self.plugin.sink).deliver(report)
            if delivery.status is None:  # a lost notification changes nothing on the device
                self.world.emit(
                    ev.CadNotifyFailed(source=self.plugin.source, reason=delivery.reason)
                )
        return result

    def _apply(self, cad: CadFile) -> SyncResult:
        if cad.mode.strip().lower() != "server":
            return SyncResult(INCOMPATIBLE_MODE, [f"Sync-Mode is {cad.mode!r}, not 'server'"], {})
        problems = []
        props: dict[str, str] = {}
        # the plugin's items go to its stream.cfg; a gateway target names its own files
        allowed = getattr(self.plugin, "config_files", (None, STREAM_CONFIG_FILE))
        for item in cad.configs:
            if item.path not in allowed:
                files = ", ".join(p for p in allowed if p) or "none: give no |path"
                problems.append(
                    f"line {item.line}: config file {item.path} is not modelled (only {files})"
                )
            props[item.key] = item.value
        fetched: dict[str, bytes] = {}
        for f in cad.files:
            try:
                fetched[f.local] = self._get(f.url)
            except PushError as exc:
                problems.append(f"line {f.line}: {exc.reason}")
        try:
            new_settings = self.plugin.settings.updated(props)
        except SettingsError as exc:
            lines = {i.key: i.line for i in cad.configs}
            problems += [f"line {lines.get(k, '?')}: {k}: {m}" for k, m in exc.problems]
            new_settings = None
        if problems or new_settings is None:
            return SyncResult(SYNC_ERROR, problems, {})
        self.plugin.settings = new_settings
        self.files.update(fetched)
        return SyncResult(SUCCESS, [], props)

    def _loop(self):
        while True:
            s = self.plugin.settings
            nxt = s.configuration_cron.next_after(self.world.clock()) - self.world.start
            yield self.world.timeout(nxt.total_seconds() - self.world.now)
            if self.plugin.settings.sync_enabled:
                self.sync()

    def start(self) -> AutoConfiguration:
        """Run :meth:`sync` at every ``configuration.server.cron`` firing while
        ``sync.enabled`` is true."""
        self.world.process(self._loop())
        return self


def _notify_url_of(text: str) -> str | None:
    """The Sync-Notify-URL of a file that may not parse, so a bad file can still be reported."""
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m and m.group(1).lower() == "sync-notify-url" and _is_url(m.group(2).strip()):
            return m.group(2).strip()
    return None
