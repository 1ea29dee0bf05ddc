# One-command setup: a virtualenv in .venv with torch 2.13.0 (CPU wheel) installed first, then the project.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: env-example setup demo test lint bench-guardrail bench-quality bench-speed bench-storm bench-scale bench-grouping bench-origin clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@# Best effort, never fatal: real Prometheus + Alertmanager for tests/test_alertmanager_real.py (skips without them)
	-@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	    ! { [ -x /usr/bin/prometheus ] && [ -x /usr/bin/prometheus-alertmanager ]; }; then \
	    { apt-get install -y -qq prometheus prometheus-alertmanager >/dev/null 2>&1 || \
	      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq prometheus prometheus-alertmanager >/dev/null 2>&1; }; } || \
	    echo "note: could not apt-get install prometheus prometheus-alertmanager; their test will skip"; fi
	touch $(STAMP)

demo: setup
	HF_HUB_OFFLINE=1 $(BIN)/incident-bot demo

test: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

# House rules in the tools (CI runs this before the tests): ruff's lint and format, mypy --strict (pyproject.toml).
LINTED := incident_bot bot handlers retrieval migrations tests benchmarks
lint: setup
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

# .env.example is generated from bot/kernel/config.py's Settings (tests/test_settings_example.py keeps them equal).
env-example: setup
	$(BIN)/incident-bot settings example --write .env.example

# Issue 19: each of the seven datasets also adapts the model on its own documents: ADAPT_STEPS steps of 32
# pairs (the same training however busy the CPU), ADAPT_MINUTES a safety cap on each (ADAPT_MINUTES=0: skip).
ADAPT_STEPS ?= 60
ADAPT_MINUTES ?= 15
bench-quality: setup
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/quality.py --adapt-minutes $(ADAPT_MINUTES) --adapt-steps $(ADAPT_STEPS)

# Guardrail (issue 16): 100 public alert names over 24 services through /alerts with the example runbooks; which get buttons.
bench-guardrail: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m benchmarks.guardrail --alerts 100

bench-speed: setup
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/speed.py --sizes 10000 --backends numpy --real-text-max 0

# Content grouping on loghub-2k (issue 7): GA per system and per half (tuning / held-out), ours vs drain3's default, 2-fold CV of the threshold.
bench-grouping: setup
	$(BIN)/python -m benchmarks.loghub_grouping

# Probable origin across services (issue 18): simulated cascades on Sock Shop (tuning) and Online Boutique (held out)
bench-origin: setup
	$(BIN)/python benchmarks/origin.py --scenarios 2000

# Alert storm (issue 7): 50,000 alerts over HTTP to one `serve` on SQLite. ALERTS=10000 for a shorter run.
ALERTS ?= 50000
bench-storm: setup
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/storm.py --alerts $(ALERTS)

# The storm against 1, 2 and 3 replicas on one PostgreSQL (issue 10).
SCALE_ALERTS ?= 20000
bench-scale: setup
	HF_HUB_OFFLINE=1 $(BIN)/python benchmarks/storm.py --db postgres --replicas 1,2,3 --alerts $(SCALE_ALERTS)

clean:
	rm -rf $(VENV) *.egg-info

# Migrations (issue 17): `alembic check` (the models declare every table and index the migrations make) and
# downgrade-to-base-then-upgrade, on SQLite and on the bundled PostgreSQL.
.PHONY: check-migrations
check-migrations: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q tests/test_migrations.py
