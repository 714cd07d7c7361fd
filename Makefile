# Production Data Hub: the two quick-start commands are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO_DB := demo/production_analysis.db
EXTRAS ?= dev

.PHONY: run test test-windows windows-dist windows-msi lint bench venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $@

venv: $(VENV)/.installed

$(DEMO_DB): | $(VENV)/.installed
	$(BIN)/pdh demo-db $(DEMO_DB) --rows 50000

run: $(VENV)/.installed $(DEMO_DB)
	$(BIN)/pdh run --demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest

# The Windows suite: Windows CPython under Wine (tests/windows). The Wine environment is
# made once in $(WINE_ENV) and reused; with no Wine here the suite is skipped, with why.
# It also tests the Windows zip (make windows-dist) in a fresh prefix with no Python, and
# the MSI (tests/windows/test_msi.py builds its two versions from that zip with wixl).
WINE_ENV ?= .wine-env
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
WINDOWS_ZIP := dist/ProductionDataHub-$(VERSION)-win-amd64.zip
test-windows: $(VENV)/.installed
	@status=0; PYTHON=$(BIN)/python tests/windows/setup_wine.sh $(WINE_ENV) || status=$$?; \
	if [ $$status -eq 0 ]; then $(MAKE) --no-print-directory windows-dist && \
	  PDH_WINE_ENV=$(abspath $(WINE_ENV)) PDH_WINDOWS_DIST=$(abspath $(WINDOWS_ZIP)) \
	  $(BIN)/python -m pytest tests/windows; \
	elif [ $$status -eq 3 ]; then $(BIN)/python -m pytest tests/windows; \
	else exit $$status; fi

# The Windows Installer package of that zip (wixl, Debian's msitools): dist/
# ProductionDataHub-<version>-x64.msi. Signed with osslsigncode when given SIGN_CERT and
# SIGN_KEY, or SIGN_PFX (its password in $$PDH_SIGN_PASSWORD); SIGN_TIMESTAMP_URL adds an
# RFC 3161 timestamp. See docs/operations.md "The MSI".
SIGN_CERT ?=
SIGN_KEY ?=
SIGN_PFX ?=
SIGN_TIMESTAMP_URL ?=
windows-msi: windows-dist
	$(BIN)/python packaging/windows/build_msi.py --zip $(WINDOWS_ZIP) --out dist \
	  $(if $(SIGN_CERT),--sign-cert $(SIGN_CERT)) $(if $(SIGN_KEY),--sign-key $(SIGN_KEY)) \
	  $(if $(SIGN_PFX),--sign-pfx $(SIGN_PFX)) \
	  $(if $(SIGN_TIMESTAMP_URL),--timestamp-url $(SIGN_TIMESTAMP_URL))

# The self-contained Windows x64 zip (embeddable CPython + the project + pinned wheels,
# relocatable launchers) into dist/; downloads cached in $(WINE_ENV)/dl. See
# docs/operations.md "Windows install".
windows-dist: $(VENV)/.installed
	$(BIN)/python packaging/windows/build_dist.py --cache $(WINE_ENV)/dl --out dist

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/mypy

# The short benchmarks (a few minutes); the full ones, with their 1M-row files and the
# peers (bare sqlite3, Datasette), are listed with their figures in docs/benchmarks.md.
bench: $(VENV)/.installed
	$(BIN)/python bench/bench_demodb.py --rows 200000
	$(BIN)/python bench/bench_core.py --rows 200000 --repeat 1 --settle-interval 1 --idle 10
	$(BIN)/python bench/bench_api.py --rows 200000 --seconds 3 --no-datasette

clean:
	rm -rf $(VENV) demo dist .pytest_cache .mypy_cache .ruff_cache $(WINE_ENV)
