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

.PHONY: setup main test clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[$(EXTRAS)]"
	touch $(STAMP)

setup: $(STAMP)

# The main job: train CTR-GCN (joint stream) on NW-UCLA for a few minutes on the CPU and report its test accuracy.
# The NW-UCLA store is prepared from $(DATA)/nw_ucla on first use and cached.
main: setup
	SKELACT_DATA=$(abspath $(DATA)) $(BIN)/skelact train configs/nw_ucla/ctrgcn_joint_quick.yaml

# One torch/BLAS thread per test worker: two workers on two cores; more threads than cores collapses MKL speed.
test: setup
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 SKELACT_DATA=$(abspath $(DATA)) $(BIN)/python -m pytest -n 2 -q

clean:
	rm -rf $(VENV) data build dist src/*.egg-info .pytest_cache
