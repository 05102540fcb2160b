"""Shared fixtures: an isolated cache directory and a real IPython shell with nbflow loaded."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbflow
from nbflow._events import _subscriptions
from nbflow._session import Session, set_session


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh cache directory used by a fresh default session (``NBFLOW_DIR``)."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("NBFLOW_DIR", str(directory))
    monkeypatch.chdir(tmp_path)
    previous = set_session(None)
    yield directory
    _subscriptions.clear()  # a test's panels and subscribers must not hear the next test's steps
    current = set_session(previous)
    if current is not None:
        current.close()


class FakeClock:
    """A clock the test moves by hand, so TTL tests never sleep."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(cache_dir: Path) -> FakeClock:
    """Install a fake clock in the default session."""
    fake = FakeClock()
    set_session(Session(clock=fake))
    return fake


@pytest.fixture
def shell(cache_dir: Path) -> Iterator[object]:
    """A real IPython InteractiveShell, namespace reset, with ``%load_ext nbflow`` run."""
    from IPython.core.interactiveshell import InteractiveShell

    instance = InteractiveShell.instance()
    instance.reset(new_session=False)
    nbflow.load_ipython_extension(instance)
    yield instance
    instance.reset(new_session=False)


def restart(shell: object) -> None:
    """Simulate a kernel restart: empty namespace, fresh nbflow session on the same cache."""
    from nbflow._session import get_session

    old = get_session()
    shell.reset(new_session=False)  # type: ignore[attr-defined]
    set_session(Session(old.config, clock=old.clock))
    old.close()
    nbflow.load_ipython_extension(shell)


def run(shell: object, code: str, *, ok: bool = True) -> object:
    """Run a cell; by default assert that it succeeded."""
    result = shell.run_cell(code, store_history=True)  # type: ignore[attr-defined]
    if ok:
        assert result.success, f"cell failed: {result.error_before_exec or result.error_in_exec!r}\n{code}"
    return result


def _mount_tmpfs(path: Path, options: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode == 0


@pytest.fixture
def read_only_dir(tmp_path):
    target = tmp_path / "readonly"
    if _mount_tmpfs(target, "ro,size=1m"):
        yield target
        subprocess.run(["umount", str(target)], check=False)
    else:
        target.mkdir()
        target.chmod(0o555)
        yield target
        target.chmod(0o755)


@pytest.fixture
def tiny_disk(tmp_path):
    target = tmp_path / "tiny"
    if not _mount_tmpfs(target, "size=2m"):
        pytest.skip("needs root to mount a 2 MB tmpfs (CI runs as root)")
    yield target
    subprocess.run(["umount", "-l", str(target)], check=False)


__all__ = ["FakeClock", "restart", "run", "os"]
