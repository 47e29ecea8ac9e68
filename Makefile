# Two entry points for a fresh machine: `make demo` (main job on the bundled example) and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check
STAMP := $(VENV)/.installed

.PHONY: install demo test test-all bench fuzz clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt
	$(PIP) install --ignore-requires-python --no-deps lava-nc==0.10.0 lava-dl==0.6.0
	$(PIP) install --no-deps spikingjelly==2.0.0
	$(PIP) install --no-deps norse==1.1.0
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# Compile the bundled snnTorch digits network to Loihi 2, run it in the bit-accurate emulator and in
# real Lava (fixed_pt), and verify they agree spike for spike.
demo: $(STAMP)
	$(VENV)/bin/snnc compile examples/digits/digits_snn.pt --target loihi2 -o out/demo
	$(VENV)/bin/snnc run out/demo --digits
	$(VENV)/bin/snnc run out/demo --digits --backend float
	$(VENV)/bin/snnc run out/demo --digits --backend lava --samples 20
	$(VENV)/bin/snnc verify out/demo --digits --samples 4

# Default suite (CI): everything except tests marked slow; a representative Lava parity subset runs.
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

test-all: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/emulator_vs_lava.py
	PYTHONPATH=. $(PY) benchmarks/compression.py
	PYTHONPATH=. $(PY) benchmarks/timestep_compression.py
	PYTHONPATH=. $(PY) benchmarks/compile_scaling.py

# Long fuzz run (issue 15): 10,000 mutated files per format (.onnx .nir .net .pt .snnc), 2 workers; prints
# cases / accepted / typed / untyped / hangs / crashes / over-limit / outside reads per format and fails
# on any case that is neither accepted nor a typed error, hangs, over-allocates or reads another file.
fuzz: $(STAMP)
	PYTHONPATH=. $(PY) tests/fuzz_campaign.py --cases 10000 --jobs 2

clean:
	rm -rf $(VENV) out
