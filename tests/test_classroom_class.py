"""Marking a class: every entry a row, inputs from the teacher's secret seed, a roster, resuming, re-marking one.

Each test that marks marks only ``relu`` (or ``dense`` and ``relu``), on a
handful of entries, in bubblewrap's sandbox where it works and with the
limits alone where it does not; what only the sandbox guarantees, and an
interrupted run resumed, are in ``tests/test_classroom_hostile.py``.
"""

import csv
import os
import shutil
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from scratchvae.classroom import marksheet, museum
from scratchvae.classroom.commands import main
from scratchvae.classroom.entries import FILE, PROJECT, ZIP, extract_zip, find_entries
from scratchvae.classroom.judge import AGREEMENT, PASS
from scratchvae.classroom.mark import find_submissions, mark_submission, marking_case, reference_sections
from scratchvae.classroom.sandbox import MAX_FILE, MAX_FILES, MB, Limits, sandbox_problem
from scratchvae.classroom.tasks import TASKS, select

QUICK = Limits(wall=6.0, cpu=4, memory=768 * MB, output=1 * MB)
SANDBOX = None  # bubblewrap's sandbox where it works, else the limits alone
FLAGS = ["--wall", "6", "--cpu", "4", *([] if sandbox_problem() is None else ["--no-sandbox"])]

RELU = """
import numpy as np

def relu_forward(x):
    return np.maximum(x, 0), x

def relu_backward(dout, cache):
    return dout * (cache > 0)
"""


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def table(marks):
    """The CSV's rows as dicts, its comment lines left out."""
    with open(marks, newline="") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def mark(*args):
    """``scratchvae classroom mark`` in this process; its exit status."""
    return main(["mark", *map(str, args), "--only", "relu", *FLAGS])


# --- Inputs nobody has seen ------------------------------------------------------------


def test_the_public_draws_are_fixed_and_a_seed_draws_sizes_and_values():
    dense = TASKS["dense"]
    public, again = dense.case(), dense.case(None)
    assert all(np.array_equal(public.arrays[k], again.arrays[k]) for k in public.arrays)
    secret = [dense.case(seed) for seed in range(8)]
    assert all(np.array_equal(secret[3].arrays[k], dense.case(3).arrays[k]) for k in public.arrays)
    shapes = {tuple(case.arrays[k].shape for k in ("x", "W")) for case in secret}
    assert len(shapes) > 1 and not any(np.array_equal(c.arrays["x"], public.arrays["x"]) for c in secret)
    for bad in (-1, 1.5, "7", True):
        with pytest.raises(ValueError, match="seed: expected an integer >= 0"):
            dense.case(bad)


def test_a_seed_draws_the_model_tasks_batch_and_the_museum_scales_by_it():
    """The tiny VAE's and the VAE's batches are drawn under a seed too, and "a missing 1/B" is still
    recognised there: the museum multiplies by the batch of the case the student was marked on."""
    for name, section in (("tiny_vae", "backward"), ("vae", "analytic")):
        task = TASKS[name]
        batches = {len(task.case(seed).arrays["x"]) for seed in range(12)}
        assert len(batches) > 1, (name, batches)
        seed = next(s for s in range(12) if len(task.case(s).arrays["x"]) != len(task.case().arrays["x"]))
        case, reference = marking_case(task, seed)
        batch = len(case.arrays["x"])
        student = {**reference, section: {k: batch * v for k, v in reference[section].items()}}
        found = museum.recognise(task, student, reference,
                                 lambda replace, arrays: reference_sections(task, replace, arrays, case),
                                 AGREEMENT, case)
        assert "a missing 1/B" in [bug.name for bug in found], (name, seed, batch)


def test_values_replayed_from_the_public_draws_earn_nothing_under_a_secret_seed(tmp_path):
    """A submission that returns the public case's reference outputs, whatever its input, passes the value
    checks on the public draws (what scratchvae check uses), and earns nothing on a teacher's seed."""
    reference = reference_sections(TASKS["relu"])
    out, dx = reference["forward"]["out"].tolist(), reference["backward"]["d0"].tolist()
    path = write(tmp_path / "replay.py", f"""
        import numpy as np
        def relu_forward(x):
            return np.array({out}), None
        def relu_backward(dout, cache):
            return np.array({dx})
        """)
    (submission,) = find_submissions([path])
    public = mark_submission(submission, select(["relu"]), QUICK, SANDBOX)
    assert {o.check: o.status for o in public.outcomes}["forward: values"] == PASS
    assert {o.check: o.status for o in public.outcomes}["backward: values"] == PASS
    assert mark_submission(submission, select(["relu"]), QUICK, SANDBOX, seed=2024).score == 0


def test_marks_under_a_seed_are_the_same_run_after_run_and_with_jobs_and_name_no_seed(tmp_path):
    for name in ("alice", "bob"):
        write(tmp_path / "class" / f"{name}.py", RELU if name == "alice" else "def relu_forward(x):\n    return x, x\n")
    assert mark(tmp_path / "class", "--out", tmp_path / "one.csv", "--seed", 987654321) == 0
    assert mark(tmp_path / "class", "--out", tmp_path / "two.csv", "--seed", 987654321, "--jobs", 2) == 0
    one = (tmp_path / "one.csv").read_text()
    assert one == (tmp_path / "two.csv").read_text()
    assert one.splitlines()[0].startswith("# draws: secret (mark --seed; fingerprint ")
    assert "987654321" not in one and [row["relu"] for row in table(tmp_path / "one.csv")] == ["3", "0"]
    assert mark(tmp_path / "class", "--out", tmp_path / "one.csv", "--seed", 7, "--resume") == 2  # other draws


# --- No lost class, no vanished entry ---------------------------------------------------


def _zip(path, members):
    with zipfile.ZipFile(path, "w") as packed:
        for name, data in members.items():
            packed.writestr(name, data)
    return path


def test_every_entry_is_found_and_says_what_it_is(tmp_path, solved):
    folder = tmp_path / "class"
    (folder / "empty").mkdir(parents=True)
    write(folder / "readme.txt", "not a submission\n")
    shutil.copytree(solved, folder / "nested" / "week1")
    write(folder / "one_file" / "my_relu.py", RELU)
    _zip(folder / "zed.zip", {"zed/studentvae/__init__.py": "", "zed/studentvae/activations.py": RELU})
    write(folder / "bob.py", RELU)
    shutil.copytree(solved, folder / "bob")
    shutil.copytree(solved, folder / os.fsdecode(b"caf\xe9"))
    (folder / "link").symlink_to(solved)
    write(folder / ".DS_Store", "")
    found = {e.name: e for e in find_entries([folder])}
    assert sorted(found) == ["bob", "bob-2", "caf\\xe9", "empty", "link", "nested", "one_file", "readme.txt", "zed"]
    assert {name: e.kind for name, e in found.items()} == {
        "bob": PROJECT, "bob-2": FILE, "caf\\xe9": PROJECT, "empty": "", "link": "", "nested": PROJECT,
        "one_file": FILE, "readme.txt": "", "zed": ZIP}
    assert found["nested"].path == folder / "nested" / "week1"
    assert found["nested"].notes == ("the handout was found one level down, in week1/",)
    assert found["bob-2"].notes == ("renamed bob-2: another entry is also called bob",)
    assert found["caf\\xe9"].notes == ("its name is not plain UTF-8 text: shown as caf\\xe9",)
    assert found["empty"].notes == ("the folder is empty: nothing to mark",)
    assert found["link"].notes == ("a symbolic link, not followed: nothing to mark",)
    assert found["readme.txt"].notes == ("not a folder, a .py file or a .zip: nothing to mark",)
    assert found["one_file"].notes == ("its one .py file, my_relu.py, marked as a single file",)


def test_a_zip_is_extracted_inside_its_folder_and_within_its_caps(tmp_path):
    members = {"ok/studentvae/activations.py": RELU, "/abs.py": "X = 1", "../up.py": "X = 1",
               "ok/../../up2.py": "X = 1", "C:\\win.py": "X = 1", "ok/notes.txt": "not .py",
               "ok/big.py": "#" * (MAX_FILE + 1)}
    packed = _zip(tmp_path / "evil.zip", members)
    with zipfile.ZipFile(packed, "a") as f:
        link = zipfile.ZipInfo("ok/link.py")
        link.external_attr = 0o120777 << 16
        f.writestr(link, "/etc/passwd")
    target = tmp_path / "out"
    target.mkdir()
    notes = extract_zip(packed, target)
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()) == [
        "ok/studentvae/activations.py"]
    assert notes == ["/abs.py: a path outside the zip's folder, not extracted",
                     "../up.py: a path outside the zip's folder, not extracted",
                     "ok/../../up2.py: a path outside the zip's folder, not extracted",
                     "C:\\win.py: a path outside the zip's folder, not extracted",
                     "ok/big.py: larger than 1 MB", "ok/link.py: a symbolic link, not followed"]
    many = _zip(tmp_path / "many.zip", {f"f{k}.py": "" for k in range(MAX_FILES + 5)})
    assert extract_zip(many, target)[-1] == f"f{MAX_FILES}.py and what follows: the zip holds more than " \
                                            f"{MAX_FILES} entries"
    assert len(list(target.glob("f*.py"))) == MAX_FILES


def test_a_class_marks_every_entry_with_a_row_and_a_roster_names_them(tmp_path, capsys):
    folder = tmp_path / "class"
    write(folder / "alice.py", RELU)
    (folder / "empty").mkdir()
    _zip(folder / "zed.zip", {"studentvae/__init__.py": "", "studentvae/activations.py": RELU})
    write(folder / "bad.zip", "not a zip")
    write(tmp_path / "roster.csv", "folder,id,name\nalice,s01,Alice Liddell\nempty,s02,Emma Empty\n"
                                   "ghost,s03,Gus Ghost\n")
    out = tmp_path / "out" / "marks.csv"
    assert mark(folder, "--out", out, "--roster", tmp_path / "roster.csv") == 0
    rows = [(r["student id"], r["name"], r["entry"], r["relu"], r["total"], r["out of"], r["note"]) for r in table(out)]
    assert rows == [
        ("s01", "Alice Liddell", "alice", "3", "3", "3", ""),
        ("", "", "bad", "0", "0", "3", "a zip that cannot be read (File is not a zip file): nothing to mark; "
                                       "not in the roster: no student id"),
        ("s02", "Emma Empty", "empty", "0", "0", "3", "the folder is empty: nothing to mark"),
        ("", "", "zed", "3", "3", "3", "a zip: its .py files extracted and marked; not in the roster: no student id"),
        ("s03", "Gus Ghost", "", "0", "0", "3", "in the roster, but no entry was found: nothing marked (folder ghost)")]
    assert sorted(p.name for p in (tmp_path / "out" / "marks-feedback").iterdir()) == [
        "bad.txt", "s01.txt", "s02.txt", "zed.txt"]
    assert "the folder is empty" in (tmp_path / "out" / "marks-feedback" / "s02.txt").read_text()
    said = capsys.readouterr().out
    assert "roster: 2 entries not in the roster, without a student id: bad, zed" in said
    assert "roster: 1 students with no entry, a row of zeros each: s03" in said


@pytest.mark.parametrize("text, error", [
    ("folder,name\nalice,Alice\n", "the roster needs the columns folder, id, name; id missing"),
    ("folder,id,name\nalice,s1,A\nalice,s2,B\n", "line 3: the folder alice is already on an earlier line"),
    ("folder,id,name\nalice,s1,A\nbob,s1,B\n", "line 3: the id s1 is already on an earlier line"),
    ("folder,id,name\nalice,a/b,A\n", "line 2: the id 'a/b' cannot name a feedback file"),
    ("folder,id,name\nalice,,A\n", "line 2: a folder and an id are needed")])
def test_a_roster_that_cannot_be_used_is_refused_saying_where(tmp_path, capsys, text, error):
    write(tmp_path / "alice.py", RELU)
    roster = write(tmp_path / "roster.csv", text)
    assert mark(tmp_path / "alice.py", "--out", tmp_path / "marks.csv", "--roster", roster) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert line.startswith(f"scratchvae classroom mark: error: {roster}") and error in line, line


def test_one_student_is_marked_again_into_the_csv(tmp_path, capsys):
    """The CSV, the feedback and the rest are written into the class folder: they are not entries."""
    folder = tmp_path / "class"
    write(folder / "alice.py", RELU)
    write(folder / "bob.py", "def relu_forward(x):\n    return x, x\n")
    out = folder / "marks.csv"
    assert mark(folder, "--out", out, "--student", "bob") == 2  # no CSV to mark into yet
    assert "does not exist" in capsys.readouterr().err
    assert mark(folder, "--out", out) == 0
    first = out.read_text()
    write(folder / "bob.py", RELU)  # bob's late fix
    assert mark(folder, "--out", out, "--student", "nobody") == 2
    assert "--student nobody: no entry of that name or student id (the entries: alice, bob)" in capsys.readouterr().err
    assert mark(folder, "--out", out, "--student", "bob") == 0
    assert out.read_text() == first.replace("bob,,bob,0,0,3,", "bob,,bob,3,3,3,")
    assert "3 of 3 points" in (folder / "marks-feedback" / "bob.txt").read_text()


# --- Marks that mean what they say -------------------------------------------------------


def test_a_syntax_error_in_one_file_costs_only_the_tasks_that_depend_on_it(tmp_path, solved):
    project = shutil.copytree(solved, tmp_path / "project")
    with open(project / "studentvae" / "activations.py", "a") as f:
        f.write("\ndef broken(:\n")
    (submission,) = find_submissions([project])
    report = mark_submission(submission, select(["dense", "relu"]), QUICK, SANDBOX)
    assert report.points("dense") == (4, 4) and report.points("relu") == (0, 3)
    assert all("SyntaxError" in o.message and "activations.py" in o.message
               for o in report.outcomes if o.task == "relu")


def test_the_marksheet_keeps_rows_cut_short_out_and_refuses_another_way_of_marking(tmp_path):
    path, header = tmp_path / "marks.csv", marksheet.columns(select(["relu"]))
    sheet = marksheet.Marksheet(path, header, ["draws: public", "sandboxed"])
    sheet.add("alice", ["alice", "", "alice", 3, 3, 3, ""])
    with open(path, "a") as f:
        f.write("bob,,bo")  # the marker was killed while writing bob's row
    assert marksheet.Marksheet(path, header, ["draws: public", "sandboxed"], resume=True).rows == {
        "alice": ["alice", "", "alice", "3", "3", "3", ""]}
    with pytest.raises(marksheet.MarksheetMismatch, match="was marked another way"):
        marksheet.Marksheet(path, header, ["draws: secret", "sandboxed"], resume=True)
    with pytest.raises(marksheet.MarksheetMismatch, match="marks relu; this run would say .* marks dense"):
        marksheet.Marksheet(path, marksheet.columns(select(["dense"])), ["draws: public", "sandboxed"], resume=True)
    assert Path(path).read_text().count("alice") == 2  # refused: the file as it was
