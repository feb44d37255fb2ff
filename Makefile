# replearn: two commands on a fresh machine (Python 3.11 + pip):
#   make demo   set up, then train/evaluate/export/index/register word vectors on the embedded books corpus
#   make test   set up, then run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-fast bench ui-prefect ui-mlflow clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# the CPU build of PyTorch first: any other torch request pulls a multi-GB CUDA build
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e ".[dev,lit]"
	touch $(STAMP)

demo: setup
	$(BIN)/replearn run word2vec --window 10 --epochs 8 --kernel pair
	$(BIN)/replearn search word2vec --word money
	$(BIN)/replearn search word2vec --positive king woman --negative man

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/pip install -q -e ".[dev,bench]"
	$(BIN)/python bench/word2vec.py --json bench/out/word2vec.json

ui-prefect: setup
	$(BIN)/prefect server start --host 127.0.0.1

ui-mlflow: setup
	$(BIN)/mlflow ui --host 127.0.0.1 --port 5000 --backend-store-uri sqlite:///$(abspath .replearn)/mlflow.db

clean:
	-$(BIN)/replearn prefect stop
	rm -rf .replearn bench/out

# Operations (docs/operations.md): local servers, deployments and a worker.
.PHONY: servers deploy

servers: setup   ## Prefect server (127.0.0.1:4200) + MLflow server (127.0.0.1:5000) on the data home; Ctrl-C stops both
	$(BIN)/python deployments/servers.py

deploy: setup    ## needs `make servers`: work pool, every deployment of deployments/prefect.yaml, then a worker
	BIN=$(abspath $(BIN)) deployments/deploy.sh
