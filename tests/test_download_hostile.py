"""Downloads against mirrors that stall, flood, lie, loop and hang up (docs/data.md#what-is-guaranteed).

Every mirror is a thread of this process serving 127.0.0.1; the ``loopback_only``
guard fails a test that would connect anywhere else. The file is 1000 bytes and the
deadlines are fractions of a second, so each test takes well under a second when
the code is right (and far longer, or fails, when it is not). No test measures time.
"""

import hashlib
import socket
import struct
import time
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest

from conftest import local_mirror
from scratchvae.tools.download import DATASETS, MIRROR_ENV, DataFile, DatasetSpec, DownloadError, download
from scratchvae.tools.http_get import MAX_REDIRECTS

pytestmark = pytest.mark.usefixtures("loopback_only")

BLOB = np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes()
NAME = "one-file.gz"
# Short waits: a stalled mirror is abandoned at the deadline, never by the read timeout.
HOSTILE = dict(retries=0, timeout=30.0, backoff=0.0, deadline=0.5)


class HostileHandler(BaseHTTPRequestHandler):
    """Serves ``/<mode>/.../<file name>``; the mode says how the mirror misbehaves."""

    def do_GET(self):
        self.server.requests.append(self.path)
        mode, name = self.path.split("/")[1], self.path.rsplit("/", 1)[1]
        if name != NAME or mode == "missing":
            self.send_error(404)
            return
        try:
            getattr(self, "serve_" + mode.replace("-", "_"))()
        except OSError:  # the client hung up first, as it should
            pass

    def serve_good(self):
        self.send_body(BLOB)

    def send_body(self, body, length=None):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)) if length is None else length)
        self.end_headers()
        self.wfile.write(body)

    def serve_trickle(self):
        """The right length announced, then a byte every 50 ms, and never the last one."""
        self.send_response(200)
        self.send_header("Content-Length", str(len(BLOB)))
        self.end_headers()
        for byte in BLOB[:-1]:
            self.wfile.write(bytes([byte]))
            time.sleep(0.05)
        time.sleep(60)

    def serve_trickle_headers(self):
        """The status line a byte every 50 ms: the headers never end."""
        for byte in b"HTTP/1.0 200 OK\r\nX-Padding: " + b"x" * 10_000:
            self.wfile.write(bytes([byte]))
            time.sleep(0.05)

    def serve_flood(self):
        """No length announced, and a body without end."""
        self.send_response(200)
        self.end_headers()
        while True:
            self.wfile.write(b"\0" * 65536)

    def serve_too_long(self):
        self.send_body(BLOB, length=str(1000 * len(BLOB)))

    def serve_malformed_length(self):
        self.send_body(BLOB, length="1000abc")

    def serve_loop(self):
        self.redirect(self.path)

    def serve_redirect_good(self):
        self.redirect(f"/good/{NAME}")

    def serve_redirect_insecure(self):
        self.redirect(f"http://example.com/{NAME}")

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def serve_reset(self):
        """Half the body, then a TCP reset (SO_LINGER 0) instead of an orderly close."""
        self.send_response(200)
        self.send_header("Content-Length", str(len(BLOB)))
        self.end_headers()
        self.wfile.write(BLOB[:500])
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def server():
    """A hostile mirror on 127.0.0.1; ``server.url(mode)`` is a mirror base URL."""
    with local_mirror(HostileHandler) as httpd:
        yield httpd


@pytest.fixture
def one(server, monkeypatch):
    """The test-only dataset "one": a single 1000-byte file."""
    server.requests.clear()
    spec = DatasetSpec(files={"train_images": DataFile(NAME, hashlib.sha256(BLOB).hexdigest(),
                                                       len(BLOB))},
                       mirrors=(server.url("good"),))
    monkeypatch.setitem(DATASETS, "one", spec)
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    return "one"


def fetch_after(one, tmp_path, server, capsys, mode, **kwargs):
    """Download from the ``mode`` mirror, then a good one; return the failure lines printed."""
    dest = download(one, tmp_path / "one", mirrors=[server.url(mode), server.url("good")],
                    **{**HOSTILE, **kwargs})
    assert sorted(p.name for p in dest.iterdir()) == [NAME]  # no .part left
    assert (dest / NAME).read_bytes() == BLOB
    return capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("mode", ["trickle", "trickle-headers"])
def test_a_trickling_mirror_is_abandoned_at_the_deadline(one, tmp_path, server, capsys, mode):
    lines = fetch_after(one, tmp_path, server, capsys, mode)
    assert lines == [f"download: {server.url(mode)}{NAME} (attempt 1/1): gave up at the "
                     "deadline of 0.5 s"]


def test_a_flooding_mirror_is_cut_off_at_the_file_size(one, tmp_path, server, capsys):
    lines = fetch_after(one, tmp_path, server, capsys, "flood")
    assert lines[0].endswith(f"sent more than the 1000 bytes of {NAME}")


@pytest.mark.parametrize("mode, what", [
    ("too-long", f"announced 1000000 bytes, but {NAME} has 1000"),
    ("malformed-length", "malformed Content-Length '1000abc'"),
])
def test_a_lying_content_length_moves_on_to_the_next_mirror(one, tmp_path, server, capsys,
                                                            mode, what):
    assert fetch_after(one, tmp_path, server, capsys, mode)[0].endswith(what)


def test_a_redirect_loop_is_bounded(one, tmp_path, server, capsys):
    lines = fetch_after(one, tmp_path, server, capsys, "loop")
    assert f"more than {MAX_REDIRECTS} redirects (a loop?)" in lines[0]
    assert sum(r.startswith("/loop/") for r in server.requests) == 1 + MAX_REDIRECTS


def test_redirects_are_followed_only_to_https_or_this_machine(one, tmp_path, server, capsys):
    assert fetch_after(one, tmp_path, server, capsys, "redirect-good") == []
    lines = fetch_after(one, tmp_path / "again", server, capsys, "redirect-insecure")
    assert lines[0].endswith(f"refused to follow a redirect to http://example.com/{NAME} "
                             "(not https://)")


def test_a_reset_connection_moves_on_to_the_next_mirror(one, tmp_path, server, capsys):
    lines = fetch_after(one, tmp_path, server, capsys, "reset")
    assert len(lines) == 1 and f"{server.url('reset')}{NAME} (attempt 1/1)" in lines[0]


def test_the_final_error_lists_every_mirror_and_attempt(one, tmp_path, server, capsys):
    mirrors = [server.url(mode) for mode in ("flood", "missing", "malformed-length")]
    with pytest.raises(DownloadError) as info:
        download(one, tmp_path / "one", mirrors=mirrors, **{**HOSTILE, "retries": 2})
    attempts = str(info.value).splitlines()[1:]
    assert [a.split(": ", 1)[0].strip() for a in attempts] == [
        f"{mirrors[0]}{NAME} (attempt 1/3)", f"{mirrors[0]}{NAME} (attempt 2/3)",
        f"{mirrors[0]}{NAME} (attempt 3/3)",
        f"{mirrors[1]}{NAME} (attempt 1/3)",  # a 404 is not retried
        f"{mirrors[2]}{NAME} (attempt 1/3)", f"{mirrors[2]}{NAME} (attempt 2/3)",
        f"{mirrors[2]}{NAME} (attempt 3/3)"]
    assert attempts[3].endswith("HTTP 404 Not Found")
    assert capsys.readouterr().err.count("download: ") == 7  # each retry said as it happens
    assert list((tmp_path / "one").iterdir()) == []


def test_plain_http_is_refused_except_to_this_machine(one, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="mirrors: expected an https:// base URL"):
        download(one, tmp_path, mirrors=["http://example.com/"])
    monkeypatch.setenv(MIRROR_ENV, "http://example.com/")
    with pytest.raises(ValueError, match=r"\$SCRATCHVAE_MIRROR: expected an https:// base URL"):
        download(one, tmp_path)
    for dataset in ("mnist", "fashion-mnist"):
        assert all(m.startswith("https://") for m in DATASETS[dataset].mirrors)


def test_the_mirror_variable_points_downloads_at_ones_own_mirror(one, tmp_path, server,
                                                                 monkeypatch):
    """$SCRATCHVAE_MIRROR/<dataset>/<file>: the layout of a data folder."""
    monkeypatch.setenv(MIRROR_ENV, server.url("good"))
    download(one, tmp_path / "one", **HOSTILE)
    assert server.requests == [f"/good/one/{NAME}"]


def test_part_files_left_by_a_killed_download_are_removed(one, tmp_path, server):
    dest = tmp_path / "one"
    dest.mkdir()
    (dest / f".{NAME}.k1ll3d.part").write_bytes(BLOB[:300])
    download(one, dest, **HOSTILE)
    assert sorted(p.name for p in dest.iterdir()) == [NAME]


def test_the_sizes_are_the_published_ones():
    sizes = {name: {role: f.size for role, f in DATASETS[name].files.items()}
             for name in ("mnist", "fashion-mnist")}
    assert sizes["fashion-mnist"] == {"train_images": 26421880, "train_labels": 29515,
                                      "test_images": 4422102, "test_labels": 5148}
    assert sizes["mnist"] == {"train_images": 9912422, "train_labels": 28881,
                              "test_images": 1648877, "test_labels": 4542}
