"""The IPython front-end: the ``%%step`` cell magic and the ``%nbflow`` line magic."""

from __future__ import annotations

import ast
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from . import _api
from ._capture import capture_output, replay
from ._cells import CellRun, run_cell_step
from ._config import ON_CHANGE_CHOICES
from ._duration import format_duration, format_size, parse_ttl
from ._engine import NO_RESULT, Engine, StepOptions, describe_outputs
from ._errors import NbflowError
from ._keys import render_key, validate_key
from ._session import get_session

_SUBCOMMANDS = (
    "status, panel [--page-size N], resume [VERSION], versions, diff [A [B]], clear KEY, clear --all, gc [--keep-last N] [--drop-expired], "
    "export PATH, import PATH, config [name=value ...]"
)


@magics_class
class NbflowMagics(Magics):
    """``%%step KEY`` caches a cell; ``%nbflow`` inspects and manages the cache."""

    @property
    def _ipython(self) -> InteractiveShell:
        if self.shell is None:
            raise UsageError("nbflow's magics need a running IPython shell.")
        return self.shell

    @no_var_expand
    @magic_arguments()
    @argument("key", nargs="?", help="The step's key; {name} placeholders are filled from the namespace.")
    @argument("--ttl", help="How long the checkpoint stays valid: 30s, 15m, 6h, 7d, 2w, seconds, or never.")
    @argument("--force", action="store_true", help="Execute even if a valid checkpoint exists, and overwrite it.")
    @argument("--on-change", dest="on_change", choices=ON_CHANGE_CHOICES, help="What a code change does (default: rerun).")
    @argument("--mmap", action="store_true", help="Restore large values as copy-on-write memory maps (read as touched).")
    @cell_magic
    def step(self, line: str, cell: str) -> Any:
        """Run the cell as a checkpointed step: restore its results if still valid, else execute and save them."""
        __tracebackhide__ = True  # noqa: F841 - IPython hides this frame in tracebacks
        arguments = parse_argstring(self.step, line)
        session = get_session()
        try:
            if not arguments.key:
                raise NbflowError("A step needs a key: %%step KEY [--ttl DURATION] [--force] [--on-change rerun|warn|ignore].")
            key = render_key(validate_key(arguments.key, template=True), self._ipython.user_ns)
            options = StepOptions(
                ttl=session.config.ttl if arguments.ttl is None else parse_ttl(arguments.ttl),
                force=arguments.force,
                on_change=arguments.on_change or session.config.on_change,
                mmap=arguments.mmap or session.config.mmap,
            )
            source = self._ipython.transform_cell(cell)
            tree = ast.parse(source)
        except NbflowError as exc:
            raise UsageError(str(exc)) from None
        except SyntaxError:
            source, tree = cell, None
        if tree is not None and _has_top_level_await(tree):
            raise UsageError("Top-level await is not supported in %%step cells; wrap the code in a function and call it.")

        def execute() -> Any:
            __tracebackhide__ = True  # noqa: F841
            result = _execute(self._ipython, cell, source, tree)
            _flush_inline_figures()
            return result

        run = run_cell_step(
            Engine(session),
            key=key,
            source=source,
            namespace=self._ipython.user_ns,
            execute=execute,
            options=options,
            hidden=self._ipython.user_ns_hidden,
            capture=lambda: capture_output(self._ipython),
        )
        if run.action == "restored" and run.restored is not None:
            replay(run.restored.events)
        print(_status_line(run, session.clock()))
        return None if run.result is NO_RESULT else run.result

    @line_magic
    def nbflow(self, line: str) -> Any:
        """Manage steps and versions: status, panel, resume [VERSION], versions, diff [A [B]], clear, gc, export, import, config."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%nbflow: {exc}.") from None
        command, rest = (words[0], words[1:]) if words else ("status", [])
        try:
            if command == "status" and not rest:
                return _api.status(self._ipython.user_ns)
            if command == "resume" and len(rest) <= 1:
                print(_api.resume(rest[0] if rest else None, namespace=self._ipython.user_ns))
                return None
            if command == "panel":
                display(_api.panel(self._ipython.user_ns, page_size=_page_size(rest)))
                return None
            if command == "versions" and not rest:
                return _api.versions()
            if command == "diff" and len(rest) <= 2:
                return _api.diff(*rest)
            if command == "gc":
                keep_last, drop_expired = _gc_options(rest)
                print(_api.gc(keep_last, drop_expired=drop_expired))
                return None
            if command == "export" and len(rest) == 1:
                print(_api.export_state(rest[0]))
                return None
            if command == "import" and len(rest) == 1:
                print(_api.import_state(rest[0]))
                return None
            if command == "clear" and rest == ["--all"]:
                print(f"nbflow: cleared {_api.clear(all=True)} step(s).")
                return None
            if command == "clear" and len(rest) == 1:
                removed = _api.clear(rest[0])
                print(f"nbflow: cleared step {rest[0]!r}." if removed else f"nbflow: no step {rest[0]!r} to clear.")
                return None
            if command == "config":
                changes = dict(_setting(word) for word in rest)
                config = _api.configure(**changes) if changes else get_session().config
                print(config.describe())
                return None
        except NbflowError as exc:
            raise UsageError(str(exc)) from None
        raise UsageError(f"%nbflow {line.strip()!r} is not a command; use one of: {_SUBCOMMANDS}.")


def _gc_options(words: list[str]) -> tuple[int | None, bool]:
    keep_last: int | None = None
    drop_expired = False
    pending = list(words)
    while pending:
        word = pending.pop(0)
        number = _number_option(word, pending, "gc", "--keep-last", "versions to keep", 10)
        if word == "--drop-expired":
            drop_expired = True
        elif number is not None:
            keep_last = number
        else:
            raise UsageError(f"%nbflow gc: unknown option {word!r}; use %nbflow gc [--keep-last N] [--drop-expired].")
    return keep_last, drop_expired


def _page_size(words: list[str]) -> int:
    page_size = 25
    pending = list(words)
    while pending:
        word = pending.pop(0)
        number = _number_option(word, pending, "panel", "--page-size", "rows per page", 50)
        if number is None:
            raise UsageError(f"%nbflow panel: unknown option {word!r}; use %nbflow panel [--page-size N].")
        page_size = number
    return page_size


def _number_option(word: str, pending: list[str], command: str, option: str, meaning: str, example: int) -> int | None:
    """N if ``word`` is ``option N`` (taking N from ``pending``) or ``option=N``; ``None`` if it is another word."""
    if word != option and not word.startswith(option + "="):
        return None
    value = word.partition("=")[2] or (pending.pop(0) if pending else "")
    if not value.isdigit():
        raise UsageError(f"%nbflow {command} {option} takes a whole number of {meaning} (got {value!r}), e.g. {option} {example}.")
    return int(value)


def _setting(word: str) -> tuple[str, str]:
    name, separator, value = word.partition("=")
    if not separator or not name:
        raise UsageError(f"%nbflow config takes name=value pairs (got {word!r}), e.g. %nbflow config ttl=1d.")
    return name, value


def _has_top_level_await(tree: ast.Module) -> bool:
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
            return True
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            pending.extend(ast.iter_child_nodes(node))
    return False


def _execute(shell: Any, cell: str, source: str, tree: ast.Module | None) -> Any:
    """Run the cell's code in the user namespace, returning its last expression's value (like IPython)."""
    __tracebackhide__ = True  # noqa: F841
    # IPython 9 counts the running cell before running it; prompt_count is its number either way.
    number = getattr(shell.displayhook, "prompt_count", shell.execution_count)
    filename = shell.compile.cache(source, number, raw_code=cell)
    if tree is None:
        compile(source, filename, "exec")
        raise AssertionError("unreachable: the cell did not parse")
    body = list(tree.body)
    last = body[-1] if body else None
    if isinstance(last, ast.Expr) and not _ends_with_semicolon(cell):
        body.pop()
    else:
        last = None
    namespace = shell.user_ns
    exec(shell.compile(ast.Module(body=body, type_ignores=[]), filename, "exec"), shell.user_global_ns, namespace)
    if last is None:
        return NO_RESULT
    return eval(shell.compile(ast.Expression(body=last.value), filename, "eval"), shell.user_global_ns, namespace)


def _flush_inline_figures() -> None:
    """Show the figures the cell drew now, while output is captured, as the inline backend would after the cell."""
    matplotlib = sys.modules.get("matplotlib")
    backend = sys.modules.get("matplotlib_inline.backend_inline")
    if matplotlib is not None and backend is not None and "inline" in str(matplotlib.get_backend()):
        backend.flush_figures()


def _ends_with_semicolon(cell: str) -> bool:
    lines = [line.split("#", 1)[0].rstrip() for line in cell.strip().splitlines()]
    lines = [line for line in lines if line]
    return bool(lines) and lines[-1].endswith(";")


def _status_line(run: CellRun, now: float) -> str:
    if run.action == "restored" and run.record is not None and run.restored is not None:
        record = run.record
        age = format_duration(now - float(record.get("finished_at") or now))
        return f"[nbflow] {run.key}: restored {describe_outputs(record)} · computed {age} ago in {format_duration(record.get('duration'))}"
    report = run.report
    head = f"[nbflow] {run.key}: ran in {format_duration(run.duration)} ({run.reason})"
    if report is None or report.error:
        return f"{head} · checkpoint NOT saved"
    if report.unsaved:
        return f"{head} · not checkpointed: {', '.join(sorted(report.unsaved))} cannot be saved"
    expiry = "never expires" if report.expires_at is None else f"expires in {format_duration(report.expires_at - now)}"
    version = f" · {run.version.id}" if run.version is not None else ""
    return f"{head} · saved {', '.join(report.saved) or 'nothing'} ({format_size(report.nbytes)}) · {expiry}{version}"


def load_ipython_extension(shell: Any) -> None:
    """Register the magics (idempotent) and say where the cache is."""
    shell.register_magics(NbflowMagics)
    session = get_session()
    try:
        count = sum(1 for key in session.store.list_records() if not key.startswith("__"))
        print(f"nbflow: cache at {session.store.location} ({count} step{'s' if count != 1 else ''})")
    except NbflowError as exc:
        print(f"nbflow: cache at {session.config.dir} cannot be opened ({exc}); steps will run without checkpoints.", file=sys.stderr)


def unload_ipython_extension(shell: Any) -> None:
    """Remove the magics and close the store."""
    magics = shell.magics_manager.magics
    magics["cell"].pop("step", None)
    magics["line"].pop("nbflow", None)
    get_session().close()
