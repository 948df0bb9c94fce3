"""`python -m buflesson.lab`: JupyterLab set up for the lessons (what `make lab` runs).

It opens on the first lesson, starts new notebooks on the project's kernel, and turns off
JupyterLab's first-run pop-ups through settings overrides installed into the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

KERNEL = "buflesson"  # the kernelspec `make` registers in the virtual environment
LESSONS = "[0-9][0-9]-*.ipynb"

# Admin defaults for every user of this environment; a user's own settings still win.
OVERRIDES = {
    # No "Would you like to receive official Jupyter news?" toast and no update check on start.
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    # No extension manager: it asks PyPI over the network and warns about untrusted extensions.
    "@jupyterlab/extensionmanager-extension:plugin": {"enabled": False},
}


def lessons(root: Path) -> list[Path]:
    """The student notebooks of `root`, in lesson order (`01-...`, `02-...`)."""
    return sorted(root.glob(LESSONS))


def install_overrides(prefix: str = sys.prefix) -> Path:
    """Write `OVERRIDES` into the environment's JupyterLab settings, keeping other keys there."""
    path = Path(prefix, "share", "jupyter", "lab", "settings", "overrides.json")
    current = json.loads(path.read_text()) if path.exists() else {}
    merged = current | OVERRIDES
    if merged != current:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(merged, indent=2) + "\n")
    return path


def lab_command(root: Path, port: int, extra: list[str] = ()) -> list[str]:
    """The `jupyter lab` command line serving `root`, opening its first lesson."""
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
    first = lessons(root)
    if first:
        command.append(f"--LabApp.default_url=/lab/tree/{first[0].name}")
    return command + list(extra)


def main(argv: list[str] | None = None) -> int:
    """Install the settings overrides, then replace this process with JupyterLab."""
    parser = argparse.ArgumentParser(prog="python -m buflesson.lab", description=__doc__)
    parser.add_argument("--notebooks", default="notebooks", help="folder to serve (default: notebooks)")
    parser.add_argument("--port", type=int, default=8888)
    args, extra = parser.parse_known_args(argv)
    install_overrides()
    command = lab_command(Path(args.notebooks).resolve(), args.port, extra)
    os.execv(command[0], command)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main())
