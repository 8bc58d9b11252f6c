"""The numbered notebooks execute top to bottom on the small simulator data, are stored without
outputs, and match their generator (``python -m loyalty_ml.experiments.notebooks``)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("0*.ipynb"))


def test_notebooks_stored_without_outputs_and_match_generator(tmp_path: Path) -> None:
    import nbformat

    from loyalty_ml.experiments.notebooks import build

    assert len(NOTEBOOKS) == 4
    fresh = {p.name: p for p in build(tmp_path)}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name
        assert path.read_text() == fresh[path.name].read_text(), f"regenerate {path.name}"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("LOYALTY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    # "python3" resolves to the interpreter running the tests (jupyter_client swaps "python"
    # in the kernel argv for sys.executable), i.e. the project's venv.
    NotebookClient(
        nb, kernel_name="python3", timeout=240, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    elapsed = time.perf_counter() - start
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
    assert elapsed < 240
