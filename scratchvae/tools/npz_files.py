"""The .npz files themselves: written atomically, their members read with suspicion.

:func:`atomic_savez` writes to ``<name>.tmp`` beside the target and renames it
over the target once it is on disk, so a killed process leaves the previous
file whole; :func:`check_writable` tries such a write before training starts.
``_headers`` reads only the members' headers and checks them against the file
(checks 1 and 2 of :mod:`scratchvae.tools.checkpoints`), ``_read_member`` then
reads one member's data. A file that cannot be used is a :class:`CheckpointError`.
:mod:`scratchvae.tools.checkpoints` builds model files and training checkpoints
on these. Guide: docs/training.md#what-is-guaranteed
"""

import math
import os
import zipfile
from pathlib import Path

import numpy as np
from numpy.lib import format as npy

__all__ = ["CheckpointError", "atomic_savez", "check_writable"]

# What zipfile and the .npy reader raise on damaged bytes: a bad CRC or zip
# structure (BadZipFile), an unsupported method or encryption flag from a
# flipped bit (NotImplementedError, RuntimeError), bad header text (ValueError,
# SyntaxError), and a file that ends early (EOFError, OSError).
_DAMAGE = (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, SyntaxError,
           EOFError, OSError, KeyError, OverflowError)


class CheckpointError(ValueError):
    """A model or checkpoint file that cannot be used; the message names the file and the fault."""


# --- writing --------------------------------------------------------------------


def atomic_savez(path, arrays):
    """``np.savez`` to ``<path>.tmp`` beside ``path``, then rename it over ``path``.

    A crash mid-write leaves the previous file intact, never half a file: the
    data reach the disk (fsync) before the rename makes them the file, and a
    failed write removes its temporary file. A ``.tmp`` left by a killed
    process is simply overwritten by the next write (and removed by
    :func:`check_writable`).
    """
    path = Path(path)
    tmp = _write_temporary(path, arrays)
    try:
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_writable(path, arrays):
    """Write ``arrays`` to ``<path>.tmp`` and delete it: prove a write of ``path`` will succeed.

    Run before training starts, this finds a read-only folder, a full disk or a
    file-size limit before an epoch's work is spent, and it clears a ``.tmp``
    that a killed write left behind.

    Raises
    ------
    OSError
        As the failed write raised it (its message names the file).
    """
    _write_temporary(Path(path), arrays).unlink()


def _write_temporary(path, arrays):
    """Write ``arrays`` as an .npz to ``<path>.tmp``, on disk; return that path."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


# --- reading --------------------------------------------------------------------


def _headers(path, archive):
    """{key: (ZipInfo, shape, dtype, fortran order, data offset)} of every .npy member.

    Only the headers are read. The bytes each header claims must be the
    member's size, and the members together must fit in the file: scratchvae
    writes uncompressed archives, so no claim can exceed what is on disk.
    """
    headers, claimed = {}, 0
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise CheckpointError(f"{path}: member {info.filename!r} is not an .npy array")
        with archive.open(info) as f:
            version = npy.read_magic(f)
            if version not in ((1, 0), (2, 0)):
                raise CheckpointError(f"{path}: member {info.filename!r} has .npy format "
                                      f"version {version}, which scratchvae does not write")
            read_header = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
            shape, fortran, dtype = read_header(f)
            offset = f.tell()
        if dtype.hasobject:
            raise CheckpointError(f"{path}: member {info.filename!r} holds Python objects, "
                                  "which scratchvae never writes; it is not loaded")
        nbytes = math.prod(shape) * dtype.itemsize
        if offset + nbytes != info.file_size:
            raise CheckpointError(f"{path}: member {info.filename!r} claims shape {shape} of "
                                  f"{dtype} ({nbytes} bytes) but holds {info.file_size - offset}")
        claimed += info.file_size
        headers[info.filename[:-len(".npy")]] = (info, shape, dtype, fortran, offset)
    size = path.stat().st_size
    if claimed > size:
        raise CheckpointError(f"{path}: its members claim {claimed} bytes, more than the "
                              f"{size} bytes of the file")
    return headers


def _read_member(archive, header):
    """The array of one member, its data read only now (the CRC is checked at its end)."""
    info, shape, dtype, fortran, offset = header
    with archive.open(info) as f:
        f.seek(offset)
        data = bytearray(f.read(info.file_size - offset))
        if len(data) != info.file_size - offset or f.read(1):
            raise EOFError(f"member {info.filename!r} ends early or runs on")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")
