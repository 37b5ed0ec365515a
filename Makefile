# Two commands: `make run` (vsync on the embedded default) and `make test` (the lint gate and the whole suite).
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(PY) -m flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
SIM_PORT ?= 5055
SIM_PORTS := $(SIM_PORT) $(shell expr $(SIM_PORT) + 1)
export TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/vsync_test
export TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
# pytest-xdist processes for `make test` (each gets its own database and Redis database).
TEST_WORKERS ?= 2

.PHONY: run test clean

# Both requirement files pin every package with its hashes (compiled from the .in files, see README,
# "Dependencies"): pip checks each download against them and refuses anything unpinned.
$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.run-deps: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q --require-hashes -r requirements.txt
	touch $@

$(VENV)/.dev-deps: requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install -q --require-hashes -r requirements-dev.txt
	touch $@ $(VENV)/.run-deps

# Two simulated MightyCall accounts on loopback (one per demo org), the demo data synced from them,
# the web app (gunicorn, as in production), the demo floor playing calls into its webhook
# receiver, and the demo orgs synced again every few minutes. Ctrl-C or SIGTERM stops them all.
run: $(VENV)/.run-deps
	@listening() { (exec 3<>"/dev/tcp/$$1/$$2") 2>/dev/null; }
	for port in $(PORT) $(SIM_PORTS); do
		if listening 127.0.0.1 $$port; then
			echo "make run: port $$port is taken; free it or choose others: PORT=... SIM_PORT=... make run" >&2
			exit 1
		fi
	done
	mkdir -p instance
	pids=""
	stop() { [ -z "$$pids" ] || { kill $$pids 2>/dev/null || true; wait $$pids 2>/dev/null || true; }; }
	trap 'stop; exit 0' INT TERM
	trap stop EXIT
	# A SIGTERM sent to make alone ends make but not this shell: when make is gone, stop here too.
	make_pid=$$PPID
	(while kill -0 $$make_pid 2>/dev/null; do sleep 1; done; kill -TERM $$$$ 2>/dev/null) &
	pids="$$!"
	echo "Migrating the database..."
	out=$$($(FLASK) db upgrade 2>&1) && status=0 || status=$$?
	grep -v '^INFO  \[alembic' <<<"$$out" || true
	[ $$status -eq 0 ] || exit $$status
	echo "Starting two simulated MightyCall accounts (logs in instance/simulator-*.log)..."
	seed=1
	for port in $(SIM_PORTS); do
		$(FLASK) mightycall-simulator --port $$port --seed $$seed --calls-per-day 160 \
			>instance/simulator-$$seed.log 2>&1 &
		pids="$$pids $$!"
		seed=$$((seed + 1))
	done
	echo "Loading the demo data and syncing it from the simulators..."
	VSYNC_LOG_LEVEL=WARNING $(FLASK) demo $(foreach port,$(SIM_PORTS),--simulator http://127.0.0.1:$(port)/v4)
	$(VENV)/bin/gunicorn --bind $(HOST):$(PORT) --threads 8 --log-level warning wsgi:app &
	server=$$!
	pids="$$pids $$server"
	until listening $(HOST) $(PORT); do
		kill -0 $$server 2>/dev/null || { echo "make run: the web app did not start" >&2; exit 1; }
		sleep 0.1
	done
	$(FLASK) demo-floor --url http://$(HOST):$(PORT) >instance/demo-floor.log 2>&1 &
	pids="$$pids $$!"
	# What `rq cron` does in production: due digests and alerts, every minute (log in instance/notifications.log).
	(while true; do $(FLASK) send-due-notifications; sleep 60; done) >instance/notifications.log 2>&1 &
	pids="$$pids $$!"
	# And the scheduled sync: the demo orgs' new calls, SMS and recordings, every three minutes (instance/sync.log).
	(while sleep 180; do VSYNC_LOG_LEVEL=WARNING $(FLASK) demo-sync; done) >instance/sync.log 2>&1 &
	pids="$$pids $$!"
	echo ""
	echo "vsync is running at http://$(HOST):$(PORT)/  (sign in with a login above; Ctrl-C stops it)"
	echo "The demo floor plays a simulated call every few seconds into each demo org's webhook receiver;"
	echo "  watch it under Live floor, or full-screen: http://$(HOST):$(PORT)/admin/orgs/acme/floor/?wallboard=1"
	echo "The demo orgs are synced from the simulators again every 3 minutes (log in instance/sync.log)."
	echo "API reference: http://$(HOST):$(PORT)/api/v1/docs (OpenAPI document: /api/v1/openapi.json)."
	echo "  An API key: sign in as an org admin, then API keys in the console (http://$(HOST):$(PORT)/admin/orgs/acme/api-keys/)."
	if [ -z "$${VSYNC_SMTP_HOST:-}" ]; then
		echo "Email: no VSYNC_SMTP_HOST, so each message (digests, alerts, invitations) is an .eml file in $(CURDIR)/instance/outbox/"
	else
		echo "Email: sent through $$VSYNC_SMTP_HOST"
	fi
	wait $$server

test: $(VENV)/.dev-deps
	if [ ! -x /usr/bin/chromium ]; then
		sudo=$$( [ "$$(id -u)" -eq 0 ] || echo sudo )
		echo "make test: installing Debian's chromium for the browser tests..."
		$$sudo apt-get install -y chromium >/dev/null \
			|| { $$sudo apt-get update >/dev/null && $$sudo apt-get install -y chromium >/dev/null; }
	fi
	$(PY) -m tests.preflight
	$(VENV)/bin/ruff check
	$(VENV)/bin/ruff format --check
	$(VENV)/bin/basedpyright --pythonpath $(PY)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
