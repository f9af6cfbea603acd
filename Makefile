# The README's two commands are `make serve` and `make test`; everything else is a building block.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
REPOSITORY ?= models
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help install install-serve serve test lint models bench protos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install-serve: $(BIN)/python ## install the service only (no torch), with the CPU ONNX Runtime
	$(BIN)/pip install -q -e '.[cpu]'

install: $(BIN)/python ## install service, training (CPU torch) and dev tools
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[cpu,train,dev]'

serve: install-serve ## serve the bundled models on http://$(HOST):$(PORT)
	$(BIN)/nnserve serve --repository $(REPOSITORY) --host $(HOST) --port $(PORT)

test: install ## run the whole test suite (what CI runs)
	$(BIN)/python -m pytest

lint: install ## ruff on everything, mypy --strict on service/
	$(BIN)/ruff check service training tests loadtests deploy
	$(BIN)/mypy

models: install ## retrain and re-export every bundled model into models/
	$(BIN)/nnserve-train all --repository $(REPOSITORY) --version 1

PROTOS := service/grpc/protos
PROTO_OUT ?= service/grpc/generated
protos: ## regenerate service/grpc/generated from the vendored .proto files (needs grpcio-tools)
	$(BIN)/python -m grpc_tools.protoc -I $(PROTOS) --python_out=$(PROTO_OUT) --pyi_out=$(PROTO_OUT) \
		$(PROTOS)/grpc_service.proto $(PROTOS)/model_config.proto
	sed -i 's/^import model_config_pb2 as/from service.grpc.generated import model_config_pb2 as/' \
		$(PROTO_OUT)/grpc_service_pb2.py $(PROTO_OUT)/grpc_service_pb2.pyi

bench: install ## run the benchmarks and rewrite docs/benchmarks.md
	$(BIN)/python -m loadtests.bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
