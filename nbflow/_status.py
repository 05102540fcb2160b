"""The ``%nbflow status`` table: every step, its state, age, TTL left, size, duration and why it is stale."""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._duration import format_duration, format_size
from ._engine import Engine
from ._resume import plan_resume
from ._serialization import fingerprint

COLUMNS = ("key", "state", "age", "ttl left", "size", "duration", "why")


@dataclass
class StatusTable:
    """Rows of step status; prints as a text table, renders as HTML in notebooks."""

    rows: list[dict[str, Any]]
    location: str

    def __str__(self) -> str:
        if not self.rows:
            return f"nbflow: no steps in {self.location}"
        cells = [[str(row[column]) for column in COLUMNS] for row in self.rows]
        widths = [max(len(column), *(len(line[index]) for line in cells)) for index, column in enumerate(COLUMNS)]
        lines = ["  ".join(column.ljust(width) for column, width in zip(COLUMNS, widths, strict=True)).rstrip()]
        lines += ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip() for line in cells]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p>nbflow: no steps in {html.escape(self.location)}</p>"
        head = "".join(f"<th>{html.escape(column)}</th>" for column in COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(row[column]))}</td>" for column in COLUMNS) + "</tr>" for row in self.rows)
        return f"<table class='nbflow-status'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        return str(self)


def status_rows(engine: Engine, namespace: Mapping[str, Any] | None = None) -> StatusTable:
    """Build the status table; with a namespace, steps whose inputs changed there show as stale."""
    records = engine.session.records()
    plan = plan_resume(engine, dict(namespace or {}), records)
    now = engine.session.clock()
    rows = []
    for record in records:
        key = record["key"]
        finished = float(record.get("finished_at") or now)
        ttl = record.get("ttl")
        state = record.get("state", "?")
        why = ""
        if state == "failed":
            error = record.get("error") or {}
            why = f"{error.get('type')}: {error.get('message')}"
        elif state == "incomplete":
            why = "could not checkpoint " + ", ".join(sorted(record.get("unsaved") or {}))
        elif record.get("kind") == "cell" and key in plan.stale:
            why = plan.stale[key]
            state = "expired" if why.startswith("expired") else "stale"
        elif ttl is not None and now > finished + ttl:
            state, why = "expired", "ttl passed"
        elif record.get("kind") == "cell" and namespace is not None:
            changed = _changed_in(record, namespace)
            if changed:
                state, why = "stale", changed
        outputs = record.get("outputs") or {}
        rows.append(
            {
                "key": key,
                "state": state,
                "age": format_duration(now - finished),
                "ttl left": "never expires" if ttl is None else format_duration(max(0.0, finished + ttl - now)),
                "size": format_size(sum(int(meta.get("size") or 0) for meta in outputs.values())),
                "duration": format_duration(record.get("duration") or 0.0),
                "why": why,
            }
        )
    return StatusTable(rows, engine.session.store.location)


def _changed_in(record: Mapping[str, Any], namespace: Mapping[str, Any]) -> str | None:
    """Which recorded input now has another value in the namespace (running the step would re-execute it)."""
    for name, expected in sorted((record.get("inputs") or {}).items()):
        if name in namespace and fingerprint(namespace[name]) != expected:
            return f"input {name!r} changed in the namespace"
    return None
