"""Student notebooks are generated from the answer notebooks and hold no answer."""

from pathlib import Path

import nbformat
import pytest

from buflesson.authoring import (
    ROLE_CHECK,
    ROLE_EXERCISE,
    ROLE_GIVEN,
    MarkerError,
    answer_text,
    coalesce_streams,
    strip_answers,
    student_notebook,
)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ANSWERS = sorted((NOTEBOOKS / "answers").glob("*.ipynb"))


def test_answer_region_becomes_placeholder_at_the_same_indent():
    source = (
        "class Model(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        ### BEGIN SOLUTION\n"
        "        self.register_buffer('scale', torch.ones(2))\n"
        "        ### END SOLUTION\n"
        "        self.linear = nn.Linear(2, 2)"
    )
    assert strip_answers(source).splitlines()[3:] == [
        "        # YOUR CODE HERE",
        "        raise NotImplementedError",
        "        self.linear = nn.Linear(2, 2)",
    ]


def test_inline_answer_becomes_ellipsis():
    assert strip_answers("keys = ['a', 'b']  # SOLUTION") == "keys = ...  # YOUR CODE HERE"
    assert strip_answers("x = 1  # a comment") == "x = 1  # a comment"


@pytest.mark.parametrize(
    "source",
    ["### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION", "### BEGIN SOLUTION\n### BEGIN SOLUTION"],
)
def test_unpaired_markers_are_an_error(source):
    with pytest.raises(MarkerError):
        strip_answers(source)


def _answer_nb():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Lesson"),
        nbformat.v4.new_code_cell("import torch"),
        nbformat.v4.new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION"),
        nbformat.v4.new_code_cell('check("1.1", f)'),
    ]
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="secret output 42\n")]
    return nb


def test_student_notebook_marks_roles_and_clears_outputs():
    answer = _answer_nb()
    student = student_notebook(answer)
    roles = [cell.metadata["buflesson"]["role"] for cell in student.cells]
    assert roles == [ROLE_GIVEN, ROLE_GIVEN, ROLE_EXERCISE, ROLE_CHECK]
    assert student.cells[3].metadata["buflesson"]["exercises"] == ["1.1"]
    assert all(cell.get("outputs", []) == [] for cell in student.cells)
    assert "return 42" not in student.cells[2].source
    assert [cell.id for cell in student.cells] == [cell.id for cell in answer.cells]


def test_cell_ids_survive_an_inserted_cell():
    answer = _answer_nb()
    before = [cell.id for cell in student_notebook(answer).cells]
    answer.cells.insert(1, nbformat.v4.new_markdown_cell("A new sentence."))
    answer.cells[1].id = answer.cells[0].id  # a copied cell: same id as its neighbour
    after = [cell.id for cell in student_notebook(answer).cells]
    assert after[:1] + after[2:] == before
    assert len(set(after)) == len(after)
    assert student_notebook(answer).cells[1].id == after[1]  # the new id is the same on every run


def test_answer_text_lists_answer_lines_only():
    assert answer_text(_answer_nb()) == ["return 42"]


def test_there_are_answer_notebooks():
    assert ANSWERS, "notebooks/answers/ holds no answer notebook"


@pytest.mark.parametrize("answer_path", ANSWERS, ids=[p.name for p in ANSWERS])
def test_committed_student_notebook_is_what_the_generator_makes(answer_path):
    answer = nbformat.read(answer_path, as_version=4)
    committed_path = NOTEBOOKS / answer_path.name
    assert committed_path.exists(), f"run `make notebooks`: {committed_path.name} is missing"
    committed = nbformat.read(committed_path, as_version=4)
    generated = student_notebook(answer)
    assert [(c.cell_type, c.source, c.metadata.get("buflesson")) for c in committed.cells] == [
        (c.cell_type, c.source, c.metadata.get("buflesson")) for c in generated.cells
    ], f"{committed_path.name} differs from its answer notebook: run `make notebooks`"


@pytest.mark.parametrize("answer_path", ANSWERS, ids=[p.name for p in ANSWERS])
def test_no_answer_text_survives_in_the_student_notebook(answer_path):
    answers = answer_text(nbformat.read(answer_path, as_version=4))
    assert answers, f"{answer_path.name} has no answer region"
    student = (NOTEBOOKS / answer_path.name).read_text(encoding="utf-8")
    code_lines = {
        line.strip()
        for cell in nbformat.reads(student, as_version=4).cells
        if cell.cell_type == "code"
        for line in cell.source.splitlines()
    }
    leaked = [line for line in answers if line in code_lines]
    assert not leaked, f"answer lines in {answer_path.name}: {leaked}"


@pytest.mark.parametrize("answer_path", ANSWERS, ids=[p.name for p in ANSWERS])
def test_lesson_follows_the_outline(answer_path):
    nb = nbformat.read(answer_path, as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for heading in ("## What you will learn", "## Exercises", "## Summary"):
        assert heading in markdown, f"{answer_path.name} lacks {heading!r}"
    assert nb.metadata["kernelspec"]["name"] == "buflesson"
    roles = [cell_role_of(c) for c in student_notebook(nb).cells]
    assert roles.count(ROLE_EXERCISE) >= 2 and roles.count(ROLE_CHECK) >= 2
    # Each exercise cell is followed by its check cell.
    for index, role in enumerate(roles):
        if role == ROLE_EXERCISE:
            assert ROLE_CHECK in roles[index + 1 : index + 3], f"cell {index} has no check after it"


def cell_role_of(cell):
    return cell.metadata["buflesson"]["role"]


def test_printing_split_into_chunks_is_stored_as_one_output_per_stream():
    out = nbformat.v4.new_output
    chunks = [
        out("stream", name="stdout", text="offset saved:    "),
        out("stream", name="stdout", text="tensor([3., 4.])\n"),
        out("stream", name="stderr", text="warning\n"),
        out("execute_result", data={"text/plain": "1"}),
        out("stream", name="stdout", text="after\n"),
    ]
    joined = coalesce_streams(chunks)
    assert [(o.output_type, o.get("name"), o.get("text")) for o in joined] == [
        ("stream", "stdout", "offset saved:    tensor([3., 4.])\n"),
        ("stream", "stderr", "warning\n"),
        ("execute_result", None, None),
        ("stream", "stdout", "after\n"),
    ]


def test_stored_tracebacks_name_no_folder_of_this_machine():
    import sys
    import sysconfig

    from buflesson.authoring import strip_machine_paths

    site = sysconfig.get_paths()["purelib"]
    checkout = str(Path(__file__).resolve().parent.parent)
    traceback = [
        f"\x1b[36mFile \x1b[39m\x1b[32m{site}/torch/nn/modules/module.py:1778\x1b[39m, in forward",
        "File /home/someone/.venv/lib/python3.12/site-packages/torch/_tensor.py:12",
        r"File C:\Users\someone\venv\Lib\site-packages\torch\_tensor.py:12",
        f"File {checkout}/buflesson/probes.py:40, in call_student",
        "RuntimeError: Tensor on device cpu is not on the expected device meta!",
    ]
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("model(x)")
    cell.outputs = [
        nbformat.v4.new_output("error", ename="RuntimeError", evalue="x", traceback=traceback),
        nbformat.v4.new_output("stream", name="stderr", text=f"{site}/torch/x.py:3: UserWarning: w\n"),
        nbformat.v4.new_output("stream", name="stdout", text="printed /root/kept\n"),
    ]
    nb.cells = [cell]
    error, warning, printed = strip_machine_paths(nb).cells[0].outputs
    assert error.traceback == [
        "\x1b[36mFile \x1b[39m\x1b[32msite-packages/torch/nn/modules/module.py:1778\x1b[39m, in forward",
        "File site-packages/torch/_tensor.py:12",
        r"File site-packages\torch\_tensor.py:12",
        "File ./buflesson/probes.py:40, in call_student",
        traceback[-1],
    ]
    assert warning.text == "site-packages/torch/x.py:3: UserWarning: w\n"
    assert printed.text == "printed /root/kept\n", "what a cell prints is the lesson's, left alone"
    assert sys.prefix not in str(nb)


@pytest.mark.parametrize(
    "path", sorted(NOTEBOOKS.glob("*.ipynb")) + ANSWERS, ids=lambda p: p.relative_to(NOTEBOOKS).as_posix()
)
def test_committed_notebooks_name_no_machine_folder(path):
    import re

    text = path.read_text(encoding="utf-8")
    checkout = str(Path(__file__).resolve().parent.parent)
    assert checkout not in text
    absolute = re.findall(r"(?:[A-Za-z]:)?[/\\][^\s\"'<>|\\]*?[/\\](?:site|dist)-packages[/\\]", text)
    assert not absolute, f"{path.name}: {sorted(set(absolute))[:3]}"
