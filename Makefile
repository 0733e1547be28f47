# The two commands of the README. Each installs what it needs (scripts/setup.sh)
# and is idempotent.
PY := .venv/bin/python
DEMO_OUT ?= out/demo

.PHONY: setup demo test test-fast bench

setup:
	@bash scripts/setup.sh

## The main job on the built-in default: the tiny scaling study, world to report
## (configs/study/tiny.yaml); a rerun resumes, and finishes in seconds once done.
demo: setup
	$(PY) -m slmscale study --out $(DEMO_OUT)

## All tests: the fast default run, then the tiny end-to-end (integration) runs.
test: setup
	$(PY) -m pytest -n 2 -q
	$(PY) -m pytest -n 2 -q -m integration

test-fast: setup
	$(PY) -m pytest -n 2 -q

bench: setup
	$(PY) benchmarks/synthesis_speed.py --acceptance
