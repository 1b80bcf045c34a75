# `make demo` and `make test` each create the virtual environment they need.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
MODEL ?= dcgan-mnist
RUN ?= runs/$(MODEL)

.PHONY: demo train test lint format clean

# CPU_ONLY=1: torch's CPU wheels and onnxruntime in place of onnxruntime-gpu, for machines
# without a GPU (about 1.5 GB installed instead of 6 GB); the default is the CUDA build.
CPU_ONLY ?=
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu
# each build has its stamp, and a venv of the other build is refused, never mixed into
BUILD := $(if $(filter 1,$(CPU_ONLY)),cpu,cuda)
OTHER := $(if $(filter 1,$(CPU_ONLY)),cuda,cpu)
STAMP := $(VENV)/.installed-$(BUILD)

$(STAMP): pyproject.toml
	@if [ -e $(VENV)/.installed-$(OTHER) ]; then \
		echo "$(VENV) holds the $(OTHER) build; run 'make clean' first to install the $(BUILD) build" >&2; \
		exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
ifeq ($(CPU_ONLY),1)
	$(BIN)/python scripts/requirements.py --cpu --extra dev > $(VENV)/requirements-cpu.txt
	$(BIN)/python -m pip install --quiet $(if $(TORCH_CPU_INDEX),--extra-index-url $(TORCH_CPU_INDEX)) \
		-r $(VENV)/requirements-cpu.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@$(BIN)/python -c "import sys, torch; sys.exit(torch.version.cuda is not None)" || { \
		echo "CPU_ONLY=1 installed torch's CUDA build ($(TORCH_CPU_INDEX) unreachable?); run 'make clean', then retry, or drop CPU_ONLY=1" >&2; \
		exit 1; }
else
	$(BIN)/python -m pip install --quiet -e '.[dev]'
endif
	touch $(STAMP)

# The pretrained DCGAN that ships with zoo: sample it, export it to ONNX, and sample the ONNX
# file in onnxruntime. No training and no network.
demo: $(STAMP)
	$(BIN)/zoo sample dcgan-mnist -n 64 --seed 0 --runtime torch --out demo-samples.png
	$(BIN)/zoo export dcgan-mnist --format onnx --out demo-dcgan.onnx
	$(BIN)/zoo sample demo-dcgan.onnx --runtime onnx -n 64 --seed 0 --out demo-samples-onnx.png
	@echo "samples: demo-samples.png (PyTorch), demo-samples-onnx.png (onnxruntime)"

# Train a catalogue recipe yourself (MODEL=dcgan-mnist); resumes if interrupted and run again.
train: $(STAMP)
	$(BIN)/zoo train $(MODEL) --out $(RUN) $(if $(wildcard $(RUN)/checkpoints),--resume)

test: $(STAMP) lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q

# ruff, and mypy on the installed package layout (scripts/typecheck.py)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/typecheck.py

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build dist *.egg-info demo-*.png demo-*.onnx
