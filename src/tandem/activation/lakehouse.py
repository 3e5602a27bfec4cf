"""The example lakehouse: both tenants' enterprise data as Parquet (and Delta), generated deterministically.

``generate(out_dir, scale, seed)`` writes, under ``out_dir``:

* ``bank/``: customers, accounts, cards, card_transactions (with fraud patterns: card-testing bursts, foreign
  transactions without a travel notice, high-value velocity), fraud_alerts, holds, travel_notices;
* ``health/``: plans, members, eligibility_spans, claims, claim_lines (network, denial reasons), statements,
  payment_plan_rules, appointments;
* ``holds`` and ``travel_notices`` also as Delta tables (``bank/holds.delta/``), read through ``deltalake``;
* ``<tenant>/lakehouse.duckdb``: the same tables in DuckDB's own format, for point lookups at scale;
* ``manifest.json``: scale, seed, generator version and row counts.

``scale`` counts card transactions in millions (claims are a fifth of that): 0.01 is the demo (seconds),
10 the benchmark (10 million card transactions, 2 million claims). Every table is sorted by its key
(customer, member), so a lookup reads one row group. The reference customers of ``examples/*/world.yaml``
are always there, with exactly their facts and nothing else; generated people never collide with them.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import yaml
from rich.progress import Progress, TaskID

from tandem.world.world import EXAMPLES_DIR

GENERATOR_VERSION = 4  # 2: lookup keys uncompressed in lakehouse.duckdb; 3: near-unique ids signals return too;
# 4: the health plan's lakehouse.duckdb in row groups of 16,384 rows
TXNS_PER_SCALE = 1_000_000
CLAIMS_PER_SCALE = 200_000
DEMO_SCALE = 0.01
TXNS_PER_CUSTOMER = 100
CLAIMS_PER_MEMBER = 10
CHUNK_CUSTOMERS = 20_000
CHUNK_MEMBERS = 20_000
ROW_GROUP = 122_880  # DuckDB's own row-group size: its Parquet reader prunes whole row groups by min/max
DELTA_TABLES = ("holds", "travel_notices")
MANIFEST = "manifest.json"

Rng = np.random.Generator
US = 1_000_000  # microseconds per second
DAY_US = 86_400 * US

# -- schemas ------------------------------------------------------------------------------------------------
TS = pa.timestamp("us", tz="UTC")
BANK: dict[str, pa.Schema] = {
    "customers": pa.schema(
        [("customer_id", pa.string()), ("name", pa.string()), ("phone", pa.string()), ("email", pa.string()),
         ("date_of_birth", pa.date32()), ("zip", pa.string()), ("tier", pa.string())]
    ),
    "accounts": pa.schema(
        [("account_id", pa.string()), ("customer_id", pa.string()), ("kind", pa.string()),
         ("balance_minor", pa.int64()), ("currency", pa.string())]
    ),
    "cards": pa.schema(
        [("card_id", pa.string()), ("customer_id", pa.string()), ("pan", pa.string()), ("last4", pa.string()),
         ("kind", pa.string()), ("status", pa.string())]
    ),
    "card_transactions": pa.schema(
        [("txn_id", pa.string()), ("customer_id", pa.string()), ("card_id", pa.string()),
         ("card_last4", pa.string()), ("ts", TS), ("txn_date", pa.date32()), ("merchant", pa.string()),
         ("category", pa.string()), ("country", pa.string()), ("amount_minor", pa.int64()),
         ("currency", pa.string()), ("status", pa.string()), ("decline_reason", pa.string()),
         ("fraud_score", pa.float64()), ("is_fraud", pa.bool_()), ("disputed_by_customer", pa.bool_())]
    ),
    "fraud_alerts": pa.schema(
        [("alert_id", pa.string()), ("customer_id", pa.string()), ("card_id", pa.string()),
         ("card_last4", pa.string()), ("txn_id", pa.string()), ("rule", pa.string()), ("score", pa.float64()),
         ("status", pa.string()), ("created_at", TS)]
    ),
    "holds": pa.schema(
        [("hold_id", pa.string()), ("customer_id", pa.string()), ("card_id", pa.string()),
         ("card_last4", pa.string()), ("status", pa.string()), ("reason", pa.string()),
         ("fraud_score", pa.float64()), ("placed_at", TS), ("released_at", TS), ("updated_at", TS)]
    ),
    "travel_notices": pa.schema(
        [("notice_id", pa.string()), ("customer_id", pa.string()), ("card_id", pa.string()),
         ("countries", pa.string()), ("start_date", pa.date32()), ("end_date", pa.date32()),
         ("created_at", TS)]
    ),
}  # fmt: skip
HEALTH: dict[str, pa.Schema] = {
    "plans": pa.schema(
        [("plan_id", pa.string()), ("name", pa.string()), ("kind", pa.string()),
         ("deductible_minor", pa.int64()), ("oop_max_minor", pa.int64())]
    ),
    "members": pa.schema(
        [("member_id", pa.string()), ("name", pa.string()), ("phone", pa.string()),
         ("date_of_birth", pa.date32()), ("plan_id", pa.string()), ("payment_plan_blocked", pa.bool_())]
    ),
    "eligibility_spans": pa.schema(
        [("member_id", pa.string()), ("plan_id", pa.string()), ("status", pa.string()),
         ("start_date", pa.date32()), ("end_date", pa.date32())]
    ),
    "claims": pa.schema(
        [("claim_id", pa.string()), ("member_id", pa.string()), ("visit_date", pa.date32()),
         ("provider", pa.string()), ("status", pa.string()), ("billed_minor", pa.int64()),
         ("patient_responsibility_minor", pa.int64()), ("currency", pa.string())]
    ),
    "claim_lines": pa.schema(
        [("claim_id", pa.string()), ("member_id", pa.string()), ("line_no", pa.int32()),
         ("description", pa.string()), ("procedure_code", pa.string()), ("diagnosis_code", pa.string()),
         ("network", pa.string()), ("billed_minor", pa.int64()), ("allowed_minor", pa.int64()),
         ("patient_responsibility_minor", pa.int64()), ("currency", pa.string()), ("reason", pa.string()),
         ("denial_code", pa.string())]
    ),
    "statements": pa.schema(
        [("statement_id", pa.string()), ("member_id", pa.string()), ("claim_id", pa.string()),
         ("visit_date", pa.date32()), ("balance_minor", pa.int64()), ("currency", pa.string()),
         ("status", pa.string())]
    ),
    "payment_plan_rules": pa.schema(
        [("rule_id", pa.string()), ("min_balance_minor", pa.int64()), ("max_balance_minor", pa.int64()),
         ("max_months", pa.int32()), ("description", pa.string())]
    ),
    "appointments": pa.schema(
        [("appointment_id", pa.string()), ("member_id", pa.string()), ("appt_date", pa.date32()),
         ("provider", pa.string()), ("status", pa.string())]
    ),
}  # fmt: skip
SCHEMAS: dict[str, dict[str, pa.Schema]] = {"bank": BANK, "health": HEALTH}
# The tables each tenant's point lookups go through, by key column: what the sort order serves.
SORT_KEYS: dict[str, str] = {
    "customers": "customer_id", "accounts": "customer_id", "cards": "customer_id",
    "card_transactions": "customer_id", "fraud_alerts": "customer_id", "holds": "customer_id",
    "travel_notices": "customer_id", "members": "member_id", "eligibility_spans": "member_id",
    "claims": "member_id", "claim_lines": "member_id", "statements": "member_id", "appointments": "member_id",
}  # fmt: skip
# The columns signals look rows up by, per table, stored uncompressed in ``lakehouse.duckdb``. DuckDB would pick
# DICT_FSST for them, and a filter on a near-unique DICT_FSST string decodes its whole row group on every lookup:
# at 10 million rows that made a member's coverage lookup 3 ms of CPU instead of 1 (docs/activation.md). Card
# transactions keep theirs compressed: a row group holds only ~1,200 customers, so the dictionary is small and
# the lookup as fast either way, while 10 million uncompressed ids would cost 160 MB of disk.
LOOKUP_KEYS: dict[str, frozenset[str]] = {
    "customers": frozenset({"customer_id"}), "accounts": frozenset({"customer_id"}),
    "cards": frozenset({"customer_id", "card_id"}), "fraud_alerts": frozenset({"customer_id"}),
    "holds": frozenset({"customer_id"}), "travel_notices": frozenset({"customer_id"}),
    "members": frozenset({"member_id"}), "eligibility_spans": frozenset({"member_id"}),
    "claims": frozenset({"member_id", "claim_id"}), "claim_lines": frozenset({"member_id"}),
    "statements": frozenset({"member_id"}), "appointments": frozenset({"member_id"}),
}  # fmt: skip
# Near-unique text columns that signals return, also stored uncompressed in ``lakehouse.duckdb``. DuckDB picks
# DICT_FSST for them too, and starting a scan of a DICT_FSST segment decodes its dictionary: for a column of
# near-unique ids the dictionary is the column, decoded on every lookup that touches the segment. At 10 million
# card transactions that was a fifth of a claim_lines lookup's CPU (claim ids: 4.2 ms per key in a batch of 16,
# 2.8 uncompressed; a statement 2.4 and 2.0), for 110 MB of disk (302 MB to 411 at that scale). Transaction,
# account and card numbers stay compressed: uncompressed, recent_declines and account_balances cost the same
# (their segments are seldom opened, or small).
RETURNED_IDS: dict[str, frozenset[str]] = {
    "claim_lines": frozenset({"claim_id"}), "statements": frozenset({"claim_id", "statement_id"}),
}  # fmt: skip
# Row groups of ``lakehouse.duckdb`` per tenant, where not DuckDB's own 122,880 rows. A member has a few rows in
# each health table, and the bill set's many-keys statements (``query_many``) filter by a list of members that
# DuckDB checks against each row group's min and max: smaller groups leave less to scan around each member. At
# 10 million card transactions, 24 members per statement, the statement signal cost 0.75 ms of CPU per member
# instead of 1.0, claim lines and payment-plan eligibility 5-10% less, and single lookups no more. The bank keeps
# DuckDB's size: its card_declined set cost the same CPU with 16,384 (docs/activation.md).
DUCKDB_ROW_GROUP: dict[str, int] = {"health": 16_384}

# -- catalogues (fictional) ---------------------------------------------------------------------------------
FIRST = ["Ana", "Ben", "Chloe", "David", "Elena", "Farah", "Grace", "Hugo", "Iris",
         "Jonah", "Keiko", "Liam", "Mei", "Nora", "Omar", "Priya", "Quinn", "Rosa",
         "Sam", "Tara", "Umar", "Vera", "Wes", "Yara", "Zoe"]  # fmt: skip
LAST = ["Abbott", "Baker", "Castro", "Diaz", "Evans", "Fischer", "Gomez", "Hughes", "Ito",
        "Jensen", "Khan", "Larsen", "Murphy", "Nguyen", "Okafor", "Park", "Quist", "Reyes",
        "Singh", "Torres", "Usman", "Vance", "Walsh", "Xu", "Young"]  # fmt: skip
AREAS = [206, 212, 303, 305, 312, 404, 415, 503, 512, 602, 617, 702, 713, 718, 919]
# category: (merchants, log-mean of the amount in cents, log-sigma, weight among everyday purchases)
CATEGORIES: dict[str, tuple[list[str], float, float, float]] = {
    "grocery": (["Safeway", "Trader Joe's", "Whole Foods", "Kroger", "Aldi"], 8.3, 0.7, 0.26),
    "restaurant": (["Chipotle", "Blue Bottle Coffee", "Olive Garden", "Sweetgreen", "Local Diner"], 7.6, 0.7, 0.22),
    "fuel": (["Shell", "Chevron", "BP", "Exxon"], 8.2, 0.4, 0.12),
    "online": (["Amazon", "Etsy", "eBay", "Target.com", "Apple.com"], 8.0, 1.0, 0.18),
    "pharmacy": (["CVS", "Walgreens", "Rite Aid"], 7.5, 0.8, 0.07),
    "utilities": (["PG&E", "Comcast", "Verizon", "AT&T"], 9.3, 0.5, 0.07),
    "travel": (["United Airlines", "Delta", "Marriott", "Hilton", "Uber"], 9.5, 1.0, 0.05),
    "electronics": (["ElectroMart", "Best Buy", "Micro Center"], 9.8, 0.9, 0.03),
}  # fmt: skip
TESTING_MERCHANTS = ["QuickDonate.org", "GameCoins Online", "StreamBox Trial", "PayCheckr Verify"]
HIGH_VALUE_MERCHANTS = ["ElectroMart", "Best Buy", "GiftCardMall", "Apple.com"]
FOREIGN: list[tuple[str, str]] = [
    ("Tasca da Baixa, Lisbon", "PT"), ("Café Sperl, Vienna", "AT"), ("Mercado San Miguel, Madrid", "ES"),
    ("Boulangerie Poilâne, Paris", "FR"), ("Trattoria da Enzo, Rome", "IT"), ("Ichiran, Tokyo", "JP"),
    ("Taco Stand, Mexico City", "MX"), ("Hawker Centre, Singapore", "SG"), ("Pub on the Green, Dublin", "IE"),
]  # fmt: skip
DECLINES = ["insufficient funds", "incorrect PIN", "expired card", "merchant not allowed"]
DECLINE_WEIGHTS = [0.6, 0.2, 0.1, 0.1]
RULE_TESTING, RULE_FOREIGN, RULE_HIGH_VALUE = "card testing", "foreign-transaction alert", "high-value velocity"
TESTING, SUSPECTED, HOLD = "suspected card testing", "suspected fraud", "fraud hold"
PLANS = [
    ("PLN-PPO", "Blue Harbor Health PPO", "PPO", 150_000, 700_000),
    ("PLN-HMO", "Blue Harbor Health HMO", "HMO", 50_000, 400_000),
    ("PLN-EPO", "Blue Harbor Health EPO", "EPO", 100_000, 600_000),
    ("PLN-HDHP", "Blue Harbor Health Saver HDHP", "HDHP", 320_000, 800_000),
    ("PLN-MA", "Blue Harbor Health Medicare Advantage", "MA", 0, 550_000),
]
PAYMENT_PLAN_RULES = [
    ("PPR-1", 10_000, 1_000_000, 12, "open balance from $100 to $10,000: up to 12 monthly payments"),
    ("PPR-2", 1_000_001, 5_000_000, 24, "open balance above $10,000 up to $50,000: up to 24 monthly payments"),
]
# procedure: (description, code, log-mean of the billed amount in cents)
PROCEDURES = [
    ("office visit", "99213", 9.6), ("lab work", "80053", 9.9), ("x-ray", "71046", 10.3),
    ("MRI", "72148", 12.0), ("physical therapy", "97110", 9.7), ("flu shot", "90686", 8.2),
    ("emergency room visit", "99284", 11.8), ("ultrasound", "76700", 11.0),
]  # fmt: skip
DIAGNOSES = ["Z00.00", "E11.9", "I10", "J06.9", "M54.5", "R10.9", "S93.401A", "K21.9"]
PROVIDERS = ["Harbor Family Medicine", "Bayview Imaging", "Northside Labs", "St. Brendan Hospital",
             "Coastal Physical Therapy", "Mission Urgent Care", "Elm Street Pediatrics"]  # fmt: skip
DOCTORS = [f"Dr. {last}, {practice}" for last, practice in zip(LAST, PROVIDERS, strict=False)]
# what happened to a claim line: (reason, denial code, share of lines)
LINE_OUTCOMES = [
    ("covered in full", None, 0.35), ("deductible applied", "PR-1", 0.25), ("coinsurance applied", "PR-2", 0.18),
    ("not medically necessary", "CO-50", 0.04), ("prior authorization required", "CO-197", 0.03),
    ("duplicate claim", "CO-18", 0.02),
]  # fmt: skip
OUT_OF_NETWORK = ("billed out of network", "PR-242")
CLAIM_STATUSES = ["processed", "pending", "denied", "appealed"]
CLAIM_STATUS_WEIGHTS = [0.85, 0.08, 0.05, 0.02]


@dataclass
class Generated:
    out_dir: Path
    scale: float
    seed: int
    rows: dict[str, int] = field(default_factory=dict)  # "bank/card_transactions" -> rows
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "generator_version": GENERATOR_VERSION,
            "scale": self.scale,
            "seed": self.seed,
            "rows": self.rows,
            "seconds": round(self.seconds, 2),
        }


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / MANIFEST
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def generate(
    out_dir: Path,
    scale: float = DEMO_SCALE,
    seed: int = 7,
    progress: Progress | None = None,
    *,
    duckdb_file: bool = True,
    examples: Path | None = None,
) -> Generated:
    """Write both tenants' lakehouse under ``out_dir`` (replacing what is there). Same scale and seed, same data."""
    if scale <= 0:
        raise ValueError("scale must be positive (0.01 is the demo, 10 the benchmark)")
    started = time.perf_counter()
    examples = examples or EXAMPLES_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    result = Generated(out_dir, scale, seed)
    worlds = {p.parent.name: yaml.safe_load(p.read_text()) for p in sorted(examples.glob("*/world.yaml"))}
    bank_world = next(w for w in worlds.values() if w["tenant"]["kind"] == "bank")
    health_world = next(w for w in worlds.values() if w["tenant"]["kind"] == "health_plan")
    for tenant in ("bank", "health"):
        shutil.rmtree(out_dir / tenant, ignore_errors=True)
    (out_dir / MANIFEST).unlink(missing_ok=True)
    txns = max(round(scale * TXNS_PER_SCALE), 1)
    claims = max(round(scale * CLAIMS_PER_SCALE), 1)
    with _Writer(out_dir / "bank", BANK, progress, "bank", txns, "card_transactions") as w:
        _bank(w, bank_world, txns, seed)
        result.rows.update({f"bank/{k}": v for k, v in w.rows.items()})
    with _Writer(out_dir / "health", HEALTH, progress, "health plan", claims, "claims") as w:
        _health(w, health_world, claims, seed)
        result.rows.update({f"health/{k}": v for k, v in w.rows.items()})
    _write_delta(out_dir / "bank", progress)
    if duckdb_file:
        for tenant in ("bank", "health"):
            build_duckdb(out_dir / tenant, progress)
    result.seconds = time.perf_counter() - started
    (out_dir / MANIFEST).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def build_duckdb(tenant_dir: Path, progress: Progress | None = None) -> Path:
    """Copy a tenant's Parquet tables into ``lakehouse.duckdb`` (DuckDB's own format, same sort order), the
    lookup key columns and the near-unique ids signals return stored uncompressed (see ``LOOKUP_KEYS`` and
    ``RETURNED_IDS``), in the tenant's row groups (``DUCKDB_ROW_GROUP``)."""
    import duckdb

    path = tenant_dir / "lakehouse.duckdb"
    path.unlink(missing_ok=True)
    (tenant_dir / "lakehouse.duckdb.wal").unlink(missing_ok=True)
    files = sorted(tenant_dir.glob("*.parquet"))
    task = progress.add_task(f"{tenant_dir.name}: DuckDB file", total=len(files)) if progress else None
    con = duckdb.connect()
    try:
        row_group = DUCKDB_ROW_GROUP.get(tenant_dir.name)
        option = f" (ROW_GROUP_SIZE {row_group})" if row_group else ""
        con.execute(f"ATTACH '{_sql_path(path)}' AS lake{option}")
        con.execute("USE lake")
        con.execute("SET enable_progress_bar = false")  # Rich shows the progress; DuckDB's own bar would garble it
        for file in files:
            source = f"read_parquet('{_sql_path(file)}')"
            keys = LOOKUP_KEYS.get(file.stem, frozenset()) | RETURNED_IDS.get(file.stem, frozenset())
            described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
            columns = ", ".join(
                f'"{row[0]}" {row[1]}' + (" USING COMPRESSION uncompressed" if row[0] in keys else "")
                for row in described
            )
            con.execute(f'CREATE TABLE "{file.stem}" ({columns})')
            con.execute(f'INSERT INTO "{file.stem}" SELECT * FROM {source}')
            if progress is not None and task is not None:
                progress.advance(task)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def _write_delta(bank_dir: Path, progress: Progress | None) -> None:
    from deltalake import write_deltalake

    task = progress.add_task("bank: Delta tables", total=len(DELTA_TABLES)) if progress else None
    for name in DELTA_TABLES:
        table = pq.read_table(bank_dir / f"{name}.parquet")
        write_deltalake(str(bank_dir / f"{name}.delta"), table, mode="overwrite")
        if progress is not None and task is not None:
            progress.advance(task)


class _Writer:
    """One Parquet writer per table; batches are appended in key order, so every file stays sorted."""

    def __init__(
        self, root: Path, schemas: Mapping[str, pa.Schema], progress: Progress | None, label: str, total: int,
        counted: str,
    ) -> None:  # fmt: skip
        self.root = root
        self.schemas = schemas
        self.progress = progress
        self.counted = counted
        self.rows: dict[str, int] = {}
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._task: TaskID | None = (
            progress.add_task(f"{label}: {counted.replace('_', ' ')}", total=total) if progress else None
        )

    def __enter__(self) -> _Writer:
        self.root.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        for writer in self._writers.values():
            writer.close()
        for name, schema in self.schemas.items():
            if name not in self._writers:  # an empty table is still a table
                pq.write_table(schema.empty_table(), self.root / f"{name}.parquet")
                self.rows[name] = 0

    def write(self, name: str, columns: Mapping[str, Any]) -> None:
        schema = self.schemas[name]
        table = pa.table({f.name: _array(columns[f.name], f.type) for f in schema}, schema=schema)
        if table.num_rows == 0:
            return
        writer = self._writers.get(name)
        if writer is None:
            writer = pq.ParquetWriter(self.root / f"{name}.parquet", schema, compression="snappy")
            self._writers[name] = writer
        writer.write_table(table, row_group_size=ROW_GROUP)
        self.rows[name] = self.rows.get(name, 0) + table.num_rows
        if name == self.counted and self.progress is not None and self._task is not None:
            self.progress.advance(self._task, table.num_rows)

    def write_rows(self, name: str, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.write(name, {f.name: [r.get(f.name) for r in rows] for f in self.schemas[name]})


def _array(values: Any, type_: pa.DataType) -> pa.Array:
    if isinstance(values, pa.Array | pa.ChunkedArray):
        return values if values.type == type_ else values.cast(type_)
    if isinstance(values, np.ndarray) and type_ == TS:
        return pa.array(values.astype("int64"), type=pa.int64()).cast(TS)
    if isinstance(values, np.ndarray) and type_ == pa.date32():
        return pa.array(values.astype("int32"), type=pa.int32()).cast(pa.date32())
    return pa.array(values, type=type_)


# -- vectorised helpers -------------------------------------------------------------------------------------
def _ids(prefix: str, numbers: np.ndarray, suffix: np.ndarray | None = None) -> pa.Array:
    parts: list[Any] = [prefix, pa.array(numbers).cast(pa.string())]
    if suffix is not None:
        parts += ["-", pa.array(suffix).cast(pa.string())]
    return pc.binary_join_element_wise(*parts, "")


def _pick(values: Sequence[str], index: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(list(values), type=pa.string()).take(pa.array(index, mask=mask))


def _days(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def _micros(moment: datetime) -> int:
    return int(moment.timestamp()) * US


def _phones(rng: Rng, n: int) -> np.ndarray:
    """US numbers in the fictional 555 exchange, 555-2000..9999: never a reference customer's 555-01xx."""
    area = np.array(AREAS)[rng.integers(0, len(AREAS), n)]
    number: np.ndarray = 10_000_000_000 + area * 10_000_000 + 5_550_000 + rng.integers(2000, 10_000, n)
    return number


def _luhn_pans(rng: Rng, n: int) -> np.ndarray:
    """``n`` fictional 16-digit card numbers that pass the Luhn check (issuer digit 4 or 5)."""
    digits = rng.integers(0, 10, size=(n, 15))
    digits[:, 0] = rng.choice([4, 5], size=n)
    doubled = digits[:, ::-1][:, ::2] * 2  # from the right, every other digit next to the check digit
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    total = doubled.sum(axis=1) + digits[:, ::-1][:, 1::2].sum(axis=1)
    check = (10 - total % 10) % 10
    body = (digits * (10 ** np.arange(14, -1, -1, dtype=np.int64))).sum(axis=1)
    result: np.ndarray = body * 10 + check
    return result


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return total % 10 == 0


def _pan_ending(last4: str, seed: int) -> str:
    """A fictional, Luhn-valid card number that ends in ``last4`` (a reference customer's card)."""
    for n in range(10_000):
        candidate = f"4000{(seed * 7919 + n) % 10**8:08d}{last4}"
        if luhn_ok(candidate):
            return candidate
    raise AssertionError("unreachable: one digit in ten satisfies the check")


def _segments(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For counts per parent: each child's parent index and its 0-based position among its siblings."""
    parent = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    position = np.arange(len(parent)) - np.repeat(starts, counts)
    return parent, position


def _chunks(total: int, size: int) -> Iterator[tuple[int, int, int]]:
    for index, first in enumerate(range(0, total, size)):
        yield index, first, min(size, total - first)


def _share(total: int, part: int, whole: int, before: int) -> int:
    """Apportion ``total`` over parts of ``whole`` exactly: the share of the items [before, before + part)."""
    return (total * (before + part)) // whole - (total * before) // whole


# -- the bank -----------------------------------------------------------------------------------------------
def _bank(w: _Writer, world: Mapping[str, Any], txns: int, seed: int) -> None:
    business_date = date.fromisoformat(str(world["business_date"]))
    end_us = _micros(datetime.combine(business_date, datetime.min.time(), UTC) + timedelta(hours=9))
    _bank_reference(w, world["customers"], seed)
    customers = max(200, txns // TXNS_PER_CUSTOMER)
    counters = {"txn": 1_000_000_000, "alert": 1_000_000, "hold": 1_000_000, "notice": 1_000_000}
    for index, first, n in _chunks(customers, CHUNK_CUSTOMERS):
        rng = np.random.default_rng([seed, 1, index])
        _bank_chunk(w, rng, first, n, _share(txns, n, customers, first), end_us, counters)


def _bank_reference(w: _Writer, customers: Sequence[Mapping[str, Any]], seed: int) -> None:
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in BANK}
    for c in sorted(customers, key=lambda c: str(c["id"])):
        cid = str(c["id"])
        number = cid.split("-", 1)[1]
        rows["customers"].append(
            {"customer_id": cid, "name": c["name"], "phone": c.get("phone"), "email": c.get("email"),
             "date_of_birth": date.fromisoformat(str(c["date_of_birth"])), "zip": c.get("zip"), "tier": c.get("tier")}
        )  # fmt: skip
        for a in c.get("accounts") or []:
            rows["accounts"].append(
                {"account_id": a["id"], "customer_id": cid, "kind": a["kind"],
                 "balance_minor": a["balance"]["amount_minor"], "currency": a["balance"]["currency"]}
            )  # fmt: skip
        card_ids: dict[str, str] = {}
        for k, card in enumerate(c.get("cards") or [], start=1):
            last4 = str(card["last4"])
            card_id = card_ids[last4] = f"CRD-{number}-{k}"
            rows["cards"].append(
                {"card_id": card_id, "customer_id": cid, "pan": _pan_ending(last4, seed + k), "last4": last4,
                 "kind": card["kind"], "status": card["status"]}
            )  # fmt: skip
            hold = card.get("hold")
            if hold:
                placed = datetime.fromisoformat(str(hold["placed_at"]))
                rows["holds"].append(
                    {"hold_id": f"HLD-{number}-{k}", "customer_id": cid, "card_id": card_id, "card_last4": last4,
                     "status": "held", "reason": hold["reason"], "fraud_score": float(hold["fraud_score"]),
                     "placed_at": placed, "released_at": None, "updated_at": placed}
                )  # fmt: skip
                rows["fraud_alerts"].append(
                    {"alert_id": f"ALR-{number}-{k}", "customer_id": cid, "card_id": card_id, "card_last4": last4,
                     "txn_id": None, "rule": hold["reason"], "score": float(hold["fraud_score"]), "status": "open",
                     "created_at": placed}
                )  # fmt: skip
        for notice in c.get("travel_notices") or []:
            rows["travel_notices"].append({"customer_id": cid, **notice})
        for t in sorted(c.get("transactions") or [], key=lambda t: str(t["date"])):
            day = date.fromisoformat(str(t["date"]))
            last4 = str(t["card_last4"])
            rows["card_transactions"].append(
                {"txn_id": t["id"], "customer_id": cid, "card_id": card_ids.get(last4), "card_last4": last4,
                 # The records give a date only; noon keeps the day whatever the reader's time zone.
                 "ts": datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12), "txn_date": day,
                 "merchant": t["merchant"], "category": None, "country": None,
                 "amount_minor": t["amount"]["amount_minor"], "currency": t["amount"]["currency"],
                 "status": t["status"], "decline_reason": t.get("decline_reason"), "fraud_score": None,
                 "is_fraud": False, "disputed_by_customer": bool(t.get("disputed_by_customer", False))}
            )  # fmt: skip
    for name, table_rows in rows.items():
        w.write_rows(name, table_rows)


def _bank_chunk(
    w: _Writer, rng: Rng, first: int, n: int, txn_target: int, end_us: int, counters: dict[str, int]
) -> None:
    number = np.arange(first, first + n, dtype=np.int64) + 2_000_000
    customer_id = _ids("C-", number)
    first_i, last_i = rng.integers(0, len(FIRST), n), rng.integers(0, len(LAST), n)
    first_name, last_name = _pick(FIRST, first_i), _pick(LAST, last_i)
    phone_n = _phones(rng, n)
    w.write(
        "customers",
        {
            "customer_id": customer_id,
            "name": pc.binary_join_element_wise(first_name, last_name, " "),
            "phone": _ids("+", phone_n),
            "email": pc.binary_join_element_wise(
                pc.utf8_lower(first_name),
                ".",
                pc.utf8_lower(last_name),
                pa.array(number).cast(pa.string()),
                "@example.com",
                "",
            ),
            "date_of_birth": rng.integers(_days(date(1940, 1, 1)), _days(date(2005, 1, 1)), n),
            "zip": pc.utf8_lpad(pa.array(rng.integers(1000, 99_951, n)).cast(pa.string()), 5, "0"),
            "tier": _pick(["standard", "gold", "platinum"], rng.choice(3, n, p=[0.8, 0.15, 0.05])),
        },
    )
    # accounts: most customers have one or two
    n_accounts = rng.choice(3, n, p=[0.1, 0.65, 0.25])
    owner, position = _segments(n_accounts)
    w.write(
        "accounts",
        {
            "account_id": _ids("ACC-", number[owner], position + 1),
            "customer_id": customer_id.take(pa.array(owner)),
            "kind": _pick(["checking", "savings"], np.minimum(position, 1)),
            "balance_minor": np.round(rng.lognormal(12.0, 1.2, len(owner))).astype(np.int64),
            "currency": _pick(["USD"], np.zeros(len(owner), dtype=np.int64)),
        },
    )
    # cards
    n_cards = rng.choice([1, 2, 3], n, p=[0.55, 0.35, 0.10])
    card_owner, card_pos = _segments(n_cards)
    m = len(card_owner)
    card_id = _ids("CRD-", number[card_owner], card_pos + 1)
    pan = pa.array(_luhn_pans(rng, m)).cast(pa.string())
    last4 = pc.utf8_slice_codeunits(pan, 12, 16)
    card_customer = customer_id.take(pa.array(card_owner))
    card_status = np.where(rng.random(m) < 0.01, 2, 0)  # 0 active, 1 fraud_hold (set below), 2 blocked

    # travel notices: a few customers tell us before they travel
    has_notice = rng.random(n) < 0.03
    notice_owner = np.flatnonzero(has_notice)
    k = len(notice_owner)
    notice_start = (end_us // DAY_US) - rng.integers(-20, 200, k)
    notice_end = notice_start + rng.integers(5, 21, k)
    notice_country = rng.integers(0, len(FOREIGN), k)
    countries = [c for _, c in FOREIGN]
    w.write(
        "travel_notices",
        {
            "notice_id": _ids("TRV-", np.arange(counters["notice"], counters["notice"] + k)),
            "customer_id": customer_id.take(pa.array(notice_owner)),
            "card_id": pa.nulls(k, pa.string()),
            "countries": _pick(countries, notice_country),
            "start_date": notice_start,
            "end_date": notice_end,
            "created_at": (notice_start - rng.integers(1, 10, k)) * DAY_US,
        },
    )
    counters["notice"] += k
    notice_of_customer = np.full(n, -1)
    notice_of_customer[notice_owner] = np.arange(k)

    # fraud patterns, each an "instance" on one card: its rows, one alert, maybe a hold
    u = rng.random(m)
    columns = ("card", "ts", "merchant", "amount", "status", "reason", "score", "fraud", "instance", "country")
    cols: dict[str, list[np.ndarray]] = {key: [] for key in columns}
    merchants: list[str] = []
    merchant_index: dict[str, int] = {}

    def merchant(name: str) -> int:
        if name not in merchant_index:
            merchant_index[name] = len(merchants)
            merchants.append(name)
        return merchant_index[name]

    category_of: list[str] = []
    for category, (names, *_rest) in CATEGORIES.items():
        for name in names:
            merchant(name)
            category_of.append(category)
    for name in TESTING_MERCHANTS:
        merchant(name)
        category_of.append("online")
    for name, _country in FOREIGN:
        merchant(name)
        category_of.append("restaurant")
    for name in HIGH_VALUE_MERCHANTS:
        if name not in merchant_index:
            merchant(name)
            category_of.append("electronics")
    reasons = [*DECLINES, TESTING, SUSPECTED, HOLD]
    status_names = ["posted", "declined", "pending"]
    # rule, cards, first moment, score, held, instance ids
    instances: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(card: np.ndarray, ts: np.ndarray, merch: np.ndarray, amount: np.ndarray, status: np.ndarray,
            reason: np.ndarray, score: np.ndarray, fraud: np.ndarray, instance: np.ndarray,
            country: np.ndarray) -> None:  # fmt: skip
        for key, value in (("card", card), ("ts", ts), ("merchant", merch), ("amount", amount),
                           ("status", status), ("reason", reason), ("score", score), ("fraud", fraud),
                           ("instance", instance), ("country", country)):  # fmt: skip
            cols[key].append(value)

    us_country = 0
    country_names = ["US", *countries]
    next_instance = 0

    def window(count: int) -> np.ndarray:
        t: np.ndarray = end_us - rng.integers(0, 120 * DAY_US, count)
        return t

    # card testing: a burst of tiny online payments seconds apart, most of them declined
    testing = np.flatnonzero(u < 0.004)
    if len(testing):
        inst, pos = _segments(rng.integers(5, 13, len(testing)))
        t0 = window(len(testing))
        scores = rng.uniform(0.86, 0.99, len(testing))
        step = rng.integers(5, 90, len(testing))
        rows = len(inst)
        add(testing[inst], t0[inst] + pos * step[inst] * US,
            merchant_index[TESTING_MERCHANTS[0]] + rng.integers(0, len(TESTING_MERCHANTS), rows),
            rng.integers(50, 500, rows), np.where(pos < 2, 0, 1), np.where(pos < 2, -1, reasons.index(TESTING)),
            scores[inst], np.ones(rows, bool), next_instance + inst, np.full(rows, us_country))  # fmt: skip
        ids = next_instance + np.arange(len(testing))
        instances.append((RULE_TESTING, testing, t0, scores, np.ones(len(testing), bool), ids))
        next_instance += len(testing)
    # a foreign payment: expected under a travel notice; otherwise an alert, and a hold when the score is high
    foreign = np.flatnonzero((u >= 0.004) & (u < 0.012))
    if len(foreign):
        notice = notice_of_customer[card_owner[foreign]]
        covered = notice >= 0
        safe_notice = np.maximum(notice, 0)
        t0 = np.where(covered, (notice_start[safe_notice] + 1) * DAY_US + 15 * 3600 * US, window(len(foreign)))
        where = np.where(covered, notice_country[safe_notice], rng.integers(0, len(FOREIGN), len(foreign)))
        scores = np.where(covered, rng.uniform(0.05, 0.3, len(foreign)), rng.uniform(0.55, 0.97, len(foreign)))
        held = scores > 0.75
        fraud = ~covered & (rng.random(len(foreign)) < 0.4)  # many are real travellers who told nobody
        inst, pos = _segments(np.where(held, rng.integers(1, 4, len(foreign)), 1))
        step = rng.integers(20, 180, len(foreign)) * 60
        rows = len(inst)
        # The first payment trips the alert and is declined as suspected fraud; later ones meet the hold.
        reason = np.where(pos == 0, reasons.index(SUSPECTED), reasons.index(HOLD))
        add(foreign[inst], t0[inst] + pos * step[inst] * US, merchant_index[FOREIGN[0][0]] + where[inst],
            rng.integers(1500, 30_000, rows), held[inst].astype(np.int64), np.where(held[inst], reason, -1),
            scores[inst], fraud[inst], next_instance + inst, 1 + where[inst])  # fmt: skip
        ids = next_instance + np.arange(len(foreign))
        alerted = ~covered
        instances.append((RULE_FOREIGN, foreign[alerted], t0[alerted], scores[alerted], held[alerted], ids[alerted]))
        next_instance += len(foreign)
    # high-value velocity: a few large electronics or gift-card payments within an hour
    high = np.flatnonzero((u >= 0.012) & (u < 0.0145))
    if len(high):
        inst, pos = _segments(rng.integers(2, 5, len(high)))
        t0 = window(len(high))
        scores = rng.uniform(0.7, 0.99, len(high))
        held = scores > 0.9
        step = rng.integers(3, 20, len(high)) * 60
        rows = len(inst)
        stopped = held[inst] & (pos > 0)
        high_merchants = np.array([merchant_index[h] for h in HIGH_VALUE_MERCHANTS])
        add(high[inst], t0[inst] + pos * step[inst] * US,
            high_merchants[rng.integers(0, len(HIGH_VALUE_MERCHANTS), rows)], rng.integers(40_000, 250_000, rows),
            stopped.astype(np.int64), np.where(stopped, reasons.index(SUSPECTED), -1), scores[inst],
            (rng.random(len(high)) < 0.7)[inst], next_instance + inst, np.full(rows, us_country))  # fmt: skip
        ids = next_instance + np.arange(len(high))
        instances.append((RULE_HIGH_VALUE, high, t0, scores, held, ids))
        next_instance += len(high)
    injected = sum(len(c) for c in cols["card"])

    # everyday purchases, spread over the cards
    base = max(txn_target - injected, 0)
    weights = rng.gamma(2.0, 1.0, m)
    per_card = rng.multinomial(base, weights / weights.sum())
    card = np.repeat(np.arange(m), per_card)
    ts = end_us - rng.integers(0, 365 * DAY_US, base)
    cat_names = list(CATEGORIES)
    cat = rng.choice(len(cat_names), base, p=np.array([CATEGORIES[c][3] for c in cat_names]))
    starts = np.cumsum([0] + [len(CATEGORIES[c][0]) for c in cat_names])[:-1]
    sizes = np.array([len(CATEGORIES[c][0]) for c in cat_names])
    merch = starts[cat] + rng.integers(0, 1 << 30, base) % sizes[cat]
    mu = np.array([CATEGORIES[c][1] for c in cat_names])[cat]
    sigma = np.array([CATEGORIES[c][2] for c in cat_names])[cat]
    amount = np.clip(np.round(np.exp(rng.normal(mu, sigma))), 100, 2_000_000).astype(np.int64)
    r = rng.random(base)
    declined = r < 0.015
    pending = (~declined) & (ts > end_us - DAY_US) & (r < 0.5)
    status = np.where(declined, 1, np.where(pending, 2, 0))
    reason = np.where(declined, rng.choice(len(DECLINES), base, p=DECLINE_WEIGHTS), -1)
    add(card, ts, merch, amount, status, reason, rng.beta(1.2, 30.0, base), np.zeros(base, bool),
        np.full(base, -1), np.full(base, us_country))  # fmt: skip

    all_cols = {key: np.concatenate(value) if value else np.array([]) for key, value in cols.items()}
    order = np.lexsort((all_cols["ts"], card_owner[all_cols["card"]]))
    s = {key: value[order] for key, value in all_cols.items()}
    first_txn = counters["txn"]
    counters["txn"] += len(order)
    # Each alert points at the payment that raised it: its instance's first row in file order.
    trigger_row = np.full(max(next_instance, 1), len(order))
    flagged = np.flatnonzero(s["instance"] >= 0)
    np.minimum.at(trigger_row, s["instance"][flagged], flagged)
    row_card = pa.array(s["card"])
    reason_idx = s["reason"]
    w.write(
        "card_transactions",
        {
            "txn_id": _ids("TXN-", first_txn + np.arange(len(order))),
            "customer_id": card_customer.take(row_card),
            "card_id": card_id.take(row_card),
            "card_last4": last4.take(row_card),
            "ts": s["ts"],
            "txn_date": s["ts"] // DAY_US,
            "merchant": _pick(merchants, s["merchant"]),
            "category": _pick(category_of, s["merchant"]),
            "country": _pick(country_names, s["country"]),
            "amount_minor": s["amount"],
            "currency": _pick(["USD"], np.zeros(len(order), dtype=np.int64)),
            "status": _pick(status_names, s["status"]),
            "decline_reason": _pick(reasons, np.maximum(reason_idx, 0), mask=reason_idx < 0),
            "fraud_score": np.round(s["score"], 3),
            "is_fraud": s["fraud"],
            "disputed_by_customer": rng.random(len(order)) < 0.0005,
        },
    )

    # one alert per instance that raised one; a hold where the score called for it
    if instances:
        rules = [inst[0] for inst in instances]
        rule_i = np.concatenate([np.full(len(inst[1]), i) for i, inst in enumerate(instances)])
        a_card, a_t0, a_score, a_held, a_inst = (np.concatenate([inst[k] for inst in instances]) for k in range(1, 6))
        order_a = np.lexsort((a_t0, card_owner[a_card]))
        rule_i, a_card, a_t0, a_score, a_held, a_inst = (
            x[order_a] for x in (rule_i, a_card, a_t0, a_score, a_held, a_inst)
        )
        a_score = np.round(a_score, 3)
        a_card_arr = pa.array(a_card)
        k = len(a_card)
        w.write(
            "fraud_alerts",
            {
                "alert_id": _ids("ALR-", np.arange(counters["alert"], counters["alert"] + k)),
                "customer_id": card_customer.take(a_card_arr),
                "card_id": card_id.take(a_card_arr),
                "card_last4": last4.take(a_card_arr),
                "txn_id": _ids("TXN-", first_txn + trigger_row[a_inst]),
                "rule": _pick(rules, rule_i),
                "score": a_score,
                "status": _pick(["open", "closed"], (a_t0 < end_us - 7 * DAY_US).astype(np.int64)),
                "created_at": a_t0,
            },
        )
        counters["alert"] += k
        h = np.flatnonzero(a_held)
        placed = a_t0[h] + 30 * US
        released = placed < end_us - 3 * DAY_US
        released_at = placed + rng.integers(2 * 3600, 48 * 3600, len(h)) * US
        card_status[a_card[h][~released]] = 1
        held_cards = pa.array(a_card[h])
        w.write(
            "holds",
            {
                "hold_id": _ids("HLD-", np.arange(counters["hold"], counters["hold"] + len(h))),
                "customer_id": card_customer.take(held_cards),
                "card_id": card_id.take(held_cards),
                "card_last4": last4.take(held_cards),
                "status": _pick(["held", "released"], released.astype(np.int64)),
                "reason": _pick(rules, rule_i[h]),
                "fraud_score": a_score[h],
                "placed_at": placed,
                "released_at": pa.array(released_at, mask=~released).cast(TS),
                "updated_at": np.where(released, released_at, placed),
            },
        )
        counters["hold"] += len(h)
    w.write(
        "cards",
        {
            "card_id": card_id,
            "customer_id": card_customer,
            "pan": pan,
            "last4": last4,
            "kind": _pick(["debit", "credit"], rng.integers(0, 2, m)),
            "status": _pick(["active", "fraud_hold", "blocked"], card_status),
        },
    )


# -- the health plan ----------------------------------------------------------------------------------------
def _health(w: _Writer, world: Mapping[str, Any], claims: int, seed: int) -> None:
    business_date = date.fromisoformat(str(world["business_date"]))
    w.write_rows(
        "plans",
        [dict(zip(HEALTH["plans"].names, p, strict=True)) for p in PLANS],
    )
    w.write_rows(
        "payment_plan_rules",
        [dict(zip(HEALTH["payment_plan_rules"].names, r, strict=True)) for r in PAYMENT_PLAN_RULES],
    )
    _health_reference(w, world["customers"])
    members = max(50, claims // CLAIMS_PER_MEMBER)
    counters = {"claim": 10_000_000, "statement": 10_000_000, "appointment": 1_000_000}
    for index, first, n in _chunks(members, CHUNK_MEMBERS):
        rng = np.random.default_rng([seed, 2, index])
        _health_chunk(w, rng, first, n, _share(claims, n, members, first), _days(business_date), counters)


def _plan_rule_allows(balance: int) -> bool:
    return any(lo <= balance <= hi for _, lo, hi, _, _ in PAYMENT_PLAN_RULES)


def _health_reference(w: _Writer, members: Sequence[Mapping[str, Any]]) -> None:
    plan_ids = {name: plan_id for plan_id, name, *_ in PLANS}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in HEALTH}
    for m in sorted(members, key=lambda m: str(m["member_id"])):
        mid = str(m["member_id"])
        number = mid.split("-", 1)[1]
        plan_id = plan_ids[str(m["plan"])]
        statements = m.get("statements") or []
        open_balance = sum(int(s["balance"]["amount_minor"]) for s in statements)
        # The records say whether the member may have a payment plan; the rules decide it for everyone else,
        # so a reference member is blocked exactly when the rules alone would say otherwise.
        blocked = _plan_rule_allows(open_balance) and not bool(m.get("payment_plan_eligible"))
        rows["members"].append(
            {"member_id": mid, "name": m["name"], "phone": m.get("phone"),
             "date_of_birth": date.fromisoformat(str(m["date_of_birth"])), "plan_id": plan_id,
             "payment_plan_blocked": blocked}
        )  # fmt: skip
        if bool(m.get("payment_plan_eligible")) and not _plan_rule_allows(open_balance):
            raise ValueError(f"{mid}: the records say eligible for a payment plan, which no rule allows")
        e = m.get("eligibility") or {}
        rows["eligibility_spans"].append(
            {"member_id": mid, "plan_id": plan_id, "status": e.get("status"),
             "start_date": date.fromisoformat(str(e["start"])) if e.get("start") else None,
             "end_date": date.fromisoformat(str(e["end"])) if e.get("end") else None}
        )  # fmt: skip
        for c in m.get("claims") or []:
            lines = c.get("lines") or []
            rows["claims"].append(
                {"claim_id": c["id"], "member_id": mid, "visit_date": date.fromisoformat(str(c["visit_date"])),
                 "provider": None, "status": c["status"],
                 "billed_minor": sum(int(x["billed"]["amount_minor"]) for x in lines),
                 "patient_responsibility_minor": sum(int(x["patient_responsibility"]["amount_minor"]) for x in lines),
                 "currency": lines[0]["billed"]["currency"] if lines else "USD"}
            )  # fmt: skip
            for no, line in enumerate(lines, start=1):
                rows["claim_lines"].append(
                    {"claim_id": c["id"], "member_id": mid, "line_no": no, "description": line["description"],
                     "procedure_code": None, "diagnosis_code": None, "network": line["network"],
                     "billed_minor": line["billed"]["amount_minor"], "allowed_minor": None,
                     "patient_responsibility_minor": line["patient_responsibility"]["amount_minor"],
                     "currency": line["billed"]["currency"], "reason": line.get("reason"), "denial_code": None}
                )  # fmt: skip
        for k, s in enumerate(statements, start=1):
            rows["statements"].append(
                {"statement_id": f"STM-{number}-{k}", "member_id": mid, "claim_id": s.get("claim_id"),
                 "visit_date": date.fromisoformat(str(s["visit_date"])) if s.get("visit_date") else None,
                 "balance_minor": s["balance"]["amount_minor"], "currency": s["balance"]["currency"],
                 "status": "open"}
            )  # fmt: skip
        for a in m.get("appointments") or []:
            rows["appointments"].append(
                {"appointment_id": a["id"], "member_id": mid, "appt_date": date.fromisoformat(str(a["date"])),
                 "provider": a["provider"], "status": a["status"]}
            )  # fmt: skip
    for name in ("members", "eligibility_spans", "claims", "claim_lines", "statements", "appointments"):
        w.write_rows(name, rows[name])


def _health_chunk(
    w: _Writer, rng: Rng, first: int, n: int, claim_target: int, today: int, counters: dict[str, int]
) -> None:
    number = np.arange(first, first + n, dtype=np.int64) + 7_000_000
    member_id = _ids("MBR-", number)
    plan = rng.choice(len(PLANS), n, p=[0.4, 0.25, 0.15, 0.1, 0.1])
    plan_ids = [p[0] for p in PLANS]
    w.write(
        "members",
        {
            "member_id": member_id,
            "name": pc.binary_join_element_wise(
                _pick(FIRST, rng.integers(0, len(FIRST), n)), _pick(LAST, rng.integers(0, len(LAST), n)), " "
            ),
            "phone": _ids("+", _phones(rng, n)),
            "date_of_birth": rng.integers(_days(date(1935, 1, 1)), _days(date(2024, 1, 1)), n),
            "plan_id": _pick(plan_ids, plan),
            "payment_plan_blocked": rng.random(n) < 0.04,
        },
    )
    # eligibility: one to three consecutive spans; the latest is usually still open
    spans = rng.choice([1, 2, 3], n, p=[0.6, 0.3, 0.1])
    owner, pos = _segments(spans)
    length = rng.integers(180, 900, len(owner))
    step = length + 1
    before = np.cumsum(step) - step
    offset = before - np.repeat(before[np.cumsum(spans) - spans], spans)
    start0 = today - np.bincount(owner, weights=step, minlength=n).astype(np.int64) - rng.integers(-100, 400, n)
    start = start0[owner] + offset
    last = pos == spans[owner] - 1
    ended_member = rng.random(n) < 0.15
    open_now = last & ~ended_member[owner]
    end = np.minimum(start + length, today - 1)
    w.write(
        "eligibility_spans",
        {
            "member_id": member_id.take(pa.array(owner)),
            "plan_id": _pick(plan_ids, plan[owner]),
            "status": _pick(["ended", "eligible"], open_now.astype(np.int64)),
            "start_date": np.minimum(start, today - 1),
            "end_date": pa.array(end, mask=open_now).cast(pa.int32()).cast(pa.date32()),
        },
    )
    # claims, spread over members
    weights = rng.gamma(1.5, 1.0, n)
    per_member = rng.multinomial(claim_target, weights / weights.sum())
    c_owner, _ = _segments(per_member)
    c = len(c_owner)
    visit = today - rng.integers(1, 540, c)
    order = np.lexsort((visit, c_owner))
    c_owner, visit = c_owner[order], visit[order]
    claim_number = counters["claim"] + np.arange(c)
    counters["claim"] += c
    claim_id = _ids("CLM-", claim_number)
    status = rng.choice(len(CLAIM_STATUSES), c, p=CLAIM_STATUS_WEIGHTS)
    status = np.where(visit > today - 20, 1, status)  # recent visits are still pending
    # claim lines
    n_lines = rng.choice([1, 2, 3, 4, 5], c, p=[0.35, 0.3, 0.2, 0.1, 0.05])
    l_claim, l_pos = _segments(n_lines)
    lines = len(l_claim)
    proc = rng.integers(0, len(PROCEDURES), lines)
    billed = np.round(np.exp(rng.normal(np.array([p[2] for p in PROCEDURES])[proc], 0.4))).astype(np.int64)
    oon = rng.random(lines) < 0.12
    outcome_p = np.array([o[2] for o in LINE_OUTCOMES])
    outcome = rng.choice(len(LINE_OUTCOMES), lines, p=outcome_p / outcome_p.sum())
    denied_claim = status[l_claim] == 2
    outcome = np.where(denied_claim, 3 + rng.integers(0, 3, lines), outcome)
    allowed = np.where(oon, 0, np.round(billed * rng.uniform(0.45, 0.8, lines))).astype(np.int64)
    share = np.array([0.0, 0.6, 0.2, 0.0, 0.0, 0.0])[outcome]
    patient = np.where(oon, billed, np.round(allowed * share)).astype(np.int64)
    patient = np.where(denied_claim & ~oon, 0, patient)
    pending_line = status[l_claim] == 1
    patient = np.where(pending_line, 0, patient)
    reasons = [o[0] for o in LINE_OUTCOMES] + [OUT_OF_NETWORK[0], "claim is pending"]
    codes = [o[1] or "" for o in LINE_OUTCOMES] + [OUT_OF_NETWORK[1], ""]
    reason_i = np.where(pending_line, len(reasons) - 1, np.where(oon, len(reasons) - 2, outcome))
    code_arr = _pick(codes, reason_i)
    w.write(
        "claim_lines",
        {
            "claim_id": claim_id.take(pa.array(l_claim)),
            "member_id": member_id.take(pa.array(c_owner[l_claim])),
            "line_no": l_pos + 1,
            "description": _pick([p[0] for p in PROCEDURES], proc),
            "procedure_code": _pick([p[1] for p in PROCEDURES], proc),
            "diagnosis_code": _pick(DIAGNOSES, rng.integers(0, len(DIAGNOSES), lines)),
            "network": _pick(["in_network", "out_of_network"], oon.astype(np.int64)),
            "billed_minor": billed,
            "allowed_minor": allowed,
            "patient_responsibility_minor": patient,
            "currency": _pick(["USD"], np.zeros(lines, dtype=np.int64)),
            "reason": _pick(reasons, reason_i),
            "denial_code": pc.if_else(pc.equal(code_arr, ""), pa.scalar(None, pa.string()), code_arr),
        },
    )
    claim_billed = np.bincount(l_claim, weights=billed, minlength=c).astype(np.int64)
    claim_patient = np.bincount(l_claim, weights=patient, minlength=c).astype(np.int64)
    w.write(
        "claims",
        {
            "claim_id": claim_id,
            "member_id": member_id.take(pa.array(c_owner)),
            "visit_date": visit,
            "provider": _pick(PROVIDERS, rng.integers(0, len(PROVIDERS), c)),
            "status": _pick(CLAIM_STATUSES, status),
            "billed_minor": claim_billed,
            "patient_responsibility_minor": claim_patient,
            "currency": _pick(["USD"], np.zeros(c, dtype=np.int64)),
        },
    )
    # statements: one per processed claim the member owes on; recent ones are still open
    billed_claims = np.flatnonzero((claim_patient > 0) & (status == 0))
    s = len(billed_claims)
    open_ = (visit[billed_claims] > today - 120) & (rng.random(s) < 0.6)
    w.write(
        "statements",
        {
            "statement_id": _ids("STM-", counters["statement"] + np.arange(s)),
            "member_id": member_id.take(pa.array(c_owner[billed_claims])),
            "claim_id": claim_id.take(pa.array(billed_claims)),
            "visit_date": visit[billed_claims],
            "balance_minor": claim_patient[billed_claims],
            "currency": _pick(["USD"], np.zeros(s, dtype=np.int64)),
            "status": _pick(["paid", "open"], open_.astype(np.int64)),
        },
    )
    counters["statement"] += s
    # appointments in the coming weeks
    n_appt = rng.choice([0, 1, 2], n, p=[0.7, 0.22, 0.08])
    a_owner, _ = _segments(n_appt)
    a = len(a_owner)
    w.write(
        "appointments",
        {
            "appointment_id": _ids("APT-", counters["appointment"] + np.arange(a)),
            "member_id": member_id.take(pa.array(a_owner)),
            "appt_date": today + rng.integers(1, 60, a),
            "provider": _pick(DOCTORS, rng.integers(0, len(DOCTORS), a)),
            "status": _pick(["scheduled", "needs_reschedule", "cancelled"], rng.choice(3, a, p=[0.85, 0.1, 0.05])),
        },
    )
    counters["appointment"] += a
