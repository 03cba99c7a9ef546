# Two entry points that do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-zennit1 bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

# the suite on zennit 0.5.1 (what pip resolves on Python < 3.11.11), then the zennit-facing tests on 1.0.0
test: $(STAMP) $(VENV)/zennit1/zennit
	$(PY) -m pytest -q
	PYTHONPATH=$(VENV)/zennit1 $(PY) -m pytest -q tests/test_rules.py tests/test_composites.py

$(VENV)/zennit1/zennit: $(STAMP)
	$(PY) -m pip install -q --no-deps --ignore-requires-python --target $(VENV)/zennit1 zennit==1.0.0

bench: $(STAMP)
	$(PY) benchmarks/bench_explain.py

clean:
	rm -rf $(VENV)
