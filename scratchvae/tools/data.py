"""MNIST and Fashion-MNIST: find, verify, read, binarise and batch.

The data come as four gzipped IDX files per dataset. :func:`load_mnist` looks for them in this
order (the first place holding all four wins):

1. the ``data_dir`` argument (the CLI's ``--data-dir``),
2. the directory named by ``$SCRATCHVAE_DATA``,
3. the user cache, ``$XDG_CACHE_HOME/scratchvae`` or else ``~/.cache/scratchvae``,

each time in the sub-folder ``<root>/<dataset>/``, and downloads them from known mirrors (or the one
``$SCRATCHVAE_MIRROR`` names) if none has them (see :mod:`scratchvae.tools.download`). Every file is
checked against its published SHA-256.

Guide: docs/data.md
"""
import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from scratchvae.lecture.validate import as_float_array, check_int, check_rng, check_unit_interval
from scratchvae.tools.download import DATASETS, ChecksumError, DownloadError, download, get_spec, sha256_file

__all__ = [
    "DATASETS", "ENV_VAR", "ChecksumError", "DownloadError", "Dataset",
    "binarize_fixed", "cache_dir", "download", "find_data_dir", "load_mnist", "minibatches",
    "read_idx",
]

ENV_VAR = "SCRATCHVAE_DATA"

# The two IDX magic numbers we accept: 0x0000TTNN with TT = 0x08 (unsigned byte) and
# NN = the number of dimensions: 3 for images (N, rows, cols), 1 for labels (N,).
_IDX_MAGICS = (0x00000803, 0x00000801)


class Dataset(NamedTuple):
    """A train/test split with images as rows of pixel intensities in [0, 1].

    Attributes
    ----------
    x_train : ndarray of shape (N_train, D), float32
        Training images, one flattened image per row (D = 784 for MNIST), pixels / 255.
    y_train : ndarray of shape (N_train,), uint8
        Training labels, 0-9.
    x_test : ndarray of shape (N_test, D), float32
        Test images.
    y_test : ndarray of shape (N_test,), uint8
        Test labels.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def read_idx(path):
    """Read an IDX file (gzipped or plain) of uint8 images or labels.

    The header is checked: the magic number must be 0x00000803 (uint8, 3 dimensions: images) or
    0x00000801 (uint8, 1 dimension: labels), and the data must hold exactly as many bytes as the
    dimensions announce. Guide: docs/data.md#idx-format

    Parameters
    ----------
    path : str or Path
        The file. Gzip is recognised by its first two bytes, not by the name.

    Returns
    -------
    ndarray of uint8
        Shape (N, rows, cols) for images, (N,) for labels.

    Raises
    ------
    ValueError
        Naming the file and what is wrong (bad gzip, bad magic number, truncated payload...).

    Examples
    --------
    >>> import gzip, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "labels.gz"
    >>> # magic 0x00000801, one dimension of size 3, then the three labels
    >>> _ = p.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 5, 0, 4])))
    >>> read_idx(p)
    array([5, 0, 4], dtype=uint8)
    """
    path = Path(path)
    raw = path.read_bytes()
    # Every gzip stream starts with the bytes 1f 8b.
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{path}: not a readable gzip file ({err}); "
                             "it is probably truncated: delete it and get it again") from err
    if len(raw) < 4:
        raise ValueError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    # Header: big-endian uint32 magic, then one big-endian uint32 size per dimension.
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _IDX_MAGICS:
        raise ValueError(f"{path}: bad IDX magic number 0x{magic:08x}; expected 0x00000803 "
                         "(uint8 images) or 0x00000801 (uint8 labels)")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: header announces {ndim} dimension(s) but the file ends "
                         f"after {len(raw)} bytes")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    if len(raw) - header != math.prod(shape):
        raise ValueError(f"{path}: header announces shape {shape}, i.e. {math.prod(shape)} data "
                         f"bytes, but the file holds {len(raw) - header}: truncated or corrupt")
    # Copy so the result is an ordinary writable array, not a view of the bytes object.
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()


def cache_dir():
    """Return the user cache root: ``$XDG_CACHE_HOME/scratchvae``, else ``~/.cache/scratchvae``.

    Guide: docs/data.md#where-the-data-are-looked-for

    Examples
    --------
    >>> cache_dir().name
    'scratchvae'
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG base-directory spec says to ignore an unset, empty or relative value.
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "scratchvae"


def _search_places(data_dir):
    """The look-up order as ``(label, root or None)``; None marks a place that is not set."""
    env = os.environ.get(ENV_VAR)
    return [
        ("the folder given", None if data_dir is None else Path(data_dir).expanduser()),
        (f"${ENV_VAR}", Path(env).expanduser() if env else None),
        ("the user cache", cache_dir()),
    ]


def find_data_dir(dataset="mnist", data_dir=None):
    """Return the first directory ``<root>/<dataset>`` that holds all four files, verified.

    The roots are tried in order: ``data_dir``, ``$SCRATCHVAE_DATA``, the user cache
    (:func:`cache_dir`). The four files of the chosen directory are checked against their SHA-256.
    Guide: docs/data.md#where-the-data-are-looked-for

    Parameters
    ----------
    dataset : str, default "mnist"
        A key of :data:`DATASETS`.
    data_dir : str or Path, optional
        A root to try first; the files must be in ``data_dir/<dataset>/``.

    Returns
    -------
    Path
        The directory holding the four ``.gz`` files.

    Raises
    ------
    FileNotFoundError
        If no root holds all four files; the message lists every place looked in.
    ChecksumError
        If a file found has the wrong SHA-256; the message names it and says what to do.

    Examples
    --------
    >>> find_data_dir("mnist", data_dir="/data")  # with /data/mnist/*.gz  # doctest: +SKIP
    PosixPath('/data/mnist')
    """
    spec = get_spec(dataset)
    names = [file.name for file in spec.files.values()]
    looked = []
    for label, root in _search_places(data_dir):
        if root is None:
            looked.append(f"{label} (not set)")
            continue
        directory = root / dataset
        present = [name for name in names if (directory / name).is_file()]
        if len(present) == len(names):
            _verify(directory, spec)
            return directory
        looked.append(f"{label} {directory} ({len(present)} of {len(names)} files)")
    # One line, every place looked in and what to do: it ends up as a command-line error.
    raise FileNotFoundError(
        f"{dataset} data not found ({', '.join(names)}): looked in {', '.join(looked)}; to "
        f"provide them, set {ENV_VAR} to the folder holding {dataset}/, or pass --data-dir "
        f"FOLDER (data_dir in Python), or put them in {cache_dir() / dataset}/")


def _verify(directory, spec):
    """Raise ChecksumError if a file in ``directory`` does not match its published SHA-256."""
    for file in spec.files.values():
        path = directory / file.name
        actual = sha256_file(path)
        if actual != file.sha256:
            raise ChecksumError(
                f"{path} is corrupt or not the published file: its SHA-256 is {actual}, the "
                f"published one {file.sha256}; delete it and run again to download it anew, "
                "or replace it with a good copy")


def load_mnist(dataset="mnist", data_dir=None, download=True):
    """Load MNIST or Fashion-MNIST as float32 rows in [0, 1], downloading once if needed.

    Looks in the places of :func:`find_data_dir`, in order, then downloads (:func:`download`).
    Guide: docs/data.md#where-the-data-are-looked-for

    Parameters
    ----------
    dataset : {"mnist", "fashion-mnist"}, default "mnist"
    data_dir : str or Path, optional
        A root to look in first (files in ``data_dir/<dataset>/``). A download, if needed, goes
        there; without ``data_dir`` it goes to the user cache.
    download : bool, default True
        Download from the known mirrors (or ``$SCRATCHVAE_MIRROR``) when no place has the files.

    Returns
    -------
    Dataset
        ``x_train`` (60000, 784) float32, ``y_train`` (60000,) uint8, ``x_test`` (10000, 784),
        ``y_test`` (10000,). Pixels are divided by 255.

    Raises
    ------
    FileNotFoundError
        If the files are nowhere and cannot be downloaded; the message lists every place
        looked in and how to provide the files.
    ChecksumError
        If a file found has the wrong SHA-256.

    Examples
    --------
    >>> data = load_mnist()  # doctest: +SKIP
    >>> data.x_train.shape, data.x_train.dtype, data.y_train[:3]  # doctest: +SKIP
    ((60000, 784), dtype('float32'), array([5, 0, 4], dtype=uint8))
    """
    spec = get_spec(dataset)
    try:
        directory = find_data_dir(dataset, data_dir)
    except FileNotFoundError as not_found:
        if not download:
            raise FileNotFoundError(f"{not_found} (Downloading is off.)") from None
        directory = _download_or_explain(dataset, data_dir, not_found)
    files = {role: directory / file.name for role, file in spec.files.items()}
    x_train, y_train = _as_rows(files["train_images"], files["train_labels"])
    x_test, y_test = _as_rows(files["test_images"], files["test_labels"])
    return Dataset(x_train, y_train, x_test, y_test)


def _download_or_explain(dataset, data_dir, not_found):
    """Download into ``data_dir/<dataset>`` (or the cache); on failure, say everything tried."""
    root = cache_dir() if data_dir is None else Path(data_dir).expanduser()
    try:
        return download(dataset, root / dataset)
    except DownloadError as err:
        raise FileNotFoundError(f"{not_found}; downloading into {root / dataset} failed too: "
                                + " ".join(str(err).split())) from err


def _as_rows(images_path, labels_path):
    """Read an image and a label file; return images as (N, rows*cols) float32 / 255, labels."""
    images = read_idx(images_path)  # (N, rows, cols) uint8
    labels = read_idx(labels_path)  # (N,) uint8
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"{images_path} {images.shape} and {labels_path} {labels.shape} "
                         "do not form an image/label pair")
    # Pixel intensities 0..255 -> [0, 1], computed in float32 in one pass.
    x = np.divide(images.reshape(len(images), -1), 255, dtype=np.float32)  # (N, D)
    return x, labels


def binarize_fixed(x, threshold=0.5):
    """Deterministic binarisation: ``x_bin = 1 if x > threshold else 0``, the same every time.

    This is thresholding, not the "statically binarised MNIST" of Larochelle & Murray (2011),
    which is one random draw frozen for good; to imitate that, call
    :func:`scratchvae.lecture.training.binarize` once with
    a fixed seed and keep the result. Guide: docs/data.md#dynamic-binarisation

    Parameters
    ----------
    x : ndarray of float, any shape
        Pixel intensities in [0, 1].
    threshold : float, default 0.5
        In [0, 1). Pixels strictly above it become 1.

    Returns
    -------
    ndarray of float32, shape of ``x``
        Zeros and ones.

    Examples
    --------
    >>> binarize_fixed(np.array([0.2, 0.5, 0.9]))
    array([0., 0., 1.], dtype=float32)
    """
    x = check_unit_interval("x", as_float_array("x", x))
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold: expected a number in [0, 1), got {threshold!r}")
    return (x > threshold).astype(np.float32)


def minibatches(n, batch_size, rng, shuffle=True, drop_last=False):
    """Iterate over the index arrays of one epoch of minibatches.

    Every index in ``0..n-1`` appears exactly once per epoch. The last batch is smaller when
    ``batch_size`` does not divide ``n``; it is kept by default so that no example is skipped
    (``drop_last=True`` drops it, e.g. to keep every step's gradient noise alike).
    Guide: docs/data.md#minibatches

    Parameters
    ----------
    n : int
        Number of examples.
    batch_size : int
        Examples per batch, > 0.
    rng : numpy.random.Generator or None
        Draws the shuffling permutation (once, when called). May be None if ``shuffle=False``.
    shuffle : bool, default True
        Visit the examples in a random order; otherwise in order 0, 1, ..., n-1.
    drop_last : bool, default False
        Drop the final partial batch.

    Returns
    -------
    iterator of ndarray of int, each of shape (batch_size,) (the last possibly shorter)

    Examples
    --------
    >>> [b.tolist() for b in minibatches(5, 2, rng=None, shuffle=False)]
    [[0, 1], [2, 3], [4]]
    >>> sorted(np.concatenate(list(minibatches(5, 2, np.random.default_rng(0)))).tolist())
    [0, 1, 2, 3, 4]
    """
    check_int("n", n, minimum=0)
    check_int("batch_size", batch_size, minimum=1)
    if shuffle:
        check_rng(rng)
    # Drawn now, not at the first next(): the order depends only on rng's state at the call.
    order = rng.permutation(n) if shuffle else np.arange(n)  # (n,)
    # Stop at the last full batch when dropping the remainder.
    stop = n - n % batch_size if drop_last else n
    return (order[start:start + batch_size] for start in range(0, stop, batch_size))

