"""Model files and training checkpoints: written atomically, read with suspicion.

Every ``.npz`` that scratchvae reads or writes passes through here, and through
the file-level reads and writes of :mod:`scratchvae.tools.npz_files`. Writing goes to
``<name>.tmp`` beside the target and is renamed over it once on disk, so a killed
process leaves the previous file whole. Reading trusts nothing in the file:

1. the archive must open as a zip and every member must be an ``.npy`` array of
   plain numbers or text (no pickled objects);
2. each member's header (shape and dtype) is read first, and the bytes it claims
   must be the member's size, and all members together no more than the file;
3. the stored ``format_version`` must be this scratchvae's (version 1's
   parameter names are converted: :func:`names_of_version_1`), and the stored
   ``config`` must be valid JSON with exactly the model's settings, whose
   parameter count must fit in the file, before a model is built;
4. every parameter must have the shape and dtype the config implies, and be finite;
5. on resume, the optimiser, the training settings and a fingerprint of the data
   must be the ones the run began with.

Whatever is wrong, the caller gets one
:class:`~scratchvae.tools.npz_files.CheckpointError` naming the file and the fault.
Guide: docs/training.md#what-is-guaranteed

Examples
--------
>>> import tempfile, pathlib
>>> from scratchvae.lecture.vae import VAE
>>> path = pathlib.Path(tempfile.mkdtemp()) / "model.npz"
>>> save_model(VAE(16, hidden=(8,), latent_dim=2), path)
>>> load_model(path).config["hidden"]
[8]
>>> _ = path.write_bytes(path.read_bytes()[:-100])  # cut short
>>> try:
...     load_model(path)
... except CheckpointError as err:
...     print(str(err).split(": ", 1)[1].replace("; ", ";\\n"))
cannot be read as a scratchvae checkpoint: not a zip (.npz) archive (File is not a zip file);
the file is truncated, damaged or not written by scratchvae
"""

import hashlib
import inspect
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from scratchvae.lecture.vae import FORMAT_VERSION, VAE
from scratchvae.tools.npz_files import _DAMAGE, CheckpointError, _headers, _read_member, atomic_savez

__all__ = [
    "fingerprint",
    "load_checkpoint",
    "load_model",
    "restore",
    "save_checkpoint",
    "save_model",
    "threads",
]

# Keys a checkpoint adds to the model's state_dict.
OPTIM_PREFIX = "optim/"
TRAIN_KEYS = ("train/epoch", "train/rng_state", "train/history", "train/settings",
              "train/threads")
# The environment variables that set how many threads BLAS uses: a different
# count sums in another order, so a resumed run is no longer bit-identical.
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# Rows hashed for the fingerprint of the training data (evenly spaced).
FINGERPRINT_ROWS = 64

UNREADABLE = "cannot be read as a scratchvae checkpoint"
# The model's settings as saved: every constructor argument but its ops, which
# are how the model runs, not what it is (a file loads under any ops).
_CONFIG_KEYS = frozenset(inspect.signature(VAE).parameters) - {"ops"}
# A hidden layer's parameter in a stored name: "param/decoder.2.W", "optim/adam.m.encoder.1.b".
_HIDDEN_PARAM = re.compile(r"(?<![^/.])(encoder|decoder)\.(\d+)\.(W|b)$")


# --- writing --------------------------------------------------------------------


def save_model(model, path):
    """Write ``model`` (its :meth:`VAE.state_dict`) to ``path``, atomically."""
    atomic_savez(path, model.state_dict())


def save_checkpoint(path, model, optimizer, rng, epoch, history, settings):
    """Write everything needed to continue a run to ``path``, atomically.

    The file holds the model's ``state_dict`` (so :func:`load_model` reads it
    too), the optimizer's state under ``optim/``, and under ``train/`` the
    number of finished epochs, the generator's full state, the history, the
    settings of :func:`scratchvae.tools.train.fit` that a resumed run must
    share and the BLAS thread settings (:func:`threads`).
    Guide: docs/training.md#checkpoints
    """
    atomic_savez(path, checkpoint_arrays(model, optimizer, rng, epoch, history, settings))


def checkpoint_arrays(model, optimizer, rng, epoch, history, settings):
    """The arrays :func:`save_checkpoint` writes, as a dict."""
    state = dict(model.state_dict())
    state.update({OPTIM_PREFIX + k: np.asarray(v) for k, v in optimizer.state_dict().items()})
    # PCG64's state holds 128-bit integers: JSON keeps them exact, as text.
    state["train/rng_state"] = np.array(json.dumps(rng.bit_generator.state))
    state["train/epoch"] = np.array(int(epoch))
    state["train/history"] = np.array(history.to_json_string())
    state["train/settings"] = np.array(json.dumps(settings))
    state["train/threads"] = np.array(json.dumps(threads()))
    return state


def threads():
    """The BLAS thread settings of this process: the variables that set them, and the CPUs.

    Examples
    --------
    >>> sorted(threads())
    ['MKL_NUM_THREADS', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'cpu_count']
    """
    return {**{name: os.environ.get(name) for name in THREAD_VARIABLES},
            "cpu_count": os.cpu_count()}


def fingerprint(x):
    """A cheap fingerprint of a data set: its shape and a hash of a fixed sample of rows.

    Two arrays of the same shape that differ in any of the :data:`FINGERPRINT_ROWS`
    evenly spaced rows get different fingerprints; computing one reads only those rows.

    Examples
    --------
    >>> x = np.zeros((1000, 4), dtype=np.float32)
    >>> fingerprint(x) == fingerprint(x.copy()), fingerprint(x) == fingerprint(x + 0.5)
    (True, False)
    """
    rows = np.unique(np.linspace(0, len(x) - 1, num=min(len(x), FINGERPRINT_ROWS)).astype(int))
    digest = hashlib.sha256(repr(x.shape).encode())
    digest.update(np.ascontiguousarray(x[rows], dtype=np.float32).tobytes())
    return f"{x.shape[0]}x{x.shape[1]}:{digest.hexdigest()[:16]}"


# --- reading --------------------------------------------------------------------


def load_model(path, ops=None):
    """Read a model written by :func:`save_model` (or a training checkpoint).

    Parameters
    ----------
    path : str or Path
    ops : module, optional
        The ops the model runs on (:class:`VAE`'s ``ops``); None keeps its
        default, the lecture's. Any file loads under any ops.

    Returns
    -------
    VAE

    Raises
    ------
    CheckpointError
        If the file is missing, damaged, of another format version, or holds a
        configuration or weights that do not make a usable model.
    """
    path = Path(path)
    return _read(path, ops)[0]


def load_checkpoint(path):
    """Read a checkpoint written by :func:`save_checkpoint` into a dict of arrays.

    Every check of :func:`load_model` applies, and the training keys must be present.

    Raises
    ------
    CheckpointError
        If the file is damaged or not a training checkpoint, with the reason.
    """
    path = Path(path)
    state = _read(path)[1]
    missing = [k for k in TRAIN_KEYS if k not in state]
    if missing:
        raise CheckpointError(
            f"{path}: not a training checkpoint (missing {', '.join(missing)}); a model file "
            "(model.npz), or a checkpoint of an older scratchvae, cannot resume training")
    return state


def restore(path, model, optimizer, rng, settings):
    """Load the checkpoint ``path`` into ``model``, ``optimizer`` and ``rng``.

    The model's configuration (except its initial-weights seed), the
    optimiser's kind and hyper-parameters and the training ``settings``
    (including the data's :func:`fingerprint`) must be those of the checkpoint.

    Returns
    -------
    epoch : int
        The number of finished epochs.
    records : list of dict
        The history so far.
    warnings : list of str
        Differences that do not stop a resume but break bit-identity (BLAS threads).

    Raises
    ------
    CheckpointError
        Naming every difference, or what is damaged. Nothing is changed then.
    """
    path = Path(path)
    state = load_checkpoint(path)
    optim = {k[len(OPTIM_PREFIX):]: v for k, v in state.items() if k.startswith(OPTIM_PREFIX)}
    # The initial-weights seed does not matter once the weights are loaded.
    _refuse_differences(path, "model", _without(_json(path, state, "config"), "seed"),
                        _without(model.config, "seed"))
    _refuse_differences(path, "optimizer", _optimizer_settings(path, optim, optimizer.hypers),
                        _optimizer_settings(path, optimizer.state_dict(), optimizer.hypers))
    saved_settings = _json(path, state, "train/settings")
    if isinstance(saved_settings, dict) and "binarize" in saved_settings and saved_settings["binarize"] is None:
        saved_settings["binarize"] = "none"  # written before "none" was one word end to end
    _refuse_differences(path, "training settings", saved_settings, settings)
    epoch, records = _epoch_and_history(path, state)
    rng_state = _json(path, state, "train/rng_state")
    try:
        optimizer.load_state_dict(optim)  # checks every shape before it changes anything
        trial = np.random.Generator(type(rng.bit_generator)())
        trial.bit_generator.state = rng_state  # refuses a state of another generator
    except (ValueError, TypeError, KeyError) as err:
        raise CheckpointError(f"{path}: the optimizer or generator state does not fit this "
                              f"run ({err})") from None
    model.load_state_dict(state)
    rng.bit_generator.state = rng_state
    return epoch, records, _thread_warnings(path, _json(path, state, "train/threads"))


def _without(config, key):
    return {k: v for k, v in config.items() if k != key}


def _optimizer_settings(path, optim, hyper_names):
    """``{"optimizer": name, <hyper>: value, ...}`` from an optimizer's state_dict."""
    # The step count "<name>.t" is the one key with a single dot that ends in ".t".
    names = [k[:-2] for k in optim if k.endswith(".t") and k.count(".") == 1]
    if len(names) != 1:
        raise CheckpointError(f"{path}: the optimizer state is missing or malformed")
    return {"optimizer": names[0],
            **{h: np.asarray(optim.get(f"{names[0]}.{h}")).tolist() for h in hyper_names}}


def _refuse_differences(path, what, saved, current):
    """Raise CheckpointError listing every key whose value differs between the two dicts."""
    differ = sorted(k for k in {*saved, *current} if saved.get(k) != current.get(k))
    if differ:
        raise CheckpointError(
            f"{path}: the checkpoint's {what} differs from this one in "
            + ", ".join(f"{k} ({saved.get(k)!r} there, {current.get(k)!r} here)" for k in differ)
            + "; resume with the same model, optimizer, settings and data, or start a new run")


def _epoch_and_history(path, state):
    """The finished epochs and the history records, checked against each other."""
    epoch = state["train/epoch"]
    history = _json(path, state, "train/history")
    records = history.get("records") if isinstance(history, dict) else None
    if (epoch.shape != () or epoch.dtype.kind not in "iu" or not isinstance(records, list)
            or len(records) != int(epoch) or not all(isinstance(r, dict) for r in records)):
        raise CheckpointError(f"{path}: train/epoch and train/history disagree or are malformed")
    return int(epoch), records


def _thread_warnings(path, saved):
    """One warning if the BLAS thread settings differ from the checkpoint's, else none."""
    current = threads()
    differ = sorted(k for k in {*saved, *current} if saved.get(k) != current.get(k))
    if not differ:
        return []
    return [f"warning: {path} was written with "
            + ", ".join(f"{k}={saved.get(k)}" for k in differ) + ", this process has "
            + ", ".join(f"{k}={current.get(k)}" for k in differ)
            + ": BLAS may sum in another order, so the resumed run can differ from an "
            "uninterrupted one in the last bits"]


def _json(path, state, key):
    """The JSON text stored under ``key``, parsed; CheckpointError if absent or not JSON."""
    value = state.get(key)
    if value is None or value.shape != () or value.dtype.kind != "U":
        raise CheckpointError(f"{path}: no text under {key!r}")
    try:
        return json.loads(str(value))
    except ValueError as err:
        raise CheckpointError(f"{path}: {key} is not valid JSON ({err})") from None


def _read(path, ops=None):
    """(model, dict of every array) of the .npz at ``path``, checked in the order of the module doc."""
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except _DAMAGE as err:
        raise CheckpointError(f"{path}: {UNREADABLE}: not a zip (.npz) archive ({err}); the "
                              "file is truncated, damaged or not written by scratchvae") from None
    with archive:
        try:
            headers = _headers(path, archive)
            metadata = {k: _read_member(archive, headers[k]) for k in ("format_version", "config")
                        if k in headers}
            version = metadata.get("format_version")
            if version is not None and version.shape == () and version.dtype.kind in "iu" and version == 1:
                headers = {names_of_version_1(headers).get(k, k): h for k, h in headers.items()}
                metadata["format_version"] = np.array(FORMAT_VERSION)
            model = _build_model(path, metadata, headers, ops)
            state = {k: _read_member(archive, header) for k, header in headers.items()}
        except CheckpointError:
            raise
        except _DAMAGE as err:
            raise CheckpointError(f"{path}: {UNREADABLE}: damaged ({type(err).__name__}: "
                                  f"{err}); use an earlier copy or train again") from None
    _load_weights(path, model, state)
    return model, state


def names_of_version_1(names):
    """{old: new} for the stored names of a format-version-1 file whose hidden layers must be renumbered.

    Version 1 numbered the modules of an MLP, activations included, where a
    model's ops did not fuse them: with the lecture's ops (or a tanh, sigmoid
    or softplus network) the second hidden layer was ``encoder.2``, with the
    engine's fused Dense + ReLU it was ``encoder.1``. Version 2 numbers the
    layers (``encoder.1`` either way, :class:`~scratchvae.lecture.modules.Sequential`).
    A chain whose layers are 0, 2, 4, ... is renumbered 0, 1, 2, ...; names
    already in layer order are kept.

    Examples
    --------
    >>> names_of_version_1(["param/encoder.0.W", "param/encoder.2.W", "optim/adam.m.encoder.2.W"])
    {'param/encoder.2.W': 'param/encoder.1.W', 'optim/adam.m.encoder.2.W': 'optim/adam.m.encoder.1.W'}
    """
    found = {}
    for name in names:
        match = _HIDDEN_PARAM.search(name)
        if match:
            found.setdefault(match[1], set()).add(int(match[2]))
    halve = {chain for chain, indices in found.items()
             if len(indices) > 1 and sorted(indices) == list(range(0, 2 * len(indices), 2))}
    renamed = {}
    for name in names:
        match = _HIDDEN_PARAM.search(name)
        if match and match[1] in halve and int(match[2]):
            renamed[name] = f"{name[:match.start()]}{match[1]}.{int(match[2]) // 2}.{match[3]}"
    return renamed


def _build_model(path, metadata, headers, ops):
    """The VAE the stored config describes, once the config is known to fit in the file."""
    if set(metadata) != {"format_version", "config"}:
        raise CheckpointError(f"{path}: not a scratchvae checkpoint (no format_version/config)")
    version = metadata["format_version"]
    if version.shape != () or version.dtype.kind not in "iu" or int(version) != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version}, this scratchvae "
                              f"reads version {FORMAT_VERSION}")
    config = _json(path, metadata, "config")
    _check_config(path, config)
    count = _parameter_count(config)
    if count * np.dtype(config["dtype"]).itemsize > path.stat().st_size:
        raise CheckpointError(f"{path}: its config describes {count} parameters, more than "
                              "the file holds")
    try:
        model = VAE(**config, **({} if ops is None else {"ops": ops}))
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: its config does not make a model ({err})") from None
    expected = {f"param/{k}": (v.shape, v.dtype) for k, v in model.params.items()}
    found = {k: (h[1], h[2]) for k, h in headers.items() if k.startswith("param/")}
    if found != expected:
        name = min(k for k in {*found, *expected} if found.get(k) != expected.get(k))
        raise CheckpointError(f"{path}: {name} is {_describe(found.get(name))} in the file, but "
                              f"its config implies {_describe(expected.get(name))}")
    return model


def _describe(entry):
    """'float32 of shape (3,)' for a (shape, dtype) pair; 'no such array' for None."""
    return "no such array" if entry is None else f"{entry[1]} of shape {entry[0]}"


def _check_config(path, config):
    """The stored config names exactly the VAE's settings, with sizes that are positive integers."""
    if not isinstance(config, dict) or set(config) != _CONFIG_KEYS:
        keys = sorted(config) if isinstance(config, dict) else config
        raise CheckpointError(f"{path}: its config has keys {keys}, a scratchvae model has "
                              f"{sorted(_CONFIG_KEYS)}")
    hidden = config["hidden"]
    sizes = [config["input_dim"], config["latent_dim"],
             *(hidden if isinstance(hidden, list) and hidden else [None])]
    if not all(type(s) is int and s >= 1 for s in sizes):
        raise CheckpointError(f"{path}: its config's input_dim, hidden and latent_dim must be "
                              f"positive integers, got {config['input_dim']!r}, "
                              f"{config['hidden']!r}, {config['latent_dim']!r}")
    if config["dtype"] not in ("float32", "float64"):
        raise CheckpointError(f"{path}: its config's dtype is {config['dtype']!r}")


def _parameter_count(config):
    """The number of parameters of ``VAE(**config)``, from the layer sizes alone.

    Encoder D -> hidden... -> 2 D_z; decoder D_z -> reversed hidden... -> D
    (2 D for the Gaussian likelihood); each layer a -> b holds (a + 1) b numbers.
    """
    D, hidden, Dz = config["input_dim"], config["hidden"], config["latent_dim"]
    out = D if config["likelihood"] == "bernoulli" else 2 * D
    chains = [(D, *hidden, 2 * Dz), (Dz, *hidden[::-1], out)]
    return sum((a + 1) * b for chain in chains for a, b in zip(chain, chain[1:]))


def _load_weights(path, model, state):
    """Copy the parameters into ``model``; refuse NaN or infinite weights."""
    for name in model.params:
        if not np.isfinite(state[f"param/{name}"]).all():
            raise CheckpointError(
                f"{path}: parameter {name} holds NaN or infinite values: the run that wrote "
                "it had diverged; use an earlier checkpoint or train again with a lower --lr")
    model.load_state_dict(state)
