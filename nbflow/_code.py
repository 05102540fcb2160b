"""Read a cell's source: its code hash, and the names it reads and binds."""

from __future__ import annotations

import ast
import builtins
import symtable
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import xxhash

_BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True)
class CellAnalysis:
    """What a cell's source says about the namespace."""

    reads: frozenset[str]
    """Global names the cell may read before binding them itself."""
    binds: frozenset[str]
    """Global names the cell binds somewhere (assignment, import, def, class, for, with, walrus, global)."""


def code_hash(source: str) -> str:
    """Hash a cell's source, insensitive to comments, blank lines and formatting.

    >>> code_hash("x = 1  # one") == code_hash("x=1\\n\\n")
    True
    """
    try:
        canonical = ast.dump(ast.parse(source), annotate_fields=False)
    except SyntaxError:
        canonical = "\n".join(line.rstrip() for line in source.strip().splitlines())
    return xxhash.xxh3_128_hexdigest(canonical.encode())


def analyze(source: str) -> CellAnalysis:
    """Find the global names a cell reads and binds; an unparsable cell reads and binds nothing."""
    try:
        tree = ast.parse(source)
        table = symtable.symtable(source, "<cell>", "exec")
    except SyntaxError:
        return CellAnalysis(frozenset(), frozenset())
    global_refs: set[str] = set()
    binds: set[str] = set()
    for symbol in table.get_symbols():
        if symbol.is_referenced():
            global_refs.add(symbol.get_name())
        if symbol.is_assigned() or symbol.is_imported():
            binds.add(symbol.get_name())
    for child in _descendants(table):
        for symbol in child.get_symbols():
            if symbol.is_global() and symbol.is_referenced():
                global_refs.add(symbol.get_name())
            if symbol.is_declared_global() and symbol.is_assigned():
                binds.add(symbol.get_name())
    # Top-level binds join the candidates because `k += 1` and `del k` read k
    # without symtable calling it referenced.
    read_first = _read_before_bound(tree)
    return CellAnalysis(frozenset((global_refs | binds) & read_first), frozenset(binds))


def _descendants(table: symtable.SymbolTable) -> Iterator[symtable.SymbolTable]:
    for child in table.get_children():
        yield child
        yield from _descendants(child)


def _read_before_bound(tree: ast.Module) -> set[str]:
    """Names whose first mention, in top-level statement order, may read them.

    A name first met as the plain target of an unconditional assignment, import,
    def or class is bound by the cell before any read, so its earlier value is no input.
    """
    seen: set[str] = set()
    read: set[str] = set()
    for statement in tree.body:
        for name in _loaded_names(statement):
            if name not in seen:
                read.add(name)
                seen.add(name)
        seen.update(_definite_binds(statement))
    return read


def _loaded_names(node: ast.AST) -> Iterator[str]:
    for child in ast.walk(node):
        if isinstance(child, ast.Name) and isinstance(child.ctx, (ast.Load, ast.Del)):
            yield child.id
        elif isinstance(child, ast.AugAssign) and isinstance(child.target, ast.Name):
            yield child.target.id


def _definite_binds(statement: ast.stmt) -> Iterator[str]:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield statement.name
    elif isinstance(statement, (ast.Import, ast.ImportFrom)):
        for alias in statement.names:
            if alias.name != "*":
                yield (alias.asname or alias.name).split(".")[0]
    elif isinstance(statement, ast.Assign):
        for target in statement.targets:
            yield from _target_names(target)
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        yield from _target_names(statement.target)


def _target_names(target: ast.expr) -> Iterator[str]:
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for element in target.elts:
            yield from _target_names(element.value if isinstance(element, ast.Starred) else element)


def function_globals(value: object, namespace: Mapping[str, object], module: str) -> set[str]:
    """Global names that a function or class defined in ``module`` reads, transitively.

    A step that calls ``helper()`` depends on the globals ``helper`` reads, so they
    count as the step's inputs too; so do the builtins it names (``len``), which a later
    cell may shadow. (Attribute names share ``co_names``: one that matches a builtin only
    costs a needless re-execution if that builtin is ever redefined.)
    """
    found: set[str] = set()
    pending = [value]
    visited: set[int] = set()
    while pending:
        current = pending.pop()
        if id(current) in visited:
            continue
        visited.add(id(current))
        for code in _code_objects(current, module):
            for name in _all_names(code):
                if name in found:
                    continue
                if name in namespace:
                    found.add(name)
                    pending.append(namespace[name])
                elif name in _BUILTINS:
                    found.add(name)
    return found


def _code_objects(value: object, module: str) -> Iterator[types.CodeType]:
    if getattr(value, "__module__", None) != module:
        return
    if isinstance(value, types.FunctionType):
        yield value.__code__
    elif isinstance(value, type):
        for attribute in vars(value).values():
            function = getattr(attribute, "__func__", attribute)
            if isinstance(function, types.FunctionType):
                yield function.__code__


def _all_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _all_names(constant)
