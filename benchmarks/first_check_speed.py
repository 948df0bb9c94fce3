"""How fast a student's first answers come: `import buflesson`, and the first `check` of a session.

    .venv/bin/python benchmarks/first_check_speed.py [--rounds 5] [--exercises 1.1,2.1,...] [--pause 5]

1. Imports. In ROUNDS fresh processes: the time of `import torch` (the baseline), then the time of
   every lesson's import cell after it (what buflesson adds). Medians.
2. First check. For each exercise, a fresh kernel "Python (buflesson)" as JupyterLab starts it runs
   the lesson's import cell, waits PAUSE seconds (the student reading down to the exercise), runs
   the answer's exercise cell, and times the check cell inside the kernel; then times it again
   (warm). The same with the warm-up turned off (BUFLESSON_WARMUP=0) is the baseline, measured in
   the same run. Goals: buflesson's imports add under 0.15 s, and a first check answers in under
   0.2 s. On a shared machine, OMP_NUM_THREADS=1 keeps torch's thread pool from measuring the load
   instead (the first line shows cores, load and threads).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat

from buflesson.authoring import ROLE_EXERCISE, cell_role, checked_exercises

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = ROOT / "notebooks" / "answers"
DEFAULT_EXERCISES = "1.1,2.1,3.1,6.1,8.1,9.3"  # plain, four that use the meta device, one optimizer
IMPORT_GOAL, CHECK_GOAL = 0.15, 0.2


def python_only(source: str) -> str:
    """A cell without its IPython magics (`%matplotlib inline`), for a plain Python process."""
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("%"))


def import_cells() -> list[str]:
    """The first code cell of every lesson: its imports."""
    cells = []
    for path in sorted(ANSWERS.glob("[0-9][0-9]-*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        cells.append(next(cell.source for cell in nb.cells if cell.cell_type == "code"))
    return cells


def time_imports(rounds: int) -> tuple[list[float], list[float]]:
    """(import torch, the lessons' imports after it) in seconds, one pair per fresh process."""
    lessons = "\n".join(python_only(cell) for cell in import_cells())
    script = textwrap.dedent(
        f"""
        import time
        began = time.perf_counter()
        import torch
        torch_done = time.perf_counter()
        exec(compile({lessons!r}, "<lesson imports>", "exec"), {{}})
        print(torch_done - began, time.perf_counter() - torch_done)
        """
    )
    torch_s, buflesson_s = [], []
    for _ in range(rounds):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
        first, second = map(float, out.stdout.split())
        torch_s.append(first)
        buflesson_s.append(second)
    return torch_s, buflesson_s


def exercise_cells(exercise_id: str) -> tuple[str, str, str]:
    """(import cell, answer's exercise cell, check cell) of one exercise, from its answer notebook."""
    for path in sorted(ANSWERS.glob("[0-9][0-9]-*.ipynb")):
        cells = [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
        for index, cell in enumerate(cells):
            if exercise_id in checked_exercises(cell.source):
                exercise = next(c for c in reversed(cells[:index]) if cell_role(c) == ROLE_EXERCISE)
                return cells[0].source, exercise.source, cell.source
    raise SystemExit(f"no check cell for exercise {exercise_id}")


TIMED = """
import time as _time
_began = _time.perf_counter()
_result = {check}
print(round(_time.perf_counter() - _began, 4), _result.status.replace(" ", "-"))
"""
WARM_UP_SECONDS = "import buflesson.warmup as _w; print(_w.seconds)"


def first_check(exercise_id: str, warm_up: bool, pause: float) -> dict:
    """Run one exercise as a student reaching it in a fresh lesson kernel; the timings."""
    from jupyter_client.manager import start_new_kernel

    imports, exercise, check = exercise_cells(exercise_id)
    env = {key: value for key, value in os.environ.items() if key != "JPY_SESSION_NAME"}
    env["BUFLESSON_WARMUP"] = "1" if warm_up else "0"
    env.pop("MPLBACKEND", None)
    manager, client = start_new_kernel(kernel_name="buflesson", env=env, cwd=str(ANSWERS.parent))
    started = time.perf_counter()
    printed: list[str] = []

    def run(source: str) -> None:
        def keep(msg: dict) -> None:
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                printed.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                raise RuntimeError(f"{exercise_id}: {msg['content']['ename']}: {msg['content']['evalue']}")

        reply = client.execute_interactive(source, output_hook=keep, timeout=300)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"{exercise_id}: {reply['content'].get('ename')}")

    try:
        run(imports)
        time.sleep(pause)
        run(exercise)
        reached = time.perf_counter() - started
        printed.clear()
        run(TIMED.format(check=check.strip()))
        run(TIMED.format(check=check.strip()))
        run(WARM_UP_SECONDS)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    (first, status), (second, _), (warmed,) = (line.split() for line in "".join(printed).splitlines())
    return {
        "first": float(first),
        "second": float(second),
        "status": status,
        "reached": reached,
        "warm_up": None if warmed == "None" else float(warmed),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="fresh processes for the import timing")
    parser.add_argument("--exercises", default=DEFAULT_EXERCISES, help="comma-separated exercise ids")
    parser.add_argument(
        "--pause", type=float, default=5.0, help="seconds between the import cell and the exercise"
    )
    args = parser.parse_args(argv)

    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    threads = os.environ.get("OMP_NUM_THREADS", "torch's default")
    # On a machine busier than its cores, torch's thread pool makes even tiny operations slow
    # (a 6x6 tril: 25 ms with 2 threads at load 9, 2 us with OMP_NUM_THREADS=1): say what ran.
    print(f"machine: {os.cpu_count()} cores{load}; intra-op threads: {threads}")
    torch_s, buflesson_s = time_imports(args.rounds)
    base, added = statistics.median(torch_s), statistics.median(buflesson_s)
    print(
        f"import torch (baseline)                  {base:6.3f} s  (median of {args.rounds} fresh processes)"
    )
    print(f"every lesson's buflesson imports after it +{added:5.3f} s  (goal < {IMPORT_GOAL} s)")
    print()
    print(
        f"First check of a session: fresh lesson kernel, import cell, {args.pause:g} s pause, exercise cell."
    )
    print(f"{'exercise':>8}  {'warm-up on':>10}  {'off (baseline)':>14}  {'second check':>12}  warm-up took")
    rows = []
    for exercise_id in args.exercises.split(","):
        on = first_check(exercise_id, warm_up=True, pause=args.pause)
        off = first_check(exercise_id, warm_up=False, pause=args.pause)
        if on["status"] != "passed" or off["status"] != "passed":
            raise SystemExit(f"{exercise_id}: the answer did not pass ({on['status']}, {off['status']})")
        rows.append((exercise_id, on, off))
        took = f"{on['warm_up']:.2f} s" if on["warm_up"] is not None else "not finished"
        print(
            f"{exercise_id:>8}  {on['first']:8.3f} s  {off['first']:12.3f} s  {on['second']:10.3f} s  {took}"
        )
    slowest_on = max(on["first"] for _, on, _ in rows)
    slowest_off = max(off["first"] for _, _, off in rows)
    print()
    print(f"import overhead: {added:.3f} s on top of import torch's {base:.3f} s (goal < {IMPORT_GOAL} s)")
    print(
        f"slowest first check: {slowest_on:.3f} s with the warm-up, {slowest_off:.3f} s without "
        f"(goal < {CHECK_GOAL} s)"
    )
    print(
        json.dumps(
            {
                "import_torch_s": base,
                "buflesson_imports_s": added,
                "first_check_s": slowest_on,
                "first_check_baseline_s": slowest_off,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
