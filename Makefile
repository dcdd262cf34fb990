# The two quick-start commands are `make book` and `make test`; both create the
# virtual environment (.venv, CPU torch pinned by constraints.txt) on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
STAMP := $(VENV)/.installed

.PHONY: env book book-incremental live test test-fast bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[book,test,scale]"
	touch $(STAMP)

env: $(STAMP)

# A clean build: -W on an incremental build re-emits no warnings and proves nothing.
# Built from a committed tree with no changes, the site is stamped with the commit
# (scripts/build_stamp.py) and `make test` reuses it instead of building the book again.
book: $(STAMP)
	rm -f _build/html/.built-from
	$(BIN)/jupyter-book clean . --all
	state="$$($(BIN)/python scripts/build_stamp.py state)" && \
	$(BIN)/jupyter-book build . -W -n --keep-going && \
	$(BIN)/python scripts/build_stamp.py write "$$state"

book-incremental: $(STAMP)
	rm -f _build/html/.built-from
	$(BIN)/jupyter-book build .

# The built book with live cells on a local Jupyter server (127.0.0.1, random token).
live: book-incremental
	$(BIN)/toybook live

# The full suite, including the clean book build (or the one `make book` stamped for this
# commit) and a full retraining of max_of_2; both print their 30 slowest tests.
test: $(STAMP)
	$(BIN)/python -m pytest -ra --durations=30

test-fast: $(STAMP)
	$(BIN)/python -m pytest -ra --durations=30 -m "not slow"

# Speed and memory figures next to their goals (about 23 minutes on 2 cores).
bench: book-incremental
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/chapters.py
	$(BIN)/python benchmarks/book_build.py
	$(BIN)/python benchmarks/exhaustive_eval.py
	$(BIN)/python benchmarks/live_latency.py
	$(BIN)/python benchmarks/training_throughput.py
	$(BIN)/python benchmarks/max_of_2_proofs.py
	$(BIN)/python benchmarks/scale_out.py

clean:
	rm -rf _build $(VENV) .pytest_cache
