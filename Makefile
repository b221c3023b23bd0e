# Quick start:  make demo   |   make test
# Each target creates .venv when missing and installs what it needs into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SHARED ?= ../shared

.PHONY: demo test install clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# A stamp per extra set, rebuilt when pyproject.toml changes.
$(VENV)/.installed-core: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

$(VENV)/.installed-demo: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[experiments]'
	touch $@

install: $(VENV)/.installed-core

test: $(VENV)/.installed-dev
	@$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no test ran" >&2; exit 1; fi; exit $$rc

demo: $(VENV)/.installed-demo
	SHARED=$(SHARED) $(PY) experiments/demo.py

clean-venv:
	rm -rf $(VENV)
