"""End-to-end fixtures: the lessons served by `buflesson lab` and driven in Chromium.

`make test-e2e` sets BUFLESSON_E2E=1; without it (as in `make test`) these tests are skipped.
`lab` is what a student gets: `buflesson lab` making a working copy of the course in a temporary
folder and serving it. `answers_lab` serves a temporary copy of the answer notebooks (`--serve`),
for the maintainers' view. Nothing a test does reaches the committed notebooks, and JupyterLab
keeps its settings, workspaces and notebook signatures in temporary folders.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from lab_ui import ANSWERS, ANSWERS_ZH, ARTIFACTS

CHROMIUM = os.environ.get("BUFLESSON_CHROMIUM", "/usr/bin/chromium")
# Headless Chromium on a closed network: no sandbox as root, and no calls home at start.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_TIMEOUT = 120
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("BUFLESSON_E2E") == "1":
        return
    skip = pytest.mark.skip(reason="end-to-end test: run `make test-e2e`")
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabServer:
    """A running JupyterLab: its address, token and the folder it serves."""

    def __init__(self, root: Path, port: int, token: str) -> None:
        self.root = root
        self.url = f"http://127.0.0.1:{port}"
        self.token = token

    def api(self, path: str, method: str = "GET") -> object:
        """Call the server's REST API; the parsed JSON answer, or None for an empty one."""
        request = urllib.request.Request(
            f"{self.url}/api/{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def page_url(self, relpath: str) -> str:
        """Open `relpath` in a fresh workspace (`reset`), logged in by the token."""
        return f"{self.url}/lab/tree/{relpath}?reset&token={self.token}"

    def sessions(self, relpath: str) -> list[dict]:
        return [s for s in self.api("sessions") if s.get("path") == relpath]

    def shut_down(self, relpath: str) -> None:
        """Stop the kernels of the notebook `relpath`."""
        for session in self.sessions(relpath):
            self.api(f"sessions/{session['id']}", method="DELETE")


def _stop(process: subprocess.Popen, server: LabServer) -> None:
    """Shut down every kernel, then the server's process group: SIGTERM, and SIGKILL if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(OSError):
            for kernel in server.api("kernels"):
                server.api(f"kernels/{kernel['id']}", method="DELETE")
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _start(base: Path, name: str, root: Path, options: list[str]):
    """Start `buflesson lab OPTIONS` on a free loopback port with a token; yield its LabServer."""
    env = os.environ | {
        "JUPYTERLAB_SETTINGS_DIR": str(base / "user-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "PYTHONHASHSEED": "0",
    }
    env.pop("MPLBACKEND", None)  # Agg would suppress the inline figures
    port, token = _free_port(), secrets.token_hex(16)
    command = [
        str(Path(sys.executable).with_name("buflesson")),  # the command a student runs
        "lab",
        *options,
        f"--port={port}",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / f"{name}.log", "wb") as log:
        process = subprocess.Popen(
            command, cwd=base, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = LabServer(root, port, token)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {process.returncode}; see {ARTIFACTS}/{name}.log")
            try:
                server.api("status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not answer in {SERVER_START_TIMEOUT} s") from None
                time.sleep(0.5)
        yield server
    finally:
        _stop(process, server)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory):
    """What a student gets: `buflesson lab` on its own working copy of the course (my-lessons/)."""
    base = tmp_path_factory.mktemp("lab")
    mine = base / "my-lessons"
    yield from _start(base, "lab", mine, [f"--answers={ANSWERS}", f"--dir={mine}"])


@pytest.fixture(scope="session")
def answers_lab(tmp_path_factory: pytest.TempPathFactory):
    """The answer notebooks, served as they are (`buflesson lab --serve`) from a temporary copy."""
    base = tmp_path_factory.mktemp("answers-lab")
    root = base / "answers"
    shutil.copytree(ANSWERS, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    yield from _start(base, "answers-lab", root, [f"--serve={root}"])


@pytest.fixture(scope="session")
def lab_zh(tmp_path_factory: pytest.TempPathFactory):
    """The Chinese course as a student gets it: `buflesson lab --lang zh` on its own my-lessons-zh/."""
    base = tmp_path_factory.mktemp("lab-zh")
    mine = base / "my-lessons-zh"
    yield from _start(base, "lab-zh", mine, ["--lang=zh", f"--answers={ANSWERS_ZH}", f"--dir={mine}"])


@pytest.fixture(scope="session")
def answers_lab_zh(tmp_path_factory: pytest.TempPathFactory):
    """The Chinese answer notebooks, served as they are, in JupyterLab's Chinese interface."""
    base = tmp_path_factory.mktemp("answers-lab-zh")
    root = base / "answers"
    shutil.copytree(ANSWERS_ZH, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    yield from _start(base, "answers-lab-zh", root, ["--lang=zh", f"--serve={root}"])


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-e2e` installs Debian's chromium package")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser tab of desktop size; closed after the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    try:
        yield context.new_page()
    finally:
        context.close()
