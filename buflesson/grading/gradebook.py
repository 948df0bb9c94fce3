"""The gradebook: one result per submitted notebook, kept as it comes and shown as a CSV.

Each finished notebook is stored at once as `OUT/results/KEY.json` (KEY covers the file, its
content and the grading settings), so an interrupted run resumes where it stopped. The CSV is a
view of those results, rewritten whole through a temporary file and `os.replace`, so it is never
half-written. `merge` joins the gradebooks of shards into the one an unsharded run writes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

GRADED, TIMEOUT, CRASHED, INVALID, TAMPERED, DUPLICATE = (
    "graded",
    "timeout",
    "crashed",
    "invalid",
    "tampered",
    "duplicate",
)
FIRST, LAST = ["student", "notebook", "status"], ["score", "max_score", "error", "file"]


@dataclass
class NotebookResult:
    """What grading one submitted notebook gave."""

    student: str
    notebook: str
    file: str
    status: str
    error: str = ""
    checks: list[dict] = field(default_factory=list)  # CheckResult.to_dict() + points, max_points, hidden
    notes: list[str] = field(default_factory=list)  # tampered cells, cell errors: for the feedback
    score: float = 0.0
    max_score: float = 0.0
    sha256: str = ""
    seconds: float = 0.0

    @property
    def sort_key(self) -> tuple[str, str, str]:
        return (self.student, self.notebook, self.file)

    def row(self) -> dict[str, str]:
        """The gradebook row: fixed columns and the points of each exercise this notebook has."""
        row = {"student": self.student, "notebook": self.notebook, "status": self.status}
        row.update({check["exercise"]: number(check["points"]) for check in self.checks})
        row.update(
            score=number(self.score),
            max_score=number(self.max_score),
            error=self.error,
            file=self.file,
        )
        return row


def number(value: float) -> str:
    return f"{value:g}"


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader sees the old file or the new one, never a part."""
    path = Path(path)
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
            out.write(text)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def csv_text(rows: list[dict[str, str]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(sorted(rows, key=lambda r: (r["student"], r["notebook"], r["file"])))
    return buffer.getvalue()


def write_gradebook(path: Path, results: list[NotebookResult], exercise_columns: list[str]) -> None:
    write_atomic(path, csv_text([r.row() for r in results], FIRST + exercise_columns + LAST))


def read_gradebook(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def merge(parts: list[Path], out: Path) -> int:
    """Join shard gradebooks (files, or folders holding gradebook.csv) into `out`; returns the rows."""
    columns: list[str] = []
    rows: dict[tuple[str, str, str], dict[str, str]] = {}
    for part in parts:
        part = Path(part)
        header, part_rows = read_gradebook(part / "gradebook.csv" if part.is_dir() else part)
        if header[:3] != FIRST or header[-4:] != LAST:
            raise ValueError(f"{part} is not a buflesson gradebook (columns {header[:3]}...)")
        if not columns:
            columns = list(header)
        for name in header:
            if name not in columns:
                columns.insert(columns.index(LAST[0]), name)
        for row in part_rows:
            rows[(row["student"], row["notebook"], row["file"])] = row
    write_atomic(out, csv_text(list(rows.values()), columns))
    return len(rows)


class ResultStore:
    """One JSON file per finished notebook, named by what it depends on."""

    def __init__(self, folder: Path, settings: str) -> None:
        self.folder = Path(folder)
        self.settings = settings
        self.folder.mkdir(parents=True, exist_ok=True)

    def key(self, file: str, sha256: str) -> str:
        text = "\0".join((file, sha256, self.settings))
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def get(self, file: str, sha256: str) -> NotebookResult | None:
        path = self.folder / f"{self.key(file, sha256)}.json"
        try:
            return NotebookResult(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def put(self, result: NotebookResult) -> None:
        path = self.folder / f"{self.key(result.file, result.sha256)}.json"
        write_atomic(path, json.dumps(asdict(result), ensure_ascii=False, indent=1))

    def clear(self) -> None:
        for path in self.folder.glob("*.json"):
            path.unlink(missing_ok=True)
