"""Every tutorial runs with --quick and prints what it promises.

Each script runs in a subprocess from an empty folder (so the figures it writes land
there), headless (MPLBACKEND=Agg). The ones that train on MNIST skip unless
SCRATCHVAE_DATA points at the folder holding mnist/.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"

# script: (needs MNIST, lines or fragments the output must contain)
EXPECTED = {
    "01_gradients_by_hand.py": (False, [
        "row 0 from the formula:",
        "(relative error 3.33e-01, FAILED)",
    ]),
    "02_reparameterisation.py": (False, [
        "2. The buggy pair (eps scaled by the variance) under check_op:",
        "ok)",
        "3. KL(q || N(0, I)): closed form 3.4568",
    ]),
    "03_elbo_on_an_exact_model.py": (False, [
        "the prior N(0, I)",
        "posterior mean, variances 1/diag(P)",
        "q = the posterior: ELBO",
    ]),
    "04_one_training_step.py": (True, [
        "1. mu, log_var = encode(x)         (32, 2)      float32",
        "3. logits = decoder(z)             (32, 784)    float32",
        "path through the KL",
        "One Adam step (lr 1e-3)",
    ]),
    "05_train_mnist.py": (True, [
        "epoch   1/1  train ELBO",
        "tutorial05/samples.png",
        "importance-weighted bound L_20",
    ]),
    "06_what_beta_does.py": (True, [
        "   0.2 ",
        "   4.0 ",
        "tutorial06/beta_latents.png",
    ]),
}


def test_every_tutorial_is_tested():
    assert sorted(p.name for p in TUTORIALS.glob("[0-9][0-9]_*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_tutorial_runs_quick(script, tmp_path):
    needs_mnist, expected = EXPECTED[script]
    env = dict(os.environ, MPLBACKEND="Agg", MPLCONFIGDIR=str(tmp_path / "mpl"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    if needs_mnist and not (Path(env.get("SCRATCHVAE_DATA", "")) / "mnist").is_dir():
        pytest.skip("needs real MNIST: set SCRATCHVAE_DATA to the folder holding mnist/")
    run = subprocess.run([sys.executable, str(TUTORIALS / script), "--quick"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    for fragment in expected:
        assert fragment in run.stdout, f"{fragment!r} not in the output:\n{run.stdout}"
    assert "Look at:" in run.stdout
    if needs_mnist and script != "04_one_training_step.py":
        assert list(tmp_path.glob("tutorial0*/*.png")), "no figure written"
