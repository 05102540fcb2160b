"""The panel in a real browser: JupyterLab 4 in headless Chromium, driven by Playwright.

A user runs two steps, restarts the kernel, opens the panel, clicks *Resume*
and keeps working. The test does the same through the page and asserts what
the page shows. Every step body appends its key to ``runs.log`` in the
notebook's folder, so the test can tell a restored step from an executed one.

Needs Debian's ``chromium`` and the ``playwright`` package (never
``playwright install``: the system Chromium is used). Missing either skips the
test, and ``NBFLOW_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure.
Screenshots go to ``$NBFLOW_ARTIFACTS`` (default ``<repo>/artifacts``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Locator

pytestmark = [pytest.mark.browser, pytest.mark.kernel]

REPO = Path(__file__).resolve().parents[1]
TOKEN = "nbflow-browser-test"  # fixed: the server only listens on 127.0.0.1
TIMEOUT_MS = 60_000  # generous: a shared 2-core machine, a cold kernel, slow CI
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    # /usr/bin/chromium's own /dev/shm check is broken on Debian 12, and CI
    # containers often have a 64 MB /dev/shm.
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
INSTALL_HINT = (
    "apt-get install chromium (Debian) and pip install playwright (or pip install -e '.[test]'); "
    "never `playwright install`: the test drives the system Chromium (set CHROMIUM to another path)"
)

CELLS = [
    "%load_ext nbflow",
    "%%step load\nopen('runs.log', 'a').write('load\\n')\nx = list(range(5))",
    "%%step total\nopen('runs.log', 'a').write('total\\n')\ntotal = sum(x)",
    "%nbflow panel",
    'print("total is", total)',
]
LOAD_EXT, PANEL, PROBE = 0, 3, 4


def _missing_tools(chromium: str) -> list[str]:
    missing = []
    if not os.access(chromium, os.X_OK):
        missing.append(f"Chromium at {chromium}")
    for module in ("playwright", "jupyterlab"):
        if importlib.util.find_spec(module) is None:
            missing.append(f"the {module} package")
    return missing


@pytest.fixture
def chromium() -> str:
    """The Chromium executable; skips (or fails under ``NBFLOW_REQUIRE_BROWSER=1``) when a tool is missing."""
    path = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    missing = _missing_tools(path)
    if missing:
        message = f"browser test needs {', '.join(missing)}: {INSTALL_HINT}"
        if os.environ.get("NBFLOW_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (NBFLOW_REQUIRE_BROWSER=1 turns this skip into a failure)")
        pytest.skip(message)
    return path


@pytest.fixture
def artifacts() -> Path:
    """Where screenshots go: ``$NBFLOW_ARTIFACTS``, else ``<repo>/artifacts`` (gitignored)."""
    directory = Path(os.environ.get("NBFLOW_ARTIFACTS") or REPO / "artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


@dataclass
class Lab:
    """A running JupyterLab server: its URL, the notebook root and the server log."""

    url: str
    root: Path
    log: Path

    def log_tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_settings(settings: Path) -> None:
    # Without this a "get notified about Jupyter news?" toast covers part of the page.
    folder = settings / "@jupyterlab" / "apputils-extension"
    folder.mkdir(parents=True)
    notification = {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}
    (folder / "notification.jupyterlab-settings").write_text(json.dumps(notification))


def _shut_down(proc: subprocess.Popen[bytes], url: str) -> None:
    try:
        # The server shuts its kernels down too.
        urllib.request.urlopen(urllib.request.Request(f"{url}/api/shutdown?token={TOKEN}", method="POST"), timeout=10)
        proc.wait(timeout=30)
    except Exception:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def lab(chromium: str, tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab on 127.0.0.1 (free port, token), rooted in a temporary folder, with isolated Jupyter dirs."""
    root, home = tmp_path / "root", tmp_path / "jupyter"
    root.mkdir()
    home.mkdir()
    _write_settings(home / "settings")
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
    )
    # The kernel inherits the server's environment: without NBFLOW_DIR the cache
    # is .nbflow/ in the kernel's cwd, the notebook's folder in the temp root.
    env.pop("NBFLOW_DIR", None)
    port = _free_port()
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        # With retries a taken port makes the server move silently to another.
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.user_settings_dir={home / 'settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
    ]  # fmt: skip
    server = Lab(f"http://127.0.0.1:{port}", root, home / "server.log")
    with server.log.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
        try:
            deadline = time.monotonic() + TIMEOUT_MS / 1000
            while True:
                if proc.poll() is not None:
                    pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{server.log_tail()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"jupyter lab did not answer on {server.url} in time:\n{server.log_tail()}")
                try:
                    urllib.request.urlopen(f"{server.url}/api/status?token={TOKEN}", timeout=2)
                    break
                except OSError:
                    time.sleep(0.2)  # polling the server's readiness, not waiting on the page
            yield server
        finally:
            _shut_down(proc, server.url)


def _write_notebook(path: Path) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}  # no kernelspec: Lab asks for one
    notebook = new_notebook(cells=[new_code_cell(source) for source in CELLS], metadata=metadata)
    nbformat.write(notebook, path)


def _runs(root: Path) -> list[str]:
    log = root / "runs.log"
    return log.read_text().split() if log.exists() else []


def test_resume_button_restores_steps_after_a_kernel_restart(lab: Lab, chromium: str, artifacts: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # expect() has its own 5 s default
    _write_notebook(lab.root / "panel.ipynb")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
        status_bar = page.locator("#jp-main-statusbar")

        def prompt(index: int) -> Locator:
            return cells.nth(index).locator(".jp-InputPrompt")

        def run_cell(index: int, count: int) -> None:
            """Select a cell in command mode, run it in place (Ctrl+Enter), and wait for its execution count."""
            prompt(index).click()
            expect(cells.nth(index)).to_have_class(re.compile(r"\bjp-mod-active\b"))
            page.keyboard.press("Control+Enter")
            expect(prompt(index)).to_have_text(f"[{count}]:")

        try:
            page.goto(f"{lab.url}/lab/tree/panel.ipynb?token={TOKEN}")
            # The toolbar's indicator can say idle before the session has its
            # kernel, and Run All then opens a "Select Kernel" dialog.
            expect(status_bar).to_contain_text("Python 3 (ipykernel) | Idle")
            expect(cells).to_have_count(len(CELLS))

            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.locator(".lm-Menu-item[data-command='runmenu:run-all']").click()
            expect(prompt(PROBE)).to_have_text(f"[{len(CELLS)}]:")
            expect(cells.nth(PROBE).locator(".jp-OutputArea-output")).to_have_text("total is 10")
            assert _runs(lab.root) == ["load", "total"]
            assert (lab.root / ".nbflow").is_dir(), "the cache belongs in the notebook's folder"

            page.locator(".lm-MenuBar-item", has_text="Kernel").first.click()
            page.locator(".lm-Menu-item[data-command='kernelmenu:restart-and-clear']").click()
            page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()
            # Outputs are cleared only once the restart returned.
            expect(page.locator(".jp-Notebook .jp-OutputArea-output")).to_have_count(0)
            expect(status_bar).to_contain_text("Python 3 (ipykernel) | Idle")

            # Execution count 1 after the restart: this is a fresh kernel.
            run_cell(LOAD_EXT, 1)
            run_cell(PANEL, 2)
            panel = page.locator(".nbflow-panel")
            expect(panel).to_have_count(1)
            expect(panel).to_be_visible()
            state = {key: panel.locator(f"table.nbflow-steps tr[data-key='{key}'] td.nbflow-state") for key in ("load", "total")}
            for cell in state.values():
                expect(cell).to_have_text("completed")
                expect(cell).to_have_class(re.compile(r"\bnbflow-state-completed\b"))

            resume = panel.locator("button.nbflow-resume")
            expect(resume).to_have_text("Resume")
            resume.click()
            for cell in state.values():
                expect(cell).to_have_text("restored")
                expect(cell).to_have_class(re.compile(r"\bnbflow-state-restored\b"))
            expect(panel.locator(".nbflow-message")).to_contain_text("resumed 2 step(s)")
            panel.screenshot(path=str(artifacts / "browser-panel.png"))

            run_cell(PROBE, 3)
            expect(cells.nth(PROBE).locator(".jp-OutputArea-output")).to_have_text("total is 10")
            assert _runs(lab.root) == ["load", "total"], "a step re-executed instead of being restored"
            page.screenshot(path=str(artifacts / "browser-page.png"), full_page=True)
        except BaseException:
            page.screenshot(path=str(artifacts / "failure.png"), full_page=True)
            print(f"--- jupyter server log (tail) ---\n{lab.log_tail()}")
            raise
        finally:
            # Before the server shuts down: a page still connecting logs 500s.
            browser.close()
