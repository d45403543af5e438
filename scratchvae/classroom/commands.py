"""The teacher's command, ``scratchvae classroom``: write a handout, mark a class.

    scratchvae classroom handout DIR [--variant NAME ...] [--update]
    scratchvae classroom mark SUBMISSIONS... [--out marks.csv] [--feedback DIR]
                              [--only TASK ...] [--variant NAME ...] [--seed S] [--jobs N] [--resume | --student NAME]
                              [--roster students.csv] [--wall S] [--cpu S] [--memory MB] [--output MB]
                              [--no-sandbox]
    scratchvae classroom similarity SUBMISSIONS... [--out similarity.md] [--only TASK ...] [--threshold R]
    scratchvae classroom autograder [--out autograder.zip] [--only TASK ...] [--seed S] [--visibility WHEN]
    scratchvae classroom tasks

``mark`` runs every submission in bubblewrap's sandbox
(:mod:`scratchvae.classroom.sandbox`) and refuses, with exit status 2 and a
line saying how to install it, where bubblewrap cannot run; ``--no-sandbox``
marks without it, and the summary and the CSV say "not sandboxed". Every
entry of the class gets a row (:mod:`scratchvae.classroom.entries`), written
as soon as it is marked (:mod:`scratchvae.classroom.marksheet`).
Exit status: 0 when the command did its work (whatever the marks), 2 for bad
input or no sandbox, 130 when interrupted (the rows done are kept: rerun
with ``--resume``).
Guide: docs/exercises.md#for-teachers
"""

import argparse
import sys
from pathlib import Path

from scratchvae.classroom import autograder, marksheet, sandbox
from scratchvae.classroom.entries import find_entries
from scratchvae.classroom.handout import update_handout, write_handout
from scratchvae.classroom.judge import NOT_ATTEMPTED
from scratchvae.classroom.mark import Report, mark_class, unmarked
from scratchvae.classroom.sandbox import MB, Limits, SandboxUnavailable
from scratchvae.classroom.similarity import THRESHOLD, write_class_similarity
from scratchvae.classroom.summary import marks_from_rows, write_summary
from scratchvae.classroom.tasks import TASKS, select
from scratchvae.classroom.variants import VARIANTS, select_variants
from scratchvae.tools.argtypes import COUNT, FRACTION, POSITIVE_INT

__all__ = ["main", "NOT_SANDBOXED"]

NOT_SANDBOXED = ("not sandboxed (--no-sandbox): each submission ran as the marker's user with the marker's files "
                 "and processes and the network in reach; marks for practice and not for a grade")
SANDBOXED = "each submission in bubblewrap's sandbox"


def handout(args):
    if args.update:
        kept = update_handout(args.folder)
        print(f"updated {args.folder}: coursetools/, lessons/, docs/, tests/, README.md, pyproject.toml "
              "to the current course; studentvae/ untouched"
              + (f"; your lessons as they were are in {kept}, and their runs/ moved to the new lessons/"
                 if kept else ""))
        return 0
    variants = args.variant or ()
    folder = write_handout(args.folder, variants)
    also = f" and {len(variants)} variant(s) in studentvae/variants.py ({', '.join(variants)})" if variants else ""
    print(f"wrote {folder}: studentvae/ with {len(TASKS)} tasks to write{also}, coursetools/, lessons/, "
          "tests/, docs/, README.md, pyproject.toml")
    return 0


def _class(args, roster, out, feedback):
    """The entries to mark (all, or ``--student``'s) and every entry of the class (the CSV's rows, in order)."""
    ours = [p for p in (out.parent.iterdir() if out.parent.is_dir() else ())
            if p.name in (out.name, out.name + ".partial") or p.name.startswith(out.stem + "-")]
    everyone = find_entries(args.submissions, skip=(*ours, feedback))  # the marker's outputs are not entries
    if args.student is None:
        return everyone, everyone
    if not out.exists():
        raise FileNotFoundError(f"--student re-marks one entry into an existing CSV: {out} does not exist")
    chosen = [e for e in everyone if args.student in (e.name, getattr(roster.get(e.name), "id", None))]
    if not chosen:
        shown = ", ".join(e.name for e in everyone[:20]) + (", ..." if len(everyone) > 20 else "")
        raise FileNotFoundError(f"--student {args.student}: no entry of that name or student id (the entries: "
                                f"{shown or 'none'})")
    return chosen, everyone


def _feedback(entry, report, notes, student):
    """A feedback file's name (the student id, else the entry's name) and its text."""
    text = "".join(f"{note}\n" for note in notes) + ("\n" if notes else "") + report.table() + "\n"
    return f"{student.id if student and student.id else entry.name}.txt", text


def mark(args):
    tasks = select(args.only) + select_variants(args.variant or ())
    limits = Limits(wall=args.wall, cpu=args.cpu, memory=args.memory * MB, output=args.output * MB)
    if args.no_sandbox:
        print(NOT_SANDBOXED, file=sys.stderr, flush=True)
    else:
        sandbox.require_sandbox()
    roster = marksheet.read_roster(args.roster) if args.roster else {}
    out = Path(args.out)
    feedback = Path(args.feedback) if args.feedback else out.with_name(out.stem + "-feedback")
    entries, everyone = _class(args, roster, out, feedback)
    draws = marksheet.draws_comment(args.seed)
    for folder in (out.parent, feedback):
        folder.mkdir(parents=True, exist_ok=True)
    sheet = marksheet.Marksheet(out, marksheet.columns(tasks), [draws, NOT_SANDBOXED if args.no_sandbox else SANDBOXED],
                                resume=args.resume or args.student is not None)
    if args.student is not None:
        sheet.forget(entries[0].name)
    todo = [e for e in entries if e.name not in sheet.rows]
    if len(todo) < len(entries):
        print(f"{len(entries) - len(todo)} of {len(entries)} entries already marked in {out}: their rows are kept")
    printer = _InOrder([e.name for e in todo])

    def finished(entry, report, notes):
        student = roster.get(entry.name, marksheet.Student("", "")) if roster else None
        notes = (*notes, marksheet.NOT_IN_ROSTER) if student == ("", "") else notes
        name, text = _feedback(entry, report, notes, student)
        (feedback / name).write_text(text)
        sheet.add(entry.name, marksheet.row(tasks, report, entry.name, student, notes))
        printer.done(entry.name, f"{entry.name}: {report.score}/{report.total}" + (f" ({notes[-1]})" if notes else ""))

    absent = [(folder, s) for folder, s in roster.items() if folder not in {e.name for e in everyone}]
    nothing = Report("", tuple(unmarked(tasks, NOT_ATTEMPTED, marksheet.NO_ENTRY, args.seed)), ())
    extra = [marksheet.row(tasks, nothing, "", student, (f"{marksheet.NO_ENTRY} (folder {folder})",))
             for folder, student in absent]
    try:
        mark_class(todo, tasks, finished, limits, sandbox=not args.no_sandbox, seed=args.seed, jobs=args.jobs)
    except KeyboardInterrupt:
        sheet.finish([e.name for e in everyone], extra)
        print(f"interrupted: {len(sheet.rows)} of {len(everyone)} entries marked in {out}; the same command with "
              "--resume marks the rest", file=sys.stderr)
        return 130
    sheet.finish([e.name for e in everyone], extra)
    _roster_report(roster, everyone, absent)
    how = "not sandboxed" if args.no_sandbox else "each in bubblewrap's sandbox"
    out_of = {t.name: nothing.points(t.name)[1] for t in tasks}
    rows = [sheet.rows[e.name] for e in everyone if e.name in sheet.rows] + extra
    written = write_summary(marks_from_rows(rows, tasks, out_of), tasks, out.parent, out.stem, [draws, how])
    similar = out.with_name(out.stem + "-similarity.md")
    write_class_similarity(everyone, tasks, similar)
    print(f"wrote {written[0]}, {written[1]} and {similar} (code to look at twice, not a verdict)")
    print(f"wrote {out} ({len(everyone) + len(extra)} rows, {len(todo)} marked now; {draws.partition(' (')[0]}; "
          f"{how}) and {feedback}/<student id>.txt")
    return 0


def _roster_report(roster, everyone, absent):
    """Say which entries the roster does not list, and which of its students handed nothing in."""
    unlisted = [e.name for e in everyone if roster and e.name not in roster]
    if unlisted:
        print(f"roster: {len(unlisted)} entries not in the roster, without a student id: {', '.join(unlisted)}")
    if absent:
        print(f"roster: {len(absent)} students with no entry, a row of zeros each: "
              f"{', '.join(s.id for _, s in absent)}")


class _InOrder:
    """Prints each entry's line in the entries' order, whatever order they end in."""

    def __init__(self, order):
        self.order, self.lines, self.shown = order, {}, 0

    def done(self, name, line):
        self.lines[name] = line
        while self.shown < len(self.order) and self.order[self.shown] in self.lines:
            print(self.lines.pop(self.order[self.shown]), flush=True)
            self.shown += 1


def similarity(args):
    tasks = select(args.only)
    entries = find_entries(args.submissions, skip=(Path(args.out),))
    findings = write_class_similarity(entries, tasks, args.out, args.threshold)
    flagged = sum(len(f.identical) + len(f.close) for f in findings)
    print(f"wrote {args.out}: {len(entries)} entries, {flagged} groups and pairs to look at "
          f"(identical, or a ratio of at least {args.threshold:.2f}); flagged, not penalised")
    return 0


def gradescope(args):
    out = autograder.write_autograder(args.out, args.only, args.seed, args.visibility)
    draws = ("the secret seed's draws" if args.seed is not None
             else "the public draws (give --seed for marks that count)")
    print(f"wrote {out}: setup.sh, run_autograder, config.json and a wheel of this scratchvae; "
          f"{len(select(args.only))} tasks on {draws}; upload it on Gradescope's 'Configure autograder' page")
    return 0


def tasks_listing(args):
    for k, task in enumerate(TASKS.values(), start=1):
        print(f"{k:2d}. {task.name}: {task.title} ({', '.join(task.functions)}; docs/{task.doc})")
    print("Variant tasks (handout --variant, mark --variant): answers the lecture does not contain")
    for task in VARIANTS.values():
        print(f"  - {task.name}: {task.title} ({', '.join(task.functions)}; docs/{task.doc})")
    return 0


def build_parser(prog):
    parser = argparse.ArgumentParser(prog=prog, description="Hand out the course's tasks and mark them.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    only = {"nargs": "+", "metavar": "TASK", "choices": list(TASKS),
            "help": "only these tasks (scratchvae classroom tasks lists them)"}
    variant = {"nargs": "+", "metavar": "NAME", "choices": list(VARIANTS),
               "help": "variant tasks, whose answers the lecture does not contain (scratchvae classroom tasks "
                       "lists them)"}
    d = Limits()

    write = commands.add_parser("handout", help="write a student project with the tasks as stubs")
    write.add_argument("folder", metavar="DIR", help="a new (or empty) folder")
    write.add_argument("--update", action="store_true",
                       help="refresh an existing handout's tools, lessons, docs and tests; keep studentvae/ "
                            "(and the variants its variants.py holds)")
    write.add_argument("--variant", **variant)
    write.set_defaults(func=handout)

    marking = commands.add_parser(
        "mark", help="mark submissions: a CSV of points and a feedback file per student",
        description="Mark each submission (a handout project, a .py file, or a folder of them), "
                    "every task in its own limited process, in bubblewrap's sandbox.")
    marking.add_argument("submissions", nargs="+", metavar="SUBMISSION")
    marking.add_argument("--out", default="marks.csv", help="the CSV to write (default marks.csv)")
    marking.add_argument("--feedback", metavar="DIR",
                         help="folder for <student>.txt (default: <out>-feedback beside the CSV)")
    marking.add_argument("--only", **only)
    marking.add_argument("--variant", **{**variant, "help": "mark these variant tasks too (after --only's tasks)"})
    marking.add_argument("--seed", type=COUNT,
                         help="the teacher's secret seed (an integer; keep it long and private): every task's inputs, "
                              "sizes included, drawn from it instead of the public draws scratchvae check uses")
    marking.add_argument("--jobs", type=POSITIVE_INT, default=1, metavar="N",
                         help="mark N submissions at once (default 1); the CSV is the same")
    again = marking.add_mutually_exclusive_group()
    again.add_argument("--resume", action="store_true",
                       help="keep the rows already in --out (marked with the same tasks, seed and sandboxing) "
                            "and mark the other entries")
    again.add_argument("--student", metavar="NAME",
                       help="mark again one entry (its name, or its student id) and replace its row in --out; "
                            "(not --only, which picks tasks)")
    marking.add_argument("--roster", metavar="CSV",
                         help="a CSV with the columns folder,id,name: the CSV gets each entry's student id and name, "
                              "and the feedback files are named by student id")
    marking.add_argument("--wall", type=float, default=d.wall,
                         help=f"wall-clock seconds per task (default {d.wall:g})")
    marking.add_argument("--cpu", type=int, default=d.cpu,
                         help=f"CPU seconds per task (default {d.cpu})")
    marking.add_argument("--memory", type=int, default=d.memory // MB,
                         help=f"MB of address space per task (default {d.memory // MB})")
    marking.add_argument("--output", type=int, default=d.output // MB,
                         help=f"MB per file a task may write, printed output included "
                              f"(default {d.output // MB})")
    marking.add_argument("--no-sandbox", action="store_true",
                         help="mark without bubblewrap (where it cannot run): limits only, no isolation; "
                              "the summary and the CSV say 'not sandboxed'")
    marking.set_defaults(func=mark)

    similar = commands.add_parser(
        "similarity", help="list code identical to the lecture's or to a classmate's, and close pairs",
        description="Compare the submissions' code task by task, after normalising names and layout "
                    "(read, never run): a report for the teacher to look at, not a mark.")
    similar.add_argument("submissions", nargs="+", metavar="SUBMISSION")
    similar.add_argument("--out", default="similarity.md", help="the report to write (default similarity.md)")
    similar.add_argument("--only", **only)
    similar.add_argument("--threshold", type=FRACTION, default=THRESHOLD,
                         help=f"list pairs whose sequence ratio is at least this (default {THRESHOLD})")
    similar.set_defaults(func=similarity)

    grader = commands.add_parser(
        "autograder", help="write a Gradescope autograder zip that marks one submission per container",
        description="Write the zip Gradescope's 'Configure autograder' page takes: setup.sh, run_autograder, "
                    "the tasks and seed, and a wheel of this scratchvae.")
    grader.add_argument("--out", default="autograder.zip", help="the zip to write (default autograder.zip)")
    grader.add_argument("--only", **only)
    grader.add_argument("--seed", type=COUNT,
                        help="the teacher's secret seed, as for mark (kept in the zip, readable by root only)")
    grader.add_argument("--visibility", choices=autograder.VISIBILITIES, default="after_due_date",
                        help="when students see each task's score and feedback (default after_due_date: the "
                             "feedback quotes expected values, which a resubmission could copy)")
    grader.set_defaults(func=gradescope)

    listing = commands.add_parser("tasks", help="list the tasks in course order")
    listing.set_defaults(func=tasks_listing)
    return parser


def main(argv=None, prog="scratchvae classroom"):
    """Run ``scratchvae classroom`` with ``argv``; return the exit status."""
    args = build_parser(prog).parse_args(argv)
    try:
        return args.func(args)
    except (FileExistsError, FileNotFoundError, ModuleNotFoundError, SandboxUnavailable, ValueError) as err:
        print(f"{prog} {args.command}: error: {err}", file=sys.stderr)
        return 2
