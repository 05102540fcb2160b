"""The zero-copy path: out-of-band buffers written from memory, read into fresh memory or mapped copy-on-write."""

from __future__ import annotations

import hashlib
import json
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import restart, run

from nbflow import NbflowWarning
from nbflow._config import Config
from nbflow._disk_store import LARGE_BLOB_BYTES, DiskStore
from nbflow._engine import Engine, StepOptions
from nbflow._serialization import FORMAT_VERSION, deserialize, fingerprint, serialize
from nbflow._session import Session, get_session

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="memory maps are checked through /proc/self/maps")

ROWS = 40_000  # columns of 40,000 rows are stored as files, not inline


def frame_bytes(value: object) -> tuple[bytearray, str, int]:
    frame = serialize(value)
    return bytearray(b"".join(bytes(chunk) for chunk in frame.chunks)), frame.digest, len(frame.chunks)


def every_dtype(rows: int) -> pd.DataFrame:
    index = np.arange(rows)
    return pd.DataFrame(
        {
            "int8": (index % 100).astype("int8"),
            "int16": index.astype("int16"),
            "int32": index.astype("int32"),
            "int64": index.astype("int64"),
            "uint8": (index % 200).astype("uint8"),
            "uint64": index.astype("uint64"),
            "float32": index.astype("float32") / 3,
            "float64": index / 7,
            "complex": index * (1 + 2j),
            "bool": index % 2 == 0,
            "datetime": pd.date_range("2024-01-01", periods=rows, freq="s"),
            "datetime_tz": pd.date_range("2024-01-01", periods=rows, freq="min", tz="Europe/Paris"),
            "timedelta": pd.to_timedelta(index, unit="ms"),
            "category": pd.Categorical(np.array(["low", "mid", "high"])[index % 3]),
            "str": pd.array(np.array(["a", "bb", None], dtype=object)[index % 3], dtype="string"),
            "object": pd.Series(np.array([1, "two", None, (3, 4), [5]], dtype=object)[index % 5]),
            "Int64": pd.array(np.where(index % 4 == 0, None, index), dtype="Int64"),
            "boolean": pd.array(np.where(index % 3 == 0, None, index % 2 == 0), dtype="boolean"),
            "Float64": pd.array(np.where(index % 5 == 0, None, index / 2), dtype="Float64"),
            "period": pd.period_range("2000-01", periods=rows, freq="D"),
            "interval": pd.interval_range(0, rows),
        },
        index=pd.Index(index * 2, name="id"),
    )


def engine_round_trip(engine: Engine, value: object, *, mmap: bool = False) -> object:
    report = engine.save_return("value", value, code_hash="h", source="", inputs={}, started_at=0.0, duration=0.0, options=StepOptions())
    assert report.ok, report
    record = engine.load("value")
    assert record is not None
    return engine.restore(record, mmap=mmap).values["return"]


@pytest.fixture
def engine(tmp_path):
    session = Session(Config(dir=str(tmp_path / "cache")))
    yield Engine(session)
    session.close()


def test_large_arrays_are_written_from_and_read_into_memory_without_copies():
    array = np.arange(100_000, dtype="float64")
    frame = serialize(array)
    assert any(isinstance(chunk, memoryview) and np.shares_memory(np.asarray(chunk), array) for chunk in frame.chunks)
    data, digest, _ = frame_bytes(array)
    back = deserialize(data, digest)
    assert np.shares_memory(back, np.frombuffer(data, dtype="uint8")), "the restored array copied the buffer"
    assert (back.ctypes.data - np.frombuffer(data, dtype="uint8").ctypes.data) % 64 == 0
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable


@pytest.mark.parametrize("mmap_restore", [False, True], ids=["read", "mmap"])
@pytest.mark.parametrize("rows", [30, ROWS], ids=["inline", "file"])
def test_dataframes_with_every_common_dtype_round_trip(engine, rows, mmap_restore):
    frame = every_dtype(rows)
    back = engine_round_trip(engine, frame, mmap=mmap_restore)
    pd.testing.assert_frame_equal(back, frame)
    assert [type(block.values) for block in back._mgr.blocks] == [type(block.values) for block in frame._mgr.blocks]


def test_non_contiguous_and_read_only_arrays_keep_values_layout_and_flags(engine):
    base = np.arange(60_000, dtype="float64").reshape(300, 200)
    frozen = base.copy()
    frozen.flags.writeable = False
    values = {
        "strided": base[::3, ::2],
        "transposed": base.T,
        "fortran": np.asfortranarray(base),
        "frozen": frozen,
        "reversed": base[::-1],
    }
    back = engine_round_trip(engine, values)
    for name, array in values.items():
        np.testing.assert_array_equal(back[name], array, err_msg=name)
        assert back[name].dtype == array.dtype
        assert back[name].flags.f_contiguous == array.flags.f_contiguous, name
        assert back[name].flags.writeable == array.flags.writeable, name
        assert fingerprint(back[name]) == fingerprint(array), name


def test_object_dtype_columns_and_arrays_round_trip(engine):
    objects = np.empty(ROWS, dtype=object)
    objects[:] = [{"k": i} if i % 3 else f"s{i}" for i in range(ROWS)]
    frame = pd.DataFrame({"objects": objects, "numbers": np.arange(ROWS)})
    back = engine_round_trip(engine, {"frame": frame, "array": objects})
    pd.testing.assert_frame_equal(back["frame"], frame)
    assert back["array"].dtype == object and list(back["array"]) == list(objects)


def test_nested_containers_keep_arrays_out_of_band_and_shared(engine):
    shared = np.arange(50_000, dtype="int64")
    value = {"list": [shared, shared[:10]], "tuple": (np.ones(40_000, dtype="float32"), {"deep": [shared]})}
    _, _, chunk_count = frame_bytes(value)
    assert chunk_count >= 2 + 3, "each array buffer should be its own chunk"
    back = engine_round_trip(engine, value)
    assert back["list"][0] is back["tuple"][1]["deep"][0], "one array stored once comes back as one object"
    np.testing.assert_array_equal(back["list"][0], shared)
    np.testing.assert_array_equal(back["list"][1], shared[:10])
    np.testing.assert_array_equal(back["tuple"][0], np.ones(40_000, dtype="float32"))


def test_large_blobs_load_into_writable_memory(tmp_path):
    store = DiskStore(tmp_path / "store")
    payload = bytes(range(256)) * (4 * LARGE_BLOB_BYTES // 256)
    store.save_blob("id", [payload])
    loaded = store.load_blob("id")
    assert bytes(loaded) == payload
    view = memoryview(loaded)
    assert not view.readonly
    store.close()


@linux_only
def test_mmap_restore_is_copy_on_write_and_never_changes_the_cache(engine):
    array = np.arange(200_000, dtype="float64")
    mapped = engine_round_trip(engine, array, mmap=True)
    np.testing.assert_array_equal(mapped, array)
    assert mapped.flags.writeable
    blob = engine.load("value")["outputs"]["return"]["blob"]
    path = engine.session.store._blob_path(blob)  # type: ignore[attr-defined]
    assert mapped_file(mapped) == str(path), "not a map of the saved file"
    stored = hashlib.sha256(path.read_bytes()).hexdigest()
    mapped[:] = -1.0
    assert hashlib.sha256(path.read_bytes()).hexdigest() == stored
    again = engine.restore(engine.load("value"), mmap=True).values["return"]
    np.testing.assert_array_equal(again, array)
    copied = engine.restore(engine.load("value")).values["return"]
    assert mapped_file(copied) is None
    np.testing.assert_array_equal(copied, array)


def mapped_file(array: np.ndarray) -> str | None:
    """The file whose memory map holds ``array``'s data, from /proc/self/maps (None for anonymous memory)."""
    address = array.ctypes.data
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            start, end = (int(part, 16) for part in fields[0].split("-"))
            if start <= address < end:
                return fields[5] if len(fields) > 5 and fields[5].startswith("/") else None
    return None


BIG = "%%step big{flag}\nimport numpy as np\nbig = np.arange(300_000, dtype='float64')"


def step_output(shell, capsys, code: str) -> str:
    capsys.readouterr()
    run(shell, code)
    return capsys.readouterr().out


@linux_only
def test_mmap_step_restores_after_a_restart_and_writes_stay_private(shell, capsys):
    assert "ran in" in step_output(shell, capsys, BIG.format(flag=" --mmap"))
    restart(shell)
    assert "restored" in step_output(shell, capsys, BIG.format(flag=" --mmap"))
    big = shell.user_ns["big"]
    assert mapped_file(big) is not None and "/blobs/" in mapped_file(big)
    run(shell, "big[:] = 0")
    restart(shell)
    assert "restored" in step_output(shell, capsys, BIG.format(flag=""))
    assert mapped_file(shell.user_ns["big"]) is None
    np.testing.assert_array_equal(shell.user_ns["big"], np.arange(300_000, dtype="float64"))


@linux_only
def test_mmap_setting_applies_to_resume(shell):
    run(shell, "%%step big\nimport numpy as np\nbig = np.arange(300_000, dtype='float64')")
    restart(shell)
    run(shell, "%nbflow config mmap=true")
    run(shell, "%nbflow resume")
    assert "/blobs/" in (mapped_file(shell.user_ns["big"]) or "")


def test_a_checkpoint_of_another_format_is_a_miss_not_a_crash(shell, capsys):
    cell = "%%step load\ncounter = [1]"
    run(shell, cell)
    store = get_session().store
    record = json.loads(store.load_record("load"))
    record["serialization"] = FORMAT_VERSION - 1
    store.save_record("load", json.dumps(record).encode())
    restart(shell)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NbflowWarning)
        out = step_output(shell, capsys, cell)
    assert "ran in" in out and f"checkpoint format {FORMAT_VERSION - 1}" in out, out
    assert shell.user_ns["counter"] == [1]
    restart(shell)
    assert "restored counter" in step_output(shell, capsys, cell), "the re-run wrote a current-format checkpoint"


def test_resume_skips_a_checkpoint_of_another_format(shell, capsys):
    run(shell, "%%step load\nvalue = 41")
    store = get_session().store
    record = json.loads(store.load_record("load"))
    record["serialization"] = FORMAT_VERSION + 1
    store.save_record("load", json.dumps(record).encode())
    restart(shell)
    out = step_output(shell, capsys, "%nbflow resume")
    assert "value" not in shell.user_ns
    assert f"skipped 'load': checkpoint format {FORMAT_VERSION + 1}" in out, out


def test_a_blob_of_another_frame_version_is_unreadable_then_runs(shell, capsys):
    run(shell, BIG.format(flag=""))
    store = get_session().store
    record = json.loads(store.load_record("big"))
    path = store._blob_path(record["outputs"]["big"]["blob"])  # type: ignore[attr-defined]
    data = bytearray(path.read_bytes())
    data[7] = FORMAT_VERSION + 1
    path.write_bytes(data)
    restart(shell)
    with pytest.warns(NbflowWarning, match=f"checkpoint format {FORMAT_VERSION + 1}"):
        out = step_output(shell, capsys, BIG.format(flag=""))
    assert "ran in" in out
    np.testing.assert_array_equal(shell.user_ns["big"], np.arange(300_000.0))
    restart(shell)
    assert "restored big" in step_output(shell, capsys, BIG.format(flag=""))


@linux_only
def test_step_decorator_with_mmap_returns_a_map_of_the_saved_file(cache_dir):
    from nbflow import step

    @step(mmap=True)
    def make(n):
        return np.arange(n, dtype="float64")

    first = make(300_000)
    assert mapped_file(first) is None
    again = make(300_000)
    assert "/blobs/" in (mapped_file(again) or "")
    np.testing.assert_array_equal(again, first)


def test_mmap_setting_rejects_a_non_boolean(shell):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="'mmap' must be true or false"):
        shell.run_line_magic("nbflow", "config mmap=maybe")
    assert get_session().config.mmap is False
