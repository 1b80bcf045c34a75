# `make demo` and `make test` each create the virtual environment they need.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN ?= runs/dcgan-mnist

.PHONY: demo test lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Train the DCGAN recipe on the bundled MNIST digits, sample it, export it, and sample the
# ONNX export in onnxruntime. Resumes if interrupted and run again.
demo: $(STAMP)
	$(BIN)/zoo train dcgan-mnist --out $(RUN) $(if $(wildcard $(RUN)/checkpoints),--resume)
	$(BIN)/zoo sample $(RUN) -n 64 --seed 0 --out demo-samples.png
	$(BIN)/zoo export $(RUN) --format onnx --out demo-dcgan.onnx
	$(BIN)/zoo sample demo-dcgan.onnx --runtime onnx -n 64 --seed 0 --out demo-samples-onnx.png
	@echo "samples: demo-samples.png (PyTorch), demo-samples-onnx.png (onnxruntime)"

test: $(STAMP) lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build dist *.egg-info demo-*.png demo-*.onnx
