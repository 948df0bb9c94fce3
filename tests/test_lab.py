"""`make lab`'s command line and the JupyterLab settings it installs."""

import json

from buflesson.lab import KERNEL, OVERRIDES, install_overrides, lab_command, lessons


def test_lessons_are_the_numbered_notebooks_in_order(tmp_path):
    for name in ["10-last.ipynb", "02-b.ipynb", "01-a.ipynb", "notes.ipynb", "02-b.py"]:
        (tmp_path / name).touch()
    assert [path.name for path in lessons(tmp_path)] == ["01-a.ipynb", "02-b.ipynb", "10-last.ipynb"]


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
