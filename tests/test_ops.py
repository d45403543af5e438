"""A model runs on the ops it is handed, and its parameters are named alike under any ops.

``VAE(784)`` runs on :mod:`scratchvae.lecture.ops` (plain NumPy, no Numba);
``VAE(784, ops=scratchvae.engine.ops)`` on the engine's. Parameter names come
from the layers, not from how the ops group the modules, so a checkpoint
written under either loads under the other, for any depth and activation;
files of format version 1 (whose names counted modules) still load.
"""

import subprocess
import sys
import zipfile

import numpy as np
import pytest

from scratchvae.engine import ops as engine_ops
from scratchvae.lecture import ops as lecture_ops
from scratchvae.lecture.vae import VAE
from scratchvae.tools.checkpoints import load_model, names_of_version_1, save_model
from scratchvae.tools.npz_files import CheckpointError

OPS = {"lecture": lecture_ops, "engine": engine_ops}


def test_the_lecture_s_model_trains_a_step_without_importing_numba():
    script = """
import sys
import numpy as np
from scratchvae.lecture.optim import make_optimizer
from scratchvae.lecture.training import train_step
from scratchvae.lecture.vae import VAE
model = VAE(784)
images = np.random.default_rng(0).random((64, 784))
loss, _ = train_step(model, make_optimizer("adam", model, 1e-3), images, np.arange(64),
                     np.random.default_rng(1))
assert np.isfinite(loss), loss
assert "numba" not in sys.modules, "the lecture's model imported numba"
print("ok", round(loss, 1))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok ")


@pytest.mark.parametrize("activation", ["relu", "tanh", "leaky_relu"])
@pytest.mark.parametrize("hidden", [(16,), (16, 12), (16, 12, 8)], ids=["1 layer", "2 layers", "3 layers"])
def test_the_same_seed_gives_the_same_weights_under_the_same_names(hidden, activation):
    lecture = VAE(30, hidden=hidden, latent_dim=3, activation=activation, seed=4)
    engine = VAE(30, hidden=hidden, latent_dim=3, activation=activation, seed=4, ops=engine_ops)
    assert list(lecture.params) == list(engine.params)
    assert [f"encoder.{k}.W" for k in range(len(hidden))] == [n for n in lecture.params
                                                              if n.startswith("encoder.") and n.endswith("W")]
    for name, param in lecture.params.items():
        np.testing.assert_array_equal(engine.params[name], param)


def _trained(hidden, ops, seed=0):
    """A small model after a few Adam steps on its ops (so that its weights are not the initial ones)."""
    from scratchvae.lecture.optim import make_optimizer
    from scratchvae.lecture.training import train_step

    model = VAE(30, hidden=hidden, latent_dim=3, seed=seed, ops=ops)
    optimizer = make_optimizer("adam", model, 1e-2)
    images = (np.random.default_rng(1).random((64, 30)) < 0.4).astype(np.float32)
    rng = np.random.default_rng(2)
    for _ in range(5):
        train_step(model, optimizer, images, rng.permutation(64)[:32], rng, pixels="fixed")
    return model, images


@pytest.mark.parametrize("written, read", [("engine", "lecture"), ("lecture", "engine")])
@pytest.mark.parametrize("hidden", [(16,), (16, 12), (16, 12, 8)], ids=["1 layer", "2 layers", "3 layers"])
def test_a_checkpoint_written_under_either_ops_loads_under_the_other(hidden, written, read, tmp_path):
    model, images = _trained(hidden, OPS[written])
    save_model(model, tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz", OPS[read])
    assert loaded.ops is OPS[read]
    for name, param in model.params.items():
        np.testing.assert_array_equal(loaded.params[name], param)
    want = model.elbo(images, rng=np.random.default_rng(3))
    got = loaded.elbo(images, rng=np.random.default_rng(3))
    np.testing.assert_allclose(got, want, rtol=1e-5)


def _as_version_1(path, renames):
    """Rewrite the model file ``path`` as format version 1 wrote it: these names, version 1."""
    import io

    with np.load(path) as archive:
        arrays = {renames.get(k, k): archive[k] for k in archive.files}
    arrays["format_version"] = np.array(1)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path.write_bytes(buffer.getvalue())


@pytest.mark.parametrize("hidden", [(16,), (16, 12), (16, 12, 8)], ids=["1 layer", "2 layers", "3 layers"])
@pytest.mark.parametrize("fused", [True, False], ids=["engine-numbered", "module-numbered"])
def test_a_version_1_file_still_loads_under_either_ops(hidden, fused, tmp_path):
    model, images = _trained(hidden, engine_ops)
    save_model(model, tmp_path / "old.npz")
    # Version 1 numbered modules: the lecture's Dense, ReLU, Dense, ReLU were 0, 2; the engine's fused ones 0, 1.
    renames = {} if fused else {f"param/{chain}.{k}.{p}": f"param/{chain}.{2 * k}.{p}"
                                for chain in ("encoder", "decoder") for k in range(len(hidden)) for p in "Wb"}
    _as_version_1(tmp_path / "old.npz", renames)
    assert zipfile.ZipFile(tmp_path / "old.npz").namelist()  # a real archive
    for ops in OPS.values():
        loaded = load_model(tmp_path / "old.npz", ops)
        for name, param in model.params.items():
            np.testing.assert_array_equal(loaded.params[name], param)


def test_another_format_version_is_refused_in_one_line(tmp_path):
    save_model(VAE(8, hidden=(4,), latent_dim=2), tmp_path / "model.npz")
    _as_version_1(tmp_path / "model.npz", {})
    with np.load(tmp_path / "model.npz") as archive:
        arrays = dict(archive)
    arrays["format_version"] = np.array(7)
    np.savez(tmp_path / "model.npz", **arrays)
    with pytest.raises(CheckpointError, match=r"format version 7, this scratchvae reads version 2$"):
        load_model(tmp_path / "model.npz")


def test_version_1_names_are_renumbered_only_where_layers_were_counted_with_activations():
    assert names_of_version_1(["param/encoder.0.W", "param/encoder.1.W", "param/decoder.0.W"]) == {}
    assert names_of_version_1(["param/decoder.0.b", "param/decoder.2.b", "param/decoder.4.b",
                               "optim/adam.v.decoder.4.b", "param/decoder_head.W"]) == {
        "param/decoder.2.b": "param/decoder.1.b", "param/decoder.4.b": "param/decoder.2.b",
        "optim/adam.v.decoder.4.b": "optim/adam.v.decoder.2.b"}
