"""Short tracebacks: library frames folded to one line, the student's frames and the message kept."""

import json
import re
from pathlib import Path

import nbformat
import pytest
from IPython.core.interactiveshell import InteractiveShell

from buflesson import kernel
from buflesson.authoring import execute
from buflesson.tracebacks import text

ROOT = Path(__file__).resolve().parent.parent
LESSONS_WITH_INTENDED_FAILURES = ["02-devices.ipynb", "08-bugs-from-the-wild.ipynb"]
MAX_LINES = 20

SETUP = (
    "import torch\n"
    "from buflesson import plain_offset_model, sample_input\n"
    "from buflesson.standin import device_rule\n"
    "model = plain_offset_model().to('meta')\n"
)


@pytest.fixture
def shell(capsys):
    """An IPython shell with buflesson's extension; `run(code)` returns what the cell printed."""
    InteractiveShell.clear_instance()  # a fresh shell, whatever an earlier test left
    ip = InteractiveShell.instance()
    kernel.load_ipython_extension(ip)
    ip.run_cell(SETUP)
    capsys.readouterr()

    def run(code):
        ip.run_cell(code)
        return re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out)

    yield run
    ip.run_line_magic("xmode", "Context")
    InteractiveShell.clear_instance()


def test_a_stand_in_error_through_a_model_is_folded(shell):
    out = shell("with device_rule():\n    model(sample_input().to('meta'))")
    lines = out.strip().splitlines()
    assert len(lines) <= MAX_LINES, out
    assert lines[-1].startswith("StandInDeviceError: Expected all tensors to be on the same device")
    assert "----> 2     model(sample_input().to('meta'))" in out
    assert (
        "[3 frames in torch, buflesson, through PlainOffset.forward: return self.linear(x) + self.offset]"
        in out
    )
    assert "site-packages" not in out and "__torch_dispatch__" not in out


def test_a_students_module_keeps_its_forward_frame_between_folded_torch_frames(shell):
    out = shell(
        "class Ramp(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return x * torch.arange(1, 4)\n"
        "with device_rule():\n"
        "    Ramp()(torch.ones(2, 3, device='meta'))"
    )
    lines = out.strip().splitlines()
    assert len(lines) <= MAX_LINES, out
    assert "in Ramp.forward" in out and "----> 3         return x * torch.arange(1, 4)" in out
    assert "[2 frames in torch]" in out and "standin" not in out
    assert lines[-1].startswith("StandInDeviceError: Expected all tensors to be on the same device")


def test_an_error_in_the_students_own_code_is_left_as_ipython_shows_it(shell):
    out = shell("def f(x):\n    return x / 0\nf(1)")
    assert "frames in" not in out
    assert "in f(x)" in out and out.strip().endswith("ZeroDivisionError: division by zero")


def test_a_plain_torch_error_under_the_rule_shows_no_stand_in_frames(shell):
    out = shell("with device_rule():\n    torch.ones(2) + torch.ones(3)")
    assert "frames in" not in out and "buflesson" not in out
    assert out.strip().splitlines()[-1].startswith("RuntimeError: The size of tensor a (2) must match")


def test_xmode_verbose_shows_every_frame_again(shell):
    shell("%xmode Verbose")
    out = shell("with device_rule():\n    model(sample_input().to('meta'))")
    assert "torch/nn/modules/module.py" in out and "frames in" not in out


def test_installing_twice_folds_once(shell):
    ip = InteractiveShell.instance()
    wrapped = ip.InteractiveTB.structured_traceback
    kernel.load_ipython_extension(ip)
    assert ip.InteractiveTB.structured_traceback is wrapped


def test_the_kernelspec_loads_the_extension(tmp_path):
    folder = kernel.install_kernelspec(prefix=str(tmp_path))
    spec = json.loads((folder / "kernel.json").read_text())
    assert spec["display_name"] == "Python (buflesson)" and folder.name == "buflesson"
    assert spec["argv"][-1] == "--IPKernelApp.extensions=buflesson.kernel"
    kernel.install_kernelspec(prefix=str(tmp_path))  # again: the argument is not repeated
    argv = json.loads((folder / "kernel.json").read_text())["argv"]
    assert argv.count("--IPKernelApp.extensions=buflesson.kernel") == 1


def test_the_notebook_generator_stores_the_short_form(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_code_cell(SETUP),
        nbformat.v4.new_code_cell("model(sample_input().to('meta'))"),
    ]
    nb.cells[1].source = "with device_rule():\n    model(sample_input().to('meta'))"
    execute(nb, tmp_path)
    (error,) = nb.cells[1].outputs
    assert error.ename == "StandInDeviceError"
    shown = text(error.traceback).strip().splitlines()
    assert len(shown) <= MAX_LINES and shown[-1] == f"{error.ename}: {error.evalue}"


def _errors(path):
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                yield output


@pytest.mark.parametrize("folder", ["answers", ""])
@pytest.mark.parametrize("name", LESSONS_WITH_INTENDED_FAILURES)
def test_the_committed_intended_failures_are_short_and_end_in_the_message(name, folder):
    errors = list(_errors(ROOT / "notebooks" / folder / name))
    assert errors, "the lesson shows at least one intended failure"
    for error in errors:
        shown = text(error["traceback"]).strip().splitlines()
        assert len(shown) <= MAX_LINES, "\n".join(shown)
        assert shown[-1] == f"{error['ename']}: {error['evalue']}"
        assert not any("site-packages" in line or "FakeTensor" in line for line in shown)


def test_the_fold_line_is_in_the_lessons_language(shell):
    from buflesson.i18n import using

    with using("zh"):
        out = shell("with device_rule():\n    model(sample_input().to('meta'))")
    assert (
        "[torch, buflesson 中的 3 个帧，经过 PlainOffset.forward：return self.linear(x) + self.offset]" in out
    )
    assert (
        out.strip().splitlines()[-1].startswith("StandInDeviceError: Expected all tensors")
    )  # PyTorch's words
