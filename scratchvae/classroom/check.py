"""The student's own quick check, ``scratchvae check``: the teacher's marker, on one project.

    scratchvae check .                       # every task of the project in this folder
    scratchvae check . --only dense sigmoid  # some tasks
    scratchvae check my_ops.py               # a single file of functions, by their names

It marks exactly as ``scratchvae classroom mark`` does, and prints the table. It
uses bubblewrap's sandbox where bubblewrap works, and the limits alone where
it does not (it is the student's own code, on the student's own machine). It
needs scratchvae; a handout checks itself without it, with the self-check
(:mod:`scratchvae.classroom.selfcheck`, ``python -m coursetools.check``).
Guide: docs/exercises.md#for-students
"""

import argparse
import sys

from scratchvae.classroom.mark import find_submissions, mark_submission
from scratchvae.classroom.tasks import TASKS, select

__all__ = ["main"]


def main(argv=None, prog="scratchvae check"):
    """Mark one submission and print its table: 0 if every check passed, 1 if not, 2 for bad input."""
    parser = argparse.ArgumentParser(prog=prog, description="Mark your tasks as your teacher's "
                                     "marker does, and print what each check found.")
    parser.add_argument("path", help="your handout project (a folder) or a .py file")
    parser.add_argument("--only", nargs="+", metavar="TASK", choices=list(TASKS),
                        help=f"only these tasks ({', '.join(TASKS)})")
    args = parser.parse_args(argv)
    try:
        submissions = find_submissions([args.path])
    except FileNotFoundError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    if len(submissions) != 1:
        print(f"{prog}: error: {args.path} is a folder of {len(submissions)} submissions; "
              "mark one (or use scratchvae classroom mark)", file=sys.stderr)
        return 2
    report = mark_submission(submissions[0], select(args.only), sandbox=None)
    print(report.table())
    return 0 if report.score == report.total else 1
