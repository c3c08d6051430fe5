# `make demo` and `make test` each create .venv if it is missing and install genlight into it.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.genlight-installed
export WANDB_MODE ?= offline
export WANDB_SILENT ?= true

.PHONY: install test test-slow demo docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -x -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -x -q -m slow

docs: $(STAMP)
	$(BIN)/python -m mkdocs build --strict -d site   # no -q: it hides the warnings --strict counts

demo: $(STAMP)
	$(BIN)/genlight fit --config examples/digits/vae.yaml --config examples/loggers/wandb_offline.yaml
	$(BIN)/python scripts/summarize_run.py runs/vae

clean:
	rm -rf runs wandb .pytest_cache site
