"""Re-run notebooks top to bottom on an empty cache and store their outputs (what nbval compares against).

python scripts/refresh_notebooks.py [notebooks/NAME.ipynb ...]   # default: every notebook
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]


def refresh(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    scratch = Path("/tmp") / f"nbflow-{path.stem}"
    shutil.rmtree(scratch, ignore_errors=True)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", record_timing=False, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute(env={**os.environ, "NBFLOW_DIR": str(scratch / ".nbflow")})
    shutil.rmtree(scratch, ignore_errors=True)
    nbformat.write(notebook, path)
    print(f"refreshed {path.relative_to(ROOT)}")


if __name__ == "__main__":
    targets = [Path(arg).resolve() for arg in sys.argv[1:]] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    for target in targets:
        refresh(target)
