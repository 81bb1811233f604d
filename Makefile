# netroom developer entry points; the scripts do the work.
PYTHON ?= python3

.PHONY: setup test demo bench lint

setup:
	bash scripts/setup.sh

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

bench:
	$(PYTHON) bench/run.py

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy
