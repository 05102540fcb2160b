"""The embedded store: a diskcache directory for records and small blobs, plain files for large blobs."""

from __future__ import annotations

import mmap
import os
import sqlite3
import uuid
from pathlib import Path

import diskcache

from ._errors import CorruptBlob, StoreError
from ._progress import advance
from ._store import Chunks, Store, register_store

# Blobs above this size get a file of their own: diskcache would copy them
# through one bytes object, and is slower than a plain write for large data.
LARGE_BLOB_BYTES = 256 * 1024
# Large blobs move in pieces of this size, so progress can be reported between them.
_PIECE = 64 * 1024 * 1024
_RECORD = "record:"
_BLOB = "blob:"


class DiskStore(Store):
    """Records and small blobs in a diskcache (SQLite) directory; large blobs as files under ``blobs/``.

    Safe for several processes at once: SQLite serializes record writes, and
    blob files are written to a temporary name, then renamed into place.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.path = Path(directory).expanduser().absolute()
        self.location = str(self.path)
        self._blobs = self.path / "blobs"
        try:
            self._blobs.mkdir(parents=True, exist_ok=True)
            # No eviction: diskcache's default 1 GB limit would silently drop checkpoints.
            self._cache = diskcache.Cache(str(self.path), eviction_policy="none", statistics=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"Cannot open the nbflow cache at {self.location} ({exc}).") from exc

    def _guard(self, action: str) -> _Guard:
        return _Guard(f"Cannot {action} the nbflow cache at {self.location}")

    def save_record(self, key: str, data: bytes) -> None:
        with self._guard("write to"):
            self._cache.set(_RECORD + key, data)

    def load_record(self, key: str) -> bytes | None:
        with self._guard("read"):
            value = self._cache.get(_RECORD + key)
        return value if isinstance(value, bytes) else None

    def delete_record(self, key: str) -> bool:
        with self._guard("write to"):
            return bool(self._cache.delete(_RECORD + key))

    def add_record(self, key: str, data: bytes) -> bool:
        with self._guard("write to"):
            return bool(self._cache.add(_RECORD + key, data))

    def list_records(self) -> list[str]:
        with self._guard("read"):
            return [key[len(_RECORD) :] for key in self._cache.iterkeys() if isinstance(key, str) and key.startswith(_RECORD)]

    def _blob_path(self, blob_id: str) -> Path:
        return self._blobs / blob_id[:2] / blob_id

    def save_blob(self, blob_id: str, chunks: Chunks) -> None:
        size = sum(memoryview(chunk).nbytes for chunk in chunks)
        if size <= LARGE_BLOB_BYTES:
            with self._guard("write to"):
                self._cache.set(_BLOB + blob_id, b"".join(chunks))
            return
        target = self._blob_path(blob_id)
        temporary = target.with_name(f".{blob_id}.{uuid.uuid4().hex}.tmp")
        with self._guard("write to"):
            target.parent.mkdir(exist_ok=True)
            try:
                with open(temporary, "wb") as file:
                    for chunk in chunks:
                        view = memoryview(chunk).cast("B")
                        for start in range(0, view.nbytes, _PIECE):
                            file.write(view[start : start + _PIECE])
                            advance(min(_PIECE, view.nbytes - start))
                os.replace(temporary, target)
            finally:
                temporary.unlink(missing_ok=True)

    def load_blob(self, blob_id: str) -> bytes | bytearray | memoryview:
        try:
            value = self._cache.get(_BLOB + blob_id)
            if isinstance(value, bytes):
                return value
            with open(self._blob_path(blob_id), "rb", buffering=0) as file:
                size = os.fstat(file.fileno()).st_size
                data = _allocate(size)
                done = 0
                while done < size:
                    count = file.readinto(data[done : done + _PIECE])
                    if not count:
                        raise CorruptBlob(f"Saved value {blob_id} in {self.location} is truncated.")
                    done += count
                    advance(count)
            return data
        except FileNotFoundError:
            raise CorruptBlob(f"Saved value {blob_id} is missing from {self.location}.") from None
        except (OSError, sqlite3.Error) as exc:
            if isinstance(exc, CorruptBlob):
                raise
            raise CorruptBlob(f"Cannot read saved value {blob_id} from {self.location} ({exc}).") from exc

    def map_blob(self, blob_id: str) -> memoryview | None:
        """Map a large blob's file copy-on-write: pages are read when touched, writes stay private."""
        try:
            with open(self._blob_path(blob_id), "rb") as file:
                if os.fstat(file.fileno()).st_size == 0:
                    return None
                # The mapping outlives the file object; blob files are replaced by rename, never rewritten.
                return memoryview(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_COPY))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise CorruptBlob(f"Cannot map saved value {blob_id} from {self.location} ({exc}).") from exc

    def has_blob(self, blob_id: str) -> bool:
        with self._guard("read"):
            return (_BLOB + blob_id) in self._cache or self._blob_path(blob_id).exists()

    def delete_blob(self, blob_id: str) -> None:
        with self._guard("write to"):
            self._cache.delete(_BLOB + blob_id)
            self._blob_path(blob_id).unlink(missing_ok=True)

    def blob_size(self, blob_id: str) -> int:
        with self._guard("read"):
            small = self._cache.get(_BLOB + blob_id)
            if isinstance(small, bytes):
                return len(small)
            try:
                return self._blob_path(blob_id).stat().st_size
            except FileNotFoundError:
                return 0

    def list_blobs(self) -> list[str]:
        with self._guard("read"):
            small = [key[len(_BLOB) :] for key in self._cache.iterkeys() if isinstance(key, str) and key.startswith(_BLOB)]
            large = [path.name for path in self._blobs.glob("*/*") if not path.name.startswith(".")]
        return small + large

    def close(self) -> None:
        self._cache.close()


def _allocate(size: int) -> memoryview:
    """Fresh writable memory for ``size`` bytes, not zero-filled first.

    A private anonymous mapping is zero pages until written (``bytearray(size)``
    would memset it all first), and huge pages cut page faults by 512x; restored
    arrays then use this memory directly.
    """
    if size >= 1024 * 1024 and hasattr(mmap, "MAP_PRIVATE"):
        mapping = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if hasattr(mmap, "MADV_HUGEPAGE"):
            mapping.madvise(mmap.MADV_HUGEPAGE)
        return memoryview(mapping)
    return memoryview(bytearray(size))


class _Guard:
    """Turn OS and SQLite errors into one `StoreError` that names the cache."""

    def __init__(self, message: str) -> None:
        self.message = message

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        if exc is not None and isinstance(exc, (OSError, sqlite3.Error)) and not isinstance(exc, StoreError):
            raise StoreError(f"{self.message} ({exc}).") from exc


register_store("file", DiskStore)
