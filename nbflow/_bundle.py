"""Export the cache's state to one bundle file, and import a bundle into another cache.

A bundle is a zip archive (stored, not compressed: checkpoints are mostly
numbers) holding ``nbflow-bundle.json`` (snapshot, step records, versions,
blob sizes) and ``blobs/<id>`` for every blob they need. zip's per-member CRC
catches a damaged transfer; each value's own checksum is checked again when
it is loaded.
"""

from __future__ import annotations

import json
import os
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._duration import format_size
from ._engine import Engine, blob_ids
from ._errors import CorruptBlob, NbflowError, SnapshotFormatError, StoreError
from ._snapshot import assert_valid_snapshot, take_snapshot
from ._versions import Version, load_versions, next_number, save_version

BUNDLE_FORMAT = 1
MANIFEST = "nbflow-bundle.json"
_CHUNK = 16 * 1024 * 1024


@dataclass
class ExportReport:
    """What `export_state` wrote."""

    path: str
    steps: int = 0
    versions: int = 0
    blobs: int = 0
    nbytes: int = 0

    def __str__(self) -> str:
        counts = f"{self.steps} step(s), {self.versions} version(s), {self.blobs} value(s)"
        return f"nbflow: exported {counts} to {self.path} ({format_size(self.nbytes)})"


@dataclass
class ImportReport:
    """What `import_state` added to the cache."""

    path: str
    steps: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    """Bundle version id -> its id in this cache (they differ when the ids were taken)."""
    known_versions: list[str] = field(default_factory=list)
    """Bundle versions this cache already had."""
    blobs_written: int = 0
    nbytes_written: int = 0
    snapshot: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        renamed = [f"{old} as {new}" for old, new in self.versions.items() if old != new]
        lines = [
            f"nbflow: imported {len(self.steps)} step(s) and {len(self.versions)} version(s) from {self.path}; "
            f"wrote {self.blobs_written} value(s) ({format_size(self.nbytes_written)}). Run %nbflow resume to restore them."
        ]
        if renamed:
            lines.append(f"  versions renumbered (ids taken here): {', '.join(renamed)}")
        if self.known_versions:
            lines.append(f"  already here: {', '.join(self.known_versions)}")
        return "\n".join(lines)


def export_state(engine: Engine, path: str | os.PathLike[str]) -> ExportReport:
    """Write every step record, every version and the blobs they need to one bundle file at ``path``.

    The file appears complete or not at all (written to a temporary name, then renamed).
    """
    target = Path(path).expanduser()
    if target.is_dir():
        raise NbflowError(f"Cannot export to {target}: it is a directory; give a file name such as {target / 'state.nbflow'}.")
    store = engine.session.store
    records = {record["key"]: record for record in engine.session.records()}
    versions = load_versions(store)
    needed: set[str] = set()
    for record in records.values():
        needed |= blob_ids(record)
    for version in versions.values():
        needed |= version.blobs()
    report = ExportReport(str(target), len(records), len(versions))
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    sizes: dict[str, int] = {}
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as bundle:
            for blob in sorted(needed):
                try:
                    data = store.load_blob(blob)
                except CorruptBlob as exc:
                    owner = _owner_of(blob, records, versions)
                    raise NbflowError(f"Cannot export: {exc} It belongs to {owner}; run it again or clear it, then export.") from None
                with bundle.open(f"blobs/{blob}", "w", force_zip64=len(data) > 2**31) as member:
                    view = memoryview(data)
                    for start in range(0, len(view), _CHUNK):
                        member.write(view[start : start + _CHUNK])
                sizes[blob] = len(data)
            manifest = {
                "format": BUNDLE_FORMAT,
                "created_at": time.time(),
                "snapshot": take_snapshot(engine),
                "records": records,
                "versions": [version.to_json() for version in versions.values()],
                "blobs": sizes,
            }
            bundle.writestr(MANIFEST, json.dumps(manifest))
        os.replace(temporary, target)
    except StoreError:
        raise
    except OSError as exc:
        raise NbflowError(f"Cannot write the bundle {target} ({exc}); nothing was written.") from exc
    finally:
        temporary.unlink(missing_ok=True)
    report.blobs = len(sizes)
    report.nbytes = target.stat().st_size
    return report


def _owner_of(blob: str, records: dict[str, Any], versions: dict[str, Version]) -> str:
    for key, record in records.items():
        if blob in blob_ids(record):
            return f"step {key!r}"
    for version in versions.values():
        if blob in version.blobs():
            return f"version {version.id} (step {version.step!r})"
    return "nothing"


def import_state(engine: Engine, path: str | os.PathLike[str]) -> ImportReport:
    """Load a bundle into this cache: its values, then its versions, then its step records (which win over ours).

    Only import bundles you trust: restoring a value unpickles it.
    """
    source = Path(path).expanduser()
    report = ImportReport(str(source))
    try:
        with zipfile.ZipFile(source) as bundle:
            manifest = _read_manifest(bundle, source)
            store = engine.session.store
            for blob, size in manifest["blobs"].items():
                if store.has_blob(blob):
                    continue
                store.save_blob(blob, [bundle.read(f"blobs/{blob}")])
                report.blobs_written += 1
                report.nbytes_written += int(size)
    except FileNotFoundError:
        raise NbflowError(f"No bundle at {source}; check the path (%nbflow export PATH writes one).") from None
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        if isinstance(exc, StoreError):
            raise
        raise NbflowError(
            f"Cannot read the bundle {source} ({exc}); it is damaged or not an nbflow bundle. The cache is unchanged."
        ) from exc
    report.snapshot = manifest["snapshot"]
    mapping = _import_versions(store, [Version.from_json(data) for data in manifest["versions"]], report)
    for key, record in manifest["records"].items():
        if record.get("version"):
            record["version"] = mapping.get(record["version"], record["version"])
        store.save_record(key, json.dumps(record).encode())
        report.steps.append(key)
    return report


def _read_manifest(bundle: zipfile.ZipFile, source: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(bundle.read(MANIFEST))
    except KeyError:
        raise NbflowError(f"{source} is a zip file but not an nbflow bundle (no {MANIFEST}).") from None
    except ValueError as exc:
        raise NbflowError(f"The bundle {source} has an unreadable {MANIFEST} ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise NbflowError(
            f"The bundle {source} has format {found!r}; this nbflow reads format {BUNDLE_FORMAT}. Export it again with this version."
        )
    try:
        assert_valid_snapshot(manifest.get("snapshot"))
    except SnapshotFormatError as exc:
        raise NbflowError(f"The bundle {source} holds an invalid snapshot: {exc}") from None
    for part, kind in (("records", dict), ("versions", list), ("blobs", dict)):
        if not isinstance(manifest.get(part), kind):
            raise NbflowError(f"The bundle {source} is damaged: its {MANIFEST} has no {part!r} {kind.__name__}. The cache is unchanged.")
    names = set(bundle.namelist())
    missing = sorted(blob for blob in manifest.get("blobs", {}) if f"blobs/{blob}" not in names)
    needed = set()
    for record in manifest.get("records", {}).values():
        needed |= blob_ids(record)
    for version in manifest.get("versions", []):
        needed |= Version.from_json(version).blobs()
    missing += sorted(needed - set(manifest.get("blobs", {})))
    if missing:
        raise NbflowError(
            f"The bundle {source} is incomplete: {len(missing)} saved value(s) missing (first: {missing[0]}). The cache is unchanged."
        )
    return manifest


def _import_versions(store: Any, incoming: list[Version], report: ImportReport) -> dict[str, str]:
    """Add the bundle's versions; keep their ids when all are free here, else number the new ones after ours."""
    existing = load_versions(store)
    by_uid = {version.uid: version.id for version in existing.values()}
    mapping: dict[str, str] = {}
    new = [version for version in sorted(incoming, key=lambda version: version.number) if version.uid not in by_uid]
    for version in incoming:
        if version.uid in by_uid:
            mapping[version.id] = by_uid[version.uid]
            report.known_versions.append(version.id)
    if any(version.id in existing for version in new):
        first = next_number(store)
        mapping.update({version.id: f"v{first + offset}" for offset, version in enumerate(new)})
    else:
        mapping.update({version.id: version.id for version in new})
    for version in new:
        parent = mapping.get(version.parent, version.parent) if version.parent else None
        save_version(store, Version(**{**version.__dict__, "id": mapping[version.id], "parent": parent}))
        report.versions[version.id] = mapping[version.id]
    return mapping
