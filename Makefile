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

# Air-gapped installs: AIRGAP=1 feeds every playbook the variables that the
# bundle (make airgap-bundle) generated, through PLATFORM_VARS_FILE and the
# platform_vars_file vars plugin (plugins/vars), molecule's playbooks included.
AIRGAP_VARS ?= $(HOME)/.cache/invoice-platform/airgap/current/airgap-vars.yml
ifeq ($(AIRGAP),1)
export PLATFORM_VARS_FILE := $(AIRGAP_VARS)
endif

# Manifest validators that do not belong in .venv: checkov pins conflict with
# ansible's, and kube-score comes from the Go module proxy.
TOOLS_DIR   ?= $(HOME)/.cache/invoice-platform/tools
CHECKOV_VENV ?= $(HOME)/.cache/invoice-platform/venv-checkov
export CHECKOV    := $(CHECKOV_VENV)/bin/checkov
export KUBE_SCORE := $(TOOLS_DIR)/bin/kube-score
KUBE_SCORE_VERSION := v1.20.0

RENDER_DIR  ?= render
SERVICES    := invoice-app payment-provider
SCENARIOS   ?= images render default

.PHONY: help
help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.txt
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
deploy: venv ## Bring up minikube, build and load images, apply resources, verify
	$(BIN)/ansible-playbook site.yml

.PHONY: verify
verify: venv ## Run the verification checks against the deployed system
	$(BIN)/ansible-playbook playbooks/verify.yml

.PHONY: destroy
destroy: venv ## Delete the minikube profile and its kubeconfig
	$(BIN)/ansible-playbook playbooks/destroy.yml

.PHONY: render
render: venv ## Write every manifest site.yml would apply into RENDER_DIR (no cluster)
	$(BIN)/ansible-playbook playbooks/render.yml -e render_dir=$(abspath $(RENDER_DIR))

.PHONY: airgap-bundle
airgap-bundle: venv ## Build (or reuse) the offline bundle: minikube, Kubernetes, images
	$(BIN)/ansible-playbook playbooks/airgap-bundle.yml

.PHONY: builder-image
builder-image: ## Build the Go builder image from this machine's Go toolchain
	tools/builder-image/build.sh

.PHONY: bench
bench: venv ## Time cold and no-op runs of the cluster and site.yml side by side, with ratios
	$(BIN)/python tools/bench.py

.PHONY: lint
lint: venv ## yamllint, ansible-lint (production profile), hadolint
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint
	$(BIN)/hadolint $(wildcard */Dockerfile tools/*/Dockerfile roles/*/files/*/Dockerfile*)

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
		$(BIN)/ansible-playbook --syntax-check $$playbook || exit 1; \
	done

.PHONY: molecule
molecule: venv tools ## Run the molecule scenarios in SCENARIOS
	@export REQUIRE_VALIDATORS=1; for scenario in $(SCENARIOS); do \
		echo "== molecule test -s $$scenario"; \
		$(BIN)/molecule test -s $$scenario || exit 1; \
	done

.PHONY: test
test: lint unit syntax molecule ## Everything: lint, unit tests, syntax, molecule scenarios
