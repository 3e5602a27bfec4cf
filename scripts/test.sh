#!/usr/bin/env bash
# Everything CI checks: lint, types, the whole test suite (stores on SQLite and PostgreSQL, fault tests
# with real processes, the API, the pages in Chromium) and the journey simulator.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/services.sh
.venv/bin/ruff check
.venv/bin/ruff format --check
.venv/bin/mypy
.venv/bin/pytest -q "$@"
# The journeys, end to end through the API: fails when any scenario's expectation breaks.
.venv/bin/tandem eval examples/bank/scenarios examples/healthcare/scenarios --report "${EVAL_REPORT_DIR:-var/eval}"
# The same journeys with the LLM planner choosing flows, driven by the shipped deterministic model.
TANDEM_LLM=scripted:flows .venv/bin/tandem eval examples/bank/scenarios examples/healthcare/scenarios \
  --report "${EVAL_REPORT_DIR:-var/eval}-planner"
