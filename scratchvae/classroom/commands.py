"""The teacher's command, ``scratchvae classroom``: write a handout, mark a class.

    scratchvae classroom handout DIR [--only TASK ...]
    scratchvae classroom mark SUBMISSIONS... [--out marks.csv] [--feedback DIR]
                              [--only TASK ...] [--wall S] [--cpu S] [--memory MB] [--output MB]
                              [--no-sandbox]
    scratchvae classroom tasks

``mark`` runs every submission in bubblewrap's sandbox
(:mod:`scratchvae.classroom.sandbox`) and refuses, with exit status 2 and a
line saying how to install it, where bubblewrap cannot run; ``--no-sandbox``
marks without it, and the summary and the CSV say "not sandboxed".
Exit status: 0 when the command did its work (whatever the marks), 2 for bad
input or no sandbox.
Guide: docs/exercises.md#for-teachers
"""

import argparse
import sys
from pathlib import Path

from scratchvae.classroom import sandbox
from scratchvae.classroom.handout import write_handout
from scratchvae.classroom.mark import find_submissions, mark_submission, write_csv
from scratchvae.classroom.sandbox import MB, Limits, SandboxUnavailable
from scratchvae.classroom.tasks import TASKS, select

__all__ = ["main", "NOT_SANDBOXED"]

NOT_SANDBOXED = ("not sandboxed (--no-sandbox): each submission ran as the marker's user with the marker's files "
                 "and processes and the network in reach; marks for practice and not for a grade")


def handout(args):
    folder = write_handout(args.folder, args.only)
    names = args.only or list(TASKS)
    print(f"wrote {folder}: studentvae/ with {len(names)} task(s) to write ({', '.join(names)}), "
          "tests/, docs/, README.md, pyproject.toml")
    return 0


def mark(args):
    tasks = select(args.only)
    limits = Limits(wall=args.wall, cpu=args.cpu, memory=args.memory * MB, output=args.output * MB)
    if args.no_sandbox:
        print(NOT_SANDBOXED, file=sys.stderr, flush=True)
    else:
        sandbox.require_sandbox()
    submissions = find_submissions(args.submissions)
    out = Path(args.out)
    feedback = Path(args.feedback) if args.feedback else out.with_name(out.stem + "-feedback")
    feedback.mkdir(parents=True, exist_ok=True)
    reports = []
    for submission in submissions:
        report = mark_submission(submission, tasks, limits, sandbox=not args.no_sandbox)
        (feedback / f"{submission.name}.txt").write_text(report.table() + "\n")
        print(f"{submission.name}: {report.score}/{report.total}", flush=True)
        reports.append(report)
    write_csv(out, reports, tasks, comment=NOT_SANDBOXED if args.no_sandbox else None)
    how = "not sandboxed" if args.no_sandbox else "each in bubblewrap's sandbox"
    print(f"wrote {out} ({len(reports)} students, {how}) and {feedback}/<student>.txt")
    return 0


def tasks_listing(args):
    for k, task in enumerate(TASKS.values(), start=1):
        print(f"{k:2d}. {task.name}: {task.title} ({', '.join(task.functions)}; docs/{task.doc})")
    return 0


def build_parser(prog):
    parser = argparse.ArgumentParser(prog=prog, description="Hand out the course's tasks and mark them.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    only = {"nargs": "+", "metavar": "TASK", "choices": list(TASKS),
            "help": "only these tasks (scratchvae classroom tasks lists them)"}
    d = Limits()

    write = commands.add_parser("handout", help="write a student project with the tasks as stubs")
    write.add_argument("folder", metavar="DIR", help="a new (or empty) folder")
    write.add_argument("--only", **only)
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

    listing = commands.add_parser("tasks", help="list the tasks in course order")
    listing.set_defaults(func=tasks_listing)
    return parser


def main(argv=None, prog="scratchvae classroom"):
    """Run ``scratchvae classroom`` with ``argv``; return the exit status."""
    args = build_parser(prog).parse_args(argv)
    try:
        return args.func(args)
    except (FileExistsError, FileNotFoundError, SandboxUnavailable) as err:
        print(f"{prog} {args.command}: error: {err}", file=sys.stderr)
        return 2
