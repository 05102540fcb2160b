"""Progress bars: silent for short operations, drawn for long ones, fed by the store as bytes move."""

from __future__ import annotations

import io

from conftest import FakeClock, restart, run

import nbflow._progress as progress_module
from nbflow._disk_store import LARGE_BLOB_BYTES, DiskStore
from nbflow._progress import Progress, advance, tracking


def test_nothing_is_drawn_before_the_delay():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress("saving big", 1000, delay=1.0, stream=stream, clock=clock)
    clock.advance(0.5)
    progress.advance(900)
    progress.close()
    assert stream.getvalue() == ""


def test_a_long_operation_draws_a_bar_then_ends_the_line():
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress("restoring big", 4_000_000_000, delay=1.0, stream=stream, clock=clock)
    clock.advance(1.5)
    progress.advance(1_000_000_000)
    first = stream.getvalue()
    assert first.startswith("\r[nbflow] restoring big: [")
    assert "25% 1.0 GB / 4.0 GB · 1.5s" in first
    clock.advance(0.1)
    progress.advance(1_000_000_000)
    assert stream.getvalue() == first, "redrawn sooner than the refresh interval"
    clock.advance(1.0)
    progress.advance(2_000_000_000)
    progress.close()
    lines = stream.getvalue().split("\r")
    assert "100% 4.0 GB / 4.0 GB · 2.6s" in lines[-1] and lines[-1].endswith("\n")


def test_the_store_reports_bytes_written_and_read(tmp_path):
    store = DiskStore(tmp_path / "store")
    payload = b"x" * (3 * LARGE_BLOB_BYTES)
    with tracking("saving", len(payload), delay=0.0, stream=io.StringIO()) as progress:
        store.save_blob("id", [payload[:100], memoryview(payload)[100:]])
    assert progress.done == len(payload)
    stream = io.StringIO()
    with tracking("restoring", len(payload), delay=0.0, stream=stream) as progress:
        assert bytes(store.load_blob("id")) == payload
    assert progress.done == len(payload)
    assert "100%" in stream.getvalue()
    store.close()


def test_advance_outside_a_tracking_scope_does_nothing():
    stream = io.StringIO()
    with tracking("saving", 100, delay=0.0, stream=stream) as finished:
        advance(100)
    drawn = stream.getvalue()
    advance(10)  # the scope is closed: reported to nobody
    assert finished.done == 100 and stream.getvalue() == drawn


def test_long_steps_show_progress_on_a_terminal(shell, capsys, monkeypatch):


    monkeypatch.setattr(progress_module, "DELAY", 0.0)
    monkeypatch.setattr(progress_module, "_is_terminal", lambda stream: True)
    cell = "%%step big\nimport numpy as np\nbig = np.ones(1_000_000)"
    run(shell, cell)
    assert "[nbflow] saving big: [" in capsys.readouterr().err
    restart(shell)
    run(shell, cell)
    err = capsys.readouterr().err
    assert "[nbflow] restoring big: [" in err and "100% 8.0 MB / 8.0 MB" in err
