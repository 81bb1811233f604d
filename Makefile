# netroom developer entry points; the scripts do the work.
PYTHON ?= python3

.PHONY: setup test demo bench bench-bureau lint

setup:
	bash scripts/setup.sh

test:
	bash scripts/test.sh

demo:
	bash scripts/demo.sh

bench:
	$(PYTHON) bench/run.py

bench-bureau:
	$(PYTHON) bench/bureau.py

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mypy
