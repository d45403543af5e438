"""One HTTP(S) GET that a mirror cannot stall, flood or derail (standard library only).

The network plumbing of :mod:`scratchvae.tools.download`, point 3 of its list:
only HTTPS is spoken, plain HTTP only to this machine (``_allowed``);
redirects are followed at most :data:`MAX_REDIRECTS` times, and only to
allowed URLs (``_get``); each attempt has an overall deadline that shuts the
connection however slowly bytes trickle in (``_Deadline``); and no more bytes
than the file's size are accepted (``_copy_and_hash``). An unusable answer is a
:class:`MirrorError`. Guide: docs/data.md#what-is-guaranteed
"""

import hashlib
import http.client
import ipaddress
import socket
import ssl
import sys
import threading
import time
from contextlib import contextmanager
from urllib.parse import urljoin, urlsplit

from scratchvae import __version__

MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 1 << 16  # bytes per read at most: large enough to be fast, small enough to show progress


class MirrorError(OSError):
    """One mirror's answer was unusable: too slow, too long, malformed, or an HTTP error."""

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status  # the HTTP status, for an HTTP error


def _allowed(url):
    """True for https:// URLs, and for http:// URLs whose host is this machine."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


class _Deadline:
    """The time limit of one attempt: when it passes, the connection being watched is shut.

    Shutting the socket wakes a read blocked anywhere (the status line, the headers, the
    body): it returns an end of file, so the attempt fails however slowly bytes arrive.
    """

    def __init__(self, seconds):
        self.expired = False
        self._end = time.monotonic() + seconds
        self._socket = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self):
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()

    def remaining(self):
        """Seconds left; raise MirrorError if none."""
        left = self._end - time.monotonic()
        if left <= 0:
            raise MirrorError("the deadline passed")
        return left

    def watch(self, sock):
        """Shut ``sock`` when the deadline passes (at once if it has)."""
        with self._lock:
            self._socket = sock
            if self.expired:
                _shut(sock)

    def _expire(self):
        with self._lock:
            self.expired = True
            if self._socket is not None:
                _shut(self._socket)


def _shut(sock):
    """Shut a (TLS) socket down in both directions; a closed one is left alone."""
    try:
        # The plain socket's shutdown, also for a TLS socket, whose own shutdown would tear
        # down its TLS state under the thread that is reading.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


@contextmanager
def _get(url, timeout, clock):
    """The 200 response to GET ``url``, following at most MAX_REDIRECTS allowed redirects."""
    for _ in range(1 + MAX_REDIRECTS):
        if not _allowed(url):
            raise MirrorError(f"refused to follow a redirect to {url} (not https://)")
        connection = _connect(url, timeout, clock)
        try:
            response = connection.getresponse()
            if response.status not in _REDIRECTS:
                if response.status != 200:
                    raise MirrorError(f"HTTP {response.status} {response.reason}",
                                      status=response.status)
                yield response
                return
            url = urljoin(url, response.getheader("Location") or "")
        finally:
            connection.close()
    raise MirrorError(f"more than {MAX_REDIRECTS} redirects (a loop?), the last to {url}")


def _connect(url, timeout, clock):
    """An HTTP(S) connection to ``url``'s host, watched by ``clock``, with the GET sent."""
    parts = urlsplit(url)
    wait = min(timeout, clock.remaining())
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=wait,
                                                 context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=wait)
    try:
        connection.connect()
        clock.watch(connection.sock)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("GET", path, headers={"User-Agent": f"scratchvae/{__version__}"})
    except BaseException:
        connection.close()
        raise
    return connection


def _copy_and_hash(response, out, file):
    """Copy at most ``file.size`` bytes of the body to ``out``; return their SHA-256.

    A Content-Length other than the file's size is refused before any byte is read, and a
    body that runs past it is cut off at one byte too many. Progress on stderr if a TTY.
    """
    announced = response.getheader("Content-Length")
    if announced is not None:
        if not announced.strip().isdigit():
            raise MirrorError(f"malformed Content-Length {announced!r}")
        if int(announced) != file.size:
            raise MirrorError(f"announced {int(announced)} bytes, but {file.name} has "
                              f"{file.size}")
    show_progress = sys.stderr.isatty()
    digest = hashlib.sha256()
    received = 0
    # read1 returns whatever has arrived (at least a byte), so no read waits for a full chunk.
    while chunk := response.read1(min(_CHUNK, file.size + 1 - received)):
        received += len(chunk)
        if received > file.size:
            raise MirrorError(f"sent more than the {file.size} bytes of {file.name}")
        out.write(chunk)
        digest.update(chunk)
        if show_progress:
            print(f"\rdownloading {file.name}: {100 * received // file.size:3d}%", end="",
                  file=sys.stderr)
    if show_progress:
        print(file=sys.stderr)
    if received != file.size:
        raise MirrorError(f"transfer truncated: received {received} of {file.size} bytes")
    return digest.hexdigest()
