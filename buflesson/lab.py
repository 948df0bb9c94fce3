"""`buflesson lab` (and `make lab`): JupyterLab on the student's own working copy of the lessons.

It copies the handout into `my-lessons/` (buflesson.workspace: made on first run, never overwritten),
registers the project's kernel "Python (buflesson)" (buflesson.kernel) if it is missing, turns off
JupyterLab's first-run pop-ups through settings overrides installed into the environment, and starts
JupyterLab on that folder alone, opening lesson 1. It works the same on every OS, with or without make.

`--lang zh` opens the Chinese course instead: its own working copy `my-lessons-zh/` (from
notebooks/zh/answers) and JupyterLab's interface in Chinese (the pinned language pack
jupyterlab-language-pack-zh-CN). The locale is set for that run alone: JupyterLab reads its admin
defaults from a settings folder of the environment made for the language (`settings-zh/`), so the
user's own settings are not touched, and a locale a user chose there still wins.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from buflesson import kernel, workspace

KERNEL = kernel.KERNEL_NAME  # the kernelspec registered in the virtual environment
lessons = workspace.lessons

# Admin defaults for every user of this environment; a user's own settings still win.
OVERRIDES = {
    # No "Would you like to receive official Jupyter news?" toast and no update check on start.
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    # No extension manager: it asks PyPI over the network and warns about untrusted extensions.
    "@jupyterlab/extensionmanager-extension:plugin": {"enabled": False},
}
# JupyterLab's locale for the course in each language other than English (its language pack is pinned).
LAB_LOCALES = {"zh": "zh_CN"}
TRANSLATION_PLUGIN = "@jupyterlab/translation-extension:plugin"


def install_overrides(prefix: str = sys.prefix) -> Path:
    """Write `OVERRIDES` into the environment's JupyterLab settings, keeping other keys there."""
    path = Path(prefix, "share", "jupyter", "lab", "settings", "overrides.json")
    current = json.loads(path.read_text()) if path.exists() else {}
    merged = current | OVERRIDES
    if merged != current:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(merged, indent=2) + "\n")
    return path


def install_language_settings(lang: str, prefix: str = sys.prefix) -> Path:
    """The settings folder JupyterLab reads for the course in `lang` (`--LabApp.app_settings_dir`):
    a sibling of the environment's own (`share/jupyter/lab/settings-zh/`, since JupyterLab finds its
    built files next to it), holding the environment's overrides plus the locale, and its
    page_config.json if it has one. Nothing outside the environment is written."""
    shared = install_overrides(prefix).parent
    folder = shared.with_name(f"{shared.name}-{lang}")
    folder.mkdir(parents=True, exist_ok=True)
    overrides = json.loads((shared / "overrides.json").read_text())
    overrides[TRANSLATION_PLUGIN] = overrides.get(TRANSLATION_PLUGIN, {}) | {"locale": LAB_LOCALES[lang]}
    text = json.dumps(overrides, indent=2) + "\n"
    path = folder / "overrides.json"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    page_config = shared / "page_config.json"
    if page_config.exists():
        (folder / page_config.name).write_text(page_config.read_text())
    return folder


def install_kernel(prefix: str = sys.prefix) -> Path:
    """Register the project's kernel (buflesson.kernel) unless it is already there for this Python."""
    path = Path(prefix, "share", "jupyter", "kernels", KERNEL, "kernel.json")
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        spec = {}
    argv = spec.get("argv", [])
    if (
        argv[:1] != [sys.executable]
        or kernel.EXTENSION_ARGUMENT not in argv
        or spec.get("display_name") != kernel.DISPLAY_NAME
    ):
        kernel.install_kernelspec(prefix)
    return path


def lab_command(
    root: Path, port: int, extra: list[str] = (), first: Path | None = None, settings: Path | None = None
) -> list[str]:
    """The `jupyter lab` command line serving `root` alone and opening `first` (default: lesson 1);
    with `settings`, JupyterLab's admin settings come from that folder (`install_language_settings`)."""
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.port={port}",
        f"--MappingKernelManager.default_kernel_name={KERNEL}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")  # containers and CI machines run as root
    if settings is not None:
        command.append(f"--LabApp.app_settings_dir={settings}")
    if first is None:
        first = next(iter(lessons(root)), None)
    if first is not None:
        command.append(f"--LabApp.default_url=/lab/tree/{Path(first).relative_to(root).as_posix()}")
    return command + list(extra)


def _say(text: str) -> None:
    print(text, flush=True)


def _report(sync: workspace.SyncReport, shown: Path) -> None:
    if sync.added and not sync.kept:
        _say(f"Made your working copy of the {len(sync.added)} lessons in {shown}/ (no outputs, no answers).")
    elif sync.added:
        names = ", ".join(path.name for path in sync.added)
        _say(f"New lessons copied into {shown}/: {names}.")
    for path in sync.updated_in_course:
        _say(
            f"{path.stem} has changed in the course since your copy was made; your copy is kept. "
            f"For the new version: buflesson lab --reset {path.name[:2]} "
            f"(your copy goes to {workspace.BACKUPS}/)."
        )


def run(command: list[str], replace: bool = os.name == "posix") -> int:
    """Replace this process with `command` (POSIX), or run it and pass on its exit status (Windows)."""
    sys.stdout.flush()
    if replace:
        os.execv(command[0], command)
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 130


def parser() -> argparse.ArgumentParser:
    """The options of `buflesson lab`; anything else is passed on to `jupyter lab`."""
    lab = argparse.ArgumentParser(
        prog="buflesson lab",
        description="Open your own copy of the lessons in JupyterLab. Other options go to jupyter lab.",
    )
    lab.add_argument(
        "--lang",
        choices=sorted(workspace.WORKSPACES),
        default="en",
        help="the course's language: en (default) or zh (Simplified Chinese, in my-lessons-zh/, "
        "with JupyterLab in Chinese)",
    )
    lab.add_argument(
        "--dir",
        help=f"your working copy (default: {workspace.WORKSPACE}/ next to notebooks/; "
        f"{workspace.WORKSPACES['zh']}/ with --lang zh)",
    )
    lab.add_argument(
        "--answers", help="the course's answer notebooks (default: notebooks/answers; notebooks/zh/answers)"
    )
    lab.add_argument("--port", type=int, default=8888, help="first port to try (default 8888)")
    lab.add_argument(
        "--reset",
        metavar="LESSON",
        action="append",
        default=[],
        help="replace one lesson (e.g. 05) with a fresh copy first; yours is kept in backups/",
    )
    lab.add_argument("--serve", metavar="FOLDER", help="maintainers: serve FOLDER as it is, no working copy")
    return lab


def main(argv: list[str] | None = None) -> int:
    """Prepare the working copy, then run JupyterLab on it."""
    args, extra = parser().parse_known_args(argv)
    answers = workspace.course_answers(args.answers, args.lang)
    first = None
    if args.serve:
        root = Path(args.serve).resolve()
    else:
        root = Path(args.dir).resolve() if args.dir else workspace.default_folder(answers, args.lang)
        shown = os.path.relpath(root) if root.is_relative_to(Path.cwd()) else str(root)
        try:
            for which in args.reset:
                fresh, backup = workspace.reset(answers, root, which)
                kept = f"; your copy is now {os.path.relpath(backup, root)}" if backup else ""
                _say(f"Reset {fresh.name} to a fresh copy{kept}.")
            sync = workspace.sync(answers, root)
        except (OSError, ValueError) as error:
            print(f"buflesson lab: {error}", file=sys.stderr)
            return 2
        _report(sync, shown)
        if args.reset:
            first = root / workspace.find_lesson(answers, args.reset[-1]).name
        _say(f"Opening JupyterLab on {shown}/ (your work is saved there). Stop it with Ctrl+C.")
    install_overrides()
    settings = install_language_settings(args.lang) if args.lang in LAB_LOCALES else None
    install_kernel()
    return run(lab_command(root, args.port, extra, first, settings))


if __name__ == "__main__":
    sys.exit(main())
