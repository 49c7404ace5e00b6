# Two commands on a fresh machine: `make demo`, then `make test`.
# Everything goes into .venv, pinned by constraints.txt (torch 2.13.0 CPU build).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first and alone, pinned: a bare `torch` requirement would pull CUDA wheels.
	$(PIP) install --quiet -c constraints.txt torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/approxmlp demo --out demo-out

# The whole suite, including real Verilator simulations and Yosys synthesis, on every core
# (pytest-xdist; tests marked xdist_group share a worker, hence their module fixtures: trained
# models, compiled designs), with the slowest tests listed at the end.
test: $(STAMP)
	$(PY) -m pytest -m "sim or synth or slow or not (sim or synth or slow)" -q -n auto --dist loadgroup --durations=25

# Unit tests only (seconds).
test-fast: $(STAMP)
	$(PY) -m pytest -q

# The literature benchmarks, then the scaling section (flows/bench/scaling.py) and the peer
# comparison with da4ml (flows/bench/peer.py), unattended
# (reads ../shared/datasets; about two hours on 2 cores): writes BENCHMARKS.md,
# docs/benchmarks.png and every design under bench-out/.
bench: $(STAMP)
	# da4ml, the peer generator the bench measures against (benchmark only, pinned)
	$(PIP) install --quiet -c constraints.txt -e '.[bench]'
	$(PY) -m flows.bench.run

clean:
	rm -rf $(VENV) demo-out bench-out example-out .pytest_cache
