# reconcile: `make demo` runs it against a local engine, `make test` runs every test.
SHELL := /bin/bash
COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo +dirty)
export RECONCILE_COMMIT := $(COMMIT)

.PHONY: all build release engine fixtures test unit coverage lint format demo bench clean

all: build

build:
	swift build

release:
	swift build -c release

engine:
	bash scripts/ensure-engine.sh

fixtures: engine
	bash scripts/fixture-images.sh

## Everything CI checks: engine and fixture images, build, unit + real-engine tests with
## coverage (fails under 80% of Sources/), and swift format lint --strict.
test: fixtures
	bash scripts/test.sh

lint:
	swift format lint --strict --recursive Package.swift Sources Tests

format:
	swift format --in-place --recursive Package.swift Sources Tests

demo: fixtures build
	bash scripts/demo.sh

bench: fixtures release
	bash scripts/bench.sh

clean:
	swift package clean
