"""The Python API behind the ``%nbflow`` magic: status, resume, clear, configure, snapshot."""

from __future__ import annotations

import sys
from collections.abc import MutableMapping
from typing import Any

from ._config import Config
from ._engine import Engine
from ._errors import InvalidOption
from ._resume import ResumeReport, resume_steps
from ._session import get_session
from ._snapshot import take_snapshot
from ._status import StatusTable, status_rows


def _engine() -> Engine:
    return Engine(get_session())


def _shell() -> Any:
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def _user_namespace(namespace: MutableMapping[str, Any] | None) -> tuple[MutableMapping[str, Any], Any]:
    shell = _shell()
    if namespace is not None:
        return namespace, getattr(shell, "user_ns_hidden", ())
    if shell is None:
        raise InvalidOption("Outside IPython, pass the namespace to fill, e.g. nbflow.resume(globals()).")
    return shell.user_ns, shell.user_ns_hidden


def configure(**changes: object) -> Config:
    """Change settings: ``dir`` (cache location), ``ttl`` (default TTL), ``on_change``; returns the config.

    >>> configure(ttl="6h").ttl
    21600.0
    >>> _ = configure(ttl="never")
    """
    return get_session().configure(**changes)


def status(namespace: MutableMapping[str, Any] | None = None) -> StatusTable:
    """The status table of every step; steps whose inputs changed in the namespace show as stale."""
    if namespace is None and _shell() is not None:
        namespace = _shell().user_ns
    return status_rows(_engine(), namespace)


def resume(namespace: MutableMapping[str, Any] | None = None) -> ResumeReport:
    """Restore every still-valid completed step's outputs, in run order, executing nothing."""
    target, hidden = _user_namespace(namespace)
    return resume_steps(_engine(), target, hidden)


def clear(key: str | None = None, *, all: bool = False) -> int:  # noqa: A002 - mirrors `clear --all`
    """Delete one step's checkpoint, or every checkpoint with ``all=True``; returns how many were removed."""
    if (key is None) == (not all):
        raise InvalidOption("Pass a step key, or all=True to clear every step (not both).")
    return _engine().clear(None if all else key)


def snapshot() -> dict[str, Any]:
    """A JSON-serializable snapshot: ``format_version``, ``steps``, ``execution``, ``metadata``."""
    return take_snapshot(_engine())


__all__ = ["clear", "configure", "resume", "snapshot", "status"]
