# The two commands of the README: `make main` (set up, then run the main job) and `make test` (set up, then run
# the whole test suite). Both start from nothing: a fresh clone with ../shared/data beside it.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data
# torch first and pinned: here `pip install torch==2.13.0` takes a local CPU build; an unpinned torch would pull
# several GB of CUDA wheels. Elsewhere, set TORCH to whatever build suits the machine.
TORCH  ?= torch==2.13.0
EXTRAS ?= test,plots,train,export,pose
STAMP  := $(VENV)/.skelact-installed-$(EXTRAS)

.PHONY: setup main test bench-time clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

setup: $(STAMP)

# The main job: the fast CPU recipe (issue 25), a small ST-GCN on the NW-UCLA joint stream trained for about
# 5 minutes on a 2-core CPU, then its test accuracy on the official cross-view test set (view 3).
# The NW-UCLA store is prepared from $(DATA)/nw_ucla on first use and cached.
main: setup
	SKELACT_DATA=$(abspath $(DATA)) $(BIN)/skelact train configs/nw_ucla/stgcn_joint_fast.yaml

# One torch/BLAS thread per test worker: two workers on two cores; more threads than cores collapses MKL speed.
test: setup
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 SKELACT_DATA=$(abspath $(DATA)) $(BIN)/python -m pytest -n 2 -q

# Benchmark only: the fast recipe against MiniRocket (benchmarks/bench_time_to_accuracy.py, docs/benchmarks.md).
# aeon lives in its own venv: aeon 1.6 needs numpy >= 2, and MediaPipe (extra `pose`) pins numpy < 2.
BENCH_VENV ?= .venv-bench
AEON       ?= aeon==1.6.0

$(BENCH_VENV)/.aeon-installed:
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install -q "$(AEON)"
	touch $@

bench-time: setup $(BENCH_VENV)/.aeon-installed
	OMP_NUM_THREADS=1 SKELACT_DATA=$(abspath $(DATA)) $(BIN)/python benchmarks/bench_time_to_accuracy.py \
		--aeon-python $(BENCH_VENV)/bin/python

clean:
	rm -rf $(VENV) $(BENCH_VENV) data build dist src/*.egg-info .pytest_cache
