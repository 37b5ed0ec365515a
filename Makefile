# Two commands: `make run` (vsync on the embedded default) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
FLASK := $(PY) -m flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
SIM_PORT ?= 5055
SIM_URLS := http://127.0.0.1:$(SIM_PORT)/v4 http://127.0.0.1:$(shell expr $(SIM_PORT) + 1)/v4
export TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/vsync_test
export TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: run test clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.run-deps: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.run-deps

# Two simulated MightyCall accounts on loopback (one per demo org), demo data synced from them,
# then the web app. Ctrl-C stops all three.
run: $(VENV)/.run-deps
	$(FLASK) db upgrade
	@mkdir -p instance; \
	trap 'kill $$sims 2>/dev/null' EXIT INT TERM; \
	seed=1; for url in $(SIM_URLS); do \
		port=$${url#http://127.0.0.1:}; port=$${port%/v4}; \
		$(FLASK) mightycall-simulator --port $$port --seed $$seed --calls-per-day 160 \
			> instance/simulator-$$seed.log 2>&1 & sims="$$sims $$!"; seed=$$((seed + 1)); \
	done; \
	$(FLASK) demo $(addprefix --simulator ,$(SIM_URLS)) && \
	echo "" && echo "vsync is running at http://$(HOST):$(PORT)/  (sign in with a login above; Ctrl-C stops it)" && \
	$(FLASK) run --host $(HOST) --port $(PORT)

test: $(VENV)/.dev-deps
	$(PY) -m tests.preflight
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
