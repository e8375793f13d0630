"""The console's HTTP server: the page, its JSON API and its live streams (standard library only).

| method and path | what |
|---|---|
| ``GET /`` and ``/static/*`` | the single-page UI, from ``fs_bus/console/static`` (nothing from the internet) |
| ``GET /api/state`` | functions and nodes, as of the last tick |
| ``GET /api/functions/NAME`` | one function: its row plus config, artifact, node reports, revisions |
| ``GET /api/events`` | server-sent events: a ``state`` event with the whole state at every tick |
| ``GET /api/functions/NAME/logs`` | server-sent events: the function's recent log lines, then new ones |
| ``POST /api/functions/NAME/stop`` (``start``, ``drop``) | the same ``FsClient`` call as ``fs-bus sql`` |
| ``POST /api/functions`` | CREATE: ``{"config": YAML, "artifact_base64": ..., "filename": ..., "class_name": ...}`` |

Writes are refused (403) unless the console was started with ``--allow-writes``; then
Kafka's ACLs for the console's own principal decide, as for any client. A write must
be a JSON request from the console's own origin, so that another site open in the same
browser cannot post a form to it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fs_bus import __version__
from fs_bus.console.watcher import ClusterWatcher
from fs_bus.errors import (
    AccessDenied, FsBusError, FunctionAlreadyExists, FunctionFailed, FunctionNotFound, InvalidArtifact,
    InvalidConfig, KafkaUnavailable, WaitTimeout,
)
from fs_bus.kafka import clients
from fs_bus.kafka.settings import KafkaSettings
from fs_bus.kafka.topics import Topics

log = logging.getLogger(__name__)

DEFAULT_PORT = 8089
MAX_UPLOAD_BYTES = 64 * 1024 * 1024  # a componentize-py guest is ~18 MB, base64 makes it a third larger
STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
# Everything the page loads comes from here; inline scripts and styles are refused too.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
ACTIONS = ("stop", "start", "drop")
READ_ONLY = "this console is read-only; start it with `fs-bus console --allow-writes` to change functions"


@dataclass(frozen=True)
class ConsoleOptions:
    namespace: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    allow_writes: bool = False
    interval_s: float = 2.0
    write_timeout_s: float = 30.0


class ConsoleServer:
    """``fs-bus console``: serves the page and the API until :meth:`close`."""

    def __init__(self, settings: KafkaSettings, options: ConsoleOptions):
        self.settings = settings
        self.options = options
        self.topics = Topics(options.namespace)
        self.watcher = ClusterWatcher(settings, options.namespace, options.interval_s)
        self.closing = threading.Event()
        handler = type("Handler", (_Handler,), {"console": self})
        try:
            self.httpd = ThreadingHTTPServer((options.host, options.port), handler)
        except OSError as exc:
            raise FsBusError(f"the console cannot listen on {options.host}:{options.port}: {exc.strerror}; "
                             "pick another with --port (0: any free port)") from None
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def serve_forever(self) -> None:
        self.watcher.start()
        self.httpd.serve_forever(poll_interval=0.2)

    def start(self) -> ConsoleServer:
        """Serve from a background thread (tests, embedding)."""
        threading.Thread(target=self.serve_forever, name="console-http", daemon=True).start()
        return self

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.watcher.stop()

    # --- what the handler asks for ---

    def state(self) -> dict[str, Any]:
        snap = self.watcher.snapshot
        return {"namespace": self.options.namespace, "allow_writes": self.options.allow_writes,
                "version": snap.version, "at_ms": snap.at_ms, "error": snap.error, "fs_bus_version": __version__,
                "functions": snap.functions, "nodes": snap.nodes}

    def write(self, action: str, name: str | None, body: dict[str, Any]) -> str:
        """Run one write through FsClient, as ``fs-bus sql`` would; return what happened."""
        from fs_bus.client import FsClient

        with FsClient(bootstrap_servers=self.settings.bootstrap_servers, namespace=self.options.namespace,
                      timeout=self.options.write_timeout_s, kafka_config=dict(self.settings.properties)) as client:
            try:
                if action == "stop":
                    client.stop_function(name)
                    return f"function {name!r} stopped"
                if action == "start":
                    client.start_function(name)
                    return f"function {name!r} started"
                if action == "drop":
                    client.drop_function(name)
                    return f"function {name!r} dropped"
                return _create(client, body)
            finally:
                self.watcher.poke()


def _create(client, body: dict[str, Any]) -> str:
    config = body.get("config")
    if not isinstance(config, str) or not config.strip():
        raise InvalidConfig("give the function's YAML config as text", "config")
    try:
        data = base64.b64decode(body.get("artifact_base64") or "", validate=True)
    except (binascii.Error, TypeError):
        raise InvalidArtifact("artifact_base64: not base64; the page sends the uploaded file's bytes in base64") \
            from None
    if not data:
        raise InvalidArtifact("artifact_base64: empty; upload a .wasm component or a .py module")
    filename = str(body.get("filename") or "function")
    if filename.endswith(".py"):
        class_name = body.get("class_name")
        if not isinstance(class_name, str) or not class_name:
            raise InvalidArtifact(f"{filename}: a Python module needs the name of its FSProcessorDriver class "
                                  "(class_name)")
        module = PurePosixPath(filename).stem
        client.create_python_function(class_name, [(module, data)], config)
    else:
        client.create_function_from_bytes(data, config, source=filename)
    found = re.search(r"(?m)^name:\s*['\"]?([^'\"\s#]+)", config)
    return f"function {found.group(1)!r} created" if found else "function created"


def _status_of(exc: FsBusError) -> HTTPStatus:
    if isinstance(exc, AccessDenied):
        return HTTPStatus.FORBIDDEN
    if isinstance(exc, FunctionNotFound):
        return HTTPStatus.NOT_FOUND
    if isinstance(exc, FunctionAlreadyExists):
        return HTTPStatus.CONFLICT
    if isinstance(exc, (InvalidConfig, InvalidArtifact)):
        return HTTPStatus.BAD_REQUEST
    if isinstance(exc, WaitTimeout):
        return HTTPStatus.ACCEPTED  # durable, not yet confirmed by the nodes
    if isinstance(exc, KafkaUnavailable):
        return HTTPStatus.SERVICE_UNAVAILABLE
    if isinstance(exc, FunctionFailed):
        return HTTPStatus.UNPROCESSABLE_ENTITY
    return HTTPStatus.INTERNAL_SERVER_ERROR


class _Handler(BaseHTTPRequestHandler):
    console: ConsoleServer
    server_version = f"fs-bus-console/{__version__}"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args) -> None:
        log.debug("%s %s", self.address_string(), fmt % args)

    # --- GET ---

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        url = urlsplit(self.path)
        path = url.path
        if path in ("/", "/index.html"):
            return self._static("index.html")
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        if path == "/api/state":
            return self._json(HTTPStatus.OK, self.console.state())
        if path == "/api/events":
            return self._state_events()
        m = re.fullmatch(r"/api/functions/([^/]+)(/logs)?", path)
        if m:
            name = unquote(m.group(1))
            if m.group(2):
                return self._log_events(name, parse_qs(url.query))
            detail = self.console.watcher.snapshot.details.get(name)
            if detail is None:
                return self._error(HTTPStatus.NOT_FOUND, str(FunctionNotFound(name)))
            return self._json(HTTPStatus.OK, detail)
        self._error(HTTPStatus.NOT_FOUND, f"no such page: {path}")

    def _static(self, name: str) -> None:
        if not re.fullmatch(r"[a-z0-9_-]+\.[a-z]+", name) or PurePosixPath(name).suffix not in STATIC_TYPES:
            return self._error(HTTPStatus.NOT_FOUND, f"no such asset: {name}")
        item = resources.files("fs_bus.console").joinpath("static", name)
        if not item.is_file():
            return self._error(HTTPStatus.NOT_FOUND, f"no such asset: {name}")
        body = item.read_bytes()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", STATIC_TYPES[PurePosixPath(name).suffix])
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self._security_headers()
        self.end_headers()
        self.wfile.write(body)

    def _state_events(self) -> None:
        self._start_events()
        version = -1
        try:
            while not self.console.closing.is_set():
                snap = self.console.watcher.wait_newer(version, 15.0)
                if snap.version == version:
                    self._send_event(None, None)  # keep-alive; also notices a closed tab
                    continue
                version = snap.version
                self._send_event("state", {**self.console.state(), "details": snap.details})
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _log_events(self, name: str, query: dict[str, list[str]]) -> None:
        from fs_bus.observability.tail import LogTail, parse_since

        since = (query.get("since") or ["1h"])[0]
        try:
            last = int((query.get("n") or ["200"])[0])
            since_ms = parse_since(since, int(time.time() * 1000))
        except (FsBusError, ValueError) as exc:
            return self._error(HTTPStatus.BAD_REQUEST, f"since={since!r}, n: {exc}")
        self._start_events()
        consumer = clients.consumer(self.console.settings, "console-logs", **{"enable.partition.eof": True})
        gone = threading.Event()
        last_beat = [time.monotonic()]

        def emit(line) -> None:
            try:
                self._send_event("line", {**asdict(line), "time": line.time})
            except (BrokenPipeError, ConnectionResetError):
                gone.set()

        def stop() -> bool:
            if time.monotonic() - last_beat[0] > 10:
                last_beat[0] = time.monotonic()
                try:
                    self._send_event(None, None)
                except (BrokenPipeError, ConnectionResetError):
                    gone.set()
            return gone.is_set() or self.console.closing.is_set()

        try:
            tail = LogTail(consumer, self.console.topics.logs, name)
            for line in tail.recent(since_ms, last or None):
                emit(line)
            self._send_event("caught-up", {})
            tail.follow(emit, stop)
        except FsBusError as exc:
            try:
                self._send_event("problem", {"error": str(exc)})
            except (BrokenPipeError, ConnectionResetError):
                pass
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            consumer.close()

    def _start_events(self) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # one stream per connection; no length to give
        self._security_headers()
        self.end_headers()
        self.close_connection = True
        self.wfile.write(b"retry: 2000\n\n")
        self.wfile.flush()

    def _send_event(self, event: str | None, data: Any) -> None:
        if event is None:
            chunk = b": keep-alive\n\n"
        else:
            chunk = f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
        self.wfile.write(chunk)
        self.wfile.flush()

    # --- POST ---

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        m = re.fullmatch(r"/api/functions(?:/([^/]+)/([a-z]+))?", path)
        if not m or (m.group(2) is not None and m.group(2) not in ACTIONS):
            return self._error(HTTPStatus.NOT_FOUND, f"no such action: POST {path}")
        if not self.console.options.allow_writes:
            return self._error(HTTPStatus.FORBIDDEN, READ_ONLY)
        refused = self._cross_site()
        if refused:
            return self._error(HTTPStatus.FORBIDDEN, refused)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_UPLOAD_BYTES:
            return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                               f"the request has {length} bytes; the console takes at most {MAX_UPLOAD_BYTES}")
        try:
            body = json.loads(self.rfile.read(length) or b"{}") if length else {}
        except ValueError as exc:
            return self._error(HTTPStatus.BAD_REQUEST, f"the body is not JSON: {exc}")
        if not isinstance(body, dict):
            return self._error(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        action = m.group(2) or "create"
        name = unquote(m.group(1)) if m.group(1) else None
        try:
            message = self.console.write(action, name, body)
        except FsBusError as exc:
            return self._error(_status_of(exc), str(exc))
        self._json(HTTPStatus.OK, {"ok": True, "message": message})

    def _cross_site(self) -> str | None:
        """Why a write does not come from the console's own page, or None."""
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() != "application/json":
            return "a write must be a JSON request (Content-Type: application/json)"
        origin = self.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != self.headers.get("Host"):
            return f"a write from another origin ({origin}) is refused"
        return None

    # --- replies ---

    def _json(self, status: HTTPStatus, doc: Any) -> None:
        body = json.dumps(doc, separators=(",", ":")).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self._security_headers()
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"ok": False, "error": message})

    def _security_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")

