"""The `buflesson` command: a thin layer over functions that return results.

A run that cannot go on says so in one line and exits 2: misuse, or an error of the file system
(a full disk, a quota, a read-only folder). Ctrl-C prints one line and exits 130. Both lines say
what is kept and how to go on (`grade` resumes where it stopped when run again).
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
from pathlib import Path


def _answers(given: str | None) -> Path:
    """The answer notebooks: `--answers`, else ./notebooks/answers, else those of this checkout."""
    from buflesson.workspace import course_answers

    return course_answers(given)


def _notebooks(args: argparse.Namespace) -> int:
    from buflesson.authoring import build_student_notebooks
    from buflesson.translation import build_translations

    root = Path(args.notebooks)
    written = build_student_notebooks(root / "answers", root, run=not args.no_run, pattern=args.only)
    written += build_translations(root, pattern=args.only, run=not args.no_run)
    for path in written:
        print(f"wrote {path}")
    return 0


def _translations(args: argparse.Namespace) -> int:
    import nbformat

    from buflesson.authoring import stable_ids
    from buflesson.translation import catalog_path, load_catalog, skeleton, status, write_catalog

    root = Path(args.notebooks)
    if args.stub:
        for path in sorted((root / "answers").glob(args.stub)):
            target = catalog_path(root, args.lang, path.stem)
            answer = nbformat.read(path, as_version=4)
            stable_ids(answer)
            write_catalog(target, skeleton(answer, load_catalog(target) if target.exists() else {}))
            print(f"wrote {target}")
    problems = status(root, args.lang)
    for lesson, items in problems.items():
        print(f"{lesson}: {'complete' if not items else f'{len(items)} to do'}")
        for item in items[: args.show]:
            print(f"  {item}")
    return 1 if any(problems.values()) else 0


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
    from buflesson.grading import GradeError, Limits, Shard, grade, summary

    fresh: list = []
    try:
        results = grade(
            [Path(p) for p in args.submissions],
            Path(args.out),
            answers=_answers(args.answers),
            jobs=args.jobs,
            limits=Limits(args.cell_timeout, args.timeout, args.memory),
            hidden=Path(args.hidden) if args.hidden else None,
            points=dict(args.points),
            tampered_policy=args.tampered_policy,
            shard=Shard.parse(args.shard) if args.shard else None,
            force=args.force,
            on_result=fresh.append,
        )
    except GradeError as error:
        _say(f"buflesson grade: {error}")
        return 2
    print(summary(results, Path(args.out), len(fresh)))
    return 0


def _merge(args: argparse.Namespace) -> int:
    from buflesson.grading import GradeError, merge_parts

    try:
        print(merge_parts([Path(p) for p in args.parts], Path(args.out)))
    except GradeError as error:
        _say(f"buflesson gradebook merge: {error}")
        return 2
    return 0


ANSWERS_HELP = "folder of answer notebooks (default: notebooks/answers here, else the course's own)"


def parser() -> argparse.ArgumentParser:
    """The argument parser of the `buflesson` command."""
    top = argparse.ArgumentParser(prog="buflesson", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    # Listed here for --help; `main` hands its arguments to buflesson.lab, which passes unknown ones on.
    sub.add_parser(
        "lab", add_help=False, help="students: open your own copy of the lessons in JupyterLab (any OS)"
    )

    nbs = sub.add_parser(
        "notebooks",
        help="maintainers: make the student notebooks from the answer notebooks and run both",
    )
    nbs.add_argument("--notebooks", default="notebooks", help="folder with answers/ inside")
    nbs.add_argument("--no-run", action="store_true", help="write sources only, no outputs")
    nbs.add_argument("--only", default="*.ipynb", help="glob of answer notebooks to build, e.g. '01-*'")
    nbs.set_defaults(run=_notebooks)

    tr = sub.add_parser("translations", help="maintainers: what the lessons' translations still lack")
    tr.add_argument("--lang", default="zh", help="language (default zh)")
    tr.add_argument("--notebooks", default="notebooks", help="folder with answers/ and translations/")
    tr.add_argument(
        "--stub", metavar="GLOB", help="add todo entries for what lacks a translation, e.g. '03-*'"
    )
    tr.add_argument("--show", type=int, default=5, help="problems shown per lesson (default 5)")
    tr.set_defaults(run=_translations)

    rel = sub.add_parser("release", help="instructors: write the student handout (no answers) to OUT_DIR")
    rel.add_argument("out_dir", metavar="OUT_DIR")
    rel.add_argument("--answers", help=ANSWERS_HELP)
    rel.set_defaults(run=_release)

    gr = sub.add_parser("grade", help="instructors: grade submitted notebooks into a gradebook and feedback")
    gr.add_argument("submissions", nargs="+", metavar="SUBMISSION", help="notebooks, or folders of them")
    gr.add_argument("--out", required=True, metavar="OUT_DIR", help="gradebook.csv, feedback/, results/")
    gr.add_argument("--answers", help=ANSWERS_HELP)
    gr.add_argument("--jobs", type=int, default=None, help="notebooks at a time (default: the cores)")
    gr.add_argument("--timeout", type=float, default=300, help="seconds per notebook (default 300)")
    gr.add_argument("--cell-timeout", type=float, default=60, help="seconds per cell (default 60)")
    gr.add_argument("--memory", type=int, default=2048, help="MB each notebook may allocate (default 2048)")
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


def _say(line: str) -> None:
    """One line on stderr, control characters shown as escapes (it may quote submitted names)."""
    from buflesson.grading.text import printable

    print(printable(line), file=sys.stderr)


FIXES = {
    errno.ENOSPC: "free some space, then ",
    errno.EDQUOT: "free some space, then ",
    errno.EROFS: "make it writable, then ",
    errno.EACCES: "make it writable, then ",
    errno.EPERM: "make it writable, then ",
}


def _kept(args: argparse.Namespace, fix: str) -> str:
    """What a stopped command leaves behind, and how to go on."""
    if args.command == "grade":
        try:
            stored = sum(1 for _ in Path(args.out, "results").glob("*.json"))
        except OSError:
            stored = 0
        kept = f"{stored} graded notebook{'s' * (stored != 1)} kept in {Path(args.out, 'results')}"
        return f"{kept}; {fix}run the same command again to grade the rest"
    return f"{fix}run the same command again"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _interrupt_once(signum, frame) -> None:
    """SIGINT while a command runs: KeyboardInterrupt once; more Ctrl-C cannot cut the cleanup
    short (children killed, the gradebook written) or print a traceback as the process exits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def _stopped(args: argparse.Namespace, error: BaseException) -> int:
    """Report a command stopped by Ctrl-C (exit 130) or an OSError (exit 2) in one line. SIGINT
    stays ignored from here on: the process is about to exit."""
    command = " ".join(filter(None, ("buflesson", args.command, getattr(args, "action", None))))
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if isinstance(error, OSError):
        where = f" ({error.filename})" if error.filename else ""
        fix = FIXES.get(error.errno or 0, "")
        _say(f"{command}: {error.strerror or error}{where}. {_sentence(_kept(args, fix))}")
        return 2
    _say(f"{command}: interrupted. {_sentence(_kept(args, ''))}")
    return 130


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `buflesson` command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["lab"]:
        from buflesson.lab import main as lab

        return lab(argv[1:])
    args = parser().parse_args(argv)
    watch = threading.current_thread() is threading.main_thread()
    watch = watch and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    if watch:
        signal.signal(signal.SIGINT, _interrupt_once)
    stopped = False
    try:
        return args.run(args)
    except (KeyboardInterrupt, OSError) as error:
        stopped = True
        return _stopped(args, error)
    finally:
        if watch and not stopped:
            signal.signal(signal.SIGINT, signal.default_int_handler)
