# The quickstart is `make demo` and `make test`; both set up .venv first.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format typecheck bench bench-peers langgraph-suite clean

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "needs Python 3.11 ($(PY) not found); set PY=..."; exit 2; }
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[postgres,dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: install
	@mkdir -p .demo
	cd .demo && AGENTMESH_HOME=$(CURDIR)/.demo/home ../$(BIN)/agentmesh world init --force
	cd .demo && AGENTMESH_HOME=$(CURDIR)/.demo/home ../$(BIN)/agentmesh run \
		"checkout-api p95 latency is 900 ms; bring it under 300 ms without doubling its cost"
	@echo
	@echo "This demo's state is in .demo/home. To look at its run (the Prefect flow run link is above):"
	@echo "  source $(BIN)/activate           # agentmesh on your PATH"
	@echo "  export AGENTMESH_HOME=$(CURDIR)/.demo/home"
	@echo "  agentmesh runs list                 # the run; agentmesh runs show RUN_ID: its steps and decision"
	@echo "  agentmesh prefect status            # its Prefect server; open the Prefect UI address it prints"
	@echo "  agentmesh prefect stop --all        # stop the Prefect servers you started"

test: install
	$(BIN)/python -m pytest -q -n auto --dist loadfile

# Lint rules and types are enforced (CI runs both); layout is kept by hand at ~110-120 columns, so
# `ruff format` is not part of it.
lint: install
	$(BIN)/ruff check agentmesh tools graphs tests benchmarks
	$(BIN)/mypy agentmesh

format: install
	$(BIN)/ruff check --fix agentmesh tools graphs tests benchmarks

typecheck: install
	$(BIN)/mypy agentmesh

bench: install
	$(BIN)/python benchmarks/run.py --quick

# LangGraph's own tests (from the installed release's PyPI sdist, cached in .cache/langgraph-suite, never committed)
# run plainly and with every StateGraph compiled through agentmesh.compile; writes
# benchmarks/results/langgraph-suite.{json,md}. ARGS passes options, e.g. ARGS="-k subgraph --only compile".
langgraph-suite: install
	$(BIN)/python benchmarks/langgraph_suite/run.py $(ARGS)

# agentmesh next to plain LangGraph, LangGraph + Prefect tasks and Pydantic AI (± PrefectDurability) on one
# workload (benchmarks/peers): under 10 minutes; writes benchmarks/results/peers.json and peers.md.
$(VENV)/.bench-installed: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[postgres,dev,bench]'
	@touch $@

bench-peers: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/peers/run.py

clean:
	rm -rf $(VENV) .demo build dist *.egg-info
