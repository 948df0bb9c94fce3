"""`buflesson lab` / `make lab`: the student's working copy, the command line, the kernel and settings."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import nbformat.sign
import pytest

from buflesson import lab, workspace
from buflesson.authoring import answer_text
from buflesson.cli import main as cli_main
from buflesson.lab import KERNEL, OVERRIDES, install_kernel, install_overrides, lab_command, lessons

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = ROOT / "notebooks" / "answers"


@pytest.fixture(autouse=True)
def own_jupyter_data(tmp_path, monkeypatch):
    """Notebook signatures go to a temporary Jupyter data folder, not the user's."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter-data"))


@pytest.fixture
def course(tmp_path):
    """A course of the first two real lessons, in a folder of its own."""
    answers = tmp_path / "course"
    answers.mkdir()
    for path in lessons(ANSWERS)[:2]:
        shutil.copy(path, answers)
    return answers


def test_lessons_are_the_numbered_notebooks_in_order(tmp_path):
    for name in ["10-last.ipynb", "02-b.ipynb", "01-a.ipynb", "notes.ipynb", "02-b.py"]:
        (tmp_path / name).touch()
    assert [path.name for path in lessons(tmp_path)] == ["01-a.ipynb", "02-b.ipynb", "10-last.ipynb"]


def test_first_run_copies_the_handout_without_outputs_or_answers_and_trusted(course, tmp_path):
    mine = tmp_path / "my-lessons"
    report = workspace.sync(course, mine)
    assert [path.name for path in report.added] == [path.name for path in lessons(course)]
    assert report.kept == [] and report.updated_in_course == []
    notary = nbformat.sign.NotebookNotary()
    for path in report.added:
        nb = nbformat.read(path, as_version=4)
        code = [cell for cell in nb.cells if cell.cell_type == "code"]
        assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
        text = path.read_text("utf-8")
        answers = answer_text(nbformat.read(course / path.name, as_version=4))
        assert answers and not [line for line in answers if line in text]
        assert "raise NotImplementedError" in text
        assert notary.check_signature(nb), f"{path.name} is not trusted"
    assert not list(mine.glob(".*.tmp")), "no temporary file is left behind"


def test_later_runs_keep_the_students_work_and_copy_in_new_lessons(course, tmp_path):
    mine = tmp_path / "my-lessons"
    first, second = workspace.sync(course, mine).added
    first.write_text(first.read_text("utf-8").replace("raise NotImplementedError", "pass  # mine"), "utf-8")
    mine_before = first.read_bytes()
    second.unlink()
    shutil.copy(lessons(ANSWERS)[2], course)  # the course gains a lesson

    report = workspace.sync(course, mine)
    assert first.read_bytes() == mine_before
    assert [path.name for path in report.added] == [second.name, lessons(ANSWERS)[2].name]
    assert report.kept == [first]


def test_a_lesson_changed_in_the_course_is_reported_not_overwritten(course, tmp_path):
    mine = tmp_path / "my-lessons"
    workspace.sync(course, mine)
    changed = lessons(course)[0]
    nb = nbformat.read(changed, as_version=4)
    nb.cells[0].source += "\n\nA sentence added to the course."
    nbformat.write(nb, changed)
    before = (mine / changed.name).read_bytes()
    report = workspace.sync(course, mine)
    assert report.updated_in_course == [mine / changed.name]
    assert (mine / changed.name).read_bytes() == before


def test_reset_keeps_the_old_copy_in_backups_and_writes_a_fresh_one(course, tmp_path):
    mine = tmp_path / "my-lessons"
    workspace.sync(course, mine)
    name = lessons(course)[1].name
    (mine / name).write_text("my broken notebook", "utf-8")
    fresh, backup = workspace.reset(course, mine, name[:2])
    assert fresh == mine / name
    assert backup.parent == mine / workspace.BACKUPS and backup.read_text("utf-8") == "my broken notebook"
    assert nbformat.read(fresh, as_version=4).metadata["buflesson"]["lesson"] == name.removesuffix(".ipynb")
    assert workspace.sync(course, mine).kept == lessons(mine), "backups/ holds no lesson of the course"


@pytest.mark.parametrize("which", ["2", "02", "02-devices", "02-devices.ipynb"])
def test_a_lesson_is_named_by_number_or_name(course, which):
    assert workspace.find_lesson(course, which).name == "02-devices.ipynb"


def test_an_unknown_lesson_lists_the_lessons(course):
    with pytest.raises(workspace.WorkspaceError, match="01-plain-attributes, 02-devices"):
        workspace.find_lesson(course, "7")


def test_the_working_copy_is_next_to_notebooks_and_git_ignored():
    folder = workspace.default_folder(ANSWERS)
    assert folder == ROOT / workspace.WORKSPACE
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", f"{workspace.WORKSPACE}/01-plain-attributes.ipynb"], cwd=ROOT
    )
    assert ignored.returncode == 0, f"{workspace.WORKSPACE}/ is not git-ignored"


def test_lab_opens_the_first_lesson_on_the_project_kernel(tmp_path):
    (tmp_path / "02-b.ipynb").touch()
    (tmp_path / "01-a.ipynb").touch()
    command = lab_command(tmp_path, 8899, ["--no-browser"])
    assert command[1:3] == ["-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={tmp_path}" in command
    assert "--ServerApp.port=8899" in command
    assert "--LabApp.default_url=/lab/tree/01-a.ipynb" in command
    assert f"--MappingKernelManager.default_kernel_name={KERNEL}" in command
    assert command[-1] == "--no-browser"


@pytest.fixture
def started(monkeypatch):
    """Run `buflesson lab` up to the point where it would start JupyterLab; the command it would run."""
    commands = []
    monkeypatch.setattr(lab, "run", lambda command: commands.append(command) or 0)
    monkeypatch.setattr(lab, "install_overrides", lambda: None)
    monkeypatch.setattr(lab, "install_kernel", lambda: None)
    return commands


def test_buflesson_lab_serves_the_working_copy_alone(course, tmp_path, started, capsys):
    mine = tmp_path / "my-lessons"
    assert cli_main(["lab", "--answers", str(course), "--dir", str(mine), "--no-browser"]) == 0
    [command] = started
    assert f"--ServerApp.root_dir={mine}" in command
    assert "--LabApp.default_url=/lab/tree/01-plain-attributes.ipynb" in command
    assert command[-1] == "--no-browser"
    assert "Made your working copy of the 2 lessons" in capsys.readouterr().out

    assert cli_main(["lab", "--answers", str(course), "--dir", str(mine), "--reset", "2"]) == 0
    assert "--LabApp.default_url=/lab/tree/02-devices.ipynb" in started[-1]
    out = capsys.readouterr().out
    assert "Reset 02-devices.ipynb to a fresh copy" in out and "backups" in out


def test_buflesson_lab_refuses_an_unknown_lesson_and_starts_nothing(course, tmp_path, started, capsys):
    assert lab.main(["--answers", str(course), "--dir", str(tmp_path / "m"), "--reset", "9"]) == 2
    assert started == [] and "no lesson '9'" in capsys.readouterr().err


def test_run_passes_on_the_exit_status_where_it_cannot_replace_the_process():
    assert lab.run([sys.executable, "-c", "raise SystemExit(3)"], replace=False) == 3


def test_the_kernel_is_registered_once_with_this_python(tmp_path):
    path = install_kernel(str(tmp_path))
    spec = json.loads(path.read_text())
    assert path == tmp_path / "share/jupyter/kernels" / KERNEL / "kernel.json"
    assert spec["display_name"] == "Python (buflesson)" and spec["argv"][0] == sys.executable
    assert "ipykernel_launcher" in spec["argv"]
    written = path.stat().st_mtime_ns
    install_kernel(str(tmp_path))
    assert path.stat().st_mtime_ns == written, "an unchanged kernel is not written again"


def test_overrides_turn_off_the_news_prompt_and_keep_other_settings(tmp_path):
    path = tmp_path / "share/jupyter/lab/settings/overrides.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"}}))
    assert install_overrides(str(tmp_path)) == path
    settings = json.loads(path.read_text())
    notification = settings["@jupyterlab/apputils-extension:notification"]
    assert notification == {"fetchNews": "false", "checkForUpdates": False}
    assert settings["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    assert OVERRIDES.items() <= settings.items()


# --- the Chinese course: `buflesson lab --lang zh`, `make lab LANG=zh` ------------------------------

ANSWERS_ZH = ROOT / "notebooks" / "zh" / "answers"


@pytest.fixture
def course_zh(tmp_path):
    """The first two Chinese answer notebooks, in a folder of their own."""
    answers = tmp_path / "course-zh"
    answers.mkdir()
    for path in lessons(ANSWERS_ZH)[:2]:
        shutil.copy(path, answers)
    return answers


def test_the_chinese_working_copy_is_its_own_git_ignored_folder_made_from_notebooks_zh(monkeypatch):
    monkeypatch.chdir(ROOT)
    assert workspace.course_answers(None, "zh") == Path("notebooks", "zh", "answers")
    assert workspace.course_answers(None) == Path("notebooks", "answers")
    folder = workspace.default_folder(ANSWERS_ZH, "zh")
    assert folder == ROOT / "my-lessons-zh" != workspace.default_folder(ANSWERS)
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "my-lessons-zh/01-plain-attributes.ipynb"], cwd=ROOT
    )
    assert ignored.returncode == 0, "my-lessons-zh/ is not git-ignored"


def test_buflesson_lab_lang_zh_opens_a_chinese_copy_with_the_chinese_interface(
    course_zh, tmp_path, started, monkeypatch
):
    settings = tmp_path / "settings-zh"
    monkeypatch.setattr(lab, "install_language_settings", lambda lang: settings)
    mine = tmp_path / "my-lessons-zh"
    assert (
        cli_main(["lab", "--lang", "zh", "--answers", str(course_zh), "--dir", str(mine), "--no-browser"])
        == 0
    )
    [command] = started
    assert f"--ServerApp.root_dir={mine}" in command
    assert f"--LabApp.app_settings_dir={settings}" in command
    assert "--LabApp.default_url=/lab/tree/01-plain-attributes.ipynb" in command
    copy = nbformat.read(mine / "01-plain-attributes.ipynb", as_version=4)
    assert copy.metadata["buflesson"]["language"] == "zh"  # what the grader reads
    assert copy.cells[0].source.startswith("# 第 1 课")
    assert any('buflesson.language("zh")' in cell.source for cell in copy.cells if cell.cell_type == "code")
    assert all(not cell.get("outputs") for cell in copy.cells)
    answers = answer_text(nbformat.read(course_zh / "01-plain-attributes.ipynb", as_version=4))
    text = (mine / "01-plain-attributes.ipynb").read_text()
    assert answers and not [line for line in answers if line.strip() and line in text.splitlines()]
    assert nbformat.sign.NotebookNotary().check_signature(copy)

    started.clear()  # English stays as it was: my-lessons/, no settings folder of its own
    assert cli_main(["lab", "--answers", str(ANSWERS), "--dir", str(tmp_path / "en"), "--no-browser"]) == 0
    assert not [part for part in started[0] if "app_settings_dir" in part]


def test_language_settings_set_the_locale_for_the_chinese_run_alone(tmp_path):
    shared = tmp_path / "share/jupyter/lab/settings"
    shared.mkdir(parents=True)
    (shared / "page_config.json").write_text('{"disabledExtensions": {"x": true}}')
    folder = lab.install_language_settings("zh", str(tmp_path))
    assert folder == shared.with_name("settings-zh")  # next to the built app, as JupyterLab needs
    settings = json.loads((folder / "overrides.json").read_text())
    assert settings["@jupyterlab/translation-extension:plugin"] == {"locale": "zh_CN"}
    assert OVERRIDES.items() <= settings.items()
    assert (folder / "page_config.json").read_text() == (shared / "page_config.json").read_text()
    english = json.loads((shared / "overrides.json").read_text())
    assert "@jupyterlab/translation-extension:plugin" not in english


def test_the_language_pack_is_installed_and_pinned():
    from importlib.metadata import version

    pinned = (ROOT / "constraints.txt").read_text().splitlines()
    assert f"jupyterlab-language-pack-zh-CN=={version('jupyterlab-language-pack-zh-CN')}" in pinned


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
@pytest.mark.parametrize(("given", "lang", "env"), [(["LANG=zh"], "zh", "C.UTF-8"), ([], "en", None)])
def test_make_lab_lang_zh_opens_the_chinese_course_under_a_valid_locale(given, lang, env, tmp_path):
    probe = tmp_path / "probe.mk"
    probe.write_text('probe:\n\t@echo "LANG=$$LANG"\n')
    environ = {"PATH": "/usr/bin:/bin", "LANG": "en_US.UTF-8"}
    run = subprocess.run(
        ["make", "-s", "-f", "Makefile", "-f", str(probe), "probe", *given],
        cwd=ROOT, env=environ, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert run.stdout.strip() == f"LANG={env or 'en_US.UTF-8'}"
    dry = subprocess.run(
        ["make", "-n", "lab", *given],
        cwd=ROOT, env=environ, capture_output=True, text=True,
    )  # fmt: skip
    assert f"buflesson lab --lang={lang} --port=8888" in dry.stdout
