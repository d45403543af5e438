"""Every lesson runs top to bottom in quick mode, as a script and as a notebook.

The lessons in tutorials/ are jupytext percent scripts. Each one runs:

* as a script, in a subprocess from an empty folder (so the figures it saves land there),
  headless (MPLBACKEND=Agg), with SCRATCHVAE_QUICK=1;
* as a notebook: converted in-process with jupytext and executed with nbclient on the
  ``python3`` kernel in an empty folder; skipped when nbclient/ipykernel/jupytext are not
  installed (``pip install -e ".[docs]"``).

The lessons that train on MNIST skip unless SCRATCHVAE_DATA points at the folder holding mnist/.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"

# lesson: (needs MNIST, fragments the output must contain)
EXPECTED = {
    "01_tiny_vae.py": (False, [
        "loss from tiny_vae_forward: 11.115788",
        "loss by hand:              11.115788",
        "d loss / d W_dec[0, 3]: backward 0.12644147, measured 0.12644147, relative error ",
        "after one step (lr 0.1): loss 11.1158 -> 10.9685",
        "loss at zero parameters: 11.0904 = 16 log 2",
    ]),
    "04_checking_a_gradient.py": (False, [
        "row 0 from the formula:",
        "the smallest error, 2.7e-11, is at h = 6e-06",
        "(relative error 3.33e-01, FAILED)",
        "(relative error 1.00e+00, FAILED)",
        "should be 0.5: package 0.5, without the half 1.0",
    ]),
    "02_dense_layer_and_the_mlp.py": (False, [
        "1. out = x W + b: (3, 2)",
        "(0) Dense  returns d/d(its input): (5, 4)",
        "0.W  worst relative error",
    ]),
    "03_activations_and_stability.py": (False, [
        "softplus input 'x'",
        "log(sigmoid(l)) is -inf from l = -104.0 down; from the logits, at l = -120: -120.0",
        "stable_log_sigmoid(-120) = -120.0",
        "weights near exp(-800): naive -inf, log-sum-exp -799.4850",
    ]),
    "05_reparameterisation.py": (False, [
        "2. The buggy pair (eps scaled by the variance) under check_op:",
        "ok)",
        "3. KL(q || N(0, I)): closed form 3.4568",
        "moment test: package True | buggy False",
    ]),
    "06_the_kl_term.py": (False, [
        "1. 1-D KL: quadrature 1.0860599924, closed form 1.0860599924, "
        "kl_diagonal_forward 1.0860599924",
        "sum to 0.2475223920",
        "kl_standard_normal_forward:           0.2475223920",
        "Cholesky route 3.5551620524, with inverses 3.5551620524",
        "closed form 3.5552; 0.6 standard errors apart",
    ]),
    "07_likelihoods.py": (True, [
        "1. log p(x | z) through the probabilities: -inf; from the logits: -80.4402",
        "relative error",
        "3. 121 of 784 pixels are 0 in all 5000 images",
        "mean log sigma^2 on the black pixels -",
        "best log sigma^2 on the grid -3.206; log r^2 = -3.219",
    ]),
    "08_elbo_on_an_exact_model.py": (False, [
        "the prior N(0, I)",
        "posterior mean, variances 1/diag(P)",
        "q = the posterior: ELBO",
    ]),
    "09_the_whole_chain.py": (True, [
        "1. mu, log_var = encode(x)         (32, 2)      float32",
        "3. logits = decoder(z)             (32, 784)    float32",
        "path through the KL",
        "One Adam step (lr 1e-3)",
    ]),
    "10_estimators.py": (True, [
        "untrained   : image 0's L^A -545.59",
        "variance ratio var(L^A) / var(L^B): median 1.02 over the 20 images",
        "B = 1000: mean of 300 minibatch estimates",
        "3. score function      mean 2.034 +- 0.057, variance per sample 32.28",
        "variance ratio score / reparameterisation: 8.0",
    ]),
    "11_optimisers.py": (False, [
        "SGD, lr 0.019                 loss  2.33e-04",
        "Adam, lr 0.1                  loss  2.63e-09",
        "|hand - package| 0e+00",
        "rotated: Adam, lr 0.1                  loss after 200 steps  2.26e-05",
    ]),
    "12_train_mnist.py": (True, [
        "epoch   1/1  train ELBO",
        "importance-weighted bound L_20",
    ]),
    "13_evaluating_honestly.py": (True, [
        "ELBO (L^B, L = 1000)     -188.50 +- 17.37",
        "L_1000                   -181.53 +- 17.05    gain over the ELBO   6.97 +- 0.99",
        "image 0, k = 100: mean -179.16, std over 20 seeds 1.05",
    ]),
    "14_the_latent_space.py": (True, [
        "   0.2 ",
        "   4.0 ",
        "of the codes inside |z| < 2",
        "D_z = 16, beta 1.0: ",
        "D_z = 16, beta 4.0: ",
        "units active; KL per dimension sums to",
    ]),
}


def test_every_lesson_is_tested():
    assert sorted(p.name for p in TUTORIALS.glob("[0-9][0-9]_*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("lesson", sorted(EXPECTED))
def test_lesson_has_the_course_cells(lesson):
    text = (TUTORIALS / lesson).read_text()
    assert text.startswith("# %% [markdown]"), "a percent script, opening with a markdown cell"
    assert "What you will be able to do" in text
    assert "## What to look at" in text
    assert "## Your turn" in text and '# %% tags=["hide-cell"]' in text
    assert "](../docs/" in text, "links the derivation pages it uses"
    assert "argparse" not in text, "Jupyter passes -f: no argparse in a lesson"


def _mnist_or_skip(lesson):
    needs_mnist, _ = EXPECTED[lesson]
    if needs_mnist and not (Path(os.environ.get("SCRATCHVAE_DATA", "")) / "mnist").is_dir():
        pytest.skip("needs real MNIST: set SCRATCHVAE_DATA to the folder holding mnist/")


@pytest.mark.parametrize("lesson", sorted(EXPECTED))
def test_lesson_runs_as_a_script(lesson, tmp_path):
    _mnist_or_skip(lesson)
    env = dict(os.environ, MPLBACKEND="Agg", MPLCONFIGDIR=str(tmp_path / "mpl"),
               SCRATCHVAE_QUICK="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run([sys.executable, str(TUTORIALS / lesson)], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    for fragment in EXPECTED[lesson][1]:
        assert fragment in run.stdout, f"{fragment!r} not in the output:\n{run.stdout}"
    assert "Look at:" in run.stdout
    figures = list((tmp_path / Path(lesson).stem).glob("*.png"))
    assert figures, f"no figure saved under {Path(lesson).stem}/"


@pytest.mark.parametrize("lesson", sorted(EXPECTED))
def test_lesson_runs_as_a_notebook(lesson, tmp_path, monkeypatch):
    missing = [name for name in ("jupytext", "nbclient", "ipykernel")
               if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"the notebook run needs {', '.join(missing)}: pip install -e '.[docs]'")
    _mnist_or_skip(lesson)
    import jupytext
    from nbclient import NotebookClient

    # The kernel inherits this process's environment.
    monkeypatch.setenv("SCRATCHVAE_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    monkeypatch.setenv("PYTHONPATH",
                       os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    notebook = jupytext.read(TUTORIALS / lesson, fmt="py:percent")
    NotebookClient(notebook, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [out for cell in notebook.cells if cell.cell_type == "code"
               for out in cell.get("outputs", [])]
    text = "".join(out.get("text", "") for out in outputs if out.output_type == "stream")
    for fragment in EXPECTED[lesson][1]:
        assert fragment in text, f"{fragment!r} not in the notebook's output:\n{text}"
    assert "Look at:" in text
    assert any("image/png" in out.get("data", {}) for out in outputs), "no figure shown inline"
    assert not list(tmp_path.glob("0*/*.png")), "a notebook shows its figures, saves none"
    hidden = [cell for cell in notebook.cells if "hide-cell" in cell.metadata.get("tags", [])]
    assert hidden, "the answer to 'your turn' is in a cell tagged hide-cell"
