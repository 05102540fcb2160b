"""The current session: settings, the open store, and the clock."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _disk_store  # noqa: F401  (registers the file:// backend)
from ._config import Config
from ._errors import StoreError
from ._events import Activity
from ._store import Store, open_store

EXECUTION_KEY = "__execution__"


@dataclass
class Position:
    """Where this process's namespace stands in the version tree (versions are shared; a position is not)."""

    head: str | None = None
    """The version the namespace's step-produced names were last known to match."""
    names: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Step-produced name -> its entry (blob, fingerprint, type, size, summary) as the last step left it."""
    base: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The names at ``head`` (kept so that a step never walks the version tree)."""
    next_number: int = 0
    """Where to start looking for a free version id (0: not known yet)."""


class Session:
    """Settings plus a lazily opened store; one per process by default (`get_session`)."""

    def __init__(self, config: Config | None = None, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config or Config()
        self.clock = clock
        self._store: Store | None = None
        self._opened_for = ""
        self.position = Position()
        self.activity = Activity()

    @property
    def store(self) -> Store:
        """The open store for ``config.dir``; raises `StoreError` if it cannot be opened."""
        if self._store is None or self._opened_for != self.config.dir:
            self.close()
            if self._opened_for and self._opened_for != self.config.dir:
                self.position = Position()  # another cache: another version tree
                self.activity = Activity()
            self._store = open_store(self.config.dir)
            self._opened_for = self.config.dir
        return self._store

    def configure(self, **changes: object) -> Config:
        """Change settings (``dir``, ``ttl``, ``on_change``) and return the new config."""
        self.config = self.config.updated(**changes)
        return self.config

    def close(self) -> None:
        """Close the store; it reopens on next use."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def records(self) -> list[dict[str, Any]]:
        """Every step record, oldest run first; unreadable records are skipped."""
        store = self.store
        found = []
        for key in store.list_records():
            if key.startswith("__"):
                continue
            record = load_record(store, key)
            if record is not None:
                found.append(record)
        # used_at is the wall clock when a step last ran or was restored: the true run
        # order, even under a test clock.
        return sorted(found, key=lambda record: (record.get("used_at") or 0.0, record.get("finished_at") or 0.0))

    def execution(self) -> dict[str, Any]:
        """The last known execution state: state, last update, current step."""
        try:
            data = self.store.load_record(EXECUTION_KEY)
        except StoreError:
            data = None
        if not data:
            return {"state": "idle", "updated_at": None, "current_step": None}
        execution: dict[str, Any] = json.loads(data)
        return execution

    def set_execution(self, state: str, key: str | None) -> None:
        """Record what this process is doing; losing this write loses nothing else."""
        payload = {"state": state, "updated_at": self.clock(), "current_step": key}
        with contextlib.suppress(StoreError):
            self.store.save_record(EXECUTION_KEY, json.dumps(payload).encode())


def load_record(store: Store, key: str) -> dict[str, Any] | None:
    """Load and decode one record; a damaged record reads as missing."""
    data = store.load_record(key)
    if data is None:
        return None
    try:
        record = json.loads(data)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


_session: Session | None = None


def get_session() -> Session:
    """The process's default session, created on first use."""
    global _session
    if _session is None:
        _session = Session()
    return _session


def set_session(session: Session | None) -> Session | None:
    """Replace the default session (tests, embedding); returns the previous one."""
    global _session
    previous, _session = _session, session
    return previous
