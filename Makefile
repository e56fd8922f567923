# lens: `make hub` runs the whole local platform; `make test` runs every test.
# Both set up what they need first (venv, npm packages, Debian packages as root).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY_BASE   ?= /usr/bin/python3
VENV      ?= $(CURDIR)/.venv
STATE     ?= $(CURDIR)/state
CACHE     ?= $(CURDIR)/.cache
NPM_PREFIX ?= $(CACHE)/npm
CODE_SERVER_PREFIX ?= $(CACHE)/code-server
CHP_VERSION ?= 5.3.0
CODE_SERVER_VERSION ?= 4.100.3
# the slowest tests are listed at the end of every run (make test is kept under 30 min)
PYTEST_ARGS ?= --durations=40
# `make test` also installs the wheel (not editable) here, outside the checkout,
# and runs tests/installed against a stack started from it.
INSTALLED_VENV ?= /tmp/lens-installed-venv
DIST ?= $(CACHE)/dist
IS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo yes)

PY  := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export PATH := $(VENV)/bin:$(NPM_PREFIX)/node_modules/.bin:$(CODE_SERVER_PREFIX)/node_modules/.bin:$(PATH)
export LENS_STATE_DIR := $(STATE)
export LENS_CODE_SERVER_PREFIX := $(CODE_SERVER_PREFIX)

# R and its Jupyter kernel for the lab profile (about 24 s and 80 MB; Debian's kernelspec in
# /usr/share/jupyter/kernels/ir is on every Jupyter's path). Without it: make hub APT_R=
APT_R    ?= r-base r-cran-irkernel
APT_HUB  := git libkrb5-dev ripgrep $(APT_R)
APT_TEST := $(APT_HUB) slurm-wlm munge chromium chromium-driver postgresql
# the desktop profile (docs/desktop.md): TigerVNC, XFCE, its terminal, dbus-launch, and ncview
APT_DESKTOP := tigervnc-standalone-server xfce4 xfce4-terminal dbus-x11 ncview

.PHONY: help hub test setup setup-test venv labextension installed proxy code-server desktop apt-hub apt-test lint bench clean

help:
	@echo "make hub    set up, then run the local hub on http://127.0.0.1:8000"
	@echo "make desktop  add the desktop profile (TigerVNC, XFCE, jupyter-remote-desktop-proxy)"
	@echo "make test   set up (venv, npm, Debian packages, Slurm), then run all tests"
	@echo "make lint   ruff"
	@echo "make bench  run every benchmark under benchmarks/ ($(BENCHES)); one: make bench BENCHES=archive"

# --- the JupyterLab extension: TypeScript in labextension/, built with @jupyter/builder
# (JupyterLab 4.6's builder; its core-meta names the singletons of JupyterLab 4.6.6) into
# jupyter_ext/labextension, which the wheel ships as share/jupyter/labextensions/jupyterlab-lens.
LABEXT_NAME := jupyterlab-lens
LABEXT_OUT := $(CURDIR)/jupyter_ext/labextension
LABEXT_BUILT := $(LABEXT_OUT)/package.json
LABEXT_SRC := labextension/package.json labextension/package-lock.json labextension/tsconfig.json \
	$(wildcard labextension/src/*.ts labextension/style/* labextension/schema/*)

labextension/node_modules/.stamp: labextension/package.json labextension/package-lock.json
	@command -v npm >/dev/null || $(MAKE) apt-hub
	cd labextension && npm ci --silent --no-audit --no-fund
	@touch $@

# @axe-core/playwright (a devDependency there) is what tests/browser injects for its axe check.
$(LABEXT_BUILT): labextension/node_modules/.stamp $(LABEXT_SRC)
	rm -rf $(LABEXT_OUT)
	cd labextension && npm run --silent build
	cp labextension/install.json $(LABEXT_OUT)/install.json
	chmod -R a+rX $(LABEXT_OUT)
	@touch $@

labextension: $(LABEXT_BUILT)

# --- Python: one world-readable venv on Debian's python, so per-user servers can run it.
$(VENV)/.stamp: pyproject.toml | $(LABEXT_BUILT)
	@test -x $(PY_BASE) || { echo "lens needs $(PY_BASE) (Debian's python3 and python3-venv)"; exit 1; }
	$(PY_BASE) -m venv $(VENV)
	$(PIP) install -q --upgrade pip 2>&1 | grep -v 'is ignored' ; test $${PIPESTATUS[0]} -eq 0
	$(PIP) install -q -e '.[test]' 2>&1 | grep -v 'is ignored' ; test $${PIPESTATUS[0]} -eq 0
	chmod -R a+rX $(VENV)
	@touch $@

# The checkout's build is what its venv's JupyterLab loads (a link, as `jupyter labextension
# develop` makes), so `make labextension` is all a change to labextension/src needs.
# Bytecode is compiled here (up-to-date files are skipped): user servers run as their own
# accounts, which cannot write it into the checkout, and with PYTHONDONTWRITEBYTECODE set no
# process does, so each one compiled every lens module it imported (0.6 s for all of them).
venv: $(VENV)/.stamp $(LABEXT_BUILT)
	@$(PY) -m compileall -q jupyter_ext
	@mkdir -p $(VENV)/share/jupyter/labextensions
	@rm -rf $(VENV)/share/jupyter/labextensions/$(LABEXT_NAME)
	@ln -s $(LABEXT_OUT) $(VENV)/share/jupyter/labextensions/$(LABEXT_NAME)

# --- the wheel a deployment installs, in a venv of its own (what tests/installed runs).
installed: venv $(LABEXT_BUILT)
	rm -rf $(DIST) $(INSTALLED_VENV)
	$(PY) -m pip wheel -q --no-deps -w $(DIST) .
	$(PY_BASE) -m venv $(INSTALLED_VENV)
	$(INSTALLED_VENV)/bin/pip install -q --upgrade pip 2>&1 | grep -v 'is ignored' ; test $${PIPESTATUS[0]} -eq 0
	$(INSTALLED_VENV)/bin/pip install -q $(DIST)/lens_hub-*.whl 2>&1 | grep -v 'is ignored' ; test $${PIPESTATUS[0]} -eq 0
	chmod -R a+rX $(INSTALLED_VENV)

# --- configurable-http-proxy from npm (the PyPI port breaks websockets; see docs/platform-facts.md).
$(NPM_PREFIX)/.stamp-$(CHP_VERSION):
	@command -v npm >/dev/null || $(MAKE) apt-hub
	mkdir -p $(NPM_PREFIX)
	npm install --silent --no-audit --no-fund --prefix $(NPM_PREFIX) configurable-http-proxy@$(CHP_VERSION)
	@touch $@

proxy: $(NPM_PREFIX)/.stamp-$(CHP_VERSION)

# --- code-server for the vscode profile (optional for `make hub`, required by tests).
code-server: $(CODE_SERVER_PREFIX)/.stamp-$(CODE_SERVER_VERSION)

$(CODE_SERVER_PREFIX)/.stamp-$(CODE_SERVER_VERSION):
	bash scripts/install-code-server.sh $(CODE_SERVER_PREFIX) $(CODE_SERVER_VERSION)
	@touch $@

# --- the desktop profile (optional for `make hub`, required by tests): Debian's TigerVNC and
# XFCE, and jupyter-remote-desktop-proxy (pyproject extra "desktop") in the venv.
desktop: $(VENV)/.stamp-desktop

$(VENV)/.stamp-desktop: pyproject.toml | venv
	@bash scripts/apt-ensure.sh $(APT_DESKTOP)
	$(PIP) install -q -e '.[test,desktop]' 2>&1 | grep -v 'is ignored' ; test $${PIPESTATUS[0]} -eq 0
	chmod -R a+rX $(VENV)
	@touch $@

# --- Debian packages (only as root; otherwise say what is missing).
# node/npm: Debian's, unless a node that bundles npm (e.g. nodesource) is already there.
apt-hub:
	@command -v npm >/dev/null || bash scripts/apt-ensure.sh nodejs npm
	@bash scripts/apt-ensure.sh $(APT_HUB)

apt-test: apt-hub
	@bash scripts/apt-ensure.sh $(APT_TEST)

setup: apt-hub venv proxy
	@mkdir -p $(STATE)

setup-test: apt-test venv installed proxy code-server desktop
	@mkdir -p $(STATE)

hub: setup
	-@$(MAKE) --no-print-directory code-server || echo "code-server not installed: the vscode profile will show as unavailable"
	@test -f $(VENV)/.stamp-desktop || echo "desktop not installed (make desktop): the desktop profile will show as unavailable"
	$(VENV)/bin/lens hub run

test: setup-test
	$(VENV)/bin/ruff check .
	LENS_INSTALLED_PYTHON=$(INSTALLED_VENV)/bin/python $(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .

# Each benchmark runs lens and its peer side by side and prints ratios (benchmarks/README.md).
BENCHES ?= spawn spawn_gate ledger atom_submit dask_gateway dask_dashboard archive workshop service_abuse lab_page_load server_start burst prewarm desktop
bench: setup-test
	@for b in $(BENCHES); do echo "== benchmarks/$$b.py"; $(PY) benchmarks/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) $(CACHE) build dist labextension/node_modules labextension/lib $(LABEXT_OUT)
