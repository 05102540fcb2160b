"""Checkpoint frames and fingerprints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbflow import CorruptBlob
from nbflow._serialization import deserialize, fingerprint, serialize


def round_trip(value):
    frame = serialize(value)
    data = bytearray(b"".join(bytes(chunk) for chunk in frame.chunks))
    assert len(data) == frame.nbytes
    return deserialize(data, frame.digest)


def test_numpy_arrays_round_trip_writable_and_aligned():
    for array in [
        np.arange(1000.0),
        np.arange(12).reshape(3, 4)[:, ::2],
        np.asfortranarray(np.ones((5, 7))),
        np.array(["a", None], dtype=object),
    ]:
        back = round_trip(array)
        np.testing.assert_array_equal(back, array)
        assert back.dtype == array.dtype
    big = round_trip(np.arange(10_000, dtype="float64"))
    assert big.flags.writeable and big.flags.aligned


def test_dataframes_round_trip():
    frame = pd.DataFrame(
        {
            "i": range(5),
            "f": np.linspace(0, 1, 5),
            "s": list("abcde"),
            "c": pd.Categorical(list("aabbc")),
            "t": pd.date_range("2024", periods=5),
        }
    )
    assert round_trip(frame).equals(frame)


def test_wrong_digest_and_damage_are_corrupt_blob():
    frame = serialize(np.arange(100.0))
    data = bytearray(b"".join(bytes(chunk) for chunk in frame.chunks))
    with pytest.raises(CorruptBlob, match="checksum"):
        deserialize(data, "0" * 32)
    with pytest.raises(CorruptBlob, match="truncated"):
        deserialize(data[:20], frame.digest)
    with pytest.raises(CorruptBlob, match="not an nbflow checkpoint"):
        deserialize(b"x" * 100, None)


def test_other_format_version_is_corrupt_blob_not_a_crash():
    frame = serialize([1, 2])
    data = bytearray(b"".join(bytes(chunk) for chunk in frame.chunks))
    data[7] = 99
    with pytest.raises(CorruptBlob, match="format 99"):
        deserialize(data, frame.digest)


def test_fingerprint_ignores_where_functions_were_defined():
    source = "def helper(v):\n    return v * 2\n"
    first, second = {}, {}
    exec(compile(source, "/tmp/ipykernel_111/1.py", "exec"), first)
    exec(compile(source, "/tmp/ipykernel_222/9.py", "exec"), second)
    assert fingerprint(first["helper"]) == fingerprint(second["helper"])
    changed = {}
    exec(compile(source.replace("2", "3"), "x.py", "exec"), changed)
    assert fingerprint(changed["helper"]) != fingerprint(first["helper"])


def test_fingerprint_sets_by_content_and_modules_by_name():
    assert fingerprint({"b", "a", "c"}) == fingerprint({"c", "a", "b"})
    assert fingerprint({1, 2}) != fingerprint(frozenset({1, 2}))
    assert fingerprint(np) == "module:numpy"


def test_fingerprint_detects_small_changes_in_large_arrays():
    array = np.zeros(1_000_000)
    before = fingerprint(array)
    array[123_456] = 1e-300
    assert fingerprint(array) != before


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_round_trip_and_fingerprint_properties(value):
    assert round_trip(value) == value
    assert fingerprint(round_trip(value)) == fingerprint(value)


@pytest.mark.parametrize(
    "make",
    [lambda: np.ones(10_000_000), lambda: pd.DataFrame({"a": np.ones(5_000_000), "b": np.arange(5_000_000)})],
    ids=["array", "dataframe"],
)
def test_fingerprint_and_serialize_do_not_copy_large_buffers(make):
    import tracemalloc

    value = make()
    tracemalloc.start()
    try:
        fingerprint(value)
        serialize(value)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, f"{peak} bytes allocated for an 80 MB value: a buffer was copied"
