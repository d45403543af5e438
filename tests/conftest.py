"""Shared test configuration.

Hypothesis: no per-example deadline, because the first call of a Numba kernel
compiles it (and under NUMBA_DISABLE_JIT=1 every loop runs in Python).
"""

import contextlib
import os
import shutil
import socket
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("default", deadline=None, max_examples=60)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

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
    from scratchvae.classroom.handout import write_handout

    folder = tmp_path_factory.mktemp("solved")
    project, bodies = write_handout(folder / "solved"), write_handout(folder / "bodies", tasks=())
    shutil.rmtree(project / "studentvae")
    shutil.copytree(bodies / "studentvae", project / "studentvae")
    return project
