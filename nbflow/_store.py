"""The storage interface: records and blobs, bytes in and bytes out, plus a backend registry.

A *record* is a small JSON document describing one step (key -> bytes).
A *blob* is one saved value, addressed by the hash of its content.
A backend implements `Store`; nbflow never pickles inside a store.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

from ._errors import InvalidOption, StoreError

Chunks = Sequence["bytes | bytearray | memoryview"]


class Store(abc.ABC):
    """Where records and blobs live. Every method may raise `StoreError`."""

    location: str
    """A human-readable place, shown in messages."""

    @abc.abstractmethod
    def save_record(self, key: str, data: bytes) -> None:
        """Create or replace the record stored under ``key``."""

    @abc.abstractmethod
    def load_record(self, key: str) -> bytes | None:
        """Return the record under ``key``, or ``None``."""

    @abc.abstractmethod
    def delete_record(self, key: str) -> bool:
        """Delete the record under ``key``; return whether it existed."""

    @abc.abstractmethod
    def list_records(self) -> list[str]:
        """Return every record key."""

    def add_record(self, key: str, data: bytes) -> bool:
        """Store ``data`` under ``key`` only if no record is there; return whether it was added.

        Backends shared by several processes must override this with an atomic
        create-if-absent (nbflow numbers versions with it); this default is not atomic.
        """
        if self.load_record(key) is not None:
            return False
        self.save_record(key, data)
        return True

    @abc.abstractmethod
    def save_blob(self, blob_id: str, chunks: Chunks) -> None:
        """Store the concatenation of ``chunks`` under ``blob_id``, atomically."""

    @abc.abstractmethod
    def load_blob(self, blob_id: str) -> bytes | bytearray | memoryview:
        """Return the blob's bytes; raises `CorruptBlob` if it is missing or unreadable.

        Return writable memory (``bytearray``, writable ``memoryview``) for large
        blobs: restored arrays then use it directly; immutable ``bytes`` are copied
        once to make them writable. Call `nbflow._progress.advance` while reading
        to drive the progress bar of long restores.
        """

    def map_blob(self, blob_id: str) -> memoryview | None:
        """A writable copy-on-write memory map of the blob, or ``None`` where the backend cannot map it.

        Used by ``mmap`` restores; writes to the map must never reach the stored blob.
        """
        return None

    @abc.abstractmethod
    def has_blob(self, blob_id: str) -> bool:
        """Whether a blob is stored under ``blob_id``."""

    @abc.abstractmethod
    def delete_blob(self, blob_id: str) -> None:
        """Delete a blob; deleting a missing blob is not an error."""

    @abc.abstractmethod
    def list_blobs(self) -> list[str]:
        """Return every blob id."""

    def blob_size(self, blob_id: str) -> int:
        """The size of a stored blob in bytes (0 if missing); override to avoid reading it."""
        try:
            return len(self.load_blob(blob_id))
        except StoreError:
            return 0

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release files and connections; the store may be reopened later."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


StoreFactory = Callable[[str], Store]
_BACKENDS: dict[str, StoreFactory] = {}


def register_store(scheme: str, factory: StoreFactory) -> None:
    """Make ``open_store("SCHEME://...")`` build stores with ``factory(location)``."""
    _BACKENDS[scheme] = factory


def open_store(location: str) -> Store:
    """Open the store at ``location``: a directory path, or ``SCHEME://...`` for a registered backend."""
    scheme, separator, rest = location.partition("://")
    if not separator:
        scheme, rest = "file", location
    try:
        factory = _BACKENDS[scheme]
    except KeyError:
        known = ", ".join(sorted(_BACKENDS))
        raise InvalidOption(f"No store backend for {scheme + '://'!r} (known: {known}); use a directory path.") from None
    return factory(rest)
