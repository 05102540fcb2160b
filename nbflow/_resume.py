"""Restore every still-valid step after a restart, executing nothing, and say why others are stale."""

from __future__ import annotations

import importlib
from collections.abc import Container, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from ._duration import format_duration
from ._engine import Engine, is_expired
from ._errors import CorruptBlob
from ._events import has_subscribers
from ._namespace import apply_restore
from ._serialization import FORMAT_VERSION, fingerprint
from ._step_events import emit_restored, emit_skipped
from ._versions import after_restore

_DELETED = "<deleted>"


@dataclass
class ResumePlan:
    """Which step records can be restored together, and why the others cannot."""

    valid: list[dict[str, Any]] = field(default_factory=list)
    stale: dict[str, str] = field(default_factory=dict)


@dataclass
class ResumeReport:
    """What `resume` did."""

    restored: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    imported: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if not self.restored and not self.skipped:
            return "nbflow: no steps to resume."
        lines = [f"nbflow: resumed {len(self.restored)} step(s): {', '.join(self.restored) or 'none'}"]
        if self.names:
            lines.append(f"  names restored: {', '.join(self.names)}")
        if self.imported:
            lines.append(f"  modules imported again: {', '.join(self.imported)}")
        for key, reason in self.skipped.items():
            lines.append(f"  skipped {key!r}: {reason}")
        return "\n".join(lines)


def plan_resume(
    engine: Engine,
    namespace: MutableMapping[str, Any],
    records: list[dict[str, Any]] | None = None,
    fingerprints: dict[str, str | None] | None = None,
) -> ResumePlan:
    """Find the largest set of cell steps whose recorded inputs hold once they are all restored.

    A step holds when each input it read will have, after the restore, the
    value it read: from the last restored step that produced it, else from
    the namespace. An input nobody defines yet (a plain cell not run since the
    restart) does not stop it, unless a step that is not restored produced it.
    ``fingerprints`` caches the namespace's fingerprints by name, for a caller that needs them too.
    """
    plan = ResumePlan()
    records = engine.session.records() if records is None else records
    now = engine.session.clock()
    candidates = []
    for record in records:
        if record.get("kind") != "cell":
            continue
        key = record["key"]
        if record.get("state") == "failed":
            error = record.get("error") or {}
            plan.stale[key] = f"failed: {error.get('type')}: {error.get('message')}"
        elif record.get("state") != "completed":
            plan.stale[key] = "incomplete: could not checkpoint " + ", ".join(sorted(record.get("unsaved") or {}))
        elif record.get("serialization") != FORMAT_VERSION:
            plan.stale[key] = f"checkpoint format {record.get('serialization')} is not this nbflow's ({FORMAT_VERSION})"
        elif is_expired(record, record.get("ttl"), now):
            plan.stale[key] = f"expired {format_duration(now - record['finished_at'] - record['ttl'])} ago"
        else:
            candidates.append(record)
    produced_by_any = {name for record in records for name in _produces(record)}
    current: dict[str, str | None] = {} if fingerprints is None else fingerprints
    changed = True
    while changed:
        changed = False
        sweep = list(candidates)
        history = _history(sweep)
        for position, record in enumerate(sweep):
            reason = _broken_input(record, position, history, namespace, current, produced_by_any)
            if reason:
                plan.stale[record["key"]] = reason
                candidates.remove(record)
                changed = True
    plan.valid = candidates
    return plan


def _produces(record: dict[str, Any]) -> set[str]:
    return set(record.get("outputs") or {}) | set(record.get("deleted") or []) | set(record.get("binds") or [])


def _history(candidates: list[dict[str, Any]]) -> dict[str, list[tuple[int, str, str]]]:
    """name -> [(position, key, fingerprint or _DELETED)] in run order."""
    history: dict[str, list[tuple[int, str, str]]] = {}
    for position, record in enumerate(candidates):
        for name in record.get("deleted") or []:
            history.setdefault(name, []).append((position, record["key"], _DELETED))
        for name, meta in (record.get("outputs") or {}).items():
            history.setdefault(name, []).append((position, record["key"], meta.get("fingerprint") or meta.get("blob")))
    return history


def _seen_by(name: str, position: int, history: dict[str, Any]) -> tuple[str, str] | None:
    """The value a step at ``position`` read: the last producer before it, else the first after it.

    A producer that ran after the step re-ran since (the step read its earlier
    run), so its current value must still be the one the step read.
    """
    events = [event for event in history.get(name, []) if event[0] != position]
    before = [event for event in events if event[0] < position]
    chosen = before[-1] if before else (events[0] if events else None)
    return None if chosen is None else (chosen[2], chosen[1])


def _broken_input(
    record: dict[str, Any],
    position: int,
    history: dict[str, Any],
    namespace: MutableMapping[str, Any],
    current: dict[str, Any],
    produced_by_any: set[str],
) -> str | None:
    for name, expected in sorted((record.get("inputs") or {}).items()):
        seen = _seen_by(name, position, history)
        if seen is not None:
            value, producer = seen
            actual = None if value == _DELETED else value
            where = f" (step {producer!r} has another value)"
        elif name in namespace:
            if name not in current:
                current[name] = fingerprint(namespace[name])
            actual, where = current[name], " in the namespace"
        elif name in produced_by_any:
            return f"input {name!r} comes from a step that cannot be restored"
        else:
            continue
        if actual != expected:
            return f"input {name!r} changed{where}"
    return None


def resume_steps(engine: Engine, namespace: MutableMapping[str, Any], hidden: Container[str] = ()) -> ResumeReport:
    """Restore every still-valid completed cell step into ``namespace`` in run order, executing nothing."""
    records = everything = engine.session.records()
    report = ResumeReport()
    while True:
        plan = plan_resume(engine, namespace, records)
        loaded = {}
        broken = None
        for record in plan.valid:
            try:
                loaded[record["key"]] = engine.restore(record, mmap=engine.session.config.mmap)
            except CorruptBlob as exc:
                broken = record
                report.skipped[record["key"]] = f"checkpoint unreadable ({exc})"
                break
        if broken is None:
            break
        records = [record for record in records if record is not broken]
    report.skipped.update({key: reason for key, reason in plan.stale.items() if key not in report.skipped})
    names: set[str] = set()
    for record in plan.valid:
        restored = loaded[record["key"]]
        apply_restore(restored.values, restored.deleted, namespace)
        after_restore(engine.session, record, namespace)
        names.difference_update(restored.deleted)
        names.update(restored.values)
        report.restored.append(record["key"])
        emit_restored(engine, record)
    if report.skipped and has_subscribers():
        by_key = {record["key"]: record for record in everything}
        for key, reason in report.skipped.items():
            emit_skipped(engine, by_key[key], reason)
    for record in plan.valid:
        for name, expected in (record.get("inputs") or {}).items():
            if name not in namespace and isinstance(expected, str) and expected.startswith("module:"):
                try:
                    namespace[name] = importlib.import_module(expected[len("module:") :])
                    report.imported.append(name)
                except ImportError:
                    pass
    report.names = sorted(names)
    return report
