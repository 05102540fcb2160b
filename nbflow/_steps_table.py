"""The steps table shared by ``%nbflow status``, the snapshot's rendering and the panel: one row per step, as text or HTML."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._duration import format_duration, format_size

COLUMNS = ("key", "state", "ran", "duration", "ttl left", "size", "outputs", "why")
STATE_COLORS = {
    "completed": "#1a7f37",
    "restored": "#0550ae",
    "running": "#9a6700",
    "failed": "#cf222e",
    "incomplete": "#bc4c00",
    "stale": "#8250df",
    "expired": "#6e7781",
}
_MAX_OUTPUTS = 60


def step_row(
    key: str,
    entry: Mapping[str, Any],
    now: float,
    *,
    live: str | None = None,
    stale: str | None = None,
    progress: tuple[int, int] | None = None,
) -> dict[str, str]:
    """One row from a step's snapshot entry; ``live`` is what this kernel saw it do, ``stale`` why it would run again."""
    state = str(entry.get("state") or "?")
    why = ""
    if state == "failed":
        error = entry.get("error") or {}
        why = f"{error.get('type')}: {error.get('message')}"
    elif state == "incomplete":
        why = "could not checkpoint " + ", ".join(sorted(entry.get("unsaved") or {}))
    elif stale:
        state, why = ("expired" if stale.startswith("expired") else "stale"), stale
    elif state == "expired":
        why = "ttl passed"
    elif live == "restored":
        state = "restored"
    finished = entry.get("finished_at")
    ttl = entry.get("ttl")
    outputs = ", ".join(sorted(entry.get("outputs") or {}))
    row = {
        "key": key,
        "state": state,
        "ran": "-" if finished is None else f"{format_duration(max(0.0, now - float(finished)))} ago",
        "duration": format_duration(entry.get("duration") or 0.0),
        "ttl left": "never expires" if ttl is None else format_duration(max(0.0, float(finished or now) + float(ttl) - now)),
        "size": format_size(sum(int(meta.get("size") or 0) for meta in (entry.get("outputs") or {}).values())),
        "outputs": outputs if len(outputs) <= _MAX_OUTPUTS else outputs[: _MAX_OUTPUTS - 1] + "…",
        "why": why,
    }
    if live == "running":
        row["state"], row["ran"] = "running", "now"
        row["why"] = "" if progress is None else _progress_text(*progress)
    return row


def _progress_text(done: int, total: int) -> str:
    percent = f"{done / total:.0%} " if total else ""
    return f"moving the checkpoint: {percent}{format_size(done)} / {format_size(total)}"


@dataclass
class StepsTable:
    """Rows of step status; prints as a text table, renders as HTML in notebooks."""

    rows: list[dict[str, str]]
    location: str

    def __str__(self) -> str:
        if not self.rows:
            return f"nbflow: no steps in {self.location}"
        cells = [[row[column] for column in COLUMNS] for row in self.rows]
        widths = [max(len(column), *(len(line[index]) for line in cells)) for index, column in enumerate(COLUMNS)]
        lines = ["  ".join(column.ljust(width) for column, width in zip(COLUMNS, widths, strict=True)).rstrip()]
        lines += ["  ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip() for line in cells]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return self.to_html()

    def to_html(self, rows: Iterable[dict[str, str]] | None = None) -> str:
        """An HTML table of ``rows`` (default: all); each ``<tr data-key>`` has a ``nbflow-state-STATE`` cell."""
        rows = self.rows if rows is None else list(rows)
        if not rows:
            return f"<p class='nbflow-empty'>nbflow: no steps in {html.escape(self.location)}</p>"
        head = "".join(f"<th style='text-align:left'>{html.escape(column)}</th>" for column in COLUMNS)
        body = "".join(_html_row(row) for row in rows)
        return f"<table class='nbflow-steps'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html_row(row: Mapping[str, str]) -> str:
    cells = []
    for column in COLUMNS:
        value = html.escape(row[column])
        if column == "state":
            color = STATE_COLORS.get(row["state"], "inherit")
            css = f"nbflow-state nbflow-state-{html.escape(row['state'])}"
            cells.append(f"<td class='{css}' style='color:{color};font-weight:600;text-align:left'>{value}</td>")
        elif column == "key":
            cells.append(f"<td style='text-align:left'><code>{value}</code></td>")
        else:
            cells.append(f"<td style='text-align:left'>{value}</td>")
    return f"<tr data-key='{html.escape(row['key'], quote=True)}'>{''.join(cells)}</tr>"
