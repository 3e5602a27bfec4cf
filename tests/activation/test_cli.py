from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tandem.activation.cli import app

runner = CliRunner()


def test_signals_fetch_prints_the_assertions_as_the_participant_sees_them_and_the_time(lakehouse: Path) -> None:
    result = runner.invoke(
        app,
        ["signals", "fetch", "recent_declines", "C-1001", "--data", str(lakehouse), "--as", "bot", "--json",
         "--budget-ms", "10000"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    decline = next(line for line in lines if line["name"] == "declined_payment")
    assert decline["subject"] == "transaction:TXN-88301" and decline["source"] == "signal:recent_declines"
    assert decline["value"]["merchant"] == "Tasca do Chico, Lisbon"
    assert "fetched in" in result.output and " ms" in result.output


def test_signals_fetch_masks_the_card_number_for_the_ai(lakehouse: Path) -> None:
    args = ["signals", "fetch", "card_details", "CRD-1001-1", "--data", str(lakehouse), "--as", "ai", "--json",
            "--budget-ms", "10000"]  # fmt: skip
    result = runner.invoke(app, args)
    number = next(json.loads(x) for x in result.output.splitlines() if x.startswith("{") and "card_number" in x)
    assert number["value"] == "************4242"


def test_signals_fetch_of_an_unknown_signal_lists_the_known_ones(lakehouse: Path) -> None:
    result = runner.invoke(app, ["signals", "fetch", "credit_score", "C-1001", "--data", str(lakehouse)])
    assert result.exit_code == 2 and "bank:recent_declines" in result.output


def test_signals_list_shows_every_signal_and_the_sets() -> None:
    result = runner.invoke(app, ["signals", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("recent_declines", "fraud_score", "card_holds", "travel_notices", "statement", "coverage"):
        assert name in result.output
    assert "card_declined: recent_declines, fraud_score, card_holds, travel_notices" in result.output


def test_data_generate_writes_both_tenants_and_reports_the_rows(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["data", "generate", "--scale", "0.001", "--seed", "5", "--out", str(tmp_path), "--no-duckdb"],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (tmp_path / "bank" / "card_transactions.parquet").exists()
    assert (tmp_path / "health" / "claims.parquet").exists() and (tmp_path / "bank" / "holds.delta").is_dir()
    assert "bank/card_transactions" in result.output and "1,002" in result.output
