"""Tests for scratchvae.tools.data (and its network half, scratchvae.tools.download).

Real MNIST is read from $SCRATCHVAE_DATA (set in CI). Downloads are exercised against a local
HTTP server on 127.0.0.1 serving a tiny synthetic dataset; an autouse guard fails any test that
would open a URL on another host.
"""
import gzip
import hashlib
import importlib
import socket
import struct
import time
from http.server import BaseHTTPRequestHandler

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import local_mirror
from scratchvae.tools.data import (
    DATASETS,
    ENV_VAR,
    ChecksumError,
    DownloadError,
    cache_dir,
    download,
    find_data_dir,
    load_mnist,
    minibatches,
    read_idx,
)

# The module object itself (not the function of the same name), to patch its urlopen and specs.
download_module = importlib.import_module("scratchvae.tools.download")

# Known facts about MNIST: per-class counts of the training and test sets.
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


# ----------------------------------------------------------------------------- helpers

def idx_bytes(array):
    """Encode a uint8 array as IDX: magic 0x000008NN, NN big-endian uint32 sizes, the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_tiny_files():
    """Four small gzipped IDX files with MNIST's names: 6 train and 3 test images of 4 x 5."""
    rng = np.random.default_rng(1234)
    arrays = {
        "train_images": rng.integers(0, 256, size=(6, 4, 5)),
        "train_labels": rng.integers(0, 10, size=6),
        "test_images": rng.integers(0, 256, size=(3, 4, 5)),
        "test_labels": rng.integers(0, 10, size=3),
    }
    names = {role: file.name for role, file in DATASETS["mnist"].files.items()}
    # mtime=0 keeps the .gz bytes, hence their checksums, the same on every run.
    blobs = {names[role]: gzip.compress(idx_bytes(a), mtime=0) for role, a in arrays.items()}
    return names, arrays, blobs


TINY_NAMES, TINY_ARRAYS, TINY_BLOBS = make_tiny_files()


def sha256(blob):
    return hashlib.sha256(blob).hexdigest()


def tiny_spec(mirrors, sha=sha256):
    """A test-only DatasetSpec for the tiny files; ``sha`` computes each expected checksum."""
    return download_module.DatasetSpec(
        files={role: download_module.DataFile(name, sha(TINY_BLOBS[name]), len(TINY_BLOBS[name]))
               for role, name in TINY_NAMES.items()},
        mirrors=tuple(mirrors))


def write_tiny(root, dataset="tiny"):
    """Put the tiny files in ``root/dataset/`` and return that directory."""
    directory = root / dataset
    directory.mkdir(parents=True, exist_ok=True)
    for name, blob in TINY_BLOBS.items():
        (directory / name).write_bytes(blob)
    return directory


def assert_verified_tiny(directory):
    """Exactly the four tiny files, byte for byte, and no stray temporary file."""
    assert sorted(p.name for p in directory.iterdir()) == sorted(TINY_BLOBS)
    for name, blob in TINY_BLOBS.items():
        assert (directory / name).read_bytes() == blob


# ----------------------------------------------------------------------------- fixtures

class MirrorHandler(BaseHTTPRequestHandler):
    """Serves ``/<mode>/<file name>``; the mode decides how the mirror misbehaves.

    good: the file. missing: 404. truncated: announces the full length, sends half, hangs up.
    short: sends half with a matching length (only the checksum can tell). corrupt: right length,
    wrong bytes. slow: waits 1 s before answering.
    """

    def do_GET(self):
        self.server.requests.append(self.path)
        mode, _, name = self.path.lstrip("/").partition("/")
        blob = TINY_BLOBS.get(name)
        if blob is None or mode == "missing":
            self.send_error(404)
            return
        if mode == "slow":
            time.sleep(1.0)
        body = {"truncated": blob[:len(blob) // 2], "short": blob[:len(blob) // 2],
                "corrupt": bytes(len(blob))}.get(mode, blob)
        self.send_response(200)
        self.send_header("Content-Length", str(len(blob) if mode == "truncated" else len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:  # the client gave up first (slow mode)
            pass

    def log_message(self, *args):  # keep the test output clean
        pass


@pytest.fixture(scope="module")
def server():
    """A local HTTP server on an ephemeral port; ``server.url(mode)`` is a mirror base URL."""
    with local_mirror(MirrorHandler) as httpd:
        yield httpd


pytestmark = pytest.mark.usefixtures("loopback_only")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No $SCRATCHVAE_DATA, and HOME and the XDG cache inside tmp_path."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


@pytest.fixture
def tiny(server, monkeypatch):
    """Register the test-only dataset "tiny", served by the good local mirror."""
    server.requests.clear()
    monkeypatch.setitem(DATASETS, "tiny", tiny_spec([server.url("good")]))
    return "tiny"


FAST = dict(retries=1, timeout=2.0, backoff=0.0)  # bounded and quick for the local server


# ----------------------------------------------------------------------------- real MNIST

@pytest.fixture(scope="module")
def mnist(mnist_root):
    """Real MNIST from $SCRATCHVAE_DATA (conftest's mnist_root skips when it is not set)."""
    return load_mnist("mnist", data_dir=mnist_root, download=False)


def test_real_mnist_shapes_dtypes_ranges(mnist):
    assert mnist.x_train.shape == (60000, 784) and mnist.x_test.shape == (10000, 784)
    assert mnist.y_train.shape == (60000,) and mnist.y_test.shape == (10000,)
    assert mnist.x_train.dtype == mnist.x_test.dtype == np.float32
    assert mnist.y_train.dtype == mnist.y_test.dtype == np.uint8
    for x in (mnist.x_train, mnist.x_test):
        assert x.min() == 0.0 and x.max() == 1.0
    for y in (mnist.y_train, mnist.y_test):
        assert set(np.unique(y)) == set(range(10))


def test_real_mnist_known_facts(mnist):
    assert mnist.y_train[:3].tolist() == [5, 0, 4]
    assert mnist.y_test[0] == 7
    assert np.bincount(mnist.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(mnist.y_test).tolist() == MNIST_TEST_COUNTS
    assert sum(MNIST_TEST_COUNTS) == 10000
    # The mean pixel intensity 0.1307 is the well-known MNIST normalisation constant.
    assert abs(mnist.x_train.mean(dtype=np.float64) - 0.1307) < 1e-4


def test_mnist_checksums_match_the_shared_sha256sums(mnist_root):
    sums = mnist_root / "mnist" / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip(f"no {sums}")
    lines = sums.read_text().splitlines()
    published = {name: digest for digest, name in (line.split() for line in lines if line.strip())}
    assert {file.name: file.sha256 for file in DATASETS["mnist"].files.values()} == published
    for file in DATASETS["mnist"].files.values():
        assert (mnist_root / "mnist" / file.name).stat().st_size == file.size


def test_dataset_table_is_complete():
    for name in ("mnist", "fashion-mnist"):
        spec = DATASETS[name]
        assert sorted(spec.files) == ["test_images", "test_labels", "train_images", "train_labels"]
        for file in spec.files.values():
            assert file.name.endswith("-ubyte.gz") and file.size > 0
            assert len(file.sha256) == 64 and int(file.sha256, 16) >= 0
        assert spec.mirrors and all(m.startswith("https://") for m in spec.mirrors)


# ----------------------------------------------------------------------------- read_idx

@pytest.mark.parametrize("compress", [True, False], ids=["gz", "plain"])
def test_read_idx_round_trip(tmp_path, compress):
    for array in (TINY_ARRAYS["train_images"], TINY_ARRAYS["train_labels"]):
        raw = idx_bytes(array)
        path = tmp_path / f"f{array.ndim}"
        path.write_bytes(gzip.compress(raw) if compress else raw)
        out = read_idx(path)
        assert out.dtype == np.uint8 and out.shape == array.shape
        np.testing.assert_array_equal(out, array)
        out[...] = 0  # an ordinary writable array


@settings(max_examples=30, deadline=None)
@given(shape=st.one_of(st.tuples(st.integers(0, 20)),
                       st.tuples(st.integers(0, 5), st.integers(1, 6), st.integers(1, 6))),
       seed=st.integers(0, 2**32 - 1))
def test_read_idx_round_trip_any_shape(tmp_path_factory, shape, seed):
    array = np.random.default_rng(seed).integers(0, 256, size=shape).astype(np.uint8)
    path = tmp_path_factory.mktemp("idx") / "f.gz"
    path.write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(path), array)


@pytest.mark.parametrize("raw, message", [
    (bytes([0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 0, 1, 7]), "magic number 0x00000802"),  # 2-D
    (bytes([0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]), "magic number 0x00000d01"),  # float32
    (b"\x89PNG", "magic number 0x89504e47"),
    (bytes([0, 0, 8]), "too short"),
    (bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0]), "ends after 10 bytes"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 5, 1, 2, 3]), "truncated or corrupt"),       # 3 of 5 bytes
    (bytes([0, 0, 8, 1, 0, 0, 0, 2, 1, 2, 3]), "truncated or corrupt"),       # 1 extra byte
], ids=["2-D", "float-type", "not-idx", "no-header", "short-header", "truncated", "too-long"])
def test_read_idx_rejects_bad_files(tmp_path, raw, message):
    path = tmp_path / "bad-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(raw))
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    blob = TINY_BLOBS[TINY_NAMES["train_images"]]
    path = tmp_path / "cut.gz"
    path.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(ValueError, match="not a readable gzip file") as info:
        read_idx(path)
    assert str(path) in str(info.value)


# ----------------------------------------------------------------------------- download

def test_download_from_a_good_mirror(tiny, tmp_path, server):
    dest = download(tiny, tmp_path / "tiny", **FAST)
    assert dest == tmp_path / "tiny"
    assert_verified_tiny(dest)
    assert len(server.requests) == 4


@pytest.mark.parametrize("bad_mode", ["truncated", "short", "corrupt"])
def test_bad_mirror_then_good_one(tiny, tmp_path, server, bad_mode):
    dest = download(tiny, tmp_path / "tiny", mirrors=[server.url(bad_mode), server.url("good")],
                    **FAST)
    assert_verified_tiny(dest)
    # each file: the bad mirror twice (1 + retries), then the good one once
    assert sum(r.startswith(f"/{bad_mode}/") for r in server.requests) == 4 * 2
    assert sum(r.startswith("/good/") for r in server.requests) == 4


def test_404_is_not_retried_and_the_next_mirror_is_used(tiny, tmp_path, server):
    download(tiny, tmp_path / "tiny", mirrors=[server.url("missing"), server.url("good")],
             retries=3, timeout=2.0, backoff=0.0)
    assert_verified_tiny(tmp_path / "tiny")
    assert sum(r.startswith("/missing/") for r in server.requests) == 4


def test_unreachable_and_slow_mirrors_are_skipped(tiny, tmp_path, server):
    with socket.socket() as s:  # a port that was free a moment ago: connection refused
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}/"
    download(tiny, tmp_path / "tiny", mirrors=[closed, server.url("slow"), server.url("good")],
             retries=0, timeout=0.1, backoff=0.0)
    assert_verified_tiny(tmp_path / "tiny")


@pytest.mark.parametrize("case", ["wrong-sums", "corrupt-everywhere"])
def test_no_verified_copy_anywhere_leaves_nothing(tiny, tmp_path, server, monkeypatch, case):
    if case == "wrong-sums":
        monkeypatch.setitem(DATASETS, "tiny", tiny_spec([server.url("good")],
                                                        sha=lambda blob: "0" * 64))
        mirrors = None
    else:
        mirrors = [server.url("corrupt"), server.url("truncated")]
    dest = tmp_path / "tiny"
    with pytest.raises(DownloadError, match="SHA-256 mismatch|truncated") as info:
        download(tiny, dest, mirrors=mirrors, **FAST)
    assert TINY_NAMES["train_images"] in str(info.value)
    assert list(dest.iterdir()) == []  # neither the final name nor a temporary file


def test_download_keeps_good_files_and_replaces_a_corrupt_one(tiny, tmp_path, server):
    dest = write_tiny(tmp_path)
    bad = dest / TINY_NAMES["test_labels"]
    bad.write_bytes(b"garbage")
    download(tiny, dest, **FAST)
    assert_verified_tiny(dest)
    assert server.requests == [f"/good/{bad.name}"]


def test_download_argument_errors(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"dataset: expected one of \['fashion-mnist', 'mnist'"):
        download("cifar", tmp_path)
    with pytest.raises(ValueError, match="mirrors: expected at least one"):
        download(tiny, tmp_path, mirrors=[])
    with pytest.raises(ValueError, match="mirrors: expected an https:// base URL"):
        download(tiny, tmp_path, mirrors=["file:///etc/"])
    with pytest.raises(ValueError, match="retries: expected an integer >= 0, got -1"):
        download(tiny, tmp_path, retries=-1)


# ----------------------------------------------------------------------------- finding data

def test_corrupt_file_in_data_dir_is_named(tiny, isolated, server):
    directory = write_tiny(isolated / "data")
    bad = directory / TINY_NAMES["train_labels"]
    bad.write_bytes(b"not the labels")
    for call in (lambda: find_data_dir(tiny, isolated / "data"),
                 lambda: load_mnist(tiny, isolated / "data")):
        with pytest.raises(ChecksumError) as info:
            call()
        message = str(info.value)
        assert str(bad) in message
        assert DATASETS["tiny"].files["train_labels"][1] in message  # expected
        assert hashlib.sha256(b"not the labels").hexdigest() in message  # actual
        assert "delete it" in message and "\n" not in message
    assert server.requests == []  # a corrupt file is reported, not silently re-downloaded


def test_lookup_order_explicit_then_env_then_cache(tiny, isolated, monkeypatch):
    explicit, env = write_tiny(isolated / "explicit"), write_tiny(isolated / "env")
    cached = write_tiny(isolated / "xdg" / "scratchvae")
    monkeypatch.setenv(ENV_VAR, str(isolated / "env"))
    assert find_data_dir(tiny, isolated / "explicit") == explicit
    assert find_data_dir(tiny) == env
    assert find_data_dir(tiny, isolated / "empty") == env  # a root without the files is skipped
    monkeypatch.delenv(ENV_VAR)
    assert find_data_dir(tiny) == cached


def test_cache_dir_follows_xdg_then_home(isolated, monkeypatch):
    assert cache_dir() == isolated / "xdg" / "scratchvae"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # ignored, as the XDG spec says
    assert cache_dir() == isolated / "home" / ".cache" / "scratchvae"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == isolated / "home" / ".cache" / "scratchvae"


def test_partial_set_of_files_is_skipped(tiny, isolated):
    partial = write_tiny(isolated / "partial")
    (partial / TINY_NAMES["test_images"]).unlink()
    cached = write_tiny(isolated / "xdg" / "scratchvae")
    assert find_data_dir(tiny, isolated / "partial") == cached


def test_nothing_found_and_download_off_lists_every_place(isolated, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(isolated / "env"))
    with pytest.raises(FileNotFoundError) as info:
        load_mnist("mnist", data_dir=isolated / "explicit", download=False)
    message = str(info.value)
    for place in (isolated / "explicit" / "mnist", isolated / "env" / "mnist",
                  isolated / "xdg" / "scratchvae" / "mnist"):
        assert str(place) in message
    for name, _, _ in DATASETS["mnist"].files.values():
        assert name in message
    assert ENV_VAR in message and "--data-dir" in message and "Downloading is off" in message


def test_unset_places_are_reported_as_not_set(isolated):
    with pytest.raises(FileNotFoundError) as info:
        find_data_dir("mnist")
    assert "the folder given (not set)" in str(info.value)
    assert f"${ENV_VAR} (not set)" in str(info.value)
    assert "\n" not in str(info.value)  # one line: it ends up as a command-line error


# ----------------------------------------------------------------------------- load_mnist

def test_load_tiny_from_a_data_dir(tiny, isolated, server):
    write_tiny(isolated / "data")
    data = load_mnist(tiny, isolated / "data")
    assert server.requests == []
    for x, key in ((data.x_train, "train_images"), (data.x_test, "test_images")):
        n = len(TINY_ARRAYS[key])
        assert x.shape == (n, 20) and x.dtype == np.float32
        np.testing.assert_array_equal(x, TINY_ARRAYS[key].reshape(n, 20).astype(np.float32) / 255)
    np.testing.assert_array_equal(data.y_train, TINY_ARRAYS["train_labels"])
    assert data.y_test.dtype == np.uint8


def test_load_downloads_into_the_cache_once(tiny, isolated, server):
    data = load_mnist(tiny)
    assert_verified_tiny(isolated / "xdg" / "scratchvae" / "tiny")
    assert len(server.requests) == 4
    again = load_mnist(tiny)
    assert len(server.requests) == 4  # the second call reads the cache
    np.testing.assert_array_equal(again.x_train, data.x_train)


def test_load_downloads_into_an_explicit_data_dir(tiny, isolated):
    load_mnist(tiny, isolated / "mine")
    assert_verified_tiny(isolated / "mine" / "tiny")
    assert not (isolated / "xdg").exists()


def test_load_with_failing_download_explains_everything(server, isolated, monkeypatch):
    monkeypatch.setitem(DATASETS, "tiny", tiny_spec([server.url("missing")]))
    with pytest.raises(FileNotFoundError) as info:
        load_mnist("tiny")
    message = str(info.value)
    cache = isolated / "xdg" / "scratchvae" / "tiny"
    assert str(cache) in message and "HTTP 404" in message and ENV_VAR in message
    assert list(cache.iterdir()) == []


def test_unknown_dataset_name():
    for call in (lambda: load_mnist("cifar10"), lambda: find_data_dir("MNIST")):
        with pytest.raises(ValueError, match="dataset: expected one of"):
            call()


# ----------------------------------------------------------------------------- minibatches

@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), batch_size=st.integers(1, 64), seed=st.integers(0, 2**32 - 1),
       drop_last=st.booleans())
def test_minibatches_cover_each_index_once(n, batch_size, seed, drop_last):
    batches = list(minibatches(n, batch_size, np.random.default_rng(seed), drop_last=drop_last))
    sizes = [len(b) for b in batches]
    seen = np.concatenate(batches) if batches else np.array([], dtype=int)
    assert len(np.unique(seen)) == len(seen)  # no index twice
    if drop_last:
        assert sizes == [batch_size] * (n // batch_size)
    else:
        np.testing.assert_array_equal(np.sort(seen), np.arange(n))
        assert sizes[:-1] == [batch_size] * (len(sizes) - 1)
        if n:
            assert sizes[-1] == (n % batch_size or batch_size)


def test_minibatches_reproducible_and_shuffled():
    a = np.concatenate(list(minibatches(1000, 128, np.random.default_rng(5))))
    b = np.concatenate(list(minibatches(1000, 128, np.random.default_rng(5))))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, np.arange(1000))


def test_minibatches_in_order_and_last_batch_kept():
    batches = list(minibatches(10, 4, rng=None, shuffle=False))
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(list(minibatches(10, 4, rng=None, shuffle=False, drop_last=True))) == 2


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=10, batch_size=0), "batch_size: expected an integer >= 1, got 0"),
    (dict(n=10, batch_size=-3), "batch_size: expected an integer >= 1, got -3"),
    (dict(n=10, batch_size=2.5), "batch_size: expected an integer >= 1, got 2.5"),
    (dict(n=-1, batch_size=4), "n: expected an integer >= 0, got -1"),
    (dict(n=10, batch_size=4, rng=None), "rng: expected a numpy.random.Generator"),
])
def test_minibatches_argument_errors(kwargs, message):
    kwargs.setdefault("rng", np.random.default_rng(0))
    with pytest.raises(ValueError, match=message):
        minibatches(**kwargs)
