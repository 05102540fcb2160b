"""The package's shape: imports point down, heavy libraries stay in their one module, types check."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "nbflow"

# Which nbflow modules may import a third-party library at module level.
ALLOWED = {
    "cloudpickle": {"_serialization"},
    "IPython": {"_magics"},
    "ipywidgets": {"_panel"},
    "diskcache": {"_disk_store"},
}
# Front-ends sit on top: nothing in the core may import them.
FRONT_ENDS = {"_magics", "_capture", "_decorator", "_api", "_panel"}


def module_imports(path: pathlib.Path) -> set[str]:
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.add(("." * node.level) + (node.module or ""))
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.glob("*.py")), ids=lambda path: path.stem)
def test_module_imports_respect_the_layers(path):
    imports = module_imports(path)
    for library, owners in ALLOWED.items():
        if any(name == library or name.startswith(library + ".") for name in imports):
            assert path.stem in owners, f"{path.name} imports {library} at module level; only {sorted(owners)} may"
    if path.stem not in FRONT_ENDS | {"__init__"}:
        for name in imports:
            assert name.lstrip(".") not in FRONT_ENDS, f"core module {path.name} imports front-end {name}"


def test_every_module_says_its_job():
    for path in PACKAGE.glob("*.py"):
        docstring = ast.get_docstring(ast.parse(path.read_text()))
        assert docstring, f"{path.name} has no module docstring"


def test_types_check_strictly():
    result = subprocess.run([sys.executable, "-m", "mypy", str(PACKAGE)], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
