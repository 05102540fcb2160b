"""Failures and odd values: errors, interrupts, unpicklable outputs, unwritable or damaged caches, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import restart, run

from nbflow import NbflowWarning
from nbflow._session import get_session

COUNT = "runs = globals().get('runs', 0) + 1\n"


def test_failing_cell_shows_traceback_and_is_recorded_failed(shell, capsys):
    result = run(shell, "%%step boom\npartial = 1\nraise ValueError('bad data')", ok=False)
    assert isinstance(result.error_in_exec, ValueError)
    out = capsys.readouterr()
    assert "bad data" in out.out + out.err
    record = get_session().records()[0]
    assert record["state"] == "failed"
    assert record["error"] == {"type": "ValueError", "message": "bad data"}
    table = str(shell.run_cell("%nbflow status").result)
    assert "failed" in table and "ValueError: bad data" in table


def test_failed_step_executes_again(shell):
    run(shell, "%%step boom\n" + COUNT + "raise ValueError('x')", ok=False)
    run(shell, "%%step boom\n" + COUNT + "raise ValueError('x')", ok=False)
    assert shell.user_ns["runs"] == 2


def test_traceback_hides_nbflow_frames(shell, capsys):
    run(shell, "%%step boom\ndef inner():\n    raise KeyError('deep')\ninner()", ok=False)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "inner()" in text and "KeyError" in text
    assert "_cells.py" not in text and "_magics.py" not in text


def test_keyboard_interrupt_leaves_no_completed_step(shell, capsys):
    result = run(shell, "%%step slow\nx = 1\nraise KeyboardInterrupt", ok=False)
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    record = get_session().records()[0]
    assert record["state"] != "completed"
    capsys.readouterr()
    run(shell, "%%step slow\nx = 1")
    assert "slow: ran in" in capsys.readouterr().out


@pytest.mark.parametrize(
    "make, kind",
    [
        ("handle = open(__file__ if '__file__' in globals() else 'f.txt', 'w')", "TextIOWrapper"),
        ("import threading\nhandle = threading.Lock()", "lock"),
        ("handle = (i for i in range(3))", "generator"),
        ("import sqlite3\nhandle = sqlite3.connect(':memory:')", "Connection"),
    ],
)
def test_unpicklable_output_warns_and_step_reruns(shell, capsys, make, kind):
    cell = f"%%step res\n{COUNT}{make}\nfine = 1"
    with pytest.warns(NbflowWarning, match=rf"'handle' \(.*{kind}"):
        run(shell, cell)
    assert "handle" in shell.user_ns and shell.user_ns["fine"] == 1
    assert "not checkpointed" in capsys.readouterr().out
    assert get_session().records()[0]["state"] == "incomplete"
    restart(shell)
    with pytest.warns(NbflowWarning):
        run(shell, cell)
    assert shell.user_ns["runs"] == 1, "the step must execute again, not restore part of it"


def test_read_only_cache_keeps_results_and_warns_once(shell, read_only_dir, capsys):
    run(shell, f"%nbflow config dir={read_only_dir / '.nbflow'}")
    with pytest.warns(NbflowWarning, match="checkpoint not saved") as caught:
        run(shell, "%%step a\nx = 41 + 1")
    assert len([w for w in caught if issubclass(w.category, NbflowWarning)]) == 1
    assert shell.user_ns["x"] == 42
    assert "checkpoint NOT saved" in capsys.readouterr().out


def test_full_disk_keeps_results_and_leaves_cache_usable(shell, tiny_disk, capsys):
    run(shell, f"%nbflow config dir={tiny_disk / '.nbflow'}")
    run(shell, "%%step small\nsmall = 1")
    with pytest.warns(NbflowWarning, match="checkpoint not saved"):
        run(shell, "%%step big\nbig = bytes(8_000_000)")
    assert len(shell.user_ns["big"]) == 8_000_000
    assert not [p for p in (tiny_disk / ".nbflow" / "blobs").rglob("*") if p.is_file()], "no partial blob left"
    restart(shell)
    capsys.readouterr()
    run(shell, "%%step small\nsmall = 1")
    assert "small: restored" in capsys.readouterr().out


def _blob_files(cache: Path) -> list[Path]:
    return [p for p in (cache / "blobs").rglob("*") if p.is_file()]


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_damaged_checkpoint_warns_and_reexecutes(shell, cache_dir, capsys, damage):
    cell = "%%step big\n" + COUNT + "payload = bytes(range(256)) * 4096"
    run(shell, cell)
    (blob,) = _blob_files(cache_dir)
    if damage == "truncate":
        blob.write_bytes(blob.read_bytes()[:1000])
    elif damage == "flip":
        data = bytearray(blob.read_bytes())
        data[-10] ^= 0xFF
        blob.write_bytes(bytes(data))
    else:
        blob.unlink()
    restart(shell)
    with pytest.warns(NbflowWarning, match="cannot be read"):
        run(shell, cell)
    assert shell.user_ns["runs"] == 1
    assert shell.user_ns["payload"] == bytes(range(256)) * 4096
    capsys.readouterr()
    restart(shell)
    run(shell, cell)
    assert "big: restored" in capsys.readouterr().out, "the re-execution repaired the checkpoint"


def test_damaged_record_database_is_a_miss_not_a_crash(shell, cache_dir, capsys):
    run(shell, "%%step a\nx = 1")
    get_session().close()
    (cache_dir / "cache.db").write_bytes(b"this is not sqlite" * 100)
    restart(shell)
    with pytest.warns(NbflowWarning):
        run(shell, "%%step a\nx = 2")
    assert shell.user_ns["x"] == 2


@pytest.mark.parametrize(
    "line, message",
    [
        ("%%step", "needs a key"),
        ("%%step __reserved", "reserved"),
        ("%%step a --colour red", "unrecognized arguments"),
        ("%%step a --ttl 5 hours", "unrecognized arguments"),
        ("%%step a --ttl soon", "'ttl' must be"),
        ("%%step a --ttl=-5s", "'ttl' must be"),
        ("%%step a --on-change maybe", "invalid choice"),
        ("%%step fit:{undefined_alpha}", "undefined variable 'undefined_alpha'"),
        ("%%step fit:{a.b}", "placeholders must be plain variable names"),
    ],
)
def test_bad_input_is_a_one_line_usage_error_before_anything_runs(shell, capsys, line, message):
    result = run(shell, f"{line}\nside_effect = 1", ok=False)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "UsageError" in text and message in text
    assert "Traceback" not in text
    assert "side_effect" not in shell.user_ns
    assert result.success is False


def test_top_level_await_is_refused(shell, capsys):
    run(shell, "%%step a\nimport asyncio\nawait asyncio.sleep(0)", ok=False)
    assert "Top-level await" in capsys.readouterr().err


def test_bad_nbflow_command(shell, capsys):
    run(shell, "%nbflow frobnicate", ok=False)
    assert "is not a command" in capsys.readouterr().err
    run(shell, "%nbflow config colour=red", ok=False)
    assert "Unknown config setting 'colour'" in capsys.readouterr().err
    run(shell, "%nbflow config ttl=sometime", ok=False)
    assert "'ttl' must be" in capsys.readouterr().err
