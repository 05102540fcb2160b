"""The ipywidgets panel, driven as its buttons are: rows from a known cache, Resume, confirmations, diffs, live updates."""

from __future__ import annotations

import html
import re

import pytest
from conftest import restart, run
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import nbflow
import nbflow._progress as progress_module
from nbflow._session import get_session

NOTEBOOK = [
    "%%step load\ndata = list(range(10))",
    "%%step clean\nclean = [v * 2 for v in data]",
    "%%step fit\nmodel = sum(clean)",
]


@pytest.fixture
def make_panel(shell):
    made = []

    def make(**options):
        panel = nbflow.panel(**options)
        made.append(panel)
        return panel

    yield make
    for panel in made:
        panel.close()


def states(panel):
    return {row["key"]: row["state"] for row in panel.model.steps.rows}


def text(widget):
    """A widget's HTML as the reader sees it: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", widget.value))


def html_states(panel):
    """What the page shows: step key -> the state cell's text, read from the rendered HTML."""
    pattern = r"<tr data-key='([^']*)'><td[^>]*><code>[^<]*</code></td><td class='nbflow-state nbflow-state-(\w+)'[^>]*>(\w+)</td>"
    return {key: text for key, css, text in re.findall(pattern, panel.steps_html.value) if css == text}


def test_a_known_cache_gives_the_expected_rows(shell, clock, make_panel):
    for cell in NOTEBOOK:
        run(shell, cell)
    run(shell, "%%step broken\nraise ValueError('nope')", ok=False)
    run(shell, "%%step short --ttl 5s\nshort = 1")
    clock.advance(90)
    run(shell, "data = [0]")  # clean read data: it would run again
    panel = make_panel()
    rows = {row["key"]: row for row in panel.model.steps.rows}
    assert list(rows) == ["load", "clean", "fit", "broken", "short"]
    assert rows["load"]["state"] == "completed" and rows["load"]["outputs"] == "data"
    assert rows["clean"]["state"] == "stale" and "input 'data' changed" in rows["clean"]["why"]
    assert rows["broken"]["state"] == "failed" and rows["broken"]["why"] == "ValueError: nope"
    assert rows["short"]["state"] == "expired" and rows["short"]["ttl left"] == "0.00s"
    assert rows["fit"]["ran"] == "1m 30s ago"
    assert html_states(panel) == {key: row["state"] for key, row in rows.items()}
    assert "5 step(s) · 4 version(s) · this kernel at <b>v4</b>" in panel.header.value
    assert [row.id for row in panel.model.versions] == ["v1", "v2", "v3", "v4"]
    assert panel.version_picker.value == "v4" and list(panel.step_picker.options) == list(rows)
    assert panel.step_picker.value == "load", "the step picker shows a choice"


def test_clicking_resume_restores_the_namespace(shell, make_panel):
    for cell in NOTEBOOK:
        run(shell, cell)
    expected = {name: shell.user_ns[name] for name in ("data", "clean", "model")}
    restart(shell)
    panel = make_panel()
    assert html_states(panel) == {"load": "completed", "clean": "completed", "fit": "completed"}
    panel.resume_button.click()
    assert {name: shell.user_ns[name] for name in expected} == expected
    assert html_states(panel) == {"load": "restored", "clean": "restored", "fit": "restored"}
    assert "resumed 3 step(s): load, clean, fit" in text(panel.message)
    assert "this kernel at <b>v3</b>" in panel.header.value
    run(shell, "%%step fit\nmodel = sum(clean)")  # the next run of the notebook restores, it does not execute
    assert get_session().activity.live["fit"][0] == "restored"


def test_events_update_the_rows_while_the_step_runs(shell, make_panel, monkeypatch):
    run(shell, NOTEBOOK[0])
    panel = make_panel()
    during: dict[str, str] = {}
    seen_progress: list[str] = []

    def watch(event):  # subscribed after the panel, so it sees the panel already updated
        if event.kind == "step_started":
            during.update(html_states(panel))
        if event.kind == "step_progress":
            seen_progress.append(next(row["why"] for row in panel.model.steps.rows if row["key"] == "big"))

    nbflow.subscribe(watch)
    monkeypatch.setattr(progress_module, "DELAY", 0.0)
    monkeypatch.setattr(progress_module, "_REFRESH", 0.0)
    run(shell, "%%step big\nbig = bytes(8_000_000)")
    assert during == {"load": "completed", "big": "running"}
    assert seen_progress and all(why.startswith("moving the checkpoint: ") for why in seen_progress)
    assert seen_progress[-1].startswith("moving the checkpoint: 100% 8.0 MB / 8.0 MB")
    assert html_states(panel) == {"load": "completed", "big": "completed"}
    assert [row.id for row in panel.model.versions] == ["v1", "v2"], "versions are re-read after the cell"
    assert "2 step(s) · 2 version(s)" in panel.header.value


def test_a_failure_shows_live(shell, make_panel):
    panel = make_panel()
    run(shell, "%%step broken\nraise KeyError('gone')", ok=False)
    assert html_states(panel) == {"broken": "failed"}
    assert panel.model.steps.rows[0]["why"] == "KeyError: 'gone'"


def test_clear_asks_first_and_cancel_changes_nothing(shell, make_panel):
    for cell in NOTEBOOK:
        run(shell, cell)
    panel = make_panel()
    panel.step_picker.value = "clean"
    panel.clear_button.click()
    assert panel.confirm_bar.layout.display == "flex" and "Clear step 'clean'?" in text(panel.question)
    assert "clean" in nbflow.snapshot()["steps"], "nothing is deleted before confirming"
    panel.cancel_button.click()
    assert panel.confirm_bar.layout.display == "none" and "cancelled; nothing changed" in text(panel.message)
    assert "clean" in nbflow.snapshot()["steps"]
    panel.clear_button.click()
    panel.confirm_button.click()
    assert "clean" not in nbflow.snapshot()["steps"]
    assert list(states(panel)) == ["load", "fit"] and "cleared step 'clean'" in text(panel.message)


def test_resume_to_a_version_asks_then_travels(shell, make_panel):
    for cell in NOTEBOOK:
        run(shell, cell)
    panel = make_panel()
    panel.version_picker.value = "v1"
    panel.resume_version_button.click()
    assert "Resume to v1?" in text(panel.question) and "model" in shell.user_ns
    panel.confirm_button.click()
    assert shell.user_ns["data"] == list(range(10))
    assert "clean" not in shell.user_ns and "model" not in shell.user_ns
    assert "this kernel at <b>v1</b>" in panel.header.value
    assert "v1" in text(panel.message) and "class='nbflow-ok'" in panel.message.value


def test_diff_with_parent_and_compare_any_two(shell, make_panel):
    run(shell, "%%step load\ndata = list(range(10))\nlabel = 'first'")
    run(shell, "%%step edit\nlabel = 'second'\nextra = {'a': 1}")
    panel = make_panel()
    panel.version_picker.value = "v2"
    panel.diff_button.click()
    assert panel.tabs.selected_index == 2
    assert (panel.diff_a.value, panel.diff_b.value) == ("v1", "v2")
    assert "diff v1 -> v2: 1 added, 1 changed, 0 removed" in text(panel.diff_html)
    assert "'first' -> 'second'" in text(panel.diff_html)
    panel.diff_a.value, panel.diff_b.value = "", "v1"
    panel.compare_button.click()
    assert "diff (empty) -> v1: 2 added" in text(panel.diff_html)
    panel.diff_b.value = "v99"
    panel.compare_button.click()
    assert "No version 'v99'" in text(panel.message) and "class='nbflow-error'" in panel.message.value


def test_errors_show_in_the_panel(shell, make_panel):
    run(shell, NOTEBOOK[0])
    restart(shell)
    panel = make_panel()
    store = get_session().store
    for blob in store.list_blobs():
        store.delete_blob(blob)
    panel.resume_button.click()
    assert "skipped 'load': checkpoint unreadable" in text(panel.message)
    assert "data" not in shell.user_ns


def test_pages_and_filter(shell, make_panel):
    for number in range(30):
        run(shell, f"%%step s{number:02}\nv{number:02} = {number}")
    panel = make_panel(page_size=12)
    assert len(html_states(panel)) == 12 and panel.steps_pager.label.value == "page 1 of 3 · 30 steps"
    assert panel.steps_pager.previous.disabled and not panel.steps_pager.next.disabled
    panel.steps_pager.next.click()
    panel.steps_pager.next.click()
    assert list(html_states(panel)) == [f"s{number:02}" for number in range(24, 30)] and panel.steps_pager.next.disabled
    assert panel.versions_pager.label.value == "page 3 of 3 · 30 versions", "versions open on this kernel's page"
    panel.filter.value = "s1"
    assert list(html_states(panel)) == [f"s{number}" for number in range(10, 20)]
    panel.filter.value = "nothing-like-this"
    assert "No step matches the filter." in panel.steps_html.value and panel.clear_button.disabled


def test_bad_options_are_one_line_errors(shell):
    with pytest.raises(nbflow.InvalidOption, match=r"page_size must be a whole number from 1 to 500 \(got 0\)"):
        nbflow.panel(page_size=0)
    with pytest.raises(UsageError, match="--page-size takes a whole number"):
        shell.run_line_magic("nbflow", "panel --page-size many")
    with pytest.raises(UsageError, match="unknown option '--wide'"):
        shell.run_line_magic("nbflow", "panel --wide")


def test_the_magic_displays_the_widget_with_a_static_fallback(shell):
    run(shell, NOTEBOOK[0])
    with capture_output() as captured:
        run(shell, "%nbflow panel --page-size 10")
    (output,) = captured.outputs
    assert "application/vnd.jupyter.widget-view+json" in output.data
    assert "<table class='nbflow-steps'>" in output.data["text/html"] and "data-key='load'" in output.data["text/html"]
    assert output.data["text/plain"].splitlines()[1].split()[:2] == ["load", "completed"]


def test_only_the_newest_panel_follows_and_older_ones_still_work(shell, make_panel):
    old = make_panel()
    new = make_panel()
    run(shell, NOTEBOOK[0])
    assert states(new) == {"load": "completed"} and states(old) == {}
    old.refresh_button.click()
    assert states(old) == {"load": "completed"} and "1 step(s) and 1 version(s) read from the cache" in text(old.message)


def test_a_closed_panel_stops_following(shell, make_panel):
    panel = make_panel()
    panel.close()
    run(shell, NOTEBOOK[0])
    assert states(panel) == {}


def test_the_snapshot_renders_as_the_steps_table(shell, clock):
    run(shell, NOTEBOOK[0])
    run(shell, "%%step broken\nraise ValueError('nope')", ok=False)
    clock.advance(90)
    snapshot = nbflow.snapshot()
    assert isinstance(snapshot, dict) and snapshot["steps"]["load"]["state"] == "completed"
    text = repr(snapshot).splitlines()
    assert text[0].startswith("nbflow snapshot: 2 step(s), 1 version(s) · execution failed (broken) · ")
    assert text[2].split()[:4] == ["load", "completed", "1m", "30s"]
    assert "ValueError: nope" in text[3]
    page = snapshot._repr_html_()
    assert "<table class='nbflow-steps'>" in page
    assert "<tr data-key='load'>" in page and "nbflow-state-failed'" in page
    from IPython.lib.pretty import pretty

    assert pretty(snapshot) == repr(snapshot)
