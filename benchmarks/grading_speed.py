"""How much faster `buflesson grade` is than executing each submission with nbconvert.

    .venv/bin/python benchmarks/grading_speed.py [--count 40] [--jobs 2] [--lessons 01,02,03]

Makes COUNT submissions of the lessons (a mix of right, blank, partly right and broken ones),
then grades them with `buflesson grade --jobs JOBS`, with the baseline an instructor would script by
hand (one `jupyter nbconvert --to notebook --execute` per submission, in turn, then reading which
check cells printed PASSED), and with `buflesson grade` again: on a shared machine the load changes
while the long baseline runs, so the ratio uses the mean of the two runs before and after it. Both
graders' scores must agree. The last line is `grading speedup vs nbconvert: <ratio>x`.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from buflesson.authoring import ROLE_EXERCISE, checked_exercises, strip_answers
from buflesson.release import handout

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
KINDS = ("right", "blank", "partial", "broken")


def make(answer_path: Path, kind: str) -> nbformat.NotebookNode:
    """One submission of a lesson: the answers, the handout, the last answer removed, or a crash."""
    nb = nbformat.read(answer_path, as_version=4)
    if kind == "blank":
        return handout(nb, answer_path.stem)
    exercise_cells = [
        c for c in handout(nb, answer_path.stem).cells if c.metadata["buflesson"]["role"] == ROLE_EXERCISE
    ]
    ids = {c.id for c in exercise_cells}  # the handout keeps the answer notebook's cell ids
    answered = [c for c in nb.cells if c.id in ids]
    if kind == "partial":
        answered[-1].source = strip_answers(answered[-1].source)
    elif kind == "broken":
        answered[0].source = "raise RuntimeError('broken on purpose')\n" + answered[0].source
    return nb


def make_submissions(folder: Path, answers: list[Path], count: int) -> list[Path]:
    paths = []
    for i in range(count):
        answer = answers[i % len(answers)]
        path = folder / f"s{i:02d}" / answer.name
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(make(answer, KINDS[i % len(KINDS)]), path)
        paths.append(path)
    return paths


def baseline(paths: list[Path], work: Path) -> dict[tuple[str, str], dict[str, float]]:
    """nbconvert each submission in turn, then read the check cells' outputs."""
    scores = {}
    for path in paths:
        out = work / path.parent.name
        subprocess.run(
            [
                str(BIN / "jupyter"),
                "nbconvert",
                "--to",
                "notebook",
                "--execute",
                "--allow-errors",
                "--ExecutePreprocessor.timeout=120",
                "--ExecutePreprocessor.kernel_name=python3",
                "--output-dir",
                str(out),
                str(path),
            ],
            check=True,
            capture_output=True,
            cwd=path.parent,
        )
        executed = nbformat.read(out / path.name, as_version=4)
        points = {}
        for cell in executed.cells:
            if cell.cell_type != "code":
                continue
            for exercise_id in checked_exercises(cell.source):
                text = "".join(
                    str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", ""))
                    for o in cell.outputs
                )
                points[exercise_id] = 1.0 if f"[PASSED] Exercise {exercise_id}" in text else 0.0
        scores[(path.parent.name, path.stem)] = points
    return scores


def ours(folder: Path, out: Path, answers: Path, jobs: int) -> dict[tuple[str, str], dict[str, float]]:
    command = [str(BIN / "buflesson"), "grade", str(folder), "--out", str(out), "--answers", str(answers)]
    subprocess.run([*command, "--jobs", str(jobs)], check=True, capture_output=True)
    scores = {}
    with open(out / "gradebook.csv", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        fixed = {"student", "notebook", "status", "score", "max_score", "error", "file"}
        for row in reader:
            scores[(row["student"], row["notebook"])] = {
                key: float(value) for key, value in row.items() if key not in fixed and value != ""
            }
    return scores


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--lessons", default="01,02,03", help="lesson number prefixes to use")
    parser.add_argument("--answers", default=str(ROOT / "notebooks" / "answers"))
    args = parser.parse_args()
    prefixes = tuple(f"{p}-" for p in args.lessons.split(","))
    every = sorted(Path(args.answers).glob("*.ipynb"))
    chosen = [p for p in every if p.name.startswith(prefixes)]
    if not chosen:
        parser.error(f"no answer notebooks {args.lessons} in {args.answers}")
    with tempfile.TemporaryDirectory(prefix="buflesson-bench-") as tmp:
        work = Path(tmp)
        answers = work / "answers"  # only the chosen lessons, for both graders
        answers.mkdir()
        for path in chosen:
            shutil.copy(path, answers / path.name)
        paths = make_submissions(work / "subs", chosen, args.count)
        print(f"{len(paths)} submissions of {', '.join(p.stem for p in chosen)}: {', '.join(KINDS)} in turn")

        started = time.perf_counter()
        fast = ours(work / "subs", work / "out", answers, args.jobs)
        before_s = time.perf_counter() - started
        print(f"buflesson grade --jobs {args.jobs}: {before_s:.1f} s")

        started = time.perf_counter()
        slow = baseline(paths, work / "nbconvert")
        base_s = time.perf_counter() - started
        print(f"nbconvert --execute, one at a time, then reading the checks: {base_s:.1f} s")

        started = time.perf_counter()
        again = ours(work / "subs", work / "out-again", answers, args.jobs)
        after_s = time.perf_counter() - started
        print(f"buflesson grade --jobs {args.jobs}, again: {after_s:.1f} s")
        ours_s = (before_s + after_s) / 2
        if again != fast:
            print("buflesson grade gave other scores the second time")
            return 1

    differ = {key: (slow[key], fast.get(key)) for key in slow if slow[key] != fast.get(key)}
    if differ or set(fast) != set(slow):
        print(f"scores differ: {differ}")
        return 1
    total = sum(sum(points.values()) for points in fast.values())
    print(f"scores agree on all {len(fast)} submissions ({total:g} points in all)")
    print(f"grading speedup vs nbconvert: {base_s / ours_s:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
