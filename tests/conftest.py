"""Shared test configuration.

Hypothesis: no per-example deadline, because the first call of a Numba kernel
compiles it (and under NUMBA_DISABLE_JIT=1 every loop runs in Python).
"""

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("default", deadline=None, max_examples=60)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parents[1]
JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") == "1"


@pytest.fixture
def rng():
    """A fresh, seeded generator for each test: results never depend on test order."""
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def mnist_root():
    """The folder holding ``mnist/`` (``$SCRATCHVAE_DATA``), or skip with the reason."""
    root = os.environ.get("SCRATCHVAE_DATA")
    if not root or not (Path(root) / "mnist").is_dir():
        pytest.skip("real MNIST not found: set SCRATCHVAE_DATA to the folder holding mnist/")
    return Path(root)


@pytest.fixture(scope="session")
def site(tmp_path_factory, mnist_root):
    """The course site, built once per test session in quick mode with warnings as errors.

    tests/test_site.py and tests/test_browser.py read it. Under pytest-xdist the first worker
    to ask builds it in the session's shared folder and the others wait for it.
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent
    html, failed = shared / "site" / "html", shared / "site-failed.txt"
    try:
        (shared / "site-claimed").open("x").close()
    except FileExistsError:  # another worker builds it
        deadline = time.monotonic() + 1200
        while not html.is_dir() and not failed.exists():
            assert time.monotonic() < deadline, "the site build by another worker did not finish in 20 minutes"
            time.sleep(2)
        assert not failed.exists(), failed.read_text()
        return html
    env = dict(os.environ, SCRATCHVAE_QUICK="1", MPLBACKEND="Agg", MPLCONFIGDIR=str(shared / "site-mpl"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html",
               "-d", str(shared / "site-doctrees"), str(ROOT / "docs"), str(shared / "site" / "html.part")]
    try:
        run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        failed.write_text("the site build took more than 15 minutes")
        raise
    if run.returncode != 0:
        failed.write_text("the site build failed:\n" + run.stdout[-3000:] + run.stderr[-5000:])
        pytest.fail(failed.read_text())
    html.with_name("html.part").rename(html)  # whole or not at all, for the workers waiting
    return html


@pytest.fixture
def loopback_only(monkeypatch):
    """Fail any attempt to connect to a host other than 127.0.0.1 (downloads stay local)."""
    real_create_connection = socket.create_connection

    def guarded(address, *args, **kwargs):
        assert address[0] == "127.0.0.1", f"a test tried to contact {address[0]}"
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)


@contextlib.contextmanager
def local_mirror(handler_class):
    """An HTTP server on 127.0.0.1 (an ephemeral port) in a thread; ``url(mode)`` is a mirror base URL.

    ``requests`` collects what the handler records; the server stops when the block ends.
    """
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    httpd.daemon_threads = True
    httpd.requests = []
    httpd.url = lambda mode: f"http://127.0.0.1:{httpd.server_address[1]}/{mode}/"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    """A classroom handout of every task, filled with the reference bodies: a student who finished."""
    from scratchvae.classroom.handout import LECTURE, cut, write_handout

    project = write_handout(tmp_path_factory.mktemp("solved") / "solved")
    for path in LECTURE.glob("*.py"):
        (project / "studentvae" / path.name).write_text(cut(path.stem, path.read_text(), stubbed=()))
    return project
