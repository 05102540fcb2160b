"""``@step``: cache a function's return value on disk, keyed by its code and arguments."""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
import time
from collections.abc import Callable
from typing import Any, TypeVar, overload

from ._code import code_hash, function_globals
from ._config import check_on_change
from ._duration import parse_ttl
from ._engine import Engine, StepOptions
from ._errors import CorruptBlob, InvalidKey, warn
from ._events import emit, running_entry
from ._keys import render_key, template_fields, validate_key
from ._serialization import fingerprint
from ._session import get_session
from ._step_events import emit_completed, emit_failed, emit_restored

F = TypeVar("F", bound=Callable[..., Any])
_UNSET: Any = object()


@overload
def step(func: F, /) -> F: ...
@overload
def step(
    *, key: str | None = None, ttl: str | float | None = _UNSET, on_change: str | None = None, mmap: bool | None = None
) -> Callable[[F], F]: ...


def step(func: Any = None, /, *, key: str | None = None, ttl: Any = _UNSET, on_change: str | None = None, mmap: bool | None = None) -> Any:
    """Cache a function's return value in the nbflow store, in notebooks and plain scripts.

    Use as ``@step`` or ``@step(key="user:{user_id}", ttl="1d", on_change="rerun")``.
    The value is reused while the function's code, its arguments, the globals it
    reads and the TTL still hold. ``key`` is a template filled from the arguments.
    ``mmap=True`` restores large arrays as copy-on-write memory maps (default: the ``mmap`` setting).

    >>> @step
    ... def square(x):
    ...     return x * x
    >>> square(4)
    16
    """
    ttl_seconds = _UNSET if ttl is _UNSET else parse_ttl(ttl)
    change_policy = None if on_change is None else check_on_change(on_change)
    if key is not None:
        validate_key(key, template=True)
    if func is None:
        return functools.partial(step, key=key, ttl=ttl, on_change=on_change, mmap=mmap)
    if not callable(func):
        raise TypeError(f"@step decorates a function (got {func!r}); use @step or @step(key=..., ttl=...).")
    signature = inspect.signature(func)
    if key is not None:
        unknown = [name for name in template_fields(key) if name not in signature.parameters]
        if unknown:
            raise InvalidKey(f"Key template {key!r} names {unknown[0]!r}, which is not a parameter of {func.__qualname__}().")
    func_hash = _function_hash(func)
    identity = func.__qualname__ if func.__module__ == "__main__" else f"{func.__module__}.{func.__qualname__}"

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        session = get_session()
        engine = Engine(session)
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        arguments_fingerprint = fingerprint(dict(bound.arguments))
        step_key = render_key(key, bound.arguments) if key else validate_key(f"{identity}:{arguments_fingerprint[:16]}")
        inputs: dict[str, str | None] = {"(arguments)": arguments_fingerprint}
        namespace = func.__globals__
        for name in sorted(function_globals(func, namespace, func.__module__)):
            if namespace.get(name) is not wrapper:
                inputs[name] = fingerprint(namespace[name]) if name in namespace else None
        options = StepOptions(
            ttl=session.config.ttl if ttl_seconds is _UNSET else ttl_seconds,
            on_change=change_policy or session.config.on_change,
            mmap=session.config.mmap if mmap is None else mmap,
        )
        decision = engine.decide(step_key, func_hash, inputs, options)
        if decision.hit and decision.record is not None:
            try:
                restored = engine.restore(decision.record, mmap=options.mmap)
            except CorruptBlob as exc:
                warn(f"Step {step_key!r}: the checkpoint cannot be read ({exc}); calling {func.__qualname__}() instead.")
            else:
                if decision.warning:
                    warn(decision.warning)
                emit_restored(engine, decision.record)
                return restored.values["return"]
        started_at = session.clock()
        emit(session.activity, "step_started", step_key, lambda: running_entry("function", started_at), reason=decision.reason)
        clock_start = time.perf_counter()
        try:
            value = func(*args, **kwargs)
        except BaseException as error:
            record = engine.save_failure(
                step_key,
                kind="function",
                code_hash=func_hash,
                source=identity,
                error=error,
                started_at=started_at,
                duration=time.perf_counter() - clock_start,
            )
            emit_failed(engine, record, error)
            raise
        # Globals the call itself changed (a log list it appends to) are recorded as
        # they are now, so the next call with the same arguments is a hit.
        for name in inputs:
            if name in namespace:
                inputs[name] = fingerprint(namespace[name])
        report = engine.save_return(
            step_key,
            value,
            code_hash=func_hash,
            source=identity,
            inputs=inputs,
            started_at=started_at,
            duration=time.perf_counter() - clock_start,
            options=options,
        )
        emit_completed(engine, step_key, "function", report, None)
        return value

    return wrapper


def _function_hash(func: Callable[..., Any]) -> str:
    """Hash a function's source without its decorators (changing ``ttl=`` is no code change)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
        definition = tree.body[0]
        if isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef)):
            definition.decorator_list = []
        return code_hash(ast.unparse(tree))
    except (OSError, TypeError, SyntaxError, IndexError):
        return fingerprint(getattr(func, "__code__", func))
