"""Snapshots: a JSON-serializable picture of every step and the execution, plus their validator."""

from __future__ import annotations

import copy
import html
import platform
from collections.abc import Mapping
from typing import Any

from ._engine import Engine, is_expired
from ._errors import SnapshotFormatError
from ._steps_table import StepsTable, step_row
from ._versions import load_versions

# Increment on snapshot format changes. Format 1 had no versions and no blobs.
SNAPSHOT_FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
STEP_STATES = ("completed", "failed", "incomplete", "expired")
EXECUTION_STATES = ("idle", "running", "failed")


class Snapshot(dict[str, Any]):
    """A snapshot: a plain JSON-serializable dict that also prints as the steps table, as text and as HTML.

    The HTML keeps a saved notebook readable on GitHub or nbviewer, where widgets do not run.
    """

    def table(self) -> StepsTable:
        """The steps table of this snapshot (as of when it was taken)."""
        now = float((self.get("metadata") or {}).get("created_at") or 0.0)
        steps = self.get("steps") or {}
        return StepsTable([step_row(key, entry, now) for key, entry in steps.items()], str((self.get("metadata") or {}).get("store", "")))

    def _summary(self) -> str:
        steps = self.get("steps") or {}
        execution = self.get("execution") or {}
        current = f" ({execution.get('current_step')})" if execution.get("state") != "idle" and execution.get("current_step") else ""
        return (
            f"nbflow snapshot: {len(steps)} step(s), {len(self.get('versions') or {})} version(s)"
            f" · execution {execution.get('state', '?')}{current} · {(self.get('metadata') or {}).get('store', '')}"
        )

    def __repr__(self) -> str:
        return f"{self._summary()}\n{self.table()}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))

    def _repr_html_(self) -> str:
        return f"<p><b>{html.escape(self._summary())}</b></p>{self.table().to_html()}"


def step_entry(record: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A step record as the snapshot describes it; a completed step past its TTL reads as expired."""
    state = record.get("state", "failed")
    ttl = record.get("ttl")
    if state == "completed" and is_expired(record, ttl, now):
        state = "expired"
    entry = {
        "state": state,
        "kind": record.get("kind", "cell"),
        "outputs": {
            name: {
                "type": meta.get("type"),
                "size": int(meta.get("size") or 0),
                **({"blob": meta["blob"]} if meta.get("blob") else {}),
                **({"alias_of": meta["alias_of"]} if meta.get("alias_of") else {}),
            }
            for name, meta in sorted((record.get("outputs") or {}).items())
        },
        "started_at": record.get("started_at"),
        "finished_at": record.get("finished_at"),
        "duration": record.get("duration"),
        "ttl": ttl,
        "expires_at": None if ttl is None or record.get("finished_at") is None else record["finished_at"] + ttl,
        "code_hash": record.get("code_hash"),
        "error": record.get("error"),
        "version": record.get("version"),
    }
    if record.get("unsaved"):
        entry["unsaved"] = dict(record["unsaved"])
    return entry


def take_snapshot(engine: Engine) -> Snapshot:
    """Build the snapshot of the session's cache."""
    from . import __version__

    now = engine.session.clock()
    steps: dict[str, Any] = {}
    blobs: dict[str, int] = {}
    for record in engine.session.records():
        for meta in (record.get("outputs") or {}).values():
            if meta.get("blob") and not meta.get("alias_of"):
                blobs[meta["blob"]] = int(meta.get("size") or 0)
        steps[record["key"]] = step_entry(record, now)
    versions: dict[str, Any] = {}
    for version in load_versions(engine.session.store).values():
        for entry in version.changes.values():
            if entry.get("blob") and not entry.get("alias_of"):
                blobs.setdefault(entry["blob"], int(entry.get("size") or 0))
        versions[version.id] = {
            "parent": version.parent,
            "step": version.step,
            "created_at": version.created_at,
            "added": version.added,
            "changed": version.changed,
            "removed": version.removed,
            "bytes_added": version.bytes_added,
            "changes": {
                name: {"blob": entry.get("blob"), "type": entry.get("type"), "size": int(entry.get("size") or 0)}
                for name, entry in version.changes.items()
            },
        }
    return Snapshot(
        {
            "format_version": SNAPSHOT_FORMAT_VERSION,
            "steps": steps,
            "versions": versions,
            "blobs": blobs,
            "execution": engine.session.execution(),
            "metadata": {
                "nbflow_version": __version__,
                "store": engine.session.store.location,
                "created_at": now,
                "python": platform.python_version(),
            },
        }
    )


def validate_snapshot(snapshot: object) -> list[str]:
    """Return every way ``snapshot`` breaks the snapshot format; an empty list means valid."""
    if not isinstance(snapshot, Mapping):
        return [f"a snapshot must be a dict (got {type(snapshot).__name__})"]
    problems = []
    version = snapshot.get("format_version")
    required = ["format_version", "steps", "execution", "metadata"] + (["versions", "blobs"] if version != 1 else [])
    for name in required:
        if name not in snapshot:
            problems.append(f"missing {name!r}")
    if "format_version" in snapshot and version not in READABLE_FORMATS:
        problems.append(f"'format_version' is {version!r}; this nbflow reads {', '.join(map(str, READABLE_FORMATS))}")
    steps = snapshot.get("steps", {})
    if not isinstance(steps, Mapping):
        problems.append("'steps' must be a dict of key -> step")
        steps = {}
    for key, step in steps.items():
        problems.extend(f"step {key!r}: {problem}" for problem in _step_problems(step))
    execution = snapshot.get("execution", {})
    if not isinstance(execution, Mapping):
        problems.append("'execution' must be a dict")
    else:
        if "execution" in snapshot and execution.get("state") not in EXECUTION_STATES:
            problems.append(f"'execution.state' must be one of {', '.join(EXECUTION_STATES)} (got {execution.get('state')!r})")
        current = execution.get("current_step")
        if current is not None and not isinstance(current, str):
            problems.append("'execution.current_step' must be a step key or null")
        if not _is_time(execution.get("updated_at")):
            problems.append("'execution.updated_at' must be a timestamp or null")
    if "metadata" in snapshot and not isinstance(snapshot.get("metadata"), Mapping):
        problems.append("'metadata' must be a dict")
    if "versions" in snapshot or "blobs" in snapshot:
        problems.extend(_version_problems(snapshot.get("versions", {}), snapshot.get("blobs", {}), steps))
    return problems


def _version_problems(versions: object, blobs: object, steps: Mapping[str, Any]) -> list[str]:
    """Dangling parents, unknown blobs and parent cycles in a snapshot's versions."""
    if not isinstance(blobs, Mapping) or not all(isinstance(size, int) for size in blobs.values()):
        return ["'blobs' must be a dict of blob id -> size"]
    if not isinstance(versions, Mapping):
        return ["'versions' must be a dict of version id -> version"]
    problems = []
    for key, step in steps.items():
        if not isinstance(step, Mapping):
            continue  # reported by _step_problems
        outputs = step.get("outputs")
        for name, meta in outputs.items() if isinstance(outputs, Mapping) else ():
            if isinstance(meta, Mapping) and meta.get("blob") is not None and meta["blob"] not in blobs:
                problems.append(f"step {key!r}: output {name!r} points to unknown blob {meta['blob']!r}")
        # A step's version may have been collected by gc: not a problem, but it must be an id.
        if step.get("version") is not None and not isinstance(step["version"], str):
            problems.append(f"step {key!r}: 'version' must be a version id or null")
    for version_id, version in versions.items():
        where = f"version {version_id!r}"
        if not isinstance(version, Mapping):
            problems.append(f"{where}: must be a dict")
            continue
        parent = version.get("parent")
        if parent is not None and parent not in versions:
            problems.append(f"{where}: parent {parent!r} is not in the snapshot (dangling parent)")
        if not isinstance(version.get("step"), str):
            problems.append(f"{where}: 'step' must be the step key that made it")
        if not _is_time(version.get("created_at")):
            problems.append(f"{where}: 'created_at' must be a timestamp")
        changes = version.get("changes")
        if not isinstance(changes, Mapping):
            problems.append(f"{where}: 'changes' must be a dict of name -> {{blob, type, size}}")
            continue
        for name, entry in changes.items():
            if not isinstance(entry, Mapping) or not isinstance(entry.get("blob"), str):
                problems.append(f"{where}: name {name!r} needs a 'blob' id")
            elif entry["blob"] not in blobs:
                problems.append(f"{where}: name {name!r} points to unknown blob {entry['blob']!r}")
        if not isinstance(version.get("removed", []), list):
            problems.append(f"{where}: 'removed' must be a list of names")
    problems.extend(_cycles(versions))
    return problems


def _cycles(versions: Mapping[str, Any]) -> list[str]:
    problems = []
    reported: set[str] = set()
    for start in versions:
        seen: list[str] = []
        current: Any = start
        while isinstance(current, str) and current in versions and current not in seen:
            seen.append(current)
            parent = versions[current]
            current = parent.get("parent") if isinstance(parent, Mapping) else None
        if isinstance(current, str) and current in seen:
            loop = seen[seen.index(current) :]
            if not reported & set(loop):
                reported.update(loop)
                problems.append(f"versions {' -> '.join([*loop, current])} form a parent cycle")
    return problems


def merge_snapshots(base: Mapping[str, Any], delta: Mapping[str, Any]) -> Snapshot:
    """Merge two valid snapshots: delta's steps and versions win, execution is delta's, metadata is merged.

    Raises `SnapshotFormatError` if either input, or the result, is invalid.
    """
    assert_valid_snapshot(base)
    assert_valid_snapshot(delta)
    merged = copy.deepcopy(
        {
            "format_version": SNAPSHOT_FORMAT_VERSION,
            "steps": {**base["steps"], **delta["steps"]},
            "versions": {**base.get("versions", {}), **delta.get("versions", {})},
            "blobs": {**base.get("blobs", {}), **delta.get("blobs", {})},
            "execution": delta["execution"],
            "metadata": {**base["metadata"], **delta["metadata"]},
        }
    )
    assert_valid_snapshot(merged)
    return Snapshot(merged)


def _step_problems(step: object) -> list[str]:
    if not isinstance(step, Mapping):
        return ["must be a dict"]
    problems = []
    if step.get("state") not in STEP_STATES:
        problems.append(f"'state' must be one of {', '.join(STEP_STATES)} (got {step.get('state')!r})")
    outputs = step.get("outputs")
    if not isinstance(outputs, Mapping):
        problems.append("'outputs' must be a dict of name -> {type, size}")
    else:
        for name, meta in outputs.items():
            if not isinstance(meta, Mapping) or not isinstance(meta.get("size"), int) or not isinstance(meta.get("type"), str):
                problems.append(f"output {name!r} needs a 'type' string and an integer 'size'")
    for name in ("started_at", "finished_at", "duration", "ttl", "expires_at"):
        if not _is_time(step.get(name)):
            problems.append(f"{name!r} must be a number or null")
    if step.get("state") == "failed" and not isinstance(step.get("error"), Mapping):
        problems.append("a failed step needs an 'error' with its type and message")
    if step.get("state") == "completed" and not isinstance(step.get("code_hash"), str):
        problems.append("a completed step needs a 'code_hash'")
    return problems


def _is_time(value: object) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def assert_valid_snapshot(snapshot: object) -> None:
    """Raise `SnapshotFormatError` listing the problems if ``snapshot`` is not valid."""
    problems = validate_snapshot(snapshot)
    if problems:
        raise SnapshotFormatError("Invalid nbflow snapshot: " + "; ".join(problems))


def is_step_complete(snapshot: Mapping[str, Any], key: str) -> bool:
    """Whether ``key`` is a completed, unexpired step in ``snapshot``."""
    step = (snapshot.get("steps") or {}).get(key)
    return isinstance(step, Mapping) and step.get("state") == "completed"
