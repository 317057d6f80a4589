# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
DB     ?= sqlite:///grader.db

.PHONY: run test install grade-examples clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,test]'
	touch $(STAMP)

install: $(STAMP)

## Grade the example transcripts on the embedded defaults and print the summary table.
grade-examples: $(STAMP)
	@mkdir -p out
	$(BIN)/grader grade examples/transcripts.jsonl --out out/examples.grades.jsonl

## Grade the examples, then start the service on the embedded SQLite database (Ctrl-C stops it).
## The first run creates an admin key and prints it once.
run: grade-examples
	@if [ ! -f grader.db ]; then \
		echo "admin key (keep it; shown once):"; \
		$(BIN)/grader keys create --role admin --name local-admin --db $(DB); \
	fi
	$(BIN)/grader serve --host $(HOST) --port $(PORT) --db $(DB)

## Create the environment, install, run the whole test suite.
test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) out .pytest_cache
