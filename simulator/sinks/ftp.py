"""The bench's FTP receiver: a real pyftpdlib server that keeps every uploaded report.

A CMe3100 uploads 2xxx reports as files into a folder of an FTP server (CME3100.md §5.1 "FTP
page", §5.2 file names). :class:`FtpSink` is that server, with the common receiver shape of
:mod:`.receiver` (records, faults, bind errors)::

    with FtpSink(user="gw", password="pw") as ftp:     # 127.0.0.1, ephemeral port
        root = ftp.new_session("test_retries")          # a fresh, empty root for this test
        (root / "push").mkdir()
        ... FtpUpload("gw", "pw").deliver(Report(ftp.url("push/name.csv"), ...)) ...
        ftp.received                                    # Received records (FtpMeta)

Faults, decided when a client connects (one connection = one attempt): ``refuse`` closes
the connection before the greeting; ``timeout`` accepts and sends nothing (no 220) until
``hang_s`` (then 421 and close) or stop; ``auth`` answers PASS with 530; ``5xx`` answers STOR
with 451 and ``disk_full`` with 552 (RFC 959 §4.2). A wrong user or password gets 530 with
``fault`` None. The server is pyftpdlib's single-threaded one, run by one thread that
:meth:`FtpSink.stop` joins; a login failure is answered at once (no pyftpdlib delay).
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
from pathlib import Path

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.ioloop import IOLoop
from pyftpdlib.servers import FTPServer

from simulator.sinks.receiver import FtpMeta, Injected, Receiver

# pyftpdlib configures the process's logging itself when it finds no handler; a handler of
# its own keeps that global change out (its records still propagate to the root logger)
logging.getLogger("pyftpdlib").addHandler(logging.NullHandler())

#: How often the server thread looks for a stop request (s, wall time).
POLL_S = 0.05
#: A session name: one path component.
_SESSION = re.compile(r"[A-Za-z0-9_.\-\[\]]+")
#: The reply texts of the STOR faults (RFC 959 §4.2).
_STOR_TEXT = {451: "Requested action aborted: local error in processing.",
              552: "Requested file action aborted. Exceeded storage allocation."}  # fmt: skip


class _Dtp(DTPHandler):
    def close(self) -> None:
        # record the file before the 226 reply goes out (pyftpdlib replies first, then
        # calls on_file_received), so a client that saw 226 finds it recorded
        if not self._closed and self.receive and self.transfer_finished and self.file_obj:
            self.file_obj.flush()
            self.cmd_channel.bench_stored(self.file_obj.name)
        super().close()


class _Handler(FTPHandler):
    sink: FtpSink  # set on the per-server subclass
    dtp_handler = _Dtp
    auth_failed_timeout = 0
    banner = "meterbench FTP receiver ready."
    injected: Injected | None = None

    def _remote(self) -> str:
        return f"{self.remote_ip}:{self.remote_port}"

    def _meta(self, path: str = "", name: str = "") -> FtpMeta:
        return FtpMeta(self.username, path, name, str(self.sink.directory))

    def handle(self) -> None:
        self.injected = inj = self.sink.faults.take()
        if inj is not None and inj.fault in ("refuse", "timeout"):
            self.sink._record(b"", self._remote(), None, None, inj.fault)
            if inj.fault == "refuse":
                self.close()
            return  # timeout: no greeting; the idle timer (hang_s) or stop closes it
        super().handle()

    def ftp_PASS(self, line: str) -> None:  # noqa: N802 (pyftpdlib's command names)
        inj = self.injected
        if inj is not None and inj.fault == "auth" and not self.authenticated and self.username:
            self.sink._record(b"", self._remote(), self._meta(), inj.status, inj.fault)
            self.respond(f"{inj.status} Login incorrect.")
            self.username = ""
            return
        super().ftp_PASS(line)

    def on_login_failed(self, username: str, password: str) -> None:
        self.sink._record(b"", self._remote(), FtpMeta(username, "", "", ""), 530)

    def ftp_STOR(self, file: str, mode: str = "w") -> None:  # noqa: N802
        inj = self.injected
        if inj is not None and inj.fault in ("5xx", "disk_full"):
            path = self.fs.fs2ftp(file)
            meta = self._meta(path, path.rsplit("/", 1)[-1])
            self.sink._record(b"", self._remote(), meta, inj.status, inj.fault)
            self.respond(f"{inj.status} {_STOR_TEXT.get(inj.status, 'Failed.')}")
            return
        return super().ftp_STOR(file, mode)

    def bench_stored(self, file: str) -> None:
        path = self.fs.fs2ftp(file)
        data = Path(file).read_bytes()
        self.sink._record(data, self._remote(), self._meta(path, path.rsplit("/", 1)[-1]), 226)


class FtpSink(Receiver):
    """An FTP server on ``host``:``port`` (0 = ephemeral) with one account ``user`` /
    ``password`` whose home is the current session directory under ``root`` (default: a
    temporary directory, removed at stop). See the module doc."""

    protocol = "ftp"
    name = "FTP"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        user: str = "meterbench",
        password: str = "meterbench",
        root: str | Path | None = None,
        **kw,
    ) -> None:
        super().__init__(host, port, **kw)
        self.user, self.password = user, password
        self._own_root = root is None
        self.root = Path(root) if root is not None else None
        self.directory: Path | None = None
        self._authorizer = DummyAuthorizer()
        self._server: FTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stop_flag = threading.Event()

    def url(self, path: str = "") -> str:
        """``ftp://host:port/<path>`` (the target form of :class:`~.ftp_client.FtpUpload`)."""
        return f"ftp://{self.host}:{self.port}/{path.lstrip('/')}"

    def new_session(self, name: str) -> Path:
        """Make ``root/name`` the account's home, fresh and empty (a previous one of that
        name is removed), for logins from now on; returns it. Raises ``ValueError`` for a
        name that is not one plain path component."""
        if not _SESSION.fullmatch(name) or name in (".", ".."):
            raise ValueError(f"FTP session name {name!r}: letters, digits, _ . - [ ] only")
        if self.root is None:
            raise RuntimeError("start the FTP receiver before making a session")
        path = self.root / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        self._home(path)
        return path

    def _home(self, path: Path) -> None:
        if self._authorizer.has_user(self.user):
            self._authorizer.remove_user(self.user)
        self._authorizer.add_user(self.user, self.password, str(path), perm="elradfmwMT")
        self.directory = path

    def _start(self) -> None:
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="meterbench-ftp-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self._home(self.root)
        handler = type("FtpSinkHandler", (_Handler,), {"sink": self, "timeout": self.hang_s})
        handler.authorizer = self._authorizer
        try:
            self._server = FTPServer((self.host, self.port), handler, ioloop=IOLoop())
        except OSError as exc:
            raise self._bind_error(exc) from exc
        self.port = self._server.address[1]
        self._stop_flag.clear()
        self._thread = threading.Thread(target=self._serve, name="ftp-sink", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        server = self._server
        try:
            while not self._stop_flag.is_set():
                server.serve_forever(timeout=POLL_S, blocking=False, handle_exit=False)
        finally:
            server.close_all()

    def _stop(self) -> None:
        self._stop_flag.set()
        if self._thread is not None:
            self._thread.join(10)
        self._thread = None
        if self._own_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
