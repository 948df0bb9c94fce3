"""The `buflesson` command: a thin layer over functions that return results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _answers(given: str | None) -> Path:
    """The answer notebooks: `--answers`, else ./notebooks/answers, else those of this checkout."""
    if given:
        return Path(given)
    here = Path("notebooks", "answers")
    checkout = Path(__file__).resolve().parent.parent / "notebooks" / "answers"
    return here if here.is_dir() or not checkout.is_dir() else checkout


def _notebooks(args: argparse.Namespace) -> int:
    from buflesson.authoring import build_student_notebooks

    root = Path(args.notebooks)
    written = build_student_notebooks(root / "answers", root, run=not args.no_run, pattern=args.only)
    for path in written:
        print(f"wrote {path}")
    return 0


def _release(args: argparse.Namespace) -> int:
    from buflesson.release import LeakError, release

    try:
        written = release(_answers(args.answers), Path(args.out_dir))
    except (OSError, LeakError) as error:
        print(f"buflesson release: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


def _points(text: str) -> tuple[str, float]:
    exercise_id, _, value = text.partition("=")
    try:
        return exercise_id, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ID=POINTS, e.g. 1.1=2, got {text!r}") from None


def _grade(args: argparse.Namespace) -> int:
    from buflesson.grading import GradeError, Shard, grade, summary
    from buflesson.grading.limits import from_options

    fresh: list = []
    try:
        results = grade(
            [Path(p) for p in args.submissions],
            Path(args.out),
            answers=_answers(args.answers),
            jobs=args.jobs,
            limits=from_options(args),
            hidden=Path(args.hidden) if args.hidden else None,
            points=dict(args.points),
            tampered_policy=args.tampered_policy,
            shard=Shard.parse(args.shard) if args.shard else None,
            force=args.force,
            on_result=fresh.append,
            sandbox=args.sandbox,
            on_sandbox=lambda text: print(f"sandbox: {text}", flush=True),
        )
    except GradeError as error:
        print(f"buflesson grade: {error}", file=sys.stderr)
        return 2
    print(summary(results, Path(args.out), len(fresh)))
    return 0


def _merge(args: argparse.Namespace) -> int:
    from buflesson.grading import GradeError, merge_parts

    try:
        print(merge_parts([Path(p) for p in args.parts], Path(args.out)))
    except GradeError as error:
        print(f"buflesson gradebook merge: {error}", file=sys.stderr)
        return 2
    return 0


ANSWERS_HELP = "folder of answer notebooks (default: notebooks/answers here, else the course's own)"


def parser() -> argparse.ArgumentParser:
    """The argument parser of the `buflesson` command."""
    from buflesson.grading.limits import add_options as add_limit_options

    top = argparse.ArgumentParser(prog="buflesson", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    nbs = sub.add_parser(
        "notebooks",
        help="maintainers: make the student notebooks from the answer notebooks and run both",
    )
    nbs.add_argument("--notebooks", default="notebooks", help="folder with answers/ inside")
    nbs.add_argument("--no-run", action="store_true", help="write sources only, no outputs")
    nbs.add_argument("--only", default="*.ipynb", help="glob of answer notebooks to build, e.g. '01-*'")
    nbs.set_defaults(run=_notebooks)

    rel = sub.add_parser("release", help="instructors: write the student handout (no answers) to OUT_DIR")
    rel.add_argument("out_dir", metavar="OUT_DIR")
    rel.add_argument("--answers", help=ANSWERS_HELP)
    rel.set_defaults(run=_release)

    gr = sub.add_parser("grade", help="instructors: grade submitted notebooks into a gradebook and feedback")
    gr.add_argument("submissions", nargs="+", metavar="SUBMISSION", help="notebooks, or folders of them")
    gr.add_argument("--out", required=True, metavar="OUT_DIR", help="gradebook.csv, feedback/, results/")
    gr.add_argument("--answers", help=ANSWERS_HELP)
    gr.add_argument("--jobs", type=int, default=None, help="notebooks at a time (default: the cores)")
    add_limit_options(gr)
    gr.add_argument(
        "--sandbox",
        choices=["auto", "namespaces", "basic"],
        default="auto",
        help="how notebooks are confined: namespaces (a private filesystem without the course, no "
        "network, own processes; needs root or user namespaces), basic (own session and limits only), "
        "or auto: the best that works here (default)",
    )
    gr.add_argument("--hidden", metavar="FILE", help="Python file of @hidden checks, kept from students")
    gr.add_argument(
        "--points",
        type=_points,
        action="append",
        default=[],
        metavar="ID=N",
        help="points of an exercise (default 1 each), e.g. --points 3.1=2; repeat for more",
    )
    gr.add_argument(
        "--tampered-policy",
        choices=["keep", "zero"],
        default="keep",
        help="points of a notebook whose protected cells were changed: keep what the checks give "
        "(default) or zero",
    )
    gr.add_argument("--shard", metavar="I/N", help="grade only part I of N (0-based), by student id")
    gr.add_argument("--force", action="store_true", help="regrade notebooks already graded in OUT_DIR")
    gr.set_defaults(run=_grade)

    gb = sub.add_parser("gradebook", help="instructors: work with gradebooks")
    gb_sub = gb.add_subparsers(dest="action", required=True)
    mg = gb_sub.add_parser("merge", help="join the gradebooks (and feedback) of shards")
    mg.add_argument("parts", nargs="+", metavar="PART", help="shard OUT_DIRs or their gradebook.csv")
    mg.add_argument("--out", required=True, metavar="OUT_DIR")
    mg.set_defaults(run=_merge)
    return top


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `buflesson` command."""
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
