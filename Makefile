# reconcile: `make demo` runs it against a local engine, `make test` runs every test.
SHELL := /bin/bash
COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD 2>/dev/null || echo +dirty)
export RECONCILE_COMMIT := $(COMMIT)

.PHONY: all build release engine fixtures test lint lint-tools static deps image runtime-test dockerfile-check ci format demo bench clean

all: build

build:
	swift build

release:
	swift build -c release --static-swift-stdlib

engine:
	bash scripts/ensure-engine.sh

fixtures: engine
	bash scripts/fixture-images.sh

## Everything CI checks: engine and fixture images, build, unit + real-engine tests with
## coverage (fails under 80% of Sources/), and swift format lint --strict.
test: fixtures
	bash scripts/test.sh

## CI stage 1: swift format, shellcheck, hadolint, actionlint, reconcile validate environments/.
lint:
	bash scripts/lint.sh

lint-tools:
	bash scripts/lint-tools.sh

## CI stage 2: the project's own static rules over Sources/ (no try!, no force unwraps, no
## processes or shells, no print, secrets read in four files only).
static:
	bash scripts/static-checks.sh

## CI stage 3: every resolved package and its version; fails on any not pinned to a release.
deps:
	bash scripts/dependency-check.sh

## CI stage 5: the runtime image, built here on scratch (reconcile:local and reconcile:<commit>).
image: engine
	bash scripts/image.sh

## CI stage 6: the image run with the Docker socket mounted: version, validate, status, diff.
runtime-test: engine
	bash scripts/runtime-test.sh

## Not a CI stage (about 15 minutes): builds the root Dockerfile against local stand-ins for its
## two base images and runs the runtime test on the result.
dockerfile-check: engine
	bash scripts/dockerfile-check.sh

## Every stage, in the seed's order, as CI runs them.
ci:
	bash .ci/run

format:
	swift format --in-place --recursive Package.swift Sources Tests

demo: fixtures build
	bash scripts/demo.sh

bench: fixtures release
	bash scripts/bench.sh

clean:
	swift package clean
