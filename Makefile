# The two commands that matter: `make demo` and `make test`. Each bootstraps .venv.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
REPORTS ?= reports

.PHONY: demo test lab notebooks bench clean-sandbox venv

venv: $(STAMP)

# Debian packages the tests and the demo use when the machine lacks them: pgbouncer (the pooler
# in front of the sandbox), PostgreSQL 15 (the second server version under test) and pgbench.

$(STAMP): pyproject.toml
	@missing=""; \
	command -v pgbouncer >/dev/null 2>&1 || test -x /usr/sbin/pgbouncer || missing="$$missing pgbouncer"; \
	test -x /usr/lib/postgresql/15/bin/postgres || missing="$$missing postgresql-15"; \
	test -x /usr/lib/postgresql/15/bin/pgbench || missing="$$missing postgresql-client-15"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (install them with: sudo apt-get install$$missing)"; fi; \
	fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

## demo: start the sandbox, seed it with planted faults, run the app workload for 15 s, run the demo
## suite (daily, weekly, monthly reports, two incident playbooks; read-only on victorysync), and end
## with the worst findings and the path of the run's index.html
demo: $(STAMP)
	$(BIN)/pgrunbooks sandbox start
	$(BIN)/pgrunbooks sandbox seed --scale 1 --faults all
	$(BIN)/pgrunbooks sandbox load --duration 15s --clients 2
	$(BIN)/pgrunbooks suite demo --out $(REPORTS) --fail-on none
	@echo "look at first: the findings listed above; open the index.html above in a browser for every report"

## test: the whole test suite against real PostgreSQL 18 (and 15 when installed)
test: $(STAMP)
	$(BIN)/python -m pytest

## lab: JupyterLab on the runbooks, against the local sandbox
lab: $(STAMP)
	$(BIN)/pgrunbooks sandbox start
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 --notebook-dir=.

## notebooks: re-execute every committed notebook against a freshly seeded sandbox
notebooks: $(STAMP)
	$(BIN)/python -m pgrunbooks.refresh

## bench: the figures quoted in the issues
bench: $(STAMP)
	$(BIN)/python bench/seed.py

clean-sandbox: $(STAMP)
	$(BIN)/pgrunbooks sandbox stop
	rm -rf .pgrunbooks
