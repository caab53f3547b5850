# Two commands for a newcomer: `make demo` and `make test`. Both set themselves up.
VENV    ?= .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
APT_PKGS := postfix swaks chromium fonts-nanum fonts-noto-cjk sqlite3 tzdata tesseract-ocr tesseract-ocr-kor \
	libreoffice-core-nogui libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui \
	python3-uno bubblewrap slapd ldap-utils iproute2

.PHONY: demo test unit lint bench deps clean dist ha-test

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

# Presidio (the scanning benchmark's peer) is heavy and only needed by `make bench`.
$(BENCH_STAMP): $(STAMP)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[dev,bench]'
	touch $@

# System packages the tests use (a real Postfix, Chromium, Korean fonts, Tesseract OCR, LibreOffice
# with its Python bridge and bubblewrap for the office-document converter). Needs root or sudo.
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: $(STAMP) deps
	$(VENV)/bin/maildiode demo

# The installer archive for hosts without a package index (docs/operations.md §2).
dist: $(STAMP)
	PYTHON=$(VENV)/bin/python sh deploy/installer/build.sh dist

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy protocol mailsafe agentkit outer_agent inner_agent maildiode

# Two worker processes, one test file each at a time (module fixtures stay in one process): the
# CI machine has two cores and most of the suite waits on real servers, not on the CPU (D65).
test: $(STAMP) deps lint
	$(VENV)/bin/pytest -n 2 --dist loadfile

unit: $(STAMP)
	$(VENV)/bin/pytest -m "not e2e"

# The high-availability simulation on one machine (docs/operations.md, "Standby inner agent"):
# a steady stream of mail, the active inner agent killed mid-stream, the standby takes over.
# `make test` runs it too (an e2e test marked ha).
ha-test: $(STAMP) deps
	$(VENV)/bin/pytest -m ha -s tests/e2e/test_ha.py tests/e2e/test_standby.py tests/e2e/test_standby_outbound.py

# Every benchmark runs, even after one misses its line; the misses are listed at the end.
bench: $(BENCH_STAMP) deps
	@missed=""; for f in tests/benchmarks/bench_*.py; do echo "== $$f"; \
	  $(PY) $$f || missed="$$missed $$f"; done; \
	if [ -n "$$missed" ]; then echo "== below target:$$missed"; exit 1; fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
