"""Shared fixtures: an isolated cache directory and a real IPython shell with nbflow loaded."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbflow
from nbflow._session import Session, set_session


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh cache directory used by a fresh default session (``NBFLOW_DIR``)."""
    directory = tmp_path / "cache"
    monkeypatch.setenv("NBFLOW_DIR", str(directory))
    monkeypatch.chdir(tmp_path)
    previous = set_session(None)
    yield directory
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


__all__ = ["FakeClock", "restart", "run", "os"]
