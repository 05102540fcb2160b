"""The store interface: one conformance suite, run against every backend."""

from __future__ import annotations

import pytest

from nbflow import CorruptBlob, DiskStore, InvalidOption, Store, StoreError, open_store
from nbflow._disk_store import LARGE_BLOB_BYTES

BACKENDS = {"disk": lambda tmp_path: DiskStore(tmp_path / "store")}


@pytest.fixture(params=sorted(BACKENDS))
def store(request, tmp_path) -> Store:
    opened = BACKENDS[request.param](tmp_path)
    yield opened
    opened.close()


def test_records_round_trip(store):
    assert store.load_record("a") is None
    store.save_record("a", b'{"x": 1}')
    store.save_record("b:1", b"{}")
    store.save_record("a", b'{"x": 2}')
    assert store.load_record("a") == b'{"x": 2}'
    assert sorted(store.list_records()) == ["a", "b:1"]
    assert store.delete_record("a") is True
    assert store.delete_record("a") is False
    assert store.list_records() == ["b:1"]


@pytest.mark.parametrize("size", [0, 10, LARGE_BLOB_BYTES + 1, 3 * LARGE_BLOB_BYTES])
def test_blobs_round_trip_from_chunks(store, size):
    payload = bytes(range(256)) * (size // 256 + 1)
    chunks = [payload[: size // 3], memoryview(payload)[size // 3 : size]]
    store.save_blob("id1", chunks)
    assert bytes(store.load_blob("id1")) == payload[:size]
    assert store.has_blob("id1")
    assert store.list_blobs() == ["id1"]
    store.delete_blob("id1")
    store.delete_blob("id1")
    assert not store.has_blob("id1") and store.list_blobs() == []


def test_missing_blob_is_corrupt_blob(store):
    with pytest.raises(CorruptBlob, match="missing"):
        store.load_blob("nope")


def test_reopen_sees_the_same_data(tmp_path):
    first = DiskStore(tmp_path / "s")
    first.save_record("k", b"v")
    first.save_blob("b", [b"x" * (LARGE_BLOB_BYTES + 5)])
    first.close()
    second = open_store(str(tmp_path / "s"))
    assert second.load_record("k") == b"v" and len(second.load_blob("b")) == LARGE_BLOB_BYTES + 5


def test_large_blobs_are_plain_files_and_never_evicted(tmp_path):
    store = DiskStore(tmp_path / "s")
    store.save_blob("big", [bytes(LARGE_BLOB_BYTES + 1)])
    assert (tmp_path / "s" / "blobs" / "bi" / "big").stat().st_size == LARGE_BLOB_BYTES + 1
    assert store._cache.eviction_policy == "none"


def test_unopenable_directory_is_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreError, match="Cannot open the nbflow cache"):
        DiskStore(blocker / "cache")


def test_unknown_scheme_is_clear():
    with pytest.raises(InvalidOption, match="No store backend for 'ftp://'"):
        open_store("ftp://example/cache")


def test_add_record_only_creates(store):
    assert store.add_record("v", b"first") is True
    assert store.add_record("v", b"second") is False
    assert store.load_record("v") == b"first"


@pytest.mark.parametrize("size", [5, LARGE_BLOB_BYTES + 7])
def test_blob_size_small_and_large(store, size):
    store.save_blob("b", [bytes(size)])
    assert store.blob_size("b") == size
    assert store.blob_size("missing") == 0
