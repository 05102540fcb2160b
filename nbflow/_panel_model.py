"""What the panel shows, without widgets: step rows, the version timeline, pages, and the actions behind its buttons."""

from __future__ import annotations

import math
from collections.abc import Container, MutableMapping, Sequence
from typing import Any, TypeVar

from ._engine import Engine
from ._errors import InvalidOption
from ._events import StepEvent
from ._history import Diff, VersionInfo, diff_versions, version_table
from ._resume import resume_steps
from ._status import status_rows
from ._steps_table import StepsTable, step_row
from ._travel import resume_version

T = TypeVar("T")
MAX_PAGE_SIZE = 500


def check_page_size(page_size: object) -> int:
    """The page size, or `InvalidOption` for anything but a whole number from 1 to `MAX_PAGE_SIZE`."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidOption(f"page_size must be a whole number from 1 to {MAX_PAGE_SIZE} (got {page_size!r}), e.g. page_size=25.")
    return page_size


def page_of(items: Sequence[T], page: int, size: int) -> tuple[list[T], int, int]:
    """The items on ``page`` (0-based, clamped into range), that page, and the number of pages (at least 1)."""
    pages = max(1, math.ceil(len(items) / size))
    page = min(max(page, 0), pages - 1)
    return list(items[page * size : (page + 1) * size]), page, pages


class PanelModel:
    """The steps and versions of one cache as this kernel sees them, kept current by step events."""

    def __init__(self, engine: Engine, namespace: MutableMapping[str, Any], hidden: Container[str] = ()) -> None:
        self.engine = engine
        self.namespace = namespace
        self.hidden = hidden
        self.steps = StepsTable([], "")
        self.versions: list[VersionInfo] = []
        self.refresh()

    @property
    def head(self) -> str | None:
        """The version this kernel stands at."""
        return self.engine.session.position.head

    def refresh(self) -> None:
        """Read every step and version again (stale checks included)."""
        self.refresh_steps()
        self.refresh_versions()

    def refresh_steps(self) -> None:
        self.steps = status_rows(self.engine, self.namespace)

    def refresh_versions(self) -> None:
        self.versions = version_table(self.engine).rows

    def apply(self, event: StepEvent) -> None:
        """Update the step's row from an event, without reading the cache (versions are re-read by `refresh`)."""
        if event.kind == "version_created":
            return
        activity = self.engine.session.activity
        live = activity.live.get(event.key, (None, 0.0))[0]
        row = step_row(event.key, event.state, event.time, live=live, progress=activity.progress.get(event.key))
        for index, existing in enumerate(self.steps.rows):
            if existing["key"] == event.key:
                self.steps.rows[index] = row
                return
        self.steps.rows.append(row)

    def step_rows(self, text: str = "") -> list[dict[str, str]]:
        """The rows whose key, state or outputs contain ``text`` (case-insensitive)."""
        needle = text.strip().lower()
        if not needle:
            return self.steps.rows
        return [row for row in self.steps.rows if any(needle in row[column].lower() for column in ("key", "state", "outputs"))]

    def head_page(self, size: int) -> int:
        """The versions page holding this kernel's version, else the last page."""
        for index, row in enumerate(self.versions):
            if row.head:
                return index // size
        return max(0, math.ceil(len(self.versions) / size) - 1)

    def version(self, version_id: str) -> VersionInfo:
        for row in self.versions:
            if row.id == version_id:
                return row
        raise InvalidOption(f"No version {version_id!r} in this cache; Refresh the panel to see new versions.")

    def resume(self) -> str:
        """Restore every valid completed step (the Resume button)."""
        return str(resume_steps(self.engine, self.namespace, self.hidden))

    def resume_to(self, version_id: str) -> str:
        """Make the namespace what it was at ``version_id``."""
        return str(resume_version(self.engine, version_id, self.namespace, self.hidden))

    def clear(self, key: str) -> str:
        """Delete one step's checkpoint."""
        removed = self.engine.clear(key)
        return f"nbflow: cleared step {key!r}." if removed else f"nbflow: no step {key!r} to clear."

    def diff(self, a: str | None, b: str | None) -> Diff:
        return diff_versions(self.engine, a or None, b or None)
