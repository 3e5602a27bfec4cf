from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from deltalake import DeltaTable

from tandem.activation.lakehouse import (
    BANK,
    HEALTH,
    LOOKUP_KEYS,
    RETURNED_IDS,
    SORT_KEYS,
    build_duckdb,
    generate,
    luhn_ok,
    read_manifest,
)
from tandem.world.world import EXAMPLES_DIR

TINY = 0.002


def _digests(root: Path) -> dict[str, str]:
    files = [p for p in sorted(root.rglob("*.parquet")) if ".delta" not in str(p)]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    a, b, c = (tmp_path_factory.mktemp(n) for n in ("a", "b", "c"))
    generate(a, TINY, 11, duckdb_file=False)
    generate(b, TINY, 11, duckdb_file=False)
    generate(c, TINY, 12, duckdb_file=False)
    return a, b, c


def test_the_same_seed_and_scale_write_byte_identical_parquet(tiny: tuple[Path, Path, Path]) -> None:
    a, b, c = tiny
    assert _digests(a) == _digests(b)
    assert len(_digests(a)) == len(BANK) + len(HEALTH)
    changed = {name for name, digest in _digests(c).items() if _digests(a)[name] != digest}
    assert "bank/card_transactions.parquet" in changed and "health/claims.parquet" in changed


def test_the_manifest_counts_the_rows_and_scale_sets_the_transactions_and_claims(tiny: tuple[Path, Path, Path]) -> None:
    manifest = read_manifest(tiny[0])
    assert manifest is not None and manifest["seed"] == 11 and manifest["scale"] == TINY
    # Exactly scale x 1M card transactions and scale x 200k claims are generated, beside the reference rows.
    assert manifest["rows"]["bank/card_transactions"] == 2000 + 2
    assert manifest["rows"]["health/claims"] == 400 + 1


def test_every_keyed_table_is_sorted_by_its_key_so_lookups_read_one_row_group(lakehouse: Path) -> None:
    con = duckdb.connect()
    for tenant in ("bank", "health"):
        for path in sorted((lakehouse / tenant).glob("*.parquet")):
            key = SORT_KEYS.get(path.stem)
            if key is None:
                continue
            (unsorted,) = con.execute(
                f"SELECT count(*) FROM (SELECT {key} < lag({key}) OVER () AS back FROM read_parquet('{path}')) "
                "WHERE back"
            ).fetchone()  # type: ignore[misc]
            assert unsorted == 0, path
    con.close()


def test_the_reference_customers_are_there_with_exactly_their_records(lakehouse: Path) -> None:
    bank = {c["id"]: c for c in yaml.safe_load((EXAMPLES_DIR / "bank" / "world.yaml").read_text())["customers"]}
    con = duckdb.connect()

    def rows(table: str, where: str) -> list[dict[str, Any]]:
        cur = con.execute(f"SELECT * FROM read_parquet('{lakehouse}/{table}.parquet') WHERE {where}")
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    maria = bank["C-1001"]
    (customer,) = rows("bank/customers", "customer_id = 'C-1001'")
    assert (customer["name"], customer["phone"], str(customer["date_of_birth"]), customer["zip"]) == (
        maria["name"], maria["phone"], maria["date_of_birth"], maria["zip"],
    )  # fmt: skip
    (account,) = rows("bank/accounts", "customer_id = 'C-1001'")
    assert account["balance_minor"] == maria["accounts"][0]["balance"]["amount_minor"]
    (card,) = rows("bank/cards", "customer_id = 'C-1001'")
    assert (card["last4"], card["kind"], card["status"]) == ("4242", "debit", "fraud_hold")
    assert luhn_ok(card["pan"]) and card["pan"].endswith("4242")
    txns = rows("bank/card_transactions", "customer_id IN ('C-1001', 'C-1002')")
    assert {t["txn_id"] for t in txns} == {"TXN-88301", "TXN-77120"}  # their records and nothing else
    (hold,) = rows("bank/holds", "customer_id = 'C-1001'")
    assert (hold["reason"], hold["fraud_score"], hold["placed_at"].isoformat()) == (
        "foreign-transaction alert", 0.82, "2026-12-03T08:12:00+00:00",
    )  # fmt: skip
    assert rows("bank/travel_notices", "customer_id = 'C-1001'") == []
    assert rows("bank/holds", "customer_id = 'C-1002'") == []
    (robert,) = rows("health/eligibility_spans", "member_id = 'MBR-60317'")
    assert (robert["status"], str(robert["start_date"]), str(robert["end_date"])) == (
        "ended",
        "2019-06-01",
        "2026-09-30",
    )
    assert rows("health/statements", "member_id = 'MBR-60317'") == []
    (line,) = rows("health/claim_lines", "member_id = 'MBR-55821'")
    assert (line["description"], line["network"], line["billed_minor"], line["reason"]) == (
        "lab work", "out_of_network", 45000, "billed out of network",
    )  # fmt: skip
    con.close()


def test_generated_people_never_take_a_reference_customers_phone(lakehouse: Path) -> None:
    phones = set(pq.read_table(lakehouse / "bank" / "customers.parquet", columns=["phone"]).column(0).to_pylist())
    assert "+14155550134" in phones
    assert sum(1 for p in phones if p.endswith("5550134")) == 1


def test_the_delta_tables_hold_the_same_rows_as_their_parquet(lakehouse: Path) -> None:
    for name, key in (("holds", "hold_id"), ("travel_notices", "notice_id")):
        delta = DeltaTable(str(lakehouse / "bank" / f"{name}.delta")).to_pyarrow_table().to_pylist()
        parquet = pq.read_table(lakehouse / "bank" / f"{name}.parquet").to_pylist()
        assert delta and sorted(delta, key=lambda r: r[key]) == sorted(parquet, key=lambda r: r[key])  # no order


def test_the_duckdb_file_keeps_each_tables_rows_in_key_order_with_keys_and_returned_ids_uncompressed(
    lakehouse: Path,
) -> None:
    for tenant in ("bank", "health"):
        con = duckdb.connect(str(lakehouse / tenant / "lakehouse.duckdb"), read_only=True)
        try:
            tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            for table in LOOKUP_KEYS.keys() | RETURNED_IDS.keys():
                if table not in tables:  # the other tenant's
                    continue
                keys = LOOKUP_KEYS.get(table, frozenset()) | RETURNED_IDS.get(table, frozenset())
                stored = dict(con.execute(
                    "SELECT column_name, string_agg(DISTINCT compression, ',') FROM pragma_storage_info(?) "
                    "WHERE segment_type = 'VARCHAR' GROUP BY 1", [table]
                ).fetchall())  # fmt: skip
                assert {key: stored.get(key) for key in keys} == dict.fromkeys(keys, "Uncompressed"), table
                parquet = pq.read_table(lakehouse / tenant / f"{table}.parquet").to_pylist()
                assert con.sql(f'SELECT * FROM "{table}"').to_arrow_table().to_pylist() == parquet, table
        finally:
            con.close()


def test_card_transactions_carry_fraud_patterns_with_alerts_and_holds(tmp_path: Path) -> None:
    generate(tmp_path, 0.05, 3, duckdb_file=False)
    con = duckdb.connect()
    bank = tmp_path / "bank"
    reasons = dict(con.execute(
        f"SELECT decline_reason, count(*) FROM read_parquet('{bank}/card_transactions.parquet') "
        "WHERE status = 'declined' GROUP BY 1"
    ).fetchall())  # fmt: skip
    assert {"suspected card testing", "suspected fraud", "fraud hold", "insufficient funds"} <= set(reasons)
    rules = {
        r for (r,) in con.execute(f"SELECT DISTINCT rule FROM read_parquet('{bank}/fraud_alerts.parquet')").fetchall()
    }
    assert rules == {"card testing", "foreign-transaction alert", "high-value velocity"}
    # Every alert points at a payment of the same card; card-testing bursts are small online amounts.
    (orphans,) = con.execute(
        f"SELECT count(*) FROM read_parquet('{bank}/fraud_alerts.parquet') a "
        f"LEFT JOIN read_parquet('{bank}/card_transactions.parquet') t "
        "ON t.txn_id = a.txn_id AND t.card_id = a.card_id "
        "WHERE a.txn_id IS NOT NULL AND t.txn_id IS NULL"
    ).fetchone()  # type: ignore[misc]
    assert orphans == 0
    (big,) = con.execute(
        f"SELECT max(amount_minor) FROM read_parquet('{bank}/card_transactions.parquet') "
        "WHERE decline_reason = 'suspected card testing'"
    ).fetchone()  # type: ignore[misc]
    assert big < 500
    held = con.execute(
        f"SELECT count(*) FROM read_parquet('{bank}/holds.parquet') h JOIN read_parquet('{bank}/cards.parquet') c "
        "USING (card_id) WHERE h.status = 'held' AND c.status <> 'fraud_hold'"
    ).fetchone()
    assert held == (0,)
    con.close()


@pytest.mark.parametrize(("tenant", "groups"), [("health", [16_384, 16_384, 7_232]), ("bank", [40_000])])
def test_the_duckdb_file_is_written_in_the_tenants_row_groups(tmp_path: Path, tenant: str, groups: list[int]) -> None:
    folder = tmp_path / tenant
    folder.mkdir()
    ids = [f"MBR-{i:06d}" for i in range(40_000)]
    pq.write_table(pa.table({"member_id": ids, "n": list(range(40_000))}), folder / "members.parquet")
    con = duckdb.connect(str(build_duckdb(folder)), read_only=True)
    try:
        counts = con.execute(
            "SELECT row_group_id, max(start + count) - min(start) FROM pragma_storage_info('members') "
            "WHERE column_name = 'n' GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert [rows for _, rows in counts] == groups
        assert con.execute("SELECT count(*), min(member_id) FROM members").fetchall() == [(40_000, "MBR-000000")]
    finally:
        con.close()
