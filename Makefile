# invoice-platform: from Go source to a verified deployment on minikube.
# `make help` lists the targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV        ?= .venv
PYTHON      ?= python3
BIN         := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export GOTOOLCHAIN := local
export ANSIBLE_FORCE_COLOR ?= true

# Environments are inventories: inventory/local (minikube with internet, the
# default), inventory/airgap (minikube from the offline bundle) and
# inventory/existing (a cluster of your own). `make deploy ENV=airgap`.
ENV         ?= local
INVENTORY   := inventory/$(ENV)
ifeq ($(wildcard $(INVENTORY)/hosts.yml),)
$(error ENV=$(ENV): there is no $(INVENTORY)/hosts.yml; pick one of: $(patsubst inventory/%/hosts.yml,%,$(wildcard inventory/*/hosts.yml)))
endif
PLAYBOOK    := $(BIN)/ansible-playbook -i $(INVENTORY)

# Manifest validators that do not belong in .venv: checkov pins conflict with
# ansible's, and kube-score comes from the Go module proxy.
TOOLS_DIR   ?= $(HOME)/.cache/invoice-platform/tools
CHECKOV_VENV ?= $(HOME)/.cache/invoice-platform/venv-checkov
export CHECKOV    := $(CHECKOV_VENV)/bin/checkov
export KUBE_SCORE := $(TOOLS_DIR)/bin/kube-score
KUBE_SCORE_VERSION := v1.20.0

RENDER_DIR  ?= render
SERVICES    := invoice-app payment-provider
# The cluster scenario matching the environment: default (local, with
# internet) or airgap. Offline, `existing` follows: the platform deployed
# into a three-node cluster it does not own, through a TLS registry, both
# stood up from the offline bundle (molecule/existing).
CLUSTER_SCENARIO := $(if $(filter airgap,$(ENV)),airgap existing,default)
SCENARIOS   ?= images render $(CLUSTER_SCENARIO)

# Root is needed for host setup only; ask for the sudo password unless root.
BECOME_FLAGS ?= $(if $(filter 0,$(shell id -u)),,--ask-become-pass)

.PHONY: help
help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "make: '$(PYTHON)' is not Python 3.11 or newer ($$($(PYTHON) --version 2>&1 | head -n1)); pick another interpreter: make PYTHON=python3.12 $(MAKECMDGOALS)" >&2; \
		exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/ansible-galaxy collection install -r requirements.yml
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the virtualenv from requirements.txt

$(CHECKOV): requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -r requirements-checkov.txt
	touch $@

$(KUBE_SCORE):
	GOBIN=$(TOOLS_DIR)/bin go install github.com/zegl/kube-score/cmd/kube-score@$(KUBE_SCORE_VERSION)

.PHONY: tools
tools: $(CHECKOV) $(KUBE_SCORE) ## Install the manifest validators (checkov, kube-score) outside the repo

.PHONY: deploy
deploy: venv ## Preflight, cluster, images, resources, verification (site.yml; ENV=local|airgap|existing)
	$(PLAYBOOK) site.yml

.PHONY: preflight
preflight: venv ## Check that this machine can run the platform; one line per problem
	$(PLAYBOOK) playbooks/preflight.yml

.PHONY: host-setup
host-setup: venv ## The one root step: the runtime shim where the host needs it (backed up, undoable)
	$(PLAYBOOK) playbooks/host.yml $(BECOME_FLAGS)

.PHONY: host-test
host-test: venv ## As root: prove host-setup and host-teardown on this machine's Docker engine
	HOST_SETUP_TESTS=1 PYTHONDONTWRITEBYTECODE=1 $(BIN)/pytest -q -p no:cacheprovider tests/test_host_setup.py

.PHONY: host-teardown
host-teardown: venv ## Undo host-setup exactly: restore daemon.json, remove the shim
	$(PLAYBOOK) playbooks/host.yml -e host_state=absent $(BECOME_FLAGS)

.PHONY: verify
verify: venv ## Run the verification checks against the deployed system
	$(PLAYBOOK) playbooks/verify.yml

.PHONY: destroy
destroy: venv ## Delete the minikube profile and its kubeconfig
	$(PLAYBOOK) playbooks/destroy.yml

.PHONY: render
render: venv ## Write every manifest site.yml would apply into RENDER_DIR (no cluster)
	$(PLAYBOOK) playbooks/render.yml -e render_dir=$(abspath $(RENDER_DIR))

.PHONY: airgap-bundle
airgap-bundle: venv ## Build (or reuse) the offline bundle: minikube, Kubernetes, images
	$(BIN)/ansible-playbook -i inventory/airgap playbooks/airgap-bundle.yml

.PHONY: builder-image
builder-image: ## Build the Go builder image from this machine's Go toolchain
	tools/builder-image/build.sh

.PHONY: bench
bench: venv ## Time cold and no-op runs of the cluster and site.yml, then the pay benchmark, with ratios
	$(BIN)/python tools/bench.py --inventory $(INVENTORY)
	$(BIN)/python tools/bench_pay.py

.PHONY: bench-pay
bench-pay: venv ## Pay 1,000 invoices one at a time and with bounded concurrency; print the ratio
	$(BIN)/python tools/bench_pay.py

.PHONY: lint
lint: venv ## yamllint, ansible-lint (production profile), hadolint
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint
	$(BIN)/hadolint $(wildcard */Dockerfile tools/*/Dockerfile roles/*/files/*/Dockerfile* molecule/*/files/*/Dockerfile)

.PHONY: unit
unit: venv ## go vet and go test for the services; pytest for the plugins
	@for dir in $(SERVICES) $(wildcard tools/netprobe); do \
		echo "== $$dir"; \
		(cd $$dir && go vet ./... && go test -count=1 ./...) || exit 1; \
	done
	$(BIN)/pytest -q tests roles/verify/tests/unit

.PHONY: syntax
syntax: venv ## ansible-playbook --syntax-check on every playbook
	@for playbook in site.yml playbooks/*.yml; do \
		$(PLAYBOOK) --syntax-check $$playbook || exit 1; \
	done

.PHONY: molecule
molecule: venv tools ## Run the molecule scenarios in SCENARIOS
	@export REQUIRE_VALIDATORS=1 INVOICE_PLATFORM_ENV=$(ENV); for scenario in $(SCENARIOS); do \
		echo "== molecule test -s $$scenario"; \
		$(BIN)/molecule --base-config .config/molecule/config.yml test -s $$scenario || exit 1; \
	done

.PHONY: test
test: lint unit syntax molecule ## Everything: lint, unit tests, syntax, molecule scenarios
