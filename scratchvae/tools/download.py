"""Known datasets, checksums and a careful downloader (standard library only).

This is the network half of :mod:`scratchvae.tools.data`; users normally import the names from there.
A download is "careful" in four ways, each explained where it happens:

1. every file is checked against a SHA-256 sum and a size published with this package;
2. bytes are written to a temporary file next to the target and renamed into place with
   ``os.replace`` only once they verify, so a failed, truncated or corrupt transfer never leaves a
   file under the final name (and a ``.part`` left by a killed process is removed next time);
3. a mirror cannot stall, flood or derail it: each attempt has an overall deadline, no more
   bytes than the file's size are accepted, only HTTPS is spoken (plain HTTP only to this
   machine) and redirects are bounded (the HTTP plumbing, :mod:`scratchvae.tools.http_get`);
4. several mirrors are tried in turn, each a bounded number of times, whatever goes wrong.

``$SCRATCHVAE_MIRROR`` points the package at one's own mirror (for instance
``python -m http.server`` in a folder holding ``mnist/``).
Guide: docs/data.md#checksums-and-downloads, docs/data.md#what-is-guaranteed
"""
import hashlib
import http.client
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from scratchvae.lecture.validate import check_int
from scratchvae.tools.http_get import _CHUNK, MirrorError, _allowed, _copy_and_hash, _Deadline, _get


class DataFile(NamedTuple):
    """One published file: its name, the SHA-256 hex digest and the size in bytes of its .gz."""

    name: str
    sha256: str
    size: int


class DatasetSpec(NamedTuple):
    """The four IDX files of an MNIST-like dataset and where to get them.

    Attributes
    ----------
    files : dict of str to DataFile
        Role (``"train_images"``, ``"train_labels"``, ``"test_images"``, ``"test_labels"``) to
        the file's name, SHA-256 and size.
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


def _files(sums_and_sizes):
    """{role: DataFile} from {role: (SHA-256, size)}, with MNIST's file names."""
    return {role: DataFile(_MNIST_NAMES[role], sha256, size)
            for role, (sha256, size) in sums_and_sizes.items()}


DATASETS = {
    # SHA-256 sums and sizes of the original MNIST files (the files' MD5s match the ones
    # published by LeCun et al.; TensorFlow Datasets lists the same SHA-256 sums).
    "mnist": DatasetSpec(
        files=_files({
            "train_images": ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                             9912422),
            "train_labels": ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                             28881),
            "test_images": ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                            1648877),
            "test_labels": ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                            4542),
        }),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
    # Zalando publishes MD5s and sizes only; these SHA-256 sums are the ones TensorFlow Datasets
    # (url_checksums/fashion_mnist.txt) and Keras (datasets/fashion_mnist.py) both pin for the
    # same files. This machine has no copy to check them against. Zalando's own mirror speaks
    # plain HTTP only, so the second mirror is the copy in Zalando's GitHub repository.
    "fashion-mnist": DatasetSpec(
        files=_files({
            "train_images": ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                             26421880),
            "train_labels": ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                             29515),
            "test_images": ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                            4422102),
            "test_labels": ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                            5148),
        }),
        mirrors=(
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ),
    ),
}

# $SCRATCHVAE_MIRROR: one base URL; a file is fetched from <base>/<dataset>/<file name>,
# the layout of a data folder, so a web server in a folder holding mnist/ is a mirror.
MIRROR_ENV = "SCRATCHVAE_MIRROR"


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


def download(dataset, dest_dir, mirrors=None, retries=2, timeout=30.0, backoff=1.0,
             deadline=600.0):
    """Download the four files of ``dataset`` into ``dest_dir``, verified and atomically.

    Files already in ``dest_dir`` with the right checksum are kept; a file with the wrong
    checksum is replaced, but only once a verified copy has arrived. Temporary ``.part`` files
    that a killed download left in ``dest_dir`` are removed first.
    Guide: docs/data.md#checksums-and-downloads

    Parameters
    ----------
    dataset : str
        A key of :data:`DATASETS` (``"mnist"`` or ``"fashion-mnist"``).
    dest_dir : str or Path
        Directory that receives the files (created if missing), usually ``<root>/<dataset>``.
    mirrors : sequence of str, optional
        Base URLs to try in order. Default: ``$SCRATCHVAE_MIRROR + "<dataset>/"`` if that
        variable is set, else the dataset's known mirrors. Each must be ``https://``; plain
        ``http://`` is accepted only for this machine (127.0.0.1, ::1, localhost).
    retries : int, default 2
        Extra attempts per mirror after a failed one. An HTTP 4xx answer (e.g. 404) is not
        retried: the file is not on that mirror.
    timeout : float, default 30.0
        Seconds to wait for the connection and for each read.
    backoff : float, default 1.0
        Seconds to wait before retrying the same mirror.
    deadline : float, default 600.0
        Seconds one attempt at one file may take in all, however the bytes trickle in.

    Returns
    -------
    Path
        ``dest_dir``.

    Raises
    ------
    DownloadError
        If some file could not be fetched and verified from any mirror; the message lists each
        attempt and what the mirror did. No file, and no temporary file, is left behind for it.
    ValueError
        If a mirror URL (or ``$SCRATCHVAE_MIRROR``) is not an allowed URL.

    Examples
    --------
    >>> download("mnist", "/tmp/mnist", retries=1)  # doctest: +SKIP
    PosixPath('/tmp/mnist')
    """
    spec = get_spec(dataset)
    mirrors = _default_mirrors(dataset, spec) if mirrors is None else tuple(mirrors)
    if not mirrors:
        raise ValueError("mirrors: expected at least one base URL, got an empty sequence")
    for base in mirrors:
        _check_url("mirrors", base)
    retries = check_int("retries", retries, minimum=0)
    for name, value in (("timeout", timeout), ("deadline", deadline)):
        if not value > 0:
            raise ValueError(f"{name}: expected seconds > 0, got {value!r}")

    dest_dir = Path(dest_dir).expanduser()
    dest_dir.mkdir(parents=True, exist_ok=True)
    for file in spec.files.values():
        for stale in dest_dir.glob(f".{file.name}.*.part"):
            stale.unlink(missing_ok=True)
        target = dest_dir / file.name
        if target.is_file() and sha256_file(target) == file.sha256:
            continue
        _download_file(file, target, mirrors, retries, timeout, backoff, deadline)
    return dest_dir


def _default_mirrors(dataset, spec):
    """``$SCRATCHVAE_MIRROR`` + ``<dataset>/`` if set, else the dataset's known mirrors."""
    base = os.environ.get(MIRROR_ENV)
    if not base:
        return spec.mirrors
    _check_url(f"${MIRROR_ENV}", base)
    return (base.rstrip("/") + f"/{dataset}/",)


def _check_url(label, url):
    """Raise ValueError unless ``url`` is https://, or http:// to this machine."""
    if not _allowed(url):
        raise ValueError(f"{label}: expected an https:// base URL (http:// only for 127.0.0.1, "
                         f"::1 or localhost), got {url!r}")


def _download_file(file, target, mirrors, retries, timeout, backoff, deadline):
    """Try every mirror, ``1 + retries`` times each, until one copy of ``file`` verifies."""
    failures = []
    attempts = 1 + retries
    for base in mirrors:
        url = base.rstrip("/") + "/" + file.name
        for attempt in range(1, attempts + 1):
            try:
                _fetch_verified(url, file, target, timeout, deadline)
                return
            # OSError covers refused and reset connections, timeouts, the deadline and every
            # MirrorError; HTTPException malformed answers; ValueError a bad URL in a redirect
            # and ChecksumError, a complete but wrong file.
            except (OSError, http.client.HTTPException, ValueError) as err:
                failures.append(f"{url} (attempt {attempt}/{attempts}): {err}")
                print(f"download: {failures[-1]}", file=sys.stderr)
                if getattr(err, "status", None) and 400 <= err.status < 500:
                    break  # the server says the file is not there: try the next mirror
            if attempt < attempts:
                time.sleep(backoff)
    raise DownloadError(f"could not download {file.name} from any mirror; attempts:\n  "
                        + "\n  ".join(failures))


def _fetch_verified(url, file, target, timeout, deadline):
    """Fetch ``url`` into a temporary file beside ``target``; rename it there if it verifies."""
    # Same directory as the target, so os.replace is a rename within one file system, which is
    # atomic: readers see either the old state or the complete new file, never a partial one.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, _Deadline(deadline) as clock:
            try:
                with _get(url, timeout, clock) as response:
                    actual = _copy_and_hash(response, out, file)
            except (OSError, http.client.HTTPException) as err:
                if clock.expired:
                    raise MirrorError(f"gave up at the deadline of {deadline:g} s") from err
                raise
            # Flush to disk before the rename, or a crash could leave an empty file under the name.
            out.flush()
            os.fsync(out.fileno())
        if actual != file.sha256:
            raise ChecksumError(f"SHA-256 mismatch: expected {file.sha256}, got {actual}")
        os.replace(tmp, target)
    finally:
        # After a successful os.replace the temporary name is gone; on any failure, remove it.
        if os.path.exists(tmp):
            os.unlink(tmp)


