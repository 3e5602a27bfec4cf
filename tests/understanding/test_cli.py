from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tandem.understanding.cli import app
from tandem.world.world import EXAMPLES_DIR

DATA = Path(__file__).parent / "data"


def test_nlu_train_trains_each_tenant_once_then_reads_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TANDEM_CACHE_DIR", str(tmp_path))
    runner = CliRunner()
    first = runner.invoke(app, ["train", "--no-embeddings"])
    assert first.exit_code == 0, first.output
    assert "bank:" in first.output and "health:" in first.output and "trained in" in first.output
    second = runner.invoke(app, ["train", "--no-embeddings"])
    assert second.output.count("from the cache") == 2


def test_nlu_eval_prints_accuracy_f1_out_of_scope_recall_latency_and_confusions(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--train", str(EXAMPLES_DIR / "healthcare" / "intents"),
            "--test", str(DATA / "health_plan_test.csv"),
            "--no-embeddings",
            "--json", str(out),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for figure in ("accuracy", "macro-F1", "out-of-scope recall", "p50", "p99", "most confused"):
        assert figure in result.output
    report = json.loads(out.read_text())
    assert report["scores"]["accuracy"] > 0.9
    assert report["scores"]["n"] == 112


def test_nlu_eval_explains_a_missing_test_file_instead_of_failing_obscurely(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["eval", "--train", str(DATA / "bank_test.csv")])
    assert result.exit_code == 2
    assert "--test is needed" in result.output
