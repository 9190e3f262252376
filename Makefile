# The README's two commands: `make demo` and `make test`. Each bootstraps what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo shell test lint bench system-deps image-deps image clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

system-deps:
	./scripts/system-deps

# podman, runc and mmdebstrap: what builds and runs the image without a Docker daemon.
image-deps:
	./scripts/image-deps

# axe-core, for the accessibility check of the status page's browser test: fetched once
# from the npm registry into .cache/ (gitignored), offline after that. The test pins the
# same version (tests/test_status_page.py).
AXE_VERSION := 4.10.2
AXE := .cache/axe-core-$(AXE_VERSION)/axe.min.js

$(AXE): | system-deps
	mkdir -p $(@D)
	cd $(@D) && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null \
	  && tar -xzf axe-core-$(AXE_VERSION).tgz --strip-components=1 package/axe.min.js \
	  && rm axe-core-$(AXE_VERSION).tgz

# yaml-language-server, for the editor test of `journeyman init`'s schema wiring: fetched
# once from the npm registry into .cache/ (gitignored). tests/test_init_editor.py pins
# the same version.
YAML_LS_VERSION := 1.25.0
YAML_LS_DIR := .cache/yaml-language-server-$(YAML_LS_VERSION)
YAML_LS := $(YAML_LS_DIR)/node_modules/.bin/yaml-language-server

$(YAML_LS): | system-deps
	mkdir -p $(YAML_LS_DIR)
	npm install --silent --no-audit --no-fund --prefix $(YAML_LS_DIR) \
	  yaml-language-server@$(YAML_LS_VERSION)

demo: $(BIN)/.installed system-deps
	$(BIN)/journeyman demo

# A shell with the virtualenv active, so that `journeyman` is on its PATH (exit leaves it).
shell: $(BIN)/.installed
	@echo "journeyman is on the PATH of this shell: try journeyman --help (exit to leave)"
	@VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH="$(CURDIR)/$(BIN):$$PATH" $${SHELL:-/bin/sh} -i

test: $(BIN)/.installed system-deps image-deps lint $(AXE) $(YAML_LS)
	$(BIN)/pytest -q

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Benchmarks (docs/performance.md): every bench in its quick mode (6–7 minutes), then
# one table of ratios against anchors measured in the same run, also as markdown here:
BENCH_TABLE ?= .cache/bench-table.md
bench: $(BIN)/.installed system-deps
	./scripts/bench-deps
	mkdir -p $(dir $(BENCH_TABLE))
	$(BIN)/python -m bench.all --markdown $(BENCH_TABLE)

# The agent image, built with podman on a local Debian base (docs/deploy.md).
image: image-deps
	./scripts/build-image

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
