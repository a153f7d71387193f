# archsim: `make demo` and `make test` work on a fresh machine (they build .venv from requirements.lock).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
EXT     := $(VENV)/.ext-built
CSRC    := $(wildcard archsim/dram/*.c archsim/dram/*.h archsim/gpu/*.c archsim/cache/*.c archsim/cache/*.h) setup.py

.PHONY: venv demo test lint bench validate soak fuzz clean

venv: $(STAMP)

$(STAMP): requirements.lock setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# the compiled channel engine: rebuilt in place when its C sources change
$(EXT): $(STAMP) $(CSRC)
	$(BIN)/python setup.py -q build_ext --inplace
	touch $(EXT)

# the showcase: criteo_zipf on cpu_ddr4, recnmp, recross, cxl_pool, pifs_rec (2 in parallel, about a minute):
# results/demo/{summary.csv, compare.png, compare.pdf, runs/}, the table on stdout
demo: $(EXT)
	$(BIN)/python -m archsim.report.demo --out results/demo -j 2

test: $(EXT)
	$(BIN)/ruff check archsim tests
	$(BIN)/python -m pytest -q -n 2 tests

lint: $(STAMP)
	$(BIN)/ruff check archsim tests

bench: $(EXT)
	$(BIN)/archsim bench --out results/bench.json

validate: $(EXT)
	$(BIN)/archsim validate --papers

# 10^8 lookups through the CPU baseline with its peak memory (about an hour; make test checks the growth)
soak: $(EXT)
	$(BIN)/python tests/soak_memory.py results/soak

# the long fuzzing campaign (issue #12, docs/reliability.md): FUZZ_CASES mutants per input kind (hwconfig, workload,
# sweep, trace), FUZZ_JOBS worker processes (0: one per CPU); results/fuzz.json, failing cases in
# results/fuzz/cases/, the table on stdout (make fuzz FUZZ_CASES=500 FUZZ_JOBS=1 for a medium one)
FUZZ_CASES ?= 10000
FUZZ_JOBS  ?= 0
fuzz: $(EXT)
	$(BIN)/python -m tests.fuzz.campaign --cases $(FUZZ_CASES) --jobs $(FUZZ_JOBS) --out results/fuzz.json \
		--cases-dir results/fuzz/cases

clean:
	rm -rf $(VENV) build *.egg-info
