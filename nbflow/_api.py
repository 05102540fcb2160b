"""The Python API behind the ``%nbflow`` magic: status, resume, clear, configure, snapshot, versions and bundles."""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from ._bundle import ExportReport, ImportReport
from ._bundle import export_state as _export
from ._bundle import import_state as _import
from ._config import Config
from ._engine import Engine
from ._errors import InvalidOption, NbflowError
from ._gc import GcReport, collect
from ._history import Diff, VersionTable, diff_versions, resolve_values, version_table
from ._resume import ResumeReport, resume_steps
from ._session import get_session
from ._snapshot import Snapshot, take_snapshot
from ._status import status_rows
from ._steps_table import StepsTable
from ._travel import TravelReport, resume_version

if TYPE_CHECKING:
    from ._panel import Panel


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


def status(namespace: MutableMapping[str, Any] | None = None) -> StepsTable:
    """The status table of every step; steps whose inputs changed in the namespace show as stale."""
    if namespace is None and _shell() is not None:
        namespace = _shell().user_ns
    return status_rows(_engine(), namespace)


def resume(
    version: str | MutableMapping[str, Any] | None = None, namespace: MutableMapping[str, Any] | None = None
) -> ResumeReport | TravelReport:
    """Restore every still-valid completed step's outputs in run order, executing nothing; or go to a version.

    ``resume()`` continues after a restart. ``resume("v3")`` makes the namespace
    what it was at v3: names steps produced get their v3 values, names steps
    made after v3 are removed, other variables are left alone; steps run next
    branch from v3. Outside IPython pass the namespace: ``resume(namespace=globals())``
    (or ``resume(globals())``).
    """
    if version is not None and not isinstance(version, str):
        version, namespace = None, version
    target, hidden = _user_namespace(namespace)
    if version is not None:
        return resume_version(_engine(), version, target, hidden)
    return resume_steps(_engine(), target, hidden)


def versions() -> VersionTable:
    """Every version as a tree-ordered table (id, parent, step, time, names changed, bytes added)."""
    return version_table(_engine())


def resolve(version: str) -> dict[str, Any]:
    """The full namespace of step-produced names at ``version`` (e.g. ``"v3"``), read from the cache."""
    return resolve_values(_engine(), version)


def diff(a: str | None = None, b: str | None = None) -> Diff:
    """What differs between versions ``a`` and ``b``: added, removed and changed names with summaries.

    ``diff()`` compares the current version with its parent; ``diff("v3")`` v3
    with its parent; ``diff("v2", "v5")`` v2 with v5.
    """
    return diff_versions(_engine(), a, b)


def gc(keep_last: int | None = None, *, drop_expired: bool = False) -> GcReport:
    """Delete the blobs no step or kept version needs; ``keep_last=N`` first drops all but the newest N versions."""
    return collect(_engine(), keep_last, drop_expired)


def export_state(path: str | os.PathLike[str]) -> ExportReport:
    """Write every step, version and the values they need to one bundle file, to import elsewhere."""
    return _export(_engine(), path)


def import_state(path: str | os.PathLike[str]) -> ImportReport:
    """Load a bundle written by `export_state` into this cache; then `resume` restores its steps.

    Only import bundles you trust: restoring a value unpickles it.
    """
    return _import(_engine(), path)


def clear(key: str | None = None, *, all: bool = False) -> int:  # noqa: A002 - mirrors `clear --all`
    """Delete one step's checkpoint, or every checkpoint with ``all=True``; returns how many were removed."""
    if (key is None) == (not all):
        raise InvalidOption("Pass a step key, or all=True to clear every step (not both).")
    return _engine().clear(None if all else key)


def snapshot() -> Snapshot:
    """A JSON-serializable snapshot (a dict): ``format_version``, ``steps``, ``versions``, ``blobs``, ``execution``, ``metadata``.

    It prints as the steps table, and renders as an HTML table in notebooks.
    """
    return take_snapshot(_engine())


def panel(namespace: MutableMapping[str, Any] | None = None, *, page_size: int = 25) -> Panel:
    """The snapshot browser: steps, versions and diffs with Resume, Resume to a version, Clear and Refresh.

    Display it as a cell's last expression. It follows the steps this kernel runs.
    ``page_size`` rows are shown per page of steps or versions (1-500).
    """
    target, hidden = _user_namespace(namespace)
    try:
        from ._panel import Panel
    except ImportError as exc:
        raise NbflowError(f"The panel needs ipywidgets ({exc}); install it with: pip install ipywidgets") from exc
    shell = _shell()
    follows_cells = shell is not None and target is shell.user_ns
    return Panel(_engine(), target, hidden, shell=shell if follows_cells else None, page_size=page_size)


__all__ = [
    "clear",
    "configure",
    "diff",
    "export_state",
    "gc",
    "import_state",
    "panel",
    "resolve",
    "resume",
    "snapshot",
    "status",
    "versions",
]
