"""The ``%nbflow status`` table: every step, its state, when it ran, TTL left, size, outputs and why it is stale."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._engine import Engine
from ._resume import plan_resume
from ._serialization import fingerprint
from ._snapshot import step_entry
from ._steps_table import StepsTable, step_row


def status_rows(engine: Engine, namespace: Mapping[str, Any] | None = None) -> StepsTable:
    """Build the steps table; with a namespace, steps whose inputs changed there show as stale.

    Steps this process restored show as restored, and steps it is running as running.
    """
    session = engine.session
    records = session.records()
    fingerprints: dict[str, str | None] = {}  # each namespace value is hashed once, for the plan and the checks below
    plan = plan_resume(engine, dict(namespace or {}), records, fingerprints)
    now = session.clock()
    activity = session.activity
    rows = []
    for record in records:
        key = record["key"]
        entry = step_entry(record, now)
        stale = None
        if record.get("kind") == "cell" and entry["state"] == "completed":
            stale = plan.stale.get(key) or (_changed_in(record, namespace, fingerprints) if namespace is not None else None)
        live = activity.live.get(key, (None, 0.0))[0]
        rows.append(step_row(key, entry, now, live=live, stale=stale, progress=activity.progress.get(key)))
    known = {record["key"] for record in records}
    for key, (live, _since) in activity.live.items():
        if live == "running" and key not in known:  # a first run: no record yet
            rows.append(step_row(key, {}, now, live=live, progress=activity.progress.get(key)))
    return StepsTable(rows, session.store.location)


def _changed_in(record: Mapping[str, Any], namespace: Mapping[str, Any], fingerprints: dict[str, str | None]) -> str | None:
    """Which recorded input now has another value in the namespace (running the step would re-execute it)."""
    for name, expected in sorted((record.get("inputs") or {}).items()):
        if name not in namespace:
            continue
        if name not in fingerprints:
            fingerprints[name] = fingerprint(namespace[name])
        if fingerprints[name] != expected:
            return f"input {name!r} changed in the namespace"
    return None
