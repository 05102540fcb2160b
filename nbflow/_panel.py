"""The ipywidgets panel: steps, the version timeline and diffs, with Resume, Resume to a version, Clear and Refresh.

Only this module imports ipywidgets, and only when a panel is made. The newest
panel listens to step events, so it follows the steps this kernel runs without
any polling; after each cell that ran a step it re-reads the cache once (stale
checks, new versions). Destructive actions ask for confirmation in the panel;
every action writes its result or its error in the panel's message area.
"""

from __future__ import annotations

import contextlib
import html
import weakref
from collections.abc import Callable, Container, MutableMapping
from typing import Any

import ipywidgets as widgets

from ._engine import Engine
from ._errors import NbflowError
from ._events import StepEvent, subscribe
from ._history import VersionTable
from ._panel_model import PanelModel, check_page_size, page_of

_STYLE = """<style>
.nbflow-panel table { border-collapse: collapse; margin: 4px 0; }
.nbflow-panel th, .nbflow-panel td { padding: 2px 10px; text-align: left; vertical-align: top; }
.nbflow-panel thead th { border-bottom: 1px solid #d0d7de; }
.nbflow-panel tbody tr:nth-child(even) { background: rgba(127, 127, 127, 0.07); }
</style>"""
_following: weakref.ref[Panel] | None = None
"""The newest panel: only it follows events, so re-running a panel cell never leaves old panels working."""


class _Pager:
    """‹ page i of n › for one list."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self.page = 0
        self.pages = 1
        self.previous = widgets.Button(description="‹", tooltip="Previous page", layout=widgets.Layout(width="32px"))
        self.next = widgets.Button(description="›", tooltip="Next page", layout=widgets.Layout(width="32px"))
        self.label = widgets.Label()
        self.previous.on_click(lambda _: self.go(self.page - 1))
        self.next.on_click(lambda _: self.go(self.page + 1))
        self._on_change = on_change
        self.box = widgets.HBox([self.previous, self.label, self.next])

    def go(self, page: int) -> None:
        self.page = page
        self._on_change()

    def show(self, page: int, pages: int, count: int, noun: str) -> None:
        self.page, self.pages = page, pages
        self.label.value = f"page {page + 1} of {pages} · {count:,} {noun}"
        self.previous.disabled = page <= 0
        self.next.disabled = page >= pages - 1


class Panel:
    """The snapshot browser: display it in a notebook (``%nbflow panel`` or ``nbflow.panel()``)."""

    def __init__(
        self,
        engine: Engine,
        namespace: MutableMapping[str, Any],
        hidden: Container[str] = (),
        *,
        shell: Any = None,
        page_size: int = 25,
    ) -> None:
        self.page_size = check_page_size(page_size)
        self.model = PanelModel(engine, namespace, hidden)
        self._shell = shell
        self._due: set[str] = set()
        """What step events made out of date: "steps", "versions"."""
        self._pending: Callable[[], str] | None = None
        self._message_text = ""
        self._build()
        self._render_all()
        global _following
        previous = _following() if _following is not None else None
        if previous is not None:
            previous.stop_following()
        _following = weakref.ref(self)
        self._unsubscribe = subscribe(self._on_event)
        if shell is not None:
            shell.events.register("post_run_cell", self._after_cell)

    # -- layout --------------------------------------------------------------

    def _build(self) -> None:
        self.header = widgets.HTML()
        self.resume_button = self._button("Resume", "play", "Restore every valid completed step (nothing is executed)", "success")
        self.resume_button.add_class("nbflow-resume")
        self.refresh_button = self._button("Refresh", "refresh", "Read the cache again")
        self.question = widgets.HTML()
        self.confirm_button = self._button("Confirm", "check", "Do it", "danger")
        self.cancel_button = self._button("Cancel", "times", "Leave everything as it is")
        self.confirm_bar = widgets.HBox([self.question, self.confirm_button, self.cancel_button], layout=widgets.Layout(display="none"))
        self.message = widgets.HTML()
        self.message.add_class("nbflow-message")

        self.filter = widgets.Text(placeholder="filter: key, state or output name", continuous_update=False)
        self.steps_pager = _Pager(self._render_steps)
        self.steps_html = widgets.HTML()
        self.step_picker = widgets.Dropdown(description="Step", options=[])
        self.clear_button = self._button("Clear step…", "trash", "Delete this step's checkpoint (asks first)", "warning")
        steps_tab = widgets.VBox(
            [widgets.HBox([self.filter, self.steps_pager.box]), self.steps_html, widgets.HBox([self.step_picker, self.clear_button])]
        )

        self.versions_pager = _Pager(self._render_versions)
        self.versions_html = widgets.HTML()
        self.version_picker = widgets.Dropdown(description="Version", options=[])
        self.resume_version_button = self._button("Resume to this version…", "history", "Make the namespace what it was there (asks first)")
        self.diff_button = self._button("Diff with parent", "columns", "Compare this version with its parent")
        versions_tab = widgets.VBox(
            [self.versions_pager.box, self.versions_html, widgets.HBox([self.version_picker, self.resume_version_button, self.diff_button])]
        )

        self.diff_a = widgets.Text(description="From", placeholder="parent of To")
        self.diff_b = widgets.Text(description="To", placeholder="this kernel's version")
        self.compare_button = self._button("Compare", "exchange", "Show what differs between the two versions")
        self.diff_html = widgets.HTML()
        diff_tab = widgets.VBox([widgets.HBox([self.diff_a, self.diff_b, self.compare_button]), self.diff_html])

        self.tabs = widgets.Tab(children=[steps_tab, versions_tab, diff_tab], titles=("Steps", "Versions", "Diff"))
        toolbar = widgets.HBox([self.resume_button, self.refresh_button])
        style = widgets.HTML(_STYLE, layout=widgets.Layout(display="none"))
        self.widget = widgets.VBox([style, self.header, toolbar, self.confirm_bar, self.message, self.tabs])
        self.widget.add_class("nbflow-panel")

        self.resume_button.on_click(lambda _: self._act(self.model.resume))
        self.refresh_button.on_click(lambda _: self._act(self._reread, refresh=False))
        self.clear_button.on_click(lambda _: self._ask_clear())
        self.resume_version_button.on_click(lambda _: self._ask_resume_to())
        self.diff_button.on_click(lambda _: self._diff_selected())
        self.compare_button.on_click(lambda _: self._show_diff())
        self.confirm_button.on_click(lambda _: self._confirm())
        self.cancel_button.on_click(lambda _: self._cancel())
        self.filter.observe(lambda _: self._render_steps(), names="value")

    @staticmethod
    def _button(description: str, icon: str, tooltip: str, style: str = "") -> widgets.Button:
        return widgets.Button(description=description, icon=icon, tooltip=tooltip, button_style=style, layout=widgets.Layout(width="auto"))

    # -- rendering -----------------------------------------------------------

    def _render_all(self) -> None:
        self.versions_pager.page = self.model.head_page(self.page_size)
        self._render_header()
        self._render_steps()
        self._render_versions()

    def _render_header(self) -> None:
        model = self.model
        head = f" · this kernel at <b>{html.escape(model.head)}</b>" if model.head else ""
        self.header.value = (
            f"<b>nbflow</b> · {len(model.steps.rows):,} step(s) · {len(model.versions):,} version(s){head}"
            f" · <span style='opacity:.7;font-size:90%'>{html.escape(model.engine.session.store.location)}</span>"
        )

    def _render_steps(self) -> None:
        rows = self.model.step_rows(self.filter.value)
        shown, page, pages = page_of(rows, self.steps_pager.page, self.page_size)
        self.steps_pager.show(page, pages, len(rows), "steps")
        self.steps_html.value = self.model.steps.to_html(shown) if rows or not self.filter.value else "<p>No step matches the filter.</p>"
        keys = [row["key"] for row in shown]
        if list(self.step_picker.options) != keys:
            self.step_picker.options = keys
        if keys and self.step_picker.value not in keys:
            self.step_picker.value = keys[0]  # a Dropdown given new options shows no choice
        self.clear_button.disabled = not keys

    def _render_versions(self) -> None:
        shown, page, pages = page_of(self.model.versions, self.versions_pager.page, self.page_size)
        self.versions_pager.show(page, pages, len(self.model.versions), "versions")
        self.versions_html.value = VersionTable(shown)._repr_html_()
        ids = [row.id for row in shown]
        if list(self.version_picker.options) != ids:
            self.version_picker.options = ids
            if ids:
                self.version_picker.value = self.model.head if self.model.head in ids else ids[-1]
        self.resume_version_button.disabled = self.diff_button.disabled = not ids

    @property
    def rows(self) -> list[dict[str, str]]:
        """Every step's row (key, state, ran, duration, ttl left, size, outputs, why), as the Steps tab shows them."""
        return list(self.model.steps.rows)

    @property
    def message_text(self) -> str:
        """The last result or error the panel showed, as plain text."""
        return self._message_text

    def _say(self, text: str, *, error: bool = False) -> None:
        self._message_text = text
        kind, color = ("nbflow-error", "#cf222e") if error else ("nbflow-ok", "inherit")
        self.message.value = f"<pre class='{kind}' style='margin:4px 0;color:{color};white-space:pre-wrap'>{html.escape(text)}</pre>"

    # -- live updates --------------------------------------------------------

    def _on_event(self, event: StepEvent) -> None:
        self.model.apply(event)
        if event.kind == "version_created":
            self._due.add("versions")
        elif event.kind not in ("step_started", "step_progress"):  # a step ended: other rows may have gone stale
            self._due.add("steps")
        if self._shell is None:  # no cell boundary to wait for: read the cache now
            self._read_due()
            return
        self._render_header()
        self._render_steps()

    def _after_cell(self, *_: Any) -> None:
        self._read_due()

    def _read_due(self) -> None:
        """Re-read what step events made out of date (steps, versions), once, and redraw."""
        due, self._due = self._due, set()
        if "steps" in due:
            self.model.refresh_steps()
        if "versions" in due:
            self.model.refresh_versions()
        if due:
            self._render_header()
            self._render_steps()
            self._render_versions()

    def refresh(self) -> None:
        """Read the cache again and redraw (the Refresh button)."""
        self._due = {"steps", "versions"}
        self._read_due()

    def _reread(self) -> str:
        self.refresh()
        return f"nbflow: {len(self.model.steps.rows)} step(s) and {len(self.model.versions)} version(s) read from the cache."

    # -- actions -------------------------------------------------------------

    def _act(self, action: Callable[[], str], *, refresh: bool = True) -> None:
        """Run an action, refresh, and say what happened; an error is shown in the panel, never lost."""
        try:
            outcome = action()
            if refresh:
                self.refresh()
        except NbflowError as exc:
            self._say(f"nbflow: {exc}", error=True)
        except Exception as exc:  # noqa: BLE001 - shown in the panel, not lost in the browser console
            self._say(f"nbflow: {type(exc).__name__}: {exc}", error=True)
        else:
            self._say(outcome)

    def _ask(self, question: str, action: Callable[[], str]) -> None:
        self._pending = action
        self.question.value = f"<b>{html.escape(question)}</b>"
        self.confirm_bar.layout.display = "flex"

    def _confirm(self) -> None:
        action, self._pending = self._pending, None
        self.confirm_bar.layout.display = "none"
        if action is not None:
            self._act(action)

    def _cancel(self) -> None:
        self._pending = None
        self.confirm_bar.layout.display = "none"
        self._say("nbflow: cancelled; nothing changed.")

    def _ask_clear(self) -> None:
        key = self.step_picker.value
        if key:
            self._ask(f"Clear step {key!r}? Its checkpoint is deleted; the step runs again next time.", lambda: self.model.clear(key))

    def _ask_resume_to(self) -> None:
        version = self.version_picker.value
        if version:
            question = f"Resume to {version}? Names steps produced get their {version} values; names made after it are removed."
            self._ask(question, lambda: self.model.resume_to(version))

    def _diff_selected(self) -> None:
        version = self.version_picker.value
        if version:
            self.diff_a.value = self.model.version(version).parent or ""
            self.diff_b.value = version
            self.tabs.selected_index = 2
            self._show_diff()

    def _show_diff(self) -> None:
        try:
            result = self.model.diff(self.diff_a.value.strip(), self.diff_b.value.strip())
        except NbflowError as exc:
            self.diff_html.value = ""
            self._say(f"nbflow: {exc}", error=True)
            return
        self.diff_html.value = result._repr_html_()
        self._say(result._title())

    # -- display and lifetime ------------------------------------------------

    def stop_following(self) -> None:
        """Stop updating live (a newer panel does it); the buttons keep working and refresh this panel."""
        self._unsubscribe()
        if self._shell is not None:
            with contextlib.suppress(ValueError):  # already unregistered
                self._shell.events.unregister("post_run_cell", self._after_cell)

    def close(self) -> None:
        """Stop following events and close the widgets."""
        self.stop_following()
        _close_tree(self.widget)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """The live widget, plus the static steps table for viewers where widgets do not run."""
        bundle: dict[str, Any] = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = self.model.steps.to_html()
        bundle["text/plain"] = str(self.model.steps)
        return bundle


def _close_tree(widget: widgets.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()
