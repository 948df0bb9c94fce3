"""Whose a submission is: folder, file name and metadata ids ranked; claims on another student's id,
links, odd ids and collisions; feedback names one per id; duplicates add nothing to a total.
The last tests run the whole command (`run_grader.py`) on a course full of such cases."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import nbformat
import pytest

from buflesson.grading.feedback import feedback_name, markdown, page, write_feedback
from buflesson.grading.gradebook import NotebookResult, counted, merge, write_gradebook
from buflesson.grading.submissions import find, shard_of
from buflesson.release import handout

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "grading"
ANSWERS = FIXTURES / "answers"
ANSWER = ANSWERS / "90-fixture.ipynb"
LESSON = "90-fixture"
LIMITS = ["--cell-timeout", "3", "--timeout", "8", "--memory", "1024"]


def answer_nb():
    return nbformat.read(ANSWER, as_version=4)


def blank_nb():
    return handout(answer_nb(), LESSON)


def claiming(student, nb=None):
    """A notebook whose metadata says it is `student`'s."""
    nb = nb or blank_nb()
    nb.metadata.setdefault("buflesson", {}).update(student=student, lesson=LESSON)
    return nb


def put(path: Path, nb=None, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(nbformat.writes(nb if nb is not None else blank_nb()), encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def by_file(subs):
    return {s.file: s for s in subs}


# --- claims: a folder's id wins over a file name's, which wins over metadata ----------------------


@pytest.mark.parametrize(
    "claim",
    ["alice", "ALICE", " alice ", "../alice", "alice/", "a.lice", "\uff41lice", "al\u200bice", "Alice\n"],
)
def test_metadata_naming_a_student_with_a_folder_is_refused_not_obeyed(tmp_path, claim):
    put(tmp_path / "c" / "alice" / f"{LESSON}.ipynb", answer_nb(), mtime=1_000)
    put(tmp_path / "c" / "renamed.ipynb", claiming(claim), mtime=9_000)  # newer, and blank
    subs = by_file(find([tmp_path / "c"], [LESSON]))
    real, claim_sub = subs[f"c/alice/{LESSON}.ipynb"], subs["c/renamed.ipynb"]
    assert (real.student, real.status) == ("alice", "")
    assert claim_sub.status == "invalid" and claim_sub.problem.startswith("claims to be")
    assert "c/alice" in claim_sub.problem and "metadata" in claim_sub.problem


def test_a_loose_file_named_after_a_student_with_a_folder_is_refused(tmp_path):
    put(tmp_path / "c" / "alice" / f"{LESSON}.ipynb", answer_nb(), mtime=1_000)
    put(tmp_path / "c" / f"alice_{LESSON}.ipynb", mtime=9_000)
    subs = by_file(find([tmp_path / "c"], [LESSON]))
    assert subs[f"c/alice/{LESSON}.ipynb"].ok
    assert subs[f"c/alice_{LESSON}.ipynb"].status == "invalid"
    assert "file name" in subs[f"c/alice_{LESSON}.ipynb"].problem


def test_a_file_name_outranks_metadata_and_a_folder_outranks_both(tmp_path):
    put(tmp_path / "c" / f"bob_{LESSON}.ipynb", claiming("alice"))  # named bob's, says alice
    put(tmp_path / "c" / "carl" / f"dora_{LESSON}.ipynb", claiming("eve"))  # in carl's folder
    put(tmp_path / "c" / "x.ipynb", claiming("fay"))  # only metadata: obeyed
    put(tmp_path / "c" / "y.ipynb", claiming("bob", answer_nb()))  # bob's id is taken by a name
    subs = by_file(find([tmp_path / "c"], [LESSON]))
    assert {f: (s.student, s.status) for f, s in subs.items()} == {
        f"c/bob_{LESSON}.ipynb": ("bob", ""),
        f"c/carl/dora_{LESSON}.ipynb": ("carl", ""),
        "c/x.ipynb": ("fay", ""),
        "c/y.ipynb": ("bob", "invalid"),
    }


def test_ids_in_nfc_with_whitespace_runs_joined_are_one_student(tmp_path):
    nfd = unicodedata.normalize("NFD", "Zoë")
    put(tmp_path / "a" / nfd / f"{LESSON}.ipynb", mtime=1_000)
    put(tmp_path / "b" / "Zoë" / f"{LESSON}.ipynb", mtime=2_000)
    put(tmp_path / "c" / "x.ipynb", claiming("  dora \t smith "))
    subs = find([tmp_path / "a", tmp_path / "b", tmp_path / "c"], [LESSON])
    zoe = [s for s in subs if s.student == "Zoë"]
    assert len(zoe) == 2 and sorted(s.status for s in zoe) == ["", "duplicate"]
    assert shard_of(zoe[0], 7) == shard_of(zoe[1], 7)
    assert {s.student for s in subs} == {"Zoë", "dora smith"}


@pytest.mark.parametrize("bad", ["", "   ", None, True, ["alice"], {"id": 1}, "x" * 201])
def test_metadata_that_is_no_id_is_ignored(tmp_path, bad):
    put(tmp_path / "given" / "x.ipynb", claiming(bad))
    (sub,) = find([tmp_path / "given" / "x.ipynb"], [LESSON])
    assert (sub.student, sub.status) == ("given", "")  # the folder it is in


def test_a_student_number_in_metadata_is_an_id(tmp_path):
    put(tmp_path / "c" / "x.ipynb", claiming(12345))
    (sub,) = find([tmp_path / "c"], [LESSON])
    assert sub.student == "12345" and sub.ok


# --- links and files that are not files --------------------------------------------------------------


def test_links_are_refused_wherever_they_are(tmp_path):
    c = tmp_path / "c"
    put(c / "alice" / f"{LESSON}.ipynb", answer_nb())
    (c / "mallory").mkdir()
    (c / "mallory" / f"{LESSON}.ipynb").symlink_to(c / "alice" / f"{LESSON}.ipynb")
    (c / "trudy").mkdir()
    (c / "trudy" / f"{LESSON}.ipynb").symlink_to(ANSWER)
    (c / "oscar").symlink_to(c / "alice", target_is_directory=True)  # a linked student folder
    put(c / "peggy" / "notes.txt", None)
    (c / "peggy" / "borrowed").symlink_to(c / "alice", target_is_directory=True)  # not followed
    (c / f"victor_{LESSON}.ipynb").symlink_to(ANSWER)
    (tmp_path / f"wendy_{LESSON}.ipynb").symlink_to(ANSWER)  # named on the command line
    (c / "dangling").mkdir()
    (c / "dangling" / f"{LESSON}.ipynb").symlink_to(tmp_path / "nowhere")
    subs = find([c, tmp_path / f"wendy_{LESSON}.ipynb"], [LESSON])
    statuses = {s.student: (s.status, "symbolic link" in s.problem) for s in subs}
    assert statuses == {
        "alice": ("", False),
        "mallory": ("invalid", True),
        "trudy": ("invalid", True),
        "oscar": ("invalid", True),
        "victor": ("invalid", True),
        "wendy": ("invalid", True),
        "dangling": ("invalid", True),
    }
    assert not any("borrowed" in s.file for s in subs)


def test_a_pipe_a_folder_and_bytes_that_are_no_utf8_are_listed_not_fatal(tmp_path):
    c = tmp_path / "c"
    (c / "pat").mkdir(parents=True)
    os.mkfifo(c / "pat" / f"{LESSON}.ipynb")  # reading it would wait for ever
    put(c / "quinn" / f"{LESSON}.ipynb" / f"{LESSON}.ipynb", answer_nb())  # a folder named .ipynb
    raw = os.fsencode(c) + b"/ro\xefs/" + LESSON.encode() + b".ipynb"
    os.makedirs(os.path.dirname(raw))
    with open(raw, "wb") as handle:
        handle.write(nbformat.writes(answer_nb()).encode())
    subs = {s.student: s for s in find([c], [LESSON])}
    assert subs["pat"].status == "invalid" and "not a regular file" in subs["pat"].problem
    assert subs["quinn"].ok
    assert subs["ro\\xefs"].ok and subs["ro\\xefs"].file == f"c/ro\\xefs/{LESSON}.ipynb"
    results = [NotebookResult(s.student, LESSON, s.file, "graded") for s in subs.values()]
    write_gradebook(tmp_path / "gradebook.csv", results, [])  # no UnicodeEncodeError
    write_feedback(tmp_path / "feedback", subs["ro\\xefs"].student, results[-1:])


def test_a_file_reached_twice_is_one_submission_and_same_named_folders_stay_apart(tmp_path):
    put(tmp_path / "c" / "alice" / f"{LESSON}.ipynb")
    put(tmp_path / "other" / "c" / "bob" / f"{LESSON}.ipynb")
    given = [tmp_path / "c", tmp_path / "c" / "alice" / f"{LESSON}.ipynb", tmp_path / "other" / "c"]
    subs = find(given, [LESSON])
    assert [(s.student, s.status) for s in subs] == [("alice", ""), ("bob", "")]
    assert len({s.file for s in subs}) == 2


# --- feedback file names --------------------------------------------------------------------------

ODD_IDS = [
    "alice",
    "../alice",
    "alice/",
    "Alice",
    "ALICE",
    "a b",
    "a_b",
    "a:b",
    ".",
    "..",
    "-rf",
    "con",
    "ſam",
    "sam",
    "straße",
    "strasse",
    "x" * 200,
    "x" * 199 + "y",
    "\x1b[2J",
    "\u202eexe.txt",
    "alice+0123456789ab",
    "Zoë Ångström",
]


def test_feedback_names_are_one_per_id_even_without_case_and_safe_as_file_names(tmp_path):
    names = [feedback_name(student) for student in ODD_IDS]
    assert len({name.casefold() for name in names}) == len(ODD_IDS)
    assert names[0] == "alice" and feedback_name("zoë") == "zoë"  # plain ids keep their name
    assert names == [feedback_name(student) for student in ODD_IDS]  # a function of the id alone
    for name in names:
        assert "/" not in name and not name.startswith((".", "-")) and len(name.encode()) < 200
        (tmp_path / f"{name}.md").write_text("x")
    assert len(list(tmp_path.iterdir())) == len(ODD_IDS)


def result(student, status="graded", score=2.0, file=None, error=""):
    check = {
        "exercise": "90.1",
        "of": "90.1",
        "title": "t",
        "status": "passed" if score else "failed",
        "message": "m",
        "hint": "",
        "points": score,
        "max_points": 2.0,
        "hidden": False,
    }
    file = file or f"c/{student}/{LESSON}.ipynb"
    return NotebookResult(student, LESSON, file, status, error, [check], [], score, 2.0, "ab")


def test_ids_that_made_one_file_write_two(tmp_path):
    write_feedback(tmp_path, "alice", [result("alice")])
    write_feedback(tmp_path, "../alice", [result("../alice", score=0.0, file="c/x.ipynb")])
    assert len(list(tmp_path.glob("*.md"))) == 2
    assert "Total: **2 / 2**" in (tmp_path / "alice.md").read_text()


def test_merge_does_not_depend_on_the_order_of_the_parts(tmp_path):
    write_gradebook(tmp_path / "a.csv", [result("ann")], ["90.1"])
    write_gradebook(tmp_path / "b.csv", [result("bea", score=0.0)], ["90.1"])
    write_gradebook(tmp_path / "again.csv", [result("ann")], ["90.1"])  # the same row: fine
    write_gradebook(tmp_path / "other.csv", [result("ann", score=0.0)], ["90.1"])  # another run's
    merge([tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "again.csv"], tmp_path / "ab.csv")
    merge([tmp_path / "b.csv", tmp_path / "again.csv", tmp_path / "a.csv"], tmp_path / "ba.csv")
    assert (tmp_path / "ab.csv").read_text() == (tmp_path / "ba.csv").read_text()
    for order in ([tmp_path / "a.csv", tmp_path / "other.csv"], [tmp_path / "other.csv", tmp_path / "a.csv"]):
        with pytest.raises(ValueError, match="graded differently"):
            merge(order, tmp_path / "m.csv")


# --- totals: one row per lesson counts ---------------------------------------------------------------


def test_a_duplicate_or_an_extra_invalid_copy_adds_nothing_to_the_total(tmp_path):
    graded = result("ann")
    duplicate = result("ann", "duplicate", 0.0, f"c/ann/{LESSON} (1).ipynb", "an older copy: ...")
    broken = result("ann", "invalid", 0.0, f"c/ann/{LESSON} (2).ipynb", "the file is empty")
    claim = result("ann", "invalid", 0.0, "c/x.ipynb", "claims to be ann's work (metadata...)")
    rows = [graded, duplicate, broken, claim]
    assert counted(rows) == [graded]
    text = markdown("ann", rows)
    assert "Total: **2 / 2**" in text and text.count("not counted") == 3
    assert "<b>2 / 2</b>" in page("ann", rows)
    write_gradebook(tmp_path / "g.csv", rows, ["90.1"])
    with open(tmp_path / "g.csv", newline="") as handle:
        totals = [(r["status"], r["score"], r["max_score"]) for r in csv.DictReader(handle)]
    assert sorted(totals) == [("duplicate", "0", "0"), ("graded", "2", "2"), ("invalid", "0", "0")] + [
        ("invalid", "0", "0")
    ]
    only_broken = markdown("bea", [result("bea", "invalid", 0.0, error="the file is empty")])
    assert "Total: **0 / 2**" in only_broken  # a lesson handed in broken still counts


# --- the whole command --------------------------------------------------------------------------------


def grader(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(FIXTURES / "run_grader.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )


def rows_of(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_whole_run_identities_links_and_totals(tmp_path):
    c = tmp_path / "course"
    put(c / "alice" / f"{LESSON}.ipynb", answer_nb(), mtime=1_000)
    put(c / "renamed.ipynb", claiming("alice"), mtime=9_000)  # newer, blank: must not displace
    (c / "mallory").mkdir()
    (c / "mallory" / f"{LESSON}.ipynb").symlink_to(c / "alice" / f"{LESSON}.ipynb")
    (c / "trudy").mkdir()
    (c / "trudy" / f"{LESSON}.ipynb").symlink_to(ANSWER)
    put(c / "x y" / f"{LESSON}.ipynb", answer_nb())  # `x y` and `x_y` once shared x_y.md
    put(c / "x_y" / f"{LESSON}.ipynb", blank_nb())
    put(c / "one.ipynb", claiming("../dan", answer_nb()))  # `../dan` and `dan` once shared dan.md
    put(c / "two.ipynb", claiming("dan", blank_nb()))
    put(c / "twice" / f"{LESSON}.ipynb", answer_nb(), mtime=2_000)
    put(c / "twice" / f"{LESSON} (1).ipynb", answer_nb(), mtime=1_000)
    args = ["grade", "course", "--answers", str(ANSWERS), *LIMITS]
    shards = [[*args, "--out", f"s{i}", "--shard", f"{i}/2"] for i in range(2)]
    merge = ["gradebook", "merge", "s1", "s0", "--out", "merged"]
    run = grader(*args, "--out", "out", "::", *shards[0], "::", *shards[1], "::", *merge, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    rows = rows_of(tmp_path / "out" / "gradebook.csv")
    got = {(r["student"], r["file"]): (r["status"], r["score"], r["max_score"]) for r in rows}
    assert got == {
        ("alice", f"course/alice/{LESSON}.ipynb"): ("graded", "2", "2"),
        ("alice", "course/renamed.ipynb"): ("invalid", "0", "0"),
        ("mallory", f"course/mallory/{LESSON}.ipynb"): ("invalid", "0", "2"),
        ("trudy", f"course/trudy/{LESSON}.ipynb"): ("invalid", "0", "2"),
        ("x y", f"course/x y/{LESSON}.ipynb"): ("graded", "2", "2"),
        ("x_y", f"course/x_y/{LESSON}.ipynb"): ("graded", "0", "2"),
        ("../dan", "course/one.ipynb"): ("graded", "2", "2"),
        ("dan", "course/two.ipynb"): ("graded", "0", "2"),
        ("twice", f"course/twice/{LESSON}.ipynb"): ("graded", "2", "2"),
        ("twice", f"course/twice/{LESSON} (1).ipynb"): ("duplicate", "0", "0"),
    }
    errors = {r["student"] + r["file"]: r["error"] for r in rows}
    assert "symbolic link" in errors[f"mallorycourse/mallory/{LESSON}.ipynb"]
    assert "claims to be alice's work" in errors["alicecourse/renamed.ipynb"]

    def feedback(out: str) -> dict[str, str]:
        return {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / out / "feedback").iterdir()}

    whole = feedback("out")
    assert len(whole) == 2 * 8  # one .md and one .html per student id
    for student, total in [("alice", "2 / 2"), ("x y", "2 / 2"), ("x_y", "0 / 2"), ("twice", "2 / 2")]:
        assert f"Total: **{total}**" in whole[f"{feedback_name(student)}.md"], student
    assert "Total: **2 / 2**" in whole[f"{feedback_name('../dan')}.md"]
    assert "Total: **0 / 2**" in whole[f"{feedback_name('dan')}.md"]
    assert feedback("merged") == whole  # whatever the order of the parts
    assert (tmp_path / "merged" / "gradebook.csv").read_text() == (
        tmp_path / "out" / "gradebook.csv"
    ).read_text()


def test_a_file_that_cannot_be_opened_is_listed_with_the_reason(tmp_path, monkeypatch):
    """Root reads anything, so the refusal is simulated where the grader opens the file."""
    import buflesson.grading.submissions as submissions

    put(tmp_path / "c" / "ann" / f"{LESSON}.ipynb", answer_nb())
    locked = put(tmp_path / "c" / "bea" / f"{LESSON}.ipynb", answer_nb())
    real_open = os.open

    def refuse(path, *args, **kwargs):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(submissions.os, "open", refuse)
    subs = {s.student: s for s in find([tmp_path / "c"], [LESSON])}
    assert subs["ann"].ok and subs["bea"].status == "invalid"
    assert subs["bea"].problem == "cannot read the file: Permission denied"
