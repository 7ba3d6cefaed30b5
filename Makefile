# Every target creates .venv when it is missing and installs what it needs, so a fresh clone
# needs nothing but Python 3.11+.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test lint typecheck pytest bench clean

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

demo: $(STAMP)
	$(VENV)/bin/popup demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy bot adapters sessions storage tests bench
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) popup-demo .pytest_cache .mypy_cache .ruff_cache
