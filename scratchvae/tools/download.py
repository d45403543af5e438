"""Known datasets, checksums and a careful downloader (standard library only).

This is the network half of :mod:`scratchvae.tools.data`; users normally import the names from there.
A download is "careful" in three ways, each explained where it happens:

1. every file is checked against a SHA-256 sum published with this package;
2. bytes are written to a temporary file next to the target and renamed into place with
   ``os.replace`` only once they verify, so a failed, truncated or corrupt transfer never leaves a
   file under the final name;
3. several mirrors are tried in turn, each a bounded number of times.

Guide: docs/data.md#checksums-and-downloads
"""
import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.error
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit
from urllib.request import urlopen

from scratchvae.lecture.validate import check_int


class DatasetSpec(NamedTuple):
    """The four IDX files of an MNIST-like dataset and where to get them.

    Attributes
    ----------
    files : dict of str to (str, str)
        Role (``"train_images"``, ``"train_labels"``, ``"test_images"``, ``"test_labels"``) to
        ``(file name, SHA-256 hex digest of that .gz file)``.
    mirrors : tuple of str
        Base URLs tried in order; the URL of a file is ``base + file name``.
    """

    files: dict
    mirrors: tuple


# The file names are those of the original MNIST release; Fashion-MNIST reuses them.
_MNIST_NAMES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

DATASETS = {
    # SHA-256 sums of the original MNIST files (as in the SHA256SUMS beside them) (the files' MD5s match the ones
    # published by LeCun et al.; TensorFlow Datasets lists the same SHA-256 sums).
    "mnist": DatasetSpec(
        files={
            "train_images": (_MNIST_NAMES["train_images"],
                             "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
            "train_labels": (_MNIST_NAMES["train_labels"],
                             "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
            "test_images": (_MNIST_NAMES["test_images"],
                            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
            "test_labels": (_MNIST_NAMES["test_labels"],
                            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
        },
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
    # Zalando publishes MD5s only; these SHA-256 sums are the ones TensorFlow Datasets
    # (url_checksums/fashion_mnist.txt) and Keras (datasets/fashion_mnist.py) both pin for the
    # same files. This machine has no copy to check them against.
    "fashion-mnist": DatasetSpec(
        files={
            "train_images": (_MNIST_NAMES["train_images"],
                             "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
            "train_labels": (_MNIST_NAMES["train_labels"],
                             "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
            "test_images": (_MNIST_NAMES["test_images"],
                            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
            "test_labels": (_MNIST_NAMES["test_labels"],
                            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
        },
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        ),
    ),
}

_CHUNK = 1 << 16  # bytes per read: large enough to be fast, small enough to show progress


class ChecksumError(ValueError):
    """A file's SHA-256 differs from the published one (corrupt, truncated or another version)."""


class DownloadError(OSError):
    """No mirror delivered a file that verifies; the message lists every attempt."""


def get_spec(dataset):
    """Return the :class:`DatasetSpec` of a dataset name, or raise a ``ValueError`` listing them.

    Examples
    --------
    >>> get_spec("mnist").files["train_labels"][0]
    'train-labels-idx1-ubyte.gz'
    """
    if dataset not in DATASETS:
        raise ValueError(f"dataset: expected one of {sorted(DATASETS)}, got {dataset!r}")
    return DATASETS[dataset]


def sha256_file(path):
    """Return the SHA-256 hex digest of a file, read in chunks.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "empty"
    >>> _ = p.write_bytes(b"")
    >>> sha256_file(p)[:16]
    'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(dataset, dest_dir, mirrors=None, retries=2, timeout=30.0, backoff=1.0):
    """Download the four files of ``dataset`` into ``dest_dir``, verified and atomically.

    Files already in ``dest_dir`` with the right checksum are kept; a file with the wrong
    checksum is replaced, but only once a verified copy has arrived.
    Guide: docs/data.md#checksums-and-downloads

    Parameters
    ----------
    dataset : str
        A key of :data:`DATASETS` (``"mnist"`` or ``"fashion-mnist"``).
    dest_dir : str or Path
        Directory that receives the files (created if missing), usually ``<root>/<dataset>``.
    mirrors : sequence of str, optional
        Base URLs to try in order instead of the dataset's known mirrors.
    retries : int, default 2
        Extra attempts per mirror after a failed one. An HTTP 4xx answer (e.g. 404) is not
        retried: the file is not on that mirror.
    timeout : float, default 30.0
        Seconds to wait for the connection and for each read.
    backoff : float, default 1.0
        Seconds to wait before retrying the same mirror.

    Returns
    -------
    Path
        ``dest_dir``.

    Raises
    ------
    DownloadError
        If some file could not be fetched and verified from any mirror. No file, and no
        temporary file, is left behind for it.

    Examples
    --------
    >>> download("mnist", "/tmp/mnist", retries=1)  # doctest: +SKIP
    PosixPath('/tmp/mnist')
    """
    spec = get_spec(dataset)
    mirrors = spec.mirrors if mirrors is None else tuple(mirrors)
    if not mirrors:
        raise ValueError("mirrors: expected at least one base URL, got an empty sequence")
    for base in mirrors:
        if urlsplit(base).scheme not in ("http", "https"):
            raise ValueError(f"mirrors: expected http:// or https:// base URLs, got {base!r}")
    retries = check_int("retries", retries, minimum=0)
    if not timeout > 0:
        raise ValueError(f"timeout: expected seconds > 0, got {timeout!r}")

    dest_dir = Path(dest_dir).expanduser()
    dest_dir.mkdir(parents=True, exist_ok=True)
    for name, sha256 in spec.files.values():
        target = dest_dir / name
        if target.is_file() and sha256_file(target) == sha256:
            continue
        _download_file(name, sha256, target, mirrors, retries, timeout, backoff)
    return dest_dir


def _download_file(name, sha256, target, mirrors, retries, timeout, backoff):
    """Try every mirror, ``1 + retries`` times each, until one copy of ``name`` verifies."""
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + name
        for attempt in range(1 + retries):
            try:
                _fetch_verified(url, sha256, target, timeout)
                return
            except urllib.error.HTTPError as err:
                failures.append(f"{url}: HTTP {err.code} {err.reason}")
                if 400 <= err.code < 500:
                    break  # the server says the file is not there: try the next mirror
            # OSError covers refused connections, timeouts and our truncation check;
            # HTTPException covers malformed answers; ChecksumError a complete but wrong file.
            except (OSError, http.client.HTTPException, ChecksumError) as err:
                failures.append(f"{url}: {err}")
            if attempt < retries:
                time.sleep(backoff)
    raise DownloadError(f"could not download {name} from any mirror; attempts:\n  "
                        + "\n  ".join(failures))


def _fetch_verified(url, sha256, target, timeout):
    """Fetch ``url`` into a temporary file beside ``target``; rename it there if it verifies."""
    # Same directory as the target, so os.replace is a rename within one file system, which is
    # atomic: readers see either the old state or the complete new file, never a partial one.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=timeout) as response:
            actual = _copy_and_hash(response, out, label=target.name)
            # Flush to disk before the rename, or a crash could leave an empty file under the name.
            out.flush()
            os.fsync(out.fileno())
        if actual != sha256:
            raise ChecksumError(f"SHA-256 mismatch: expected {sha256}, got {actual}")
        os.replace(tmp, target)
    finally:
        # After a successful os.replace the temporary name is gone; on any failure, remove it.
        if os.path.exists(tmp):
            os.unlink(tmp)


def _copy_and_hash(response, out, label):
    """Copy an HTTP response body to ``out``; return its SHA-256. Progress on stderr if a TTY."""
    total = int(response.headers.get("Content-Length") or 0)
    show_progress = sys.stderr.isatty()
    digest = hashlib.sha256()
    received = 0
    while chunk := response.read(_CHUNK):
        out.write(chunk)
        digest.update(chunk)
        received += len(chunk)
        if show_progress and total:
            print(f"\rdownloading {label}: {100 * received // total:3d}%", end="", file=sys.stderr)
    if show_progress:
        print(file=sys.stderr)
    # http.client does not complain when the connection closes early during chunked reads,
    # so compare with the announced length ourselves (the checksum would catch it too, later).
    if total and received != total:
        raise OSError(f"transfer truncated: received {received} of {total} bytes")
    return digest.hexdigest()
