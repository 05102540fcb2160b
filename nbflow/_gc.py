"""Retention: drop old versions and delete the blobs that no step and no kept version needs."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._duration import format_size
from ._engine import Engine, blob_ids, is_expired
from ._errors import InvalidOption
from ._session import load_record
from ._versions import VERSION_PREFIX, Version, load_versions, needed_blobs, resolve_entries, save_version, versions_rewritten


@dataclass
class GcReport:
    """What `gc` removed."""

    blobs_removed: int = 0
    bytes_freed: int = 0
    versions_removed: list[str] = field(default_factory=list)
    steps_removed: list[str] = field(default_factory=list)
    blobs_kept: int = 0

    def __str__(self) -> str:
        parts = [f"nbflow: gc freed {format_size(self.bytes_freed)} ({self.blobs_removed} blob(s)); {self.blobs_kept} blob(s) still needed"]
        if self.versions_removed:
            parts.append(f"  versions removed: {', '.join(self.versions_removed)}")
        if self.steps_removed:
            parts.append(f"  expired steps removed: {', '.join(self.steps_removed)}")
        return "\n".join(parts)


def collect(engine: Engine, keep_last: int | None = None, drop_expired: bool = False) -> GcReport:
    """Delete unreferenced blobs; with ``keep_last``, first drop all but the newest N versions.

    A kept version whose parent is dropped keeps its whole namespace (its
    changes become everything it holds), so it still resolves. This process's
    current version is always kept. With ``drop_expired``, step checkpoints
    past their own TTL are deleted too. A blob that a remaining step or a kept
    version needs is never deleted.
    """
    if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 0):
        raise InvalidOption(f"keep_last must be a whole number >= 0 (got {keep_last!r}).")
    session = engine.session
    store = session.store
    report = GcReport()
    versions = load_versions(store)
    keep = list(versions) if keep_last is None else list(versions)[len(versions) - keep_last :] if keep_last else []
    head = session.position.head
    if head in versions and head not in keep:
        keep.append(str(head))
    rebased = [_rebased(versions, version_id) for version_id in keep if versions[version_id].parent not in (None, *keep)]
    try:
        for version in rebased:
            save_version(store, version)
        for version_id in versions:
            if version_id not in keep:
                store.delete_record(VERSION_PREFIX + version_id)
                report.versions_removed.append(version_id)
    finally:
        if rebased or report.versions_removed:
            versions_rewritten(store)
    kept_versions = {**{version_id: versions[version_id] for version_id in keep}, **{version.id: version for version in rebased}}
    needed = needed_blobs(kept_versions, keep)
    now = session.clock()
    for key in store.list_records():
        if key.startswith("__"):
            continue
        record = load_record(store, key)
        if record is None:
            continue
        if drop_expired and record.get("state") == "completed" and is_expired(record, record.get("ttl"), now):
            store.delete_record(key)
            report.steps_removed.append(key)
            continue
        needed |= blob_ids(record)
    for blob in store.list_blobs():
        if blob in needed:
            report.blobs_kept += 1
            continue
        report.bytes_freed += store.blob_size(blob)
        store.delete_blob(blob)
        report.blobs_removed += 1
    return report


def _rebased(versions: dict[str, Version], version_id: str) -> Version:
    """``version_id`` made a root that holds its whole namespace, for when its parent is dropped."""
    version = versions[version_id]
    return Version(
        **{
            **version.__dict__,
            "parent": None,
            "changes": resolve_entries(versions, version_id),
            "removed": [],
            "collected_parent": version.parent,
        }
    )
