"""Real loopback servers standing in for the outside world in tests, benches and the fleet
simulator: a target web site, a forward HTTP proxy and a SOCKS5 proxy, each served by a
background thread on 127.0.0.1 with a random free port (or the ``port=`` given).

    from coreadmin.devservers import TargetSite, ForwardProxy, SocksProxy

    with TargetSite() as site, ForwardProxy(auth=("u", "p")) as proxy:
        httpx.get(site.url("/ok"), proxy=proxy.url)        # 200, body has TARGET_OK_TEXT
        proxy.mode = "banned"                               # switch behaviour at run time
        httpx.get(site.url("/ok"), proxy=proxy.url)        # 403 ban page from "the target"

TargetSite paths (any method):

====================  ==================================================================
``/`` or anything     200 HTML page containing ``TARGET_OK_TEXT``
``/slow?ms=N``        the same page after N ms (default ``site.slow_ms``)
``/banned``           403 ban page containing ``BAN_TEXT``
``/ratelimited``      429 with ``Retry-After: 30`` and ``BAN_TEXT``
``/captcha``          **200** page containing ``CAPTCHA_TEXT`` (a ban that looks like success)
``/status/N``         status N with a short body
``/echo``             200 JSON: method, path, headers (shows what a proxy forwarded)
====================  ==================================================================

ForwardProxy understands absolute-URI requests (``GET http://host:port/path``) and
``CONNECT host:port`` tunnels. Its ``mode`` (changeable while it runs):

- ``healthy``: forwards everything.
- ``refuse``: accepts the connection and closes it without a response.
- ``flaky``: a ``fail_rate`` share of requests (seeded RNG) are closed without a response.
- ``slow``: waits ``delay_ms`` before forwarding (use it to exceed a client's timeout).
- ``banned``: requests for a target in ``banned_targets`` (``"host:port"`` strings; an
  empty set means every target) get a ban page as if the target had blocked this proxy's
  IP: ``ban_status`` 403 (default) or 429, or 200 with ``CAPTCHA_TEXT``; a CONNECT to such
  a target is answered with ``ban_status`` (or 403 when that is 200). Other targets work.

``ban_after=N`` (any mode) makes each target ban this proxy after N requests to it, the
way a site bans a too-busy IP: it then answers like ``banned`` for that target, for good
(``proxy.auto_banned``; clear it to lift). Fleet simulations use it to show ban waves.

With ``auth=(user, password)`` a request without the right ``Proxy-Authorization: Basic``
gets 407. Forwarded requests carry ``Via: 1.1 <proxy.name>``. Both servers count what they
served (``site.hits``, ``proxy.requests``) and stop their sleeps promptly on exit.
``site.max_in_flight`` is the most requests it answered at once.
``closed_port()`` gives a port where nothing listens (a dead proxy address).

SocksProxy speaks SOCKS5 (RFC 1928): CONNECT to an IPv4 address or a domain name (other
commands and address types get the matching error reply), then relays bytes both ways.
With ``auth=(user, password)`` it requires RFC 1929 username/password and refuses other
credentials (and clients offering no such method). ``url`` is ``socks5://[u:p@]host:port``.
Modes: ``healthy``; ``refuse`` (closes at once, no greeting); ``deny`` (CONNECT answered
"connection not allowed by ruleset"); ``break`` (CONNECT answered "succeeded", then closed).
It counts ``connections``, ``relayed`` tunnels (and ``targets`` of them), ``auth_failures``,
``dropped`` and ``address_types``. A tunnel is opaque, so the site sees no ``Via``.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import random
import select
import socket
import socketserver
import struct
import sys
import threading
import urllib.parse
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

TARGET_OK_TEXT = "coreadmin-target-ok"
BAN_TEXT = "Access denied: your IP has been blocked"
CAPTCHA_TEXT = "Please complete the captcha to continue"

PROXY_MODES = ("healthy", "refuse", "flaky", "slow", "banned")

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


def closed_port() -> int:
    """A loopback port nothing listens on (bound then released): connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _html(title: str, text: str) -> bytes:
    head = f"<!doctype html><html><head><title>{title}</title></head>"
    return f"{head}<body><p>{text}</p></body></html>".encode()


class _Quiet(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    block_on_close = False  # a slow handler must not hold up the test that stops us
    allow_reuse_address = True
    owner: Any

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A peer that hung up (a client's timeout, a dropped tunnel) is normal traffic
        for these servers, not a traceback on stderr; anything else is still printed."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Server(_Quiet, ThreadingHTTPServer):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet in tests
        pass

    def _send(
        self, status: int, body: bytes, ctype: str = "text/html", headers: dict | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""


class _Background:
    """Runs a _Server in a daemon thread; a context manager."""

    handler: type[socketserver.BaseRequestHandler]
    server_class: type[_Quiet] = _Server

    def __init__(self, port: int = 0) -> None:
        self.bind_port = port  # 0: a free port chosen by the kernel
        self._port = 0
        self._server: _Quiet | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    @property
    def port(self) -> int:
        """The port it listens on (after ``stop()``, the one it listened on)."""
        assert self._port, "not started"
        return self._port

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Self:
        self.stopping.clear()
        self._server = self.server_class(("127.0.0.1", self.bind_port), self.handler)
        self._server.owner = self
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def sleep(self, seconds: float) -> None:
        """A real sleep (these are the outside world) that ends early when we stop."""
        self.stopping.wait(seconds)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- the target site ------------------------------------------------------------------


class _TargetHandler(_Handler):
    def _serve(self) -> None:
        site: TargetSite = self.server.owner
        with site._lock:
            site.in_flight += 1
            site.max_in_flight = max(site.max_in_flight, site.in_flight)
        try:
            self._answer(site)
        finally:
            with site._lock:
                site.in_flight -= 1

    def _answer(self, site: TargetSite) -> None:
        self._read_body()
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        query = urllib.parse.parse_qs(parsed.query)
        with site._lock:
            site.hits[path] += 1
            via = self.headers.get("Via")
            if via:
                site.hits_by_proxy[via.split()[-1]] += 1
        if path == "/slow":
            site.sleep(float(query.get("ms", [site.slow_ms])[0]) / 1000.0)
            self._send(200, _html("slow", TARGET_OK_TEXT + " (slow)"))
        elif path == "/banned":
            self._send(403, _html("blocked", BAN_TEXT))
        elif path == "/ratelimited":
            self._send(429, _html("too many requests", BAN_TEXT), headers={"Retry-After": "30"})
        elif path == "/captcha":
            self._send(200, _html("captcha", CAPTCHA_TEXT))
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            self._send(code, _html(str(code), f"status {code}"))
        elif path == "/echo":
            body = {"method": self.command, "path": self.path, "headers": dict(self.headers)}
            self._send(200, json.dumps(body).encode(), "application/json")
        else:
            self._send(200, _html("ok", f"{TARGET_OK_TEXT} {path}"))

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve


class TargetSite(_Background):
    """A small web site on 127.0.0.1 (see the module docstring for its paths)."""

    handler = _TargetHandler

    def __init__(self, *, slow_ms: float = 2000.0, port: int = 0) -> None:
        super().__init__(port)
        self.slow_ms = slow_ms
        self.hits: Counter[str] = Counter()  # path -> requests
        self.hits_by_proxy: Counter[str] = Counter()  # proxy name (from Via) -> requests
        self.in_flight = 0  # requests being answered now
        self.max_in_flight = 0  # the most answered at once so far

    def url(self, path: str = "/") -> str:
        return f"http://{self.netloc}{path}"


# --- the forward proxy ----------------------------------------------------------------


class _ProxyHandler(_Handler):
    def _proxy(self) -> ForwardProxy:
        return self.server.owner

    def _authorized(self) -> bool:
        proxy = self._proxy()
        if proxy.auth is None:
            return True
        expected = base64.b64encode(f"{proxy.auth[0]}:{proxy.auth[1]}".encode()).decode()
        if self.headers.get("Proxy-Authorization", "") == f"Basic {expected}":
            return True
        self._send(
            407,
            _html("auth", "proxy authentication required"),
            headers={"Proxy-Authenticate": 'Basic realm="devproxy"'},
        )
        return False

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _gate(self, target: str) -> bool:
        """Applies the mode; returns True when the request should be forwarded."""
        proxy = self._proxy()
        with proxy._lock:
            proxy.requests += 1
            mode = proxy.mode
            fail = mode == "flaky" and proxy._rng.random() < proxy.fail_rate
        if mode == "refuse" or fail:
            with proxy._lock:
                proxy.dropped += 1
            self._drop()
            return False
        if not self._authorized():
            return False
        if mode == "slow":
            proxy.sleep(proxy.delay_ms / 1000.0)
        with proxy._lock:
            proxy.target_requests[target] += 1
            if proxy.ban_after is not None and proxy.target_requests[target] > proxy.ban_after:
                proxy.auto_banned.add(target)
            banned = target in proxy.auto_banned or (
                mode == "banned" and (not proxy.banned_targets or target in proxy.banned_targets)
            )
        if banned:
            with proxy._lock:
                proxy.bans_served += 1
            self._read_body()
            if self.command == "CONNECT":
                self._send(proxy.ban_status if proxy.ban_status != 200 else 403, b"")
            elif proxy.ban_status == 200:
                self._send(200, _html("captcha", CAPTCHA_TEXT))
            else:
                self._send(proxy.ban_status, _html("blocked", BAN_TEXT))
            return False
        return True

    def _forward(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        if parsed.scheme != "http" or not parsed.hostname:
            self._read_body()
            self._send(400, _html("bad request", "absolute http:// URI required"))
            return
        port = parsed.port or 80
        if not self._gate(f"{parsed.hostname}:{port}"):
            return
        body = self._read_body()
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Via"] = f"1.1 {self._proxy().name}"
        path = urllib.parse.urlunsplit(("", "", parsed.path or "/", parsed.query, ""))
        upstream = http.client.HTTPConnection(parsed.hostname, port, timeout=30)
        try:
            upstream.request(self.command, path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = response.read()
        except OSError:
            self._send(502, _html("bad gateway", "upstream unreachable"))
            return
        finally:
            upstream.close()
        out = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
        out.pop("Content-Length", None)
        out.pop("Content-Type", None)
        ctype = response.getheader("Content-Type", "application/octet-stream")
        self._send(response.status, data, ctype, out)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        if not self._gate(self.path):
            return
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except (OSError, ValueError):
            self._send(502, b"")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        self._tunnel(upstream)

    def _tunnel(self, upstream: socket.socket) -> None:
        client = self.connection
        sockets = [client, upstream]
        try:
            while not self._proxy().stopping.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            return
        finally:
            upstream.close()


class ForwardProxy(_Background):
    """A forward HTTP proxy on 127.0.0.1 (see the module docstring for its modes)."""

    handler = _ProxyHandler

    def __init__(
        self,
        mode: str = "healthy",
        *,
        name: str | None = None,
        auth: tuple[str, str] | None = None,
        delay_ms: float = 2000.0,
        fail_rate: float = 0.5,
        banned_targets: set[str] | None = None,
        ban_status: int = 403,
        seed: int = 0,
        ban_after: int | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(port)
        if mode not in PROXY_MODES:
            raise ValueError(f"mode must be one of {PROXY_MODES}")
        self.mode = mode
        self.name = name or f"devproxy-{id(self):x}"
        self.auth = auth
        self.delay_ms = delay_ms
        self.fail_rate = fail_rate
        self.banned_targets: set[str] = set(banned_targets or ())
        self.ban_status = ban_status
        self._rng = random.Random(seed)
        self.requests = 0  # requests (and CONNECTs) received
        self.dropped = 0  # connections closed without a response (refuse/flaky)
        self.bans_served = 0  # ban pages answered instead of forwarding
        self.ban_after = ban_after
        self.target_requests: Counter[str] = Counter()  # "host:port" -> requests seen
        self.auto_banned: set[str] = set()  # targets that banned us after ban_after requests

    @property
    def url(self) -> str:
        """``http://[user:password@]127.0.0.1:port``, ready for httpx's ``proxy=``."""
        if self.auth is None:
            return f"http://{self.netloc}"
        user, password = (urllib.parse.quote(part, safe="") for part in self.auth)
        return f"http://{user}:{password}@{self.netloc}"


# --- the SOCKS5 proxy -----------------------------------------------------------------

SOCKS_MODES = ("healthy", "refuse", "deny", "break")

_SOCKS_VERSION = 5
_NO_AUTH, _USER_PASS, _NO_METHOD = 0x00, 0x02, 0xFF
_CONNECT = 0x01
_IPV4, _DOMAIN = 0x01, 0x03
# RFC 1928 section 6 reply codes used here.
_SUCCEEDED, _GENERAL_FAILURE, _NOT_ALLOWED = 0x00, 0x01, 0x02
_HOST_UNREACHABLE, _COMMAND_UNSUPPORTED, _ADDRESS_UNSUPPORTED = 0x04, 0x07, 0x08


class _SocksServer(_Quiet):
    pass


class _SocksHandler(socketserver.BaseRequestHandler):
    """One client connection: method negotiation, optional RFC 1929 sub-negotiation,
    one CONNECT request, then a byte relay until either side closes. Reads and writes
    the socket directly (no buffered file), so no byte of the tunnel is held back."""

    server: _SocksServer
    request: socket.socket

    def _proxy(self) -> SocksProxy:
        return self.server.owner

    def _count(self, counter: str) -> None:
        proxy = self._proxy()
        with proxy._lock:
            setattr(proxy, counter, getattr(proxy, counter) + 1)

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.request.recv(n - len(data))
            if not chunk:
                raise ConnectionResetError("client closed during the SOCKS handshake")
            data += chunk
        return data

    def _send(self, data: bytes) -> None:
        self.request.sendall(data)

    def _reply(self, code: int) -> None:
        # VER REP RSV ATYP BND.ADDR BND.PORT; the bound address is not used by clients here.
        self._send(struct.pack("!BBBB4sH", _SOCKS_VERSION, code, 0, _IPV4, bytes(4), 0))

    def handle(self) -> None:
        proxy = self._proxy()
        self._count("connections")
        self.request.settimeout(10)  # a client stalling mid-handshake frees its thread
        if proxy.mode == "refuse":
            self._count("dropped")
            return  # closed without a word, like a dead or overloaded proxy
        if not self._negotiate():
            return
        target = self._request()
        if target is None:
            return
        host, port = target
        if proxy.mode == "deny":
            self._count("dropped")
            self._reply(_NOT_ALLOWED)
            return
        try:
            upstream = socket.create_connection((host, port), timeout=10)
        except OSError:
            self._reply(_HOST_UNREACHABLE)
            return
        with upstream:
            self._reply(_SUCCEEDED)
            if proxy.mode == "break":
                self._count("dropped")
                return  # said yes, then hangs up before a byte is relayed
            with proxy._lock:
                proxy.relayed += 1
                proxy.targets[f"{host}:{port}"] += 1
            self._relay(upstream)

    def _negotiate(self) -> bool:
        """Method selection, then the username/password check when auth is set."""
        proxy = self._proxy()
        version, count = self._read(2)
        if version != _SOCKS_VERSION:
            return False
        offered = set(self._read(count))
        wanted = _NO_AUTH if proxy.auth is None else _USER_PASS
        if wanted not in offered:
            self._send(bytes([_SOCKS_VERSION, _NO_METHOD]))
            self._count("auth_failures")
            return False
        self._send(bytes([_SOCKS_VERSION, wanted]))
        if proxy.auth is None:
            return True
        _subversion, user_len = self._read(2)
        user = self._read(user_len).decode(errors="replace")
        password = self._read(self._read(1)[0]).decode(errors="replace")
        ok = (user, password) == proxy.auth
        self._send(bytes([1, 0 if ok else 1]))  # RFC 1929: non-zero status = failure
        if not ok:
            self._count("auth_failures")
        return ok

    def _request(self) -> tuple[str, int] | None:
        version, command, _reserved, address_type = self._read(4)
        if version != _SOCKS_VERSION:
            self._reply(_GENERAL_FAILURE)
            return None
        if address_type == _IPV4:
            host = socket.inet_ntoa(self._read(4))
        elif address_type == _DOMAIN:
            host = self._read(self._read(1)[0]).decode("idna")
        else:
            self._reply(_ADDRESS_UNSUPPORTED)
            return None
        (port,) = struct.unpack("!H", self._read(2))
        proxy = self._proxy()
        with proxy._lock:
            proxy.address_types["ipv4" if address_type == _IPV4 else "domain"] += 1
        if command != _CONNECT:
            self._reply(_COMMAND_UNSUPPORTED)
            return None
        return host, port

    def _relay(self, upstream: socket.socket) -> None:
        client = self.request
        sockets = [client, upstream]
        try:
            while not self._proxy().stopping.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.1)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except OSError:  # either side reset or stalled: the tunnel is over
            return


class SocksProxy(_Background):
    """A SOCKS5 proxy on 127.0.0.1 (RFC 1928 CONNECT to IPv4 or domain-name addresses;
    with ``auth=(user, password)``, RFC 1929 username/password, refusing others).

    Modes (changeable while it runs): ``healthy`` relays; ``refuse`` closes each
    connection at once, before the greeting; ``deny`` answers CONNECT with reply 2
    (connection not allowed by ruleset); ``break`` answers CONNECT with success, then
    closes without relaying a byte. Counters: ``connections`` accepted, ``relayed``
    tunnels opened to a target (``targets``: "host:port" -> tunnels), ``auth_failures``,
    ``dropped`` (refused, denied or broken), ``address_types`` ("ipv4"/"domain" -> count).
    """

    handler = _SocksHandler
    server_class = _SocksServer

    def __init__(
        self, mode: str = "healthy", *, auth: tuple[str, str] | None = None, port: int = 0
    ) -> None:
        super().__init__(port)
        if mode not in SOCKS_MODES:
            raise ValueError(f"mode must be one of {SOCKS_MODES}")
        self.mode = mode
        self.auth = auth
        self.connections = 0
        self.relayed = 0
        self.auth_failures = 0
        self.dropped = 0
        self.targets: Counter[str] = Counter()
        self.address_types: Counter[str] = Counter()

    @property
    def url(self) -> str:
        """``socks5://[user:password@]127.0.0.1:port``, ready for httpx's ``proxy=``."""
        if self.auth is None:
            return f"socks5://{self.netloc}"
        user, password = (urllib.parse.quote(part, safe="") for part in self.auth)
        return f"socks5://{user}:{password}@{self.netloc}"
