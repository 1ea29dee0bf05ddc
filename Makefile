# One-command setup: a virtualenv in .venv installed from the lock (requirements-dev.lock: every package,
# torch 2.13.0+cpu included, pinned with hashes), then the project itself without dependencies.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements-dev.lock
# PyTorch's CPU wheel index (where torch==2.13.0+cpu lives), passed to pip only when its host resolves:
# on a closed network pip would retry it for every package. TORCH_INDEX= turns it off.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PIP_TORCH = $(shell $(PYTHON) -c 'import socket, sys, urllib.parse as u; socket.getaddrinfo(u.urlsplit(sys.argv[1]).hostname, 443)' '$(TORCH_INDEX)' >/dev/null 2>&1 && echo --extra-index-url $(TORCH_INDEX))
PIP_LOCKED = -m pip install --quiet --require-hashes --no-deps $(PIP_TORCH)

.PHONY: env-example setup demo test test-py312 lint lock image bench-guardrail bench-quality bench-speed bench-storm bench-scale bench-grouping bench-origin clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python $(PIP_LOCKED) -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip check
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
# The suite under Python 3.12, in its own .venv312, from the 3.12 lock (torch 2.13.0 from PyPI there: no
# 3.12 CPU wheel is on this machine's disk). PYTHON312=/path/to/python3.12 if it is not on PATH.
PYTHON312 ?= $(shell for p in python3.12 $$HOME/.pyenv/versions/3.12*/bin/python3.12 /usr/local/bin/python3.12; do \
	  "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1 && { command -v "$$p" || echo "$$p"; } && break; done)
VENV312 := .venv312
LOCK312 := requirements-dev-py312.lock
PYTEST_ARGS ?=
test-py312: $(VENV312)/.installed
	HF_HUB_OFFLINE=1 $(VENV312)/bin/python -m pytest $(PYTEST_ARGS)

$(VENV312)/.installed: pyproject.toml $(LOCK312)
	@[ -n "$(PYTHON312)" ] || { echo "make test-py312: no Python 3.12 here (looked for python3.12 on PATH, ~/.pyenv/versions/3.12*, /usr/local/bin)." >&2; \
	  echo "  Debian bookworm packages none; install one (pyenv, python.org, your distribution) and run: make test-py312 PYTHON312=/path/to/python3.12" >&2; exit 2; }
	$(PYTHON312) -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install --quiet --upgrade pip
	$(VENV312)/bin/python $(PIP_LOCKED) -r $(LOCK312)
	$(VENV312)/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(VENV312)/bin/python -m pip check
	touch $@

# Re-lock after a change to pyproject.toml's dependencies (pip-tools in its own venv, never in .venv). Existing
# pins are kept where they still fit; UPGRADE=--upgrade moves everything to the newest releases. The 3.11
# locks need torch 2.13.0+cpu visible to pip (the CPU index, or a local wheel); the 3.12 lock needs PYTHON312.
# Where pip's config adds a local cp311-only torch+cpu wheel (find-links), pip-compile hashes that file for
# 3.12 too: compile the 3.12 lock with PIP_CONFIG_FILE=/dev/null (tests/test_release.py catches it).
UPGRADE ?=
PIP_COMPILE = pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links $(UPGRADE) $(PIP_TORCH)
lock:
	$(PYTHON) -m venv .venv-lock && .venv-lock/bin/python -m pip install --quiet pip-tools
	.venv-lock/bin/$(PIP_COMPILE) --all-extras --build-deps-for editable -o $(LOCK) pyproject.toml
	cp $(LOCK) requirements.lock  # the runtime lock starts from the dev pins, so both agree
	.venv-lock/bin/$(PIP_COMPILE) --extra torch --extra onnx -o requirements.lock pyproject.toml
	@[ -n "$(PYTHON312)" ] || { echo "make lock: no Python 3.12; $(LOCK312) left as it is" >&2; exit 0; } && \
	  $(PYTHON312) -m venv .venv-lock312 && .venv-lock312/bin/python -m pip install --quiet pip-tools && \
	  .venv-lock312/bin/$(PIP_COMPILE) --all-extras --build-deps-for editable -o $(LOCK312) pyproject.toml

# The image, with docker or podman (whichever answers); podman/buildah build in docker format, since the OCI
# format has no HEALTHCHECK. IMAGE_ARGS for more, e.g. a local base: IMAGE_ARGS='--build-arg BASE_IMAGE=...'.
IMAGE ?= incident-bot:local
IMAGE_ARGS ?=
CONTAINER ?= $(shell for c in docker podman; do command -v $$c >/dev/null 2>&1 && $$c info >/dev/null 2>&1 && { echo $$c; break; }; done)
image:
	@[ -n "$(CONTAINER)" ] || { echo "make image: neither docker (with a running engine) nor podman answers here" >&2; exit 2; }
	$(CONTAINER) build $(if $(filter podman,$(notdir $(CONTAINER))),--format docker) -t $(IMAGE) $(IMAGE_ARGS) .

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
	rm -rf $(VENV) $(VENV312) .venv-lock .venv-lock312 *.egg-info

# Migrations (issue 17): `alembic check` (the models declare every table and index the migrations make) and
# downgrade-to-base-then-upgrade, on SQLite and on the bundled PostgreSQL.
.PHONY: check-migrations
check-migrations: setup
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q tests/test_migrations.py
