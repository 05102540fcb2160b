"""nbflow: keyed notebook steps checkpointed on disk; restart the kernel, lose nothing.

Glossary (used exactly, in code and docs):

- *step*: a cell (``%%step KEY``) or function (``@step``) whose results nbflow checkpoints.
- *key*: a step's name in the store, possibly a template like ``fit:{alpha}``.
- *fingerprint*: a content hash of a value, stable across kernel restarts.
- *checkpoint*: the saved outputs of one successful run of a step, with its record.
- *snapshot*: a JSON-serializable picture of every step and the execution.
- *store*: where records and blobs live (`Store`; default `DiskStore` in ``.nbflow/``).
- *blob*: one saved value, stored once under the hash of its content.
- *version*: the namespace after an executed step, stored as what changed against its parent version.
- *event*: a `StepEvent` told to `subscribe`d callbacks when a step starts, completes, is restored, fails or is skipped.
- *panel*: the ipywidgets view of steps, versions and diffs, with one-click resume (`panel`, ``%nbflow panel``).
- *bundle*: one file holding a cache's steps, versions and the blobs they need (`export_state`).
"""

from __future__ import annotations

from typing import Any

from ._api import clear, configure, diff, export_state, gc, import_state, panel, resolve, resume, snapshot, status, versions
from ._config import Config
from ._decorator import step
from ._disk_store import DiskStore
from ._errors import CorruptBlob, InvalidKey, InvalidOption, InvalidTTL, NbflowError, NbflowWarning, SnapshotFormatError, StoreError
from ._events import EVENT_KINDS, StepEvent, subscribe
from ._snapshot import assert_valid_snapshot, is_step_complete, merge_snapshots, validate_snapshot
from ._store import Store, open_store, register_store

__version__ = "0.1.0"


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext nbflow``: register ``%%step`` and ``%nbflow``."""
    from ._magics import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell: Any) -> None:
    """``%unload_ext nbflow``: remove the magics."""
    from ._magics import unload_ipython_extension as unload

    unload(shell)


__all__ = [
    "Config",
    "CorruptBlob",
    "DiskStore",
    "EVENT_KINDS",
    "InvalidKey",
    "InvalidOption",
    "InvalidTTL",
    "NbflowError",
    "NbflowWarning",
    "SnapshotFormatError",
    "Store",
    "StepEvent",
    "StoreError",
    "__version__",
    "assert_valid_snapshot",
    "clear",
    "configure",
    "diff",
    "export_state",
    "gc",
    "import_state",
    "is_step_complete",
    "load_ipython_extension",
    "merge_snapshots",
    "open_store",
    "panel",
    "register_store",
    "resolve",
    "resume",
    "snapshot",
    "status",
    "step",
    "subscribe",
    "unload_ipython_extension",
    "validate_snapshot",
    "versions",
]
