"""The gradebook: one result per submitted notebook, kept as it comes and shown as a CSV.

Each finished notebook is stored at once as `OUT/results/KEY.json` (KEY covers the file, its
content and the grading settings), so an interrupted run resumes where it stopped. The CSV is a
view of those results, rewritten whole through a temporary file and `os.replace`, so it is never
half-written: a full disk or a read-only folder leaves the previous one. Every file is created
with the user's umask, like any file they write. Cells are spreadsheet-safe (`text.csv_cell`).
Only one row per student and lesson counts toward their total (`counted`): a duplicate, or an
invalid file next to a graded copy, shows 0 of 0. `merge` joins the gradebooks of shards into the
one an unsharded run writes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from buflesson.grading.text import csv_cell

GRADED, TIMEOUT, CRASHED, INVALID, TAMPERED, DUPLICATE = (
    "graded",
    "timeout",
    "crashed",
    "invalid",
    "tampered",
    "duplicate",
)
FIRST, LAST = ["student", "notebook", "status"], ["score", "max_score", "error", "file"]
CLAIM = "claims to be "  # how the error of a notebook claiming another student's id begins


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
    language: str = "en"  # the notebook's language: its feedback is written in it

    @property
    def sort_key(self) -> tuple[str, str, str]:
        return (self.student, self.notebook, self.file)

    def row(self, counts: bool = True) -> dict[str, str]:
        """The gradebook row: fixed columns and the points of each exercise this notebook has; a
        row that does not count toward the student's total (`counted`) could earn 0 of 0."""
        row = {"student": self.student, "notebook": self.notebook, "status": self.status}
        row.update({check["exercise"]: number(check["points"]) for check in self.checks})
        row.update(
            score=number(self.score if counts else 0.0),
            max_score=number(self.max_score if counts else 0.0),
            error=self.error,
            file=self.file,
        )
        return row


def number(value: float) -> str:
    return f"{value:g}"


def counted(results: Iterable[NotebookResult]) -> list[NotebookResult]:
    """The results that count toward their student's total: per student and lesson the graded copy
    (graded, timeout, crashed or tampered), else one invalid file. Never a duplicate, an invalid
    file next to a graded copy, or a notebook that claimed another student's id."""
    chosen: dict[tuple[str, str], NotebookResult] = {}
    for result in sorted(results, key=lambda r: r.sort_key):
        if result.status == DUPLICATE or (result.status == INVALID and result.error.startswith(CLAIM)):
            continue
        key = (result.student, result.notebook)
        other = chosen.get(key)
        if other is None or (other.status == INVALID and result.status != INVALID):
            chosen[key] = result
    return list(chosen.values())


def _named(error: OSError, path: Path) -> OSError:
    """The same error, naming the file the user knows rather than a temporary one."""
    if error.errno is None:
        return error
    return OSError(error.errno, error.strerror, str(path))


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that a reader sees the old file or the new one, never a part.
    The file gets the mode `open` would give it (0666 less the umask). On any failure (disk full,
    quota, a read-only folder, Ctrl-C) the old file stays, no temporary file is left, and an
    OSError names `path`."""
    path = Path(path)
    data = text.encode("utf-8", "backslashreplace")
    while True:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:  # not tempfile.mkstemp: it creates 0600 whatever the umask
            handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
            break
        except FileExistsError:
            continue
        except OSError as error:
            raise _named(error, path) from None
    try:
        with open(handle, "wb") as out:
            out.write(data)
        os.replace(temp, path)
    except BaseException as error:
        try:
            temp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise _named(error, path) from None
        raise


def csv_text(rows: list[dict[str, str]], columns: list[str]) -> str:
    """A CSV of `rows`: every cell quoted and made spreadsheet-safe, rows sorted by student,
    notebook and file as written (so rows read back from a gradebook sort the same)."""
    cells = [[csv_cell(row.get(column, "")) for column in columns] for row in rows]
    at = [columns.index(name) for name in ("student", "notebook", "file")]
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow([csv_cell(column) for column in columns])
    writer.writerows(sorted(cells, key=lambda line: [line[i] for i in at]))
    return buffer.getvalue()


def write_gradebook(path: Path, results: list[NotebookResult], exercise_columns: list[str]) -> None:
    """Write the gradebook CSV of `results` (rows that do not count show 0 of 0)."""
    counting = {id(result) for result in counted(results)}
    rows = [result.row(id(result) in counting) for result in results]
    write_atomic(path, csv_text(rows, FIRST + exercise_columns + LAST))


def read_gradebook(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def merge(parts: list[Path], out: Path) -> int:
    """Join shard gradebooks (files, or folders holding gradebook.csv) into `out`; returns the rows.
    A row two parts hold differently is a ValueError: the result may not depend on their order."""
    columns: list[str] = []
    rows: dict[tuple[str, str, str], dict[str, str]] = {}
    source: dict[tuple[str, str, str], Path] = {}
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
            key = (row["student"], row["notebook"], row["file"])
            if key in rows and rows[key] != row:
                raise ValueError(
                    f"{source[key]} and {part} both hold {key[2]}, graded differently: "
                    "merge the shards of one run"
                )
            rows[key], source[key] = row, part
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
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def get(self, file: str, sha256: str) -> NotebookResult | None:
        path = self.folder / f"{self.key(file, sha256)}.json"
        try:
            return NotebookResult(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def put(self, result: NotebookResult) -> None:
        path = self.folder / f"{self.key(result.file, result.sha256)}.json"
        write_atomic(path, json.dumps(asdict(result), ensure_ascii=True, indent=1))

    def clear(self) -> None:
        for path in self.folder.glob("*.json"):
            path.unlink(missing_ok=True)
