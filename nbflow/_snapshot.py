"""Snapshots: a JSON-serializable picture of every step and the execution, plus their validator."""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Any

from ._engine import Engine, is_expired
from ._errors import SnapshotFormatError

# Increment on snapshot format changes.
SNAPSHOT_FORMAT_VERSION = 1
STEP_STATES = ("completed", "failed", "incomplete", "expired")
EXECUTION_STATES = ("idle", "running", "failed")


def take_snapshot(engine: Engine) -> dict[str, Any]:
    """Build the snapshot of the session's cache."""
    from . import __version__

    now = engine.session.clock()
    steps: dict[str, Any] = {}
    for record in engine.session.records():
        state = record.get("state", "failed")
        if state == "completed" and is_expired(record, record.get("ttl"), now):
            state = "expired"
        ttl = record.get("ttl")
        steps[record["key"]] = {
            "state": state,
            "kind": record.get("kind", "cell"),
            "outputs": {
                name: {
                    "type": meta.get("type"),
                    "size": int(meta.get("size") or 0),
                    **({"alias_of": meta["alias_of"]} if meta.get("alias_of") else {}),
                }
                for name, meta in sorted((record.get("outputs") or {}).items())
            },
            "started_at": record.get("started_at"),
            "finished_at": record.get("finished_at"),
            "duration": record.get("duration"),
            "ttl": ttl,
            "expires_at": None if ttl is None else record.get("finished_at", 0.0) + ttl,
            "code_hash": record.get("code_hash"),
            "error": record.get("error"),
        }
    return {
        "format_version": SNAPSHOT_FORMAT_VERSION,
        "steps": steps,
        "execution": engine.session.execution(),
        "metadata": {
            "nbflow_version": __version__,
            "store": engine.session.store.location,
            "created_at": now,
            "python": platform.python_version(),
        },
    }


def validate_snapshot(snapshot: object) -> list[str]:
    """Return every way ``snapshot`` breaks the snapshot format; an empty list means valid."""
    if not isinstance(snapshot, Mapping):
        return [f"a snapshot must be a dict (got {type(snapshot).__name__})"]
    problems = []
    for name in ("format_version", "steps", "execution", "metadata"):
        if name not in snapshot:
            problems.append(f"missing {name!r}")
    version = snapshot.get("format_version")
    if "format_version" in snapshot and version != SNAPSHOT_FORMAT_VERSION:
        problems.append(f"'format_version' is {version!r}; this nbflow reads {SNAPSHOT_FORMAT_VERSION}")
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
    return problems


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
