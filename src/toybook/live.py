"""Serve a built book with live cells backed by a local Jupyter server (no Binder, no network).

``toybook live`` (or ``make live``) starts two servers on 127.0.0.1:

- a static file server for the built site (``_build/html``) that adds one line to every
  HTML page, ``window.TOYBOOK_LIVE = {baseUrl, wsUrl, token}``, which the book's Thebe
  glue (``book/_ext/toybook-thebe.js``) uses instead of Binder;
- a Jupyter server with a fresh random token (192 bits).

Open the printed address, press the rocket menu's "Live Code" button on any chapter, and
its cells run in a kernel on this machine against the installed ``toybook``.

Security model. Whoever holds the token can run code as you, so the token must reach
only pages served by this site to this machine:

- both servers listen on 127.0.0.1 only, so other machines cannot connect;
- both answer only requests whose ``Host`` header is a loopback name for their own port
  (``127.0.0.1:PORT``, ``localhost:PORT``): a web page from elsewhere that rebinds its
  own domain name to 127.0.0.1 (DNS rebinding) gets 403 and never sees a page with the
  token; Jupyter applies the same rule (``allow_remote_access=False``);
- the token travels to Jupyter in its environment (``JUPYTER_TOKEN``), not on its
  command line, where ``ps`` would show it to other users of the machine;
- Jupyter's origin setting (``allow_origin``) names the site, but Jupyter skips the
  origin check for token-authenticated requests: the protection is that the token is
  secret, not the origin check. Other local users who can read your processes'
  environment or your files can reach the kernel, as with any Jupyter server.

Jupyter's log goes to ``jupyter.log`` in a fresh temporary folder (printed at start) that
only you can read (``mkdtemp``: mode 700), since Jupyter writes its URL, token included, there.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from toybook.errors import ToybookError

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class _InjectingHandler(http.server.SimpleHTTPRequestHandler):
    """Static files for loopback ``Host`` headers only; HTML pages get the live-server
    settings before ``</head>``."""

    live_settings: str = ""
    allowed_hosts: frozenset[str] = frozenset()

    def send_head(self):
        if self.headers.get("Host", "") not in self.allowed_hosts:
            self.send_error(403, "this server answers only http://127.0.0.1 or localhost on its own port")
            return None
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            path = path / "index.html"
        if path.suffix != ".html" or not path.is_file():
            return super().send_head()
        page = path.read_text(encoding="utf-8")
        snippet = f"<script>window.TOYBOOK_LIVE = {self.live_settings};</script>"
        body = page.replace("</head>", snippet + "</head>", 1).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        return _Body(body)

    def log_message(self, format, *args):  # noqa: A002 - quiet by default
        pass


def loopback_hosts(port: int) -> frozenset[str]:
    """The ``Host`` header values a browser on this machine sends to ``port``."""
    return frozenset({f"{HOST}:{port}", f"localhost:{port}"})


class _Body:
    """A file-like object over bytes, as ``send_head`` must return."""

    def __init__(self, data: bytes):
        self.data = data

    def read(self, *_):
        data, self.data = self.data, b""
        return data

    def close(self):
        pass


@dataclass
class LiveSite:
    """A running site + Jupyter server pair; use as a context manager or call ``stop``."""

    site: Path
    port: int = 0
    jupyter_port: int = 0
    token: str = field(default_factory=lambda: secrets.token_hex(24))
    root_dir: Path = field(default_factory=Path.cwd)

    def __post_init__(self):
        self.site = Path(self.site)
        if not (self.site / "index.html").exists():
            raise ToybookError(
                f"{self.site} holds no built site (no index.html): build the book first "
                "(make book, or jupyter-book build .)"
            )
        self.port = self.port or free_port()
        self.jupyter_port = self.jupyter_port or free_port()
        self._jupyter: subprocess.Popen | None = None
        self._http: http.server.ThreadingHTTPServer | None = None
        self._log = None
        self.log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def settings(self) -> dict[str, str]:
        return {
            "baseUrl": f"http://{HOST}:{self.jupyter_port}",
            "wsUrl": f"ws://{HOST}:{self.jupyter_port}",
            "token": self.token,
        }

    def start(self, timeout: float = 60) -> "LiveSite":
        """Start the static server, then Jupyter; on any failure stop both and raise a
        :class:`ToybookError` (no server is left running)."""
        try:
            import jupyter_server  # noqa: F401
        except ImportError:
            raise ToybookError(
                "live cells need a Jupyter server: pip install 'toybook[book]' (jupyter-server)"
            ) from None
        handler = type("Handler", (_InjectingHandler,), {
            "live_settings": json.dumps(self.settings), "allowed_hosts": loopback_hosts(self.port),
        })
        try:
            self._http = http.server.ThreadingHTTPServer(
                (HOST, self.port), functools.partial(handler, directory=str(self.site))
            )
        except OSError as error:
            raise ToybookError(
                f"cannot serve the site on {HOST}:{self.port} ({error.strerror or error}); "
                f"choose another --port"
            ) from None
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        self.log_path = Path(tempfile.mkdtemp(prefix="toybook-live-")) / "jupyter.log"
        self._log = self.log_path.open("wb")
        environment = {**os.environ, "JUPYTER_TOKEN": self.token}
        self._jupyter = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", f"--ip={HOST}", f"--port={self.jupyter_port}",
             "--ServerApp.port_retries=0", "--ServerApp.allow_remote_access=False",
             "--ServerApp.local_hostnames=['localhost']", "--no-browser",
             f"--ServerApp.allow_origin={self.url}", f"--ServerApp.root_dir={self.root_dir}",
             *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=environment,
        )
        self._wait_for_jupyter(timeout)
        return self

    def _wait_for_jupyter(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        status = urllib.request.Request(
            f"{self.settings['baseUrl']}/api/status",
            headers={"Authorization": f"token {self.token}"},
        )
        while time.monotonic() < deadline:
            if self._jupyter.poll() is not None:
                log = self.log_path.read_text(errors="replace")
                self.stop()
                busy = "already in use" in log or "Address already in use" in log
                raise ToybookError(
                    f"the Jupyter server could not start on {HOST}:{self.jupyter_port}"
                    + ("; the port is in use: choose another --jupyter-port" if busy else "")
                    + f" (log: {self.log_path}):\n{log[-1500:]}"
                )
            try:
                with urllib.request.urlopen(status, timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise ToybookError(
            f"the Jupyter server did not answer within {timeout:.0f} s (log: {self.log_path})"
        )

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._jupyter is not None:
            self._jupyter.terminate()
            try:
                self._jupyter.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._jupyter.kill()
            self._jupyter = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "LiveSite":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
