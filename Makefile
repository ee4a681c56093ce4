# livestream.aws — one entry point for set-up, tests, the lab and the benchmarks.
#
#   make lab        bring up the whole service on this machine (moto + nspawn + pebble)
#   make lab-down   remove every trace of the lab
#   make test       lint, sanity, pytest suites, molecule
#   make unit       tests/unit alone (no lab, no AWS API)
#   make bench      every benchmark (prints figures, writes benchmarks/results/*.json)
#   make build      the collection tarball in build/
#
# Everything installs itself: Debian packages from bindep.txt, a virtualenv from the
# pinned requirements.txt + requirements-dev.txt (.venv), and one for the TLS scanner from
# requirements-tls.txt (.venv-tls), both kept in the machine's cache and shared by every
# checkout with the same pins. A second run skips what is already there.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT := $(abspath .)
VENV ?= $(ROOT)/.venv
BIN := $(VENV)/bin
# sslyze pins a cryptography older than ours: it lives in a venv of its own
TLS_VENV ?= $(ROOT)/.venv-tls
PYTHON ?= python3
VERSION := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL := build/livestream-aws-$(VERSION).tar.gz

# The working tree is importable as livestream.aws through the committed link
# collections/ansible_collections/livestream/aws -> ../../.. (also what lets
# `ansible-playbook site.yml` run from the top of a clone: a playbook's adjacent collections).
COLLECTIONS := $(ROOT)/collections

export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export LIVESTREAM_TLS_VENV := $(TLS_VENV)

.PHONY: help setup setup-lab test test-other unit lint sanity pytest pytest-service molecule build lab lab-down bench clean

help:
	@sed -n 's/^#   //p' $(MAKEFILE_LIST)

## set-up ----------------------------------------------------------------------------

setup: $(VENV)/.installed
	@scripts/setup-host test

setup-lab: setup $(TLS_VENV)/.installed
	@scripts/setup-host lab

# the pinned requirements in a virtualenv in the machine's cache, shared by every checkout
# with the same pins; .venv layers this checkout's lab and test support on it, importable
# as installed packages, and collections/ (the link that makes the working tree
# ansible_collections.livestream.aws), so that the probes' imports of the collection's
# module_utils work in scripts (the benchmarks) as they do under pytest (scripts/venv)
$(VENV)/.installed: requirements.txt requirements-dev.txt scripts/venv
	@scripts/setup-host test
	PYTHON=$(PYTHON) scripts/venv --source lab --source tests/support --source collections $(VENV) \
	  requirements-dev.txt requirements.txt

$(TLS_VENV)/.installed: requirements-tls.txt
	PYTHON=$(PYTHON) scripts/venv $(TLS_VENV) requirements-tls.txt

## tests -----------------------------------------------------------------------------

# Two lanes side by side, one per core: the service suites (tests/e2e, tests/faults and the
# modules that switch their lab: the ones that time playback) at normal priority, and the rest
# (lint, sanity, every other pytest suite, molecule) niced, so that it takes what the first
# leaves idle. The rest's output goes to build/test-other.log, printed once both have ended;
# either failing fails the run (each lane stops at its own first failure).
# First of all, in the background, the machines' images that are not cached yet (a fresh
# machine): the lab's `image` command needs the standard library alone, so they build while
# the virtualenvs install. The default release's first, at normal priority (the first labs of
# both lanes wait for it, on its lock); then the others at the lowest (Debian 12's, which
# molecule needs at the end of the other lane). A lab builds an image itself if this has not.
TEST_OTHER_LOG := build/test-other.log
TEST_IMAGES_LOG := build/test-images.log

test:
	@echo "== $$(date +%T) make test"
	@scripts/setup-host test lab
	@mkdir -p build
	@export PYTHONPATH=$(ROOT)/lab; \
	setsid bash -c '$(PYTHON) -m livestream_lab image && nice -n 19 $(PYTHON) -m livestream_lab image --suite all' \
	  > $(TEST_IMAGES_LOG) 2>&1 & images=$$!; unset PYTHONPATH; \
	trap 'kill -- -$$images $${other:+-$$other} 2>/dev/null; exit 130' INT TERM; \
	status=0; $(MAKE) --no-print-directory setup-lab || status=$$?; \
	if [ $$status = 0 ]; then \
	  echo "== beside the service suites, niced: lint, sanity, the other suites, molecule ($(TEST_OTHER_LOG))"; \
	  setsid nice -n 10 $(MAKE) --no-print-directory test-other > $(TEST_OTHER_LOG) 2>&1 & other=$$!; \
	  echo "== $$(date +%T) the service suites"; \
	  $(MAKE) --no-print-directory pytest-service || status=$$?; \
	  echo "== $$(date +%T) the service suites ended"; \
	  wait $$other || status=$$?; \
	  echo "== $$(date +%T) both lanes ended"; \
	  echo "== lint, sanity, the other suites, molecule ($(TEST_OTHER_LOG))"; cat $(TEST_OTHER_LOG); \
	fi; \
	kill -- -$$images 2>/dev/null || true; wait $$images || echo "== the machines' images did not all build here: $(TEST_IMAGES_LOG)"; \
	exit $$status

test-other: setup-lab
	@echo "== $$(date +%T) lint"
	$(MAKE) --no-print-directory lint
	@echo "== $$(date +%T) sanity"
	$(MAKE) --no-print-directory sanity
	@echo "== $$(date +%T) the other suites"
	pytest --ignore=tests/e2e --ignore=tests/faults
	@echo "== $$(date +%T) molecule"
	$(MAKE) --no-print-directory molecule
	@echo "== $$(date +%T) lint, sanity, the other suites and molecule passed"

# ansible-lint puts its cache's collections ($$ANSIBLE_HOME, else ~/.ansible) before ours: a
# copy of livestream.aws installed there (another checkout's, an older tarball) would hide
# this tree's roles from its syntax check. Its cache is this checkout's own .ansible/.
lint: setup
	ANSIBLE_HOME=$(ROOT)/.ansible ansible-lint --offline
	antsibull-changelog lint

# ansible-test wants to stand in ansible_collections/<namespace>/<name> of a git checkout
# of its own (inside ours it would see only what we ignore): give it a copy of the tree
# there, with amazon.aws beside it for the imports. Its test venvs are cached in ~/.ansible.
SANITY_ROOT := $(ROOT)/.sanity/ansible_collections
SANITY_COPY := $(SANITY_ROOT)/livestream/aws
# ansible-test fetches get-pip.py from a host we cannot reach: give it our stand-in
PIP_BOOTSTRAP := $(HOME)/.ansible/test/cache/get_pip_24_2.py

sanity: setup
	rm -rf $(SANITY_COPY) && mkdir -p $(SANITY_COPY) $(dir $(PIP_BOOTSTRAP))
	cp scripts/ansible-test-get-pip.py $(PIP_BOOTSTRAP)
	ln -sfn $$($(BIN)/python -c 'import ansible_collections.amazon as m; print(list(m.__path__)[0])') \
	  $(SANITY_ROOT)/amazon
	git ls-files -z --cached --others --exclude-standard -- . ':!collections' \
	  | rsync -a --from0 --ignore-missing-args --files-from=- ./ $(SANITY_COPY)/
	cd $(SANITY_COPY) && git init -q . \
	  && ansible-test sanity --venv --python 3.11 --color no --truncate 0

pytest: setup-lab
	pytest

pytest-service: setup-lab
	pytest tests/e2e tests/faults

unit: setup
	pytest tests/unit

# One scenario, default (molecule/): the whole stack on a lab of its own (stack molecule), every
# role from scratch, idempotence, the verifier; molecule takes the lab down at the end, whatever
# happened. reset: molecule's record of the instances (~/.ansible/tmp) would otherwise say
# "already created" for a lab that an earlier run took down, and converge would find no host.
molecule: setup-lab
	molecule reset >/dev/null
	molecule test

build: setup
	mkdir -p build
	ansible-galaxy collection build --force --output-path build .

## the lab ---------------------------------------------------------------------------

lab: setup-lab
	$(BIN)/python -m livestream_lab up $(if $(CDN),--cdn $(CDN))

lab-down: setup
	$(BIN)/python -m livestream_lab down

## benchmarks ------------------------------------------------------------------------

bench: setup-lab
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python "$$b"; done

clean:
	rm -rf build .ansible
