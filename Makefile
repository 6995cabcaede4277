# The two commands: `make run` (the app on embedded SQLite, with the demo) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Development defaults for `make run` only; production sets its own environment.
RUN_ENV := DEBUG=$${DEBUG:-1} BASE_URL=$${BASE_URL:-http://$(HOST):$(PORT)}

.PHONY: install run test lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The task worker (invitation mail) runs in the background beside the server, in the same
# shell: when the server stops (Ctrl-C, or it exits on its own) the EXIT trap stops the worker.
run: install
	$(RUN_ENV) $(BIN)/orglogin migrate --noinput
	$(RUN_ENV) $(BIN)/orglogin demo
	@export $(RUN_ENV); \
	$(BIN)/orglogin db_worker --queue-name '*' --no-reload & worker=$$!; \
	trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT; \
	trap 'exit 130' INT TERM; \
	echo "Mail worker started (pid $$worker); Ctrl-C stops the server and the worker."; \
	$(BIN)/orglogin runserver --noreload $(HOST):$(PORT)

test: install
	$(BIN)/python -m tests.suite $(TEST_ARGS)

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) data test-output
