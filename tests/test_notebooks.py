"""Every notebook under ``notebooks/`` runs top to bottom, as Jupyter would, so none of them rots unseen.

The cells are read from the ``.ipynb`` JSON (nbformat/nbclient are not dependencies) and executed in order in
one namespace, with the notebook's folder as the working directory, as Jupyter starts it. ``ZHLLAMA_SHARED_DATA``
points at a stand-in for the shared data folder built from ``tests/assets``, so the notebooks run on a fresh clone,
and ``ZHLLAMA_BASE_TOKENIZER`` at the committed Mistral base (the same SentencePiece BPE format, 32000 pieces, byte
fallback) in place of LLaMA's tokenizer, which may not be committed. ``ZHLLAMA_RUN_DIR`` points at a small
TensorBoard run written here, which the run-inspection notebook must read back exactly and plot.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from torch.utils.tensorboard import SummaryWriter

from tests.conftest import ASSETS, PROJECT_ROOT, SHARED_DATA_ENV

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
INSPECT = PROJECT_ROOT / "notebooks" / "inspect_tokenizer_and_run.ipynb"

TRAIN_LOSS = [(5, 9.5), (10, 8.25), (15, 7.0)]
TRAIN_LR = [(5, 0.001), (10, 0.002), (15, 0.0015)]
VAL_LOSS = [(10, 8.5), (15, 7.5)]
VAL_BITS = [(10, 3.25), (15, 2.5)]
SAMPLES = [
    (10, "| prompt | continuation |\n|---|---|\n| 中国的首都是 | 的的的 |"),
    (15, "| prompt | continuation |\n|---|---|\n| 中国的首都是 | 北京。 |"),
]


def load_notebook(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def cell_source(cell: dict) -> str:
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def write_run(log_dir: Path) -> None:
    """A run folder as the TensorBoard logger and GenerationSamples callback leave it, with known values."""
    writer = SummaryWriter(log_dir=str(log_dir))
    for tag, series in (("train/loss", TRAIN_LOSS), ("train/lr", TRAIN_LR), ("val/loss", VAL_LOSS),
                        ("val/bits_per_byte", VAL_BITS)):
        for step, value in series:
            writer.add_scalar(tag, value, global_step=step)
    for step, text in SAMPLES:
        writer.add_text("samples/generations", text, global_step=step)
    writer.close()


@pytest.fixture(scope="module")
def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    write_run(root / "pt_embed" / "tensorboard" / "version_0")
    return root


STAND_IN = {  # path in the shared data layout the notebooks read -> committed asset
    "tokenizers/chinese_sp.model": "tokenizers/chinese_sp.model",
    "zhwiki/wiki_zh_sample.jsonl": "zhwiki/wiki_zh_sample_first30.jsonl",
}


@pytest.fixture(scope="module")
def stand_in_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shared_data")
    (root / "README.md").write_text("Stand-in for ../shared/data built by tests/test_notebooks.py from tests/assets.\n")
    for path, asset in STAND_IN.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ASSETS / asset, root / path)
    return root


@pytest.fixture(scope="module")
def execute(stand_in_data: Path, run_root: Path) -> Callable[[Path], dict]:
    """Runs a notebook's code cells once per module (the tokenizer merge takes seconds) and returns its namespace."""
    namespaces: dict[Path, dict] = {}

    def run(path: Path) -> dict:
        if path not in namespaces:
            namespace: dict = {"__name__": "__main__"}
            with pytest.MonkeyPatch.context() as patch:
                patch.chdir(path.parent)
                patch.setenv(SHARED_DATA_ENV, str(stand_in_data))
                patch.setenv("ZHLLAMA_BASE_TOKENIZER", str(ASSETS / "tokenizers" / "mistral_v1" / "tokenizer.model"))
                patch.setenv("ZHLLAMA_RUN_DIR", str(run_root))
                patch.setenv("HF_HUB_OFFLINE", "1")
                for index, cell in enumerate(c for c in load_notebook(path)["cells"] if c["cell_type"] == "code"):
                    exec(compile(cell_source(cell), f"{path.name} code cell {index}", "exec"), namespace)
            namespaces[path] = namespace
        return namespaces[path]

    return run


def test_notebooks_exist() -> None:
    assert INSPECT in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_nbformat_4_without_outputs(path: Path) -> None:
    notebook = load_notebook(path)
    assert notebook["nbformat"] == 4 and notebook["cells"]
    assert notebook["cells"][0]["cell_type"] == "markdown", "the first cell says what it does and where data comes from"
    for cell in notebook["cells"]:
        assert cell["cell_type"] in ("markdown", "code") and isinstance(cell["metadata"], dict)
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, "commit notebooks with outputs cleared"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, execute: Callable[[Path], dict]) -> None:
    execute(path)


def test_inspect_notebook_compares_tokenizers(execute: Callable[[Path], dict]) -> None:
    namespace = execute(INSPECT)
    base, merged = namespace["base_pieces"], namespace["merged_pieces"]
    assert len(merged) < len(base)
    rows = namespace["align_pieces"](merged, base)
    assert [piece for run, _ in rows for piece in run] == merged and [piece for _, run in rows for piece in run] == base
    stats = namespace["stats"]
    assert stats["documents"] == namespace["MAX_DOCUMENTS"]
    assert stats["tokens_per_cjk_char"] < stats["base"]["tokens_per_cjk_char"]


def test_inspect_notebook_reads_the_run_back(execute: Callable[[Path], dict], run_root: Path) -> None:
    namespace = execute(INSPECT)
    [log] = namespace["run_logs"]
    assert log.path == run_root / "pt_embed" / "tensorboard" / "version_0"
    assert log.scalars.keys() == {"train/loss", "train/lr", "val/loss", "val/bits_per_byte"}
    expected_series = (("train/loss", TRAIN_LOSS), ("train/lr", TRAIN_LR), ("val/loss", VAL_LOSS),
                       ("val/bits_per_byte", VAL_BITS))
    for tag, expected in expected_series:
        assert [step for step, _ in log.scalars[tag]] == [step for step, _ in expected]
        assert [value for _, value in log.scalars[tag]] == pytest.approx([value for _, value in expected])
    assert log.samples == SAMPLES
    table = namespace["scalar_table"](log).splitlines()
    assert table[0].split() == ["step", "train/loss", "val/loss", "val/bits_per_byte", "train/lr"]
    assert table[1].split() == ["5", "9.5", "-", "-", "0.001"]
    assert namespace["stage_bits"] == [("pt_embed", VAL_BITS[0][1], VAL_BITS[-1][1])]  # the report's bars
    assert namespace["report"].axes  # drawn: first and last validation bits per byte, tokens per character


def test_inspect_notebook_skips_a_missing_run_dir(
    execute: Callable[[Path], dict], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace = dict(execute(INSPECT), RUN_DIR=tmp_path / "missing")
    last_cell = [c for c in load_notebook(INSPECT)["cells"] if c["cell_type"] == "code"][-1]
    exec(compile(cell_source(last_cell), f"{INSPECT.name} last code cell", "exec"), namespace)
    assert namespace["run_logs"] == []
    assert f"No TensorBoard runs under {tmp_path / 'missing'}" in capsys.readouterr().out
