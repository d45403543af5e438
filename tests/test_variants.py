"""The variant tasks: each reference passes its own checks, the stub holds no reference body, and
marking tells a filled stub from one with a classic mistake (scratchvae.classroom.variants)."""

import ast
import doctest
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import scratchvae.lecture
from scratchvae.classroom import judge, probes
from scratchvae.classroom import variant_reference as ref
from scratchvae.classroom.mark import reference_lookup, reference_sections
from scratchvae.classroom.variants import BEGIN, END, VARIANTS, select_variants, stub_module
from scratchvae.lecture.gaussian import reparameterize_forward
from scratchvae.lecture.gaussian_density import kl_diagonal_forward
from scratchvae.lecture.gradcheck import TOLERANCE, check_op

REFERENCE = Path(ref.__file__)
finite = st.floats(-1e4, 1e4, allow_nan=False)
rows = arrays(np.float64, (3, 4), elements=st.floats(-30, 30, allow_nan=False))


def test_the_references_examples_run():
    result = doctest.testmod(ref, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 12 and result.failed == 0


@pytest.mark.parametrize("name", VARIANTS)
def test_the_reference_passes_the_gradient_check(name):
    """The course's own float64 gradient check (scratchvae.lecture.gradcheck), its strict tolerance."""
    task, case = VARIANTS[name], VARIANTS[name].case()
    inputs = {n: case.arrays[n] for n in task.options["inputs"]}
    lookup = reference_lookup()
    results = check_op(lookup(task.options["forward"]), lookup(task.options["backward"]), inputs,
                       wrt=task.options["wrt"], tol=TOLERANCE)
    assert all(r.passed for r in results), results


@pytest.mark.parametrize("seed", [None, 5])
@pytest.mark.parametrize("name", VARIANTS)
def test_the_reference_passes_every_check_of_the_marker(name, seed):
    """The marker's checks on the reference, public draws and a secret seed's (sizes drawn too)."""
    task = VARIANTS[name]
    case = task.case(seed)
    sections = probes.run_probe(task.probe, reference_lookup(), case)
    outcomes = judge.judge_task(task, case, sections, "", sections)
    assert [o for o in outcomes if o.status != judge.PASS] == []
    assert {"forward: values", "extreme inputs", "backward: values", "gradient check"} <= {o.check for o in outcomes}
    if name in ("kl_gaussian_prior", "softplus_reparameterize", "logistic_log_likelihood"):
        assert len(outcomes) == 5  # and the forward's maths check


def test_a_secret_seed_draws_other_inputs_and_sizes():
    task = VARIANTS["elu"]
    public, secret = task.case(), task.case(5)
    assert not np.array_equal(public.arrays["x"], secret.arrays["x"])
    assert np.array_equal(task.case(5).arrays["x"], secret.arrays["x"])  # deterministic
    assert {VARIANTS[n].case(s).arrays[VARIANTS[n].options["inputs"][0]].shape
            for n in VARIANTS for s in (1, 2, 3)} != {(4, 5)}


def test_select_variants_names_the_unknown():
    assert [v.name for v in select_variants(["gelu", "elu"])] == ["elu", "gelu"]
    with pytest.raises(ValueError, match="no variant called 'relu'.*the variants are elu, swish"):
        select_variants(["relu"])


def test_a_bad_parameter_is_named():
    with pytest.raises(ValueError, match=r"alpha: expected a finite number > 0, got -1"):
        ref.elu_forward(np.ones(2), alpha=-1)
    with pytest.raises(ValueError, match="prior_std: expected a finite number > 0"):
        ref.kl_gaussian_prior_forward([[0.0]], [[0.0]], 0.0, 0.0)


# --- Properties of the references, extreme values included -------------------------------


@given(arrays(np.float64, 6, elements=finite), st.floats(0.5, 2.0))
def test_activations_are_finite_and_bounded_anywhere(x, param):
    x = np.concatenate([x, [-1e4, 1e4, 0.0]])
    for name, args, low in [("elu", (param,), -param), ("swish", (param,), -0.279 / param), ("gelu", (), -0.171)]:
        out, cache = getattr(ref, f"{name}_forward")(x, *args)
        dx = getattr(ref, f"{name}_backward")(np.ones_like(x), cache)
        assert np.all(np.isfinite(out)) and np.all(np.isfinite(dx)), name
        assert np.all(out >= low), name
        assert np.all(out[x > 0] <= x[x > 0] * (1 + 1e-15)), name


def test_activations_at_plus_and_minus_1e4():
    x = np.array([-1e4, 1e4])
    with np.errstate(over="raise", invalid="raise"):  # no overflow, not even in a branch thrown away
        assert np.array_equal(ref.elu_forward(x, 1.5)[0], [-1.5, 1e4])
        assert np.array_equal(ref.elu_backward(np.ones(2), ref.elu_forward(x, 1.5)[1]), [0.0, 1.0])
        for name in ("swish", "gelu"):
            out, cache = getattr(ref, f"{name}_forward")(x)
            assert np.array_equal(out, [0.0, 1e4]), name
            assert np.array_equal(getattr(ref, f"{name}_backward")(np.ones(2), cache), [0.0, 1.0]), name


def test_gelu_is_the_tanh_approximation():
    x = np.linspace(-6, 6, 101)
    literal = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(ref.gelu_forward(x)[0], literal, rtol=1e-12, atol=1e-15)


@given(rows, rows, st.floats(-3, 3), st.floats(0.1, 10))
def test_the_kl_to_a_prior_is_non_negative_and_the_lectures_diagonal_kl(mu, log_var, m, s):
    kl = ref.kl_gaussian_prior_forward(mu, log_var, m, s)[0]
    assert np.all(kl >= 0)
    expected = kl_diagonal_forward(mu, log_var, np.full_like(mu, m), np.full_like(mu, 2 * np.log(s)))[0]
    np.testing.assert_allclose(kl, expected, rtol=1e-9, atol=1e-12)


@given(st.floats(-3, 3), st.floats(0.1, 10))
def test_the_kl_is_zero_exactly_at_the_prior(m, s):
    mu, log_var = np.full((2, 3), m), np.full((2, 3), 2 * np.log(s))
    kl, cache = ref.kl_gaussian_prior_forward(mu, log_var, m, s)
    assert np.array_equal(kl, [0.0, 0.0])
    assert all(not np.any(g) for g in ref.kl_gaussian_prior_backward(np.ones(2), cache))


@given(rows, arrays(np.float64, (3, 4), elements=finite), rows)
def test_the_softplus_sample_is_the_lectures_with_log_var_2_log_softplus(mu, rho, eps):
    z = ref.softplus_reparameterize_forward(mu, rho, eps)[0]
    assert np.all(np.isfinite(z))
    sigma = np.logaddexp(0, rho)
    shown = sigma > 1e-300  # where log sigma is finite
    expected = reparameterize_forward(mu, np.where(shown, 2 * np.log(np.where(shown, sigma, 1)), 0), eps)[0]
    np.testing.assert_allclose(z[shown], expected[shown], rtol=1e-12, atol=1e-12)


@given(arrays(np.float64, (2, 5), elements=finite), arrays(np.float64, (2, 5), elements=st.floats(-690, 700)))
def test_the_logistic_log_likelihood_is_finite_and_the_literal_formula(x, log_scale):
    """Finite wherever the exact value is: |u| <= 1e4 e^690, and five of them, stay below 1.8e308."""
    ll, cache = ref.logistic_log_likelihood_forward(x, np.zeros_like(x), log_scale)
    grads = ref.logistic_log_likelihood_backward(np.ones(2), cache)
    assert np.all(np.isfinite(ll)) and all(np.all(np.isfinite(g)) for g in grads)
    u = x * np.exp(-log_scale)
    literal = np.sum(-u - log_scale - 2 * np.logaddexp(0, -u), axis=1)  # logaddexp: the literal, stably
    np.testing.assert_allclose(ll, literal, rtol=1e-12)


def test_the_logistic_density_integrates_to_one():
    x = np.linspace(-60, 60, 240001)[:, None]
    density = np.exp(ref.logistic_log_likelihood_forward(x, np.full_like(x, 0.7), np.full_like(x, 0.4))[0])
    assert abs(np.trapezoid(density, x[:, 0]) - 1) < 1e-9


# --- The student's module --------------------------------------------------------------


def _bodies(source):
    """The non-blank lines inside the marked regions of ``source``."""
    lines, inside, found = source.splitlines(), False, []
    for line in lines:
        if line.strip() in (BEGIN, END):
            inside = line.strip() == BEGIN
        elif inside and line.strip():
            found.append(line.strip())
    return found


def test_the_stub_holds_no_line_of_the_reference_body():
    stub = stub_module(["elu"])
    ast.parse(stub)
    assert "def elu_forward(x, alpha=1.0)" in stub and "def elu_backward(dout, cache)" in stub
    assert "class EluCache" in stub and "def gelu_forward" not in stub and "GELU_K" not in stub
    assert stub.count('raise NotImplementedError("elu: not written yet') == 2
    assert "scratchvae" not in stub and "from studentvae.validate import" in stub
    leaked = [line for line in _bodies(REFERENCE.read_text()) if line in stub and not line.startswith("#")]
    assert leaked == []


def _filled(names):
    """The stub of ``names`` with each raise replaced by the reference's body: a student who finished."""
    source = REFERENCE.read_text()
    regions = re.findall(rf"^([ ]*){BEGIN}\n(.*?)^[ ]*{END}\n", source, flags=re.M | re.S)
    tree = ast.parse(source)
    owners = [node.name for node in tree.body
              if isinstance(node, ast.FunctionDef) and BEGIN in ast.get_source_segment(source, node)]
    wanted = [body for owner, (_, body) in zip(owners, regions) if owner.rsplit("_", 1)[0] in names]
    stub = stub_module(names)
    pieces = re.split(r"^[ ]*raise NotImplementedError\(.*\n", stub, flags=re.M)
    assert len(pieces) == len(wanted) + 1
    return pieces[0] + "".join(body + piece for body, piece in zip(wanted, pieces[1:]))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A minimal student project: the lecture modules the variants import, and ``variants.py``."""
    folder = tmp_path_factory.mktemp("variants") / "project"
    package = folder / "studentvae"
    package.mkdir(parents=True)
    for module in ("activations", "gaussian", "validate"):
        text = (Path(scratchvae.lecture.__file__).parent / f"{module}.py").read_text()
        (package / f"{module}.py").write_text(text.replace("scratchvae.lecture", "studentvae"))
    (package / "__init__.py").write_text("")
    return folder


def _mark(project, variants_source, name):
    from scratchvae.classroom.mark import mark_task
    from scratchvae.classroom.sandbox import Submission

    (project / "studentvae" / "variants.py").write_text(variants_source)
    return mark_task(Submission("student", project, "studentvae"), VARIANTS[name],
                     sandbox=None)  # in bubblewrap where it works


def test_a_filled_stub_gets_full_marks_and_a_bare_one_none(project):
    outcomes, _ = _mark(project, _filled(["elu", "logistic_log_likelihood"]), "elu")
    assert [o.status for o in outcomes] == [judge.PASS] * 4, outcomes
    outcomes, _ = _mark(project, _filled(["elu", "logistic_log_likelihood"]), "logistic_log_likelihood")
    assert [o.status for o in outcomes] == [judge.PASS] * 5, outcomes
    outcomes, _ = _mark(project, stub_module(["elu"]), "elu")
    assert {o.status for o in outcomes} == {judge.NOT_ATTEMPTED}
    assert "elu: not written yet" in outcomes[0].message


def test_the_classic_elu_mistake_fails_with_a_message(project):
    """alpha e^x for x > 0 too: the backward's values and the gradient check fail, and say where."""
    wrong = _filled(["elu"]).replace("return np.where(x > 0, dout, dout * alpha * np.exp(np.minimum(x, 0)))",
                                     "return dout * alpha * np.exp(x)")
    assert wrong != _filled(["elu"])
    outcomes = {o.check: o for o in _mark(project, wrong, "elu")[0]}
    assert outcomes["forward: values"].status == judge.PASS
    for check in ("backward: values", "gradient check"):
        assert outcomes[check].status == judge.FAIL and "dx, element" in outcomes[check].message


def test_a_wrong_prior_kl_fails_its_monte_carlo_check(project):
    """The 1/s^2 forgotten on the mean's term: the values and the Monte Carlo check both fail."""
    right = _filled(["kl_gaussian_prior"])
    wrong = right.replace("(mu - prior_mean) ** 2 / prior_std**2", "(mu - prior_mean) ** 2")
    assert wrong != right
    outcomes = {o.check: o for o in _mark(project, wrong, "kl_gaussian_prior")[0]}
    assert outcomes["forward: Monte Carlo"].status == judge.FAIL
    assert "samples z ~ q" in outcomes["forward: Monte Carlo"].message


def test_the_marker_reference_is_the_variant_reference():
    assert reference_lookup()("variants.elu_forward") is ref.elu_forward
    assert reference_sections(VARIANTS["gelu"])["forward"]["out"].shape == VARIANTS["gelu"].case().arrays["x"].shape


# --- The handout and the commands --------------------------------------------------------


@pytest.fixture(scope="module")
def handout(tmp_path_factory):
    """``scratchvae classroom handout DIR --variant elu``."""
    from scratchvae.classroom.commands import main

    folder = tmp_path_factory.mktemp("handout") / "class"
    assert main(["handout", str(folder), "--variant", "elu"]) == 0
    return folder


def test_a_handout_with_a_variant_holds_its_stub_and_no_line_of_any_reference_body(handout):
    stub = (handout / "studentvae" / "variants.py").read_text()
    assert "def elu_forward" in stub and "def gelu_forward" not in stub
    assert "check(\"elu\")" in (handout / "tests" / "test_tasks.py").read_text()
    assert not (handout / "docs" / "variants.md").exists()
    public = {line.strip() for path in Path(scratchvae.lecture.__file__).parent.glob("*.py")
              for line in path.read_text().splitlines()}  # "return dmu, dlog_var" is said in the lecture too
    secret = {line for line in _bodies(REFERENCE.read_text()) if not line.startswith("#")} - public
    assert len(secret) > 12
    found = [(path.name, line) for path in handout.rglob("*") if path.is_file() and path.suffix != ".npz"
             for line in path.read_text(errors="replace").splitlines() if line.strip() in secret]
    assert found == []
    assert not list(handout.rglob("variant_reference*"))


def test_the_variants_detected_on_update_are_those_handed_out(handout):
    from scratchvae.classroom.handout import update_handout
    from scratchvae.classroom.variants import handed_out

    assert handed_out(handout / "studentvae") == ["elu"]
    before = (handout / "studentvae" / "variants.py").read_bytes()
    update_handout(handout)
    assert (handout / "studentvae" / "variants.py").read_bytes() == before
    assert "check(\"elu\")" in (handout / "tests" / "test_tasks.py").read_text()


def test_mark_variant_marks_the_variant_in_its_own_column(handout, tmp_path):
    from scratchvae.classroom.commands import main

    (handout / "studentvae" / "variants.py").write_text(_filled(["elu"]))
    out = tmp_path / "marks.csv"
    assert main(["mark", str(handout), "--only", "relu", "--variant", "elu", "--out", str(out),
                 "--no-sandbox"]) == 0
    rows = [line.split(",") for line in out.read_text().splitlines() if not line.startswith("#")]
    header, row = rows[0], rows[1]
    assert header[header.index("relu") + 1] == "elu"
    assert row[header.index("elu")] == "4" and row[header.index("relu")] == "0"
