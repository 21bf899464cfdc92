# The README's two commands: `make demo` and `make test`. Both build .venv from scratch when it is missing.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.zhllama-installed

PROFILE ?= cpu

.PHONY: demo test experiment install clean

$(STAMP): setup.cfg setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test,eval,deepspeed]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/zhllama demo

# the SmolLM2-135M experiment (needs ../shared/data): PROFILE=cpu (at most 90 min on 2 cores) or gpu
experiment: $(STAMP)
	$(BIN)/zhllama experiment --profile $(PROFILE)

# a worker per core, at most 4: most tests wait on a subprocess importing torch and Lightning on one core; a test
# file's tests stay on one worker (they share its module fixtures)
test: $(STAMP)
	$(BIN)/python -m pytest -q --numprocesses auto --maxprocesses 4 --dist loadfile

clean:
	rm -rf $(VENV) .demo .experiment
