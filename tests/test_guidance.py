"""A NameError from running a cell too early names the cell to run first."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from buflesson import workspace
from buflesson.guidance import RUN_ABOVE, advice, defined_names

ANSWERS = Path(__file__).resolve().parent.parent / "notebooks" / "answers"
IMPORTS = "import torch\nfrom torch import nn\n\nfrom buflesson import check, inventory"
MODEL = "model = nn.Linear(2, 2)"
USE = "inventory(model)"


def test_defined_names_are_the_top_level_bindings_of_a_cell():
    found = defined_names(
        "import os.path as p\nfrom buflesson import (\n    audit,\n    check,\n)\nx = y = 3\n"
        "for i in []: pass\nwith open('f') as fh: pass\ndef f():\n    inner = 1\nclass C: pass\n"
        "if True:\n    q: int = 1\nr += 1\nz: int\n"
    )
    assert found == {
        "p": "import os.path as p",
        "audit": "from buflesson import audit",
        "check": "from buflesson import check",
        "x": "x = y = 3",
        "y": "x = y = 3",
        "i": "for i in []: pass",
        "fh": "with open('f') as fh: pass",
        "f": "def f():",
        "C": "class C: pass",
        "q": "q: int = 1",
    }
    assert defined_names("def broken(:") == {}


def test_a_cell_run_before_the_imports_is_told_to_run_the_cells_above():
    line = advice("nn", [IMPORTS, MODEL, USE], MODEL, ran=[])
    assert line.startswith("`nn` comes from `from torch import nn` in a cell above that has not run")
    assert RUN_ABOVE in line


def test_a_defining_cell_that_ran_and_failed_is_named_as_such():
    line = advice(
        "model",
        [IMPORTS, "model = nn.Linear(2, oops)", USE],
        USE,
        ran=[IMPORTS, "model = nn.Linear(2, oops)"],
    )
    assert "which ran but stopped before defining it" in line


def test_the_nearest_definition_above_is_named():
    cells = [IMPORTS, MODEL, "model = nn.Linear(3, 3)", USE]
    assert "`model = nn.Linear(3, 3)`" in advice("model", cells, USE, ran=[])


def test_a_name_defined_only_further_down_says_so():
    assert "further down" in advice("model", [IMPORTS, USE, MODEL], USE, ran=[IMPORTS])


def test_a_name_no_cell_defines_gets_no_line():
    assert advice("modle", [IMPORTS, MODEL, USE], "modle", ran=[]) is None


def test_an_edited_cell_not_found_in_the_saved_notebook_counts_as_the_last():
    assert "has not run" in advice("nn", [IMPORTS, MODEL], "nn.Linear(5, 5)  # being edited", ran=[])


SHELL = textwrap.dedent(
    """
    import sys
    from IPython.core.interactiveshell import InteractiveShell
    import buflesson.guidance
    ip = InteractiveShell.instance(colors="nocolor")
    buflesson.guidance.install(ip)
    for source in sys.argv[1:]:
        ip.run_cell(source, store_history=True)
    """
)


@pytest.fixture
def lesson(tmp_path, monkeypatch):
    """The student's copy of lesson 3 (from buflesson lab), as a kernel serving it sees it."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))
    workspace.sync(ANSWERS, tmp_path / "mine")
    path = tmp_path / "mine" / "03-register-buffer.ipynb"
    nb = nbformat.read(path, as_version=4)
    cells = {
        cell.metadata["buflesson"]["role"]: cell.source
        for cell in reversed(nb.cells)
        if cell.cell_type == "code"
    }
    return path, cells


def _shell(cells: list[str], notebook: Path | None) -> str:
    env = {key: value for key, value in os.environ.items() if key != "JPY_SESSION_NAME"}
    if notebook:
        env["JPY_SESSION_NAME"] = str(notebook)
    run = subprocess.run(
        [sys.executable, "-c", SHELL, *cells], capture_output=True, text=True, env=env, timeout=120
    )
    return run.stdout + run.stderr


def test_in_a_shell_the_line_stands_above_the_usual_error(lesson):
    path, cells = lesson
    out = _shell([cells["exercise"], cells["check"]], path)
    assert "`nn` comes from `from torch import nn` in a cell above that has not run" in out
    assert out.index("`nn` comes from") < out.index("NameError: name 'nn' is not defined")
    assert "`check` comes from `from buflesson import check`" in out


def test_without_a_notebook_the_error_is_as_usual(lesson):
    _, cells = lesson
    out = _shell([cells["exercise"]], None)
    assert "NameError: name 'nn' is not defined" in out and "comes from" not in out


def test_the_lesson_kernel_loads_the_guidance_and_the_warm_up(lesson):
    from jupyter_client.manager import start_new_kernel

    path, cells = lesson
    spec = json.loads((Path(sys.prefix) / "share/jupyter/kernels/buflesson/kernel.json").read_text())
    assert "--IPKernelApp.extensions=buflesson.kernel" in spec["argv"], "run `make` (or buflesson lab) first"
    manager, client = start_new_kernel(
        kernel_name="buflesson", env=os.environ | {"JPY_SESSION_NAME": str(path)}, cwd=str(path.parent)
    )
    outputs = []
    try:
        client.execute_interactive(cells["exercise"], output_hook=outputs.append, timeout=120)
        warmed = (
            "import sys, threading\n"
            "[t.join() for t in threading.enumerate() if t.name == 'buflesson-warmup']\n"
            "print('buflesson.warmup' in sys.modules, 'torch._dynamo' in sys.modules)"
        )
        client.execute_interactive(warmed, output_hook=outputs.append, timeout=120)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    [error] = [msg["content"] for msg in outputs if msg["msg_type"] == "error"]
    assert error["ename"] == "NameError" and "`nn` comes from" in error["traceback"][0]
    [printed] = [
        msg["content"]["text"]
        for msg in outputs
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout"
    ]
    assert printed.strip() == "True True", "the kernel started the warm-up, which loaded torch._dynamo"


def test_installing_twice_adds_the_line_once():
    from IPython.core.interactiveshell import InteractiveShell

    from buflesson.guidance import install

    InteractiveShell.clear_instance()
    ip = InteractiveShell.instance()
    try:
        install(ip)
        wrapped = ip.InteractiveTB.structured_traceback
        install(ip)
        assert ip.InteractiveTB.structured_traceback is wrapped
    finally:
        InteractiveShell.clear_instance()  # no shell with the line installed left for other tests


def test_the_line_is_in_the_lessons_language():
    from buflesson.i18n import using

    with using("zh"):
        line = advice("nn", [IMPORTS, MODEL, USE], MODEL, ran=[])
    assert line == (
        "`nn` 来自上方某个单元格中的 `from torch import nn`，自内核启动以来那个单元格还没有运行过："
        f"先运行这个单元格上方的所有单元格（{RUN_ABOVE}）。"
    )
