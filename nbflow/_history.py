"""Read the version tree: list versions as a tree, resolve a version to values, diff two versions."""

from __future__ import annotations

import html
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._duration import format_size
from ._engine import Engine
from ._errors import InvalidOption
from ._summary import describe_change
from ._versions import Version, children, lineage, load_versions, resolve_entries


@dataclass(frozen=True)
class VersionInfo:
    """One row of `versions()`."""

    id: str
    parent: str | None
    step: str
    created_at: float
    added: list[str]
    changed: list[str]
    removed: list[str]
    bytes_added: int
    depth: int
    """How many branches deep the row sits in the tree (0: the first line of its root)."""
    branch: bool
    """Whether this version starts a branch (its parent already had an older child)."""
    head: bool
    """Whether this process's namespace stands at this version."""

    @property
    def names_changed(self) -> str:
        """'+a ~b -c'."""
        return " ".join([*(f"+{n}" for n in self.added), *(f"~{n}" for n in self.changed), *(f"-{n}" for n in self.removed)])


class VersionTable:
    """Every version, in tree order (each branch after the line it leaves); printable and HTML-renderable."""

    def __init__(self, rows: list[VersionInfo]) -> None:
        self.rows = rows

    def __iter__(self) -> Iterator[VersionInfo]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, version_id: str) -> VersionInfo:
        for row in self.rows:
            if row.id == version_id:
                return row
        raise KeyError(version_id)

    @property
    def ids(self) -> list[str]:
        return [row.id for row in self.rows]

    def _cells(self, row: VersionInfo) -> list[str]:
        graph = "  " * row.depth + ("└ " if row.branch else "")
        return [
            ("* " if row.head else "  ") + graph + row.id,
            row.parent or "-",
            row.step,
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.created_at)),
            row.names_changed,
            format_size(row.bytes_added),
        ]

    _HEADER = ["  version", "parent", "step", "created", "names changed", "bytes added"]

    def __str__(self) -> str:
        if not self.rows:
            return "nbflow: no versions yet (each executed %%step that changes the namespace makes one)."
        table = [self._HEADER, *(self._cells(row) for row in self.rows)]
        widths = [max(len(line[column]) for line in table) for column in range(len(self._HEADER))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in table]
        return "\n".join([f"nbflow: {len(self.rows)} version(s); * marks where this kernel stands", *lines])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<p>{html.escape(str(self))}</p>"
        head = "".join(f"<th>{html.escape(cell.strip())}</th>" for cell in self._HEADER)
        body = "".join(
            "<tr>" + "".join(f"<td><code style='white-space:pre'>{html.escape(cell)}</code></td>" for cell in self._cells(row)) + "</tr>"
            for row in self.rows
        )
        return f'<table class="nbflow-versions"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def version_table(engine: Engine) -> VersionTable:
    """All versions of the session's cache as a tree-ordered table."""
    versions = load_versions(engine.session.store)
    tree = children(versions)
    head = engine.session.position.head
    rows: list[VersionInfo] = []
    pending: list[tuple[str, int, bool]] = [(root, 0, False) for root in reversed(tree.get(None, []))]
    while pending:
        version_id, depth, branch = pending.pop()
        version = versions[version_id]
        rows.append(
            VersionInfo(
                version.id,
                version.parent,
                version.step,
                version.created_at,
                list(version.added),
                version.changed,
                list(version.removed),
                version.bytes_added,
                depth,
                branch,
                version.id == head,
            )
        )
        kids = tree.get(version_id, [])
        # The first child continues this line; later children open branches, listed after it.
        pending.extend((kid, depth + 1, True) for kid in reversed(kids[1:]))
        if kids:
            pending.append((kids[0], depth, False))
    return VersionTable(rows)


def latest(engine: Engine, versions: Mapping[str, Version]) -> str:
    """This process's version if it has one, else the newest; raises `InvalidOption` when there are none."""
    head = engine.session.position.head
    if head in versions:
        return str(head)
    if not versions:
        raise InvalidOption("No versions yet: each executed %%step that changes the namespace makes one.")
    return list(versions)[-1]


def resolve_values(engine: Engine, version_id: str) -> dict[str, Any]:
    """The full namespace of step-produced names at ``version_id``, read from the store."""
    versions = load_versions(engine.session.store)
    return load_entries(engine, resolve_entries(versions, version_id))


def load_entries(engine: Engine, entries: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Read the values of name -> entry, sharing restored; large arrays are maps when the ``mmap`` setting is on."""
    return engine.read_values(entries, mmap=engine.session.config.mmap)


@dataclass(frozen=True)
class DiffEntry:
    """One name that differs between two versions."""

    name: str
    change: str
    """'added', 'removed' or 'changed'."""
    type: str
    size: int
    repr: str
    summary: str


@dataclass
class Diff:
    """What differs between version ``a`` and version ``b``."""

    a: str | None
    b: str
    entries: list[DiffEntry] = field(default_factory=list)

    def names(self, change: str) -> list[str]:
        return [entry.name for entry in self.entries if entry.change == change]

    @property
    def added(self) -> list[str]:
        return self.names("added")

    @property
    def removed(self) -> list[str]:
        return self.names("removed")

    @property
    def changed(self) -> list[str]:
        return self.names("changed")

    def __getitem__(self, name: str) -> DiffEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise KeyError(name)

    def _title(self) -> str:
        counts = f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed"
        return f"nbflow: diff {self.a or '(empty)'} -> {self.b}: {counts}"

    _HEADER = ["", "name", "type", "size", "value", "summary"]
    _MARK = {"added": "+", "removed": "-", "changed": "~"}

    def _cells(self, entry: DiffEntry) -> list[str]:
        return [self._MARK[entry.change], entry.name, entry.type, format_size(entry.size), entry.repr, entry.summary]

    def __str__(self) -> str:
        if not self.entries:
            return self._title()
        table = [self._HEADER, *(self._cells(entry) for entry in self.entries)]
        widths = [max(len(line[column]) for line in table) for column in range(len(self._HEADER))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in table]
        return "\n".join([self._title(), *("  " + line for line in lines)])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in self._HEADER)
        body = "".join(
            "<tr>" + "".join(f"<td><code>{html.escape(cell)}</code></td>" for cell in self._cells(entry)) + "</tr>"
            for entry in self.entries
        )
        return f'<p>{html.escape(self._title())}</p><table class="nbflow-diff"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def diff_versions(engine: Engine, a: str | None = None, b: str | None = None) -> Diff:
    """Compare two versions; ``b`` defaults to this process's version (else the newest), ``a`` to ``b``'s parent."""
    versions = load_versions(engine.session.store)
    if b is None and a is not None:
        a, b = None, a
    newer = latest(engine, versions) if b is None else b
    lineage(versions, newer)  # a clear error for an unknown id
    if a is None:
        a = versions[newer].parent
    b = newer
    old = resolve_entries(versions, a)
    new = resolve_entries(versions, b)
    loaded: dict[str, Any] = {}

    def load(entry: Mapping[str, Any]) -> Any:
        blob = entry["blob"]
        if blob not in loaded:
            loaded[blob] = engine.read(entry)
        return loaded[blob]

    result = Diff(a, b)
    for name in sorted(set(old) | set(new)):
        if name not in old:
            entry = new[name]
            result.entries.append(
                DiffEntry(name, "added", str(entry.get("type")), int(entry.get("size") or 0), _repr(entry), _shape(entry))
            )
        elif name not in new:
            entry = old[name]
            result.entries.append(
                DiffEntry(name, "removed", str(entry.get("type")), int(entry.get("size") or 0), _repr(entry), _shape(entry))
            )
        elif old[name].get("blob") != new[name].get("blob"):
            entry = new[name]
            summary = describe_change(old[name], entry, load)
            result.entries.append(DiffEntry(name, "changed", str(entry.get("type")), int(entry.get("size") or 0), _repr(entry), summary))
    return result


def _repr(entry: Mapping[str, Any]) -> str:
    return str((entry.get("summary") or {}).get("repr", ""))


def _shape(entry: Mapping[str, Any]) -> str:
    summary = entry.get("summary") or {}
    if "shape" in summary:
        return "shape " + str(tuple(summary["shape"]))
    if "len" in summary:
        return f"{summary['len']} items"
    return ""
