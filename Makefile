# Quick start:  make demo   |   make test
# Each target creates .venv when missing and installs the locked, hash-checked set (requirements.lock)
# into it; a changed lock (or pyproject.toml) rebuilds .venv from scratch, so nothing stale survives.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The reference data (README); from a checkout elsewhere: make test SHARED=/path/to/shared
SHARED ?= ../shared
LATEST ?= .venv-latest
STAMP  := $(VENV)/.installed-lock

.PHONY: demo test test-latest install lock clean-venv

$(STAMP): requirements.lock pyproject.toml
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $@

install: $(STAMP)

test: $(STAMP)
	@$(VENV)/bin/lint-imports --no-cache >/dev/null || { $(VENV)/bin/lint-imports --no-cache; exit 1; }
	@HALLUC_SHARED=$(SHARED) $(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no test ran" >&2; exit 1; fi; exit $$rc

demo: $(STAMP)
	SHARED=$(SHARED) $(PY) experiments/demo.py

# The newest versions pyproject.toml's ranges allow (the lock ignored), in a throw-away venv, then the
# whole suite: upstream breakage shows the day it ships. Not part of CI. (A pip constraint file of the
# machine, such as /etc/xdg/pip on the developers' machines, still applies; the versions are printed.)
test-latest:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install -q --upgrade pip
	$(LATEST)/bin/python -m pip install -q --upgrade --upgrade-strategy eager -e '.[dev,experiments,finetune,view]'
	@$(LATEST)/bin/python -m pip freeze --exclude-editable > $(LATEST)/versions.txt
	@echo "test-latest: $$(grep -iE '^(torch|transformers|tokenizers|spacy|ultralytics|peft|trl|accelerate|numpy|pillow|streamlit|nltk)==' $(LATEST)/versions.txt | tr '\n' ' ')"
	@$(LATEST)/bin/lint-imports --no-cache >/dev/null || { $(LATEST)/bin/lint-imports --no-cache; exit 1; }
	@HALLUC_SHARED=$(SHARED) $(LATEST)/bin/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test-latest: no test ran" >&2; exit 1; fi; exit $$rc

# Re-resolve requirements.lock: the newest versions the ranges allow, but for requirements/pins.txt;
# universal (markers for every platform), with hashes. Needs the network (PyPI).
lock:
	[ -x .venv-lock/bin/uv ] || ($(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install -q uv)
	.venv-lock/bin/uv pip compile pyproject.toml --all-extras --universal --python-version 3.11 \
	  --generate-hashes -c requirements/pins.txt -o requirements.lock

clean-venv:
	rm -rf $(VENV) $(LATEST) .venv-lock
