"""The `buflesson` command: a thin layer over functions that return results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _notebooks(args: argparse.Namespace) -> int:
    from buflesson.authoring import build_student_notebooks

    root = Path(args.notebooks)
    written = build_student_notebooks(root / "answers", root, run=not args.no_run, pattern=args.only)
    for path in written:
        print(f"wrote {path}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The argument parser of the `buflesson` command."""
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
    return top


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `buflesson` command."""
    args = parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
