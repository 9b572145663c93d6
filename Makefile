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
# bundle (make airgap-bundle) generated.
AIRGAP_VARS ?= $(HOME)/.cache/invoice-platform/airgap/current/airgap-vars.yml
ifeq ($(AIRGAP),1)
export PLATFORM_VARS_FILE := $(AIRGAP_VARS)
endif
EXTRA_VARS  := $(if $(PLATFORM_VARS_FILE),-e @$(PLATFORM_VARS_FILE))

RENDER_DIR  ?= render
SERVICES    := invoice-app payment-provider
SCENARIOS   ?= images render default

.PHONY: help
help: ## Show the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/ansible-galaxy collection install -r requirements.yml
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## Create the virtualenv from requirements.txt

.PHONY: deploy
deploy: venv ## Bring up minikube, build and load images, apply resources, verify
	$(BIN)/ansible-playbook site.yml $(EXTRA_VARS)

.PHONY: verify
verify: venv ## Run the verification checks against the deployed system
	$(BIN)/ansible-playbook playbooks/verify.yml $(EXTRA_VARS)

.PHONY: destroy
destroy: venv ## Delete the minikube profile and its kubeconfig
	$(BIN)/ansible-playbook playbooks/destroy.yml $(EXTRA_VARS)

.PHONY: render
render: venv ## Write every manifest site.yml would apply into RENDER_DIR (no cluster)
	$(BIN)/ansible-playbook playbooks/render.yml -e render_dir=$(abspath $(RENDER_DIR)) $(EXTRA_VARS)

.PHONY: airgap-bundle
airgap-bundle: venv ## Build (or reuse) the offline bundle: minikube, Kubernetes, images
	$(BIN)/ansible-playbook playbooks/airgap-bundle.yml

.PHONY: builder-image
builder-image: ## Build the Go builder image from this machine's Go toolchain
	tools/builder-image/build.sh

.PHONY: lint
lint: venv ## yamllint, ansible-lint (production profile), hadolint
	$(BIN)/yamllint -s .
	$(BIN)/ansible-lint
	$(BIN)/hadolint $(wildcard */Dockerfile tools/*/Dockerfile)

.PHONY: unit
unit: venv ## go vet and go test for the services; pytest for the plugins
	@for dir in $(SERVICES) $(wildcard tools/netprobe); do \
		echo "== $$dir"; \
		(cd $$dir && go vet ./... && go test -count=1 ./...) || exit 1; \
	done
	$(BIN)/pytest -q tests

.PHONY: syntax
syntax: venv ## ansible-playbook --syntax-check on every playbook
	@for playbook in site.yml playbooks/*.yml; do \
		$(BIN)/ansible-playbook --syntax-check $$playbook $(EXTRA_VARS) || exit 1; \
	done

.PHONY: molecule
molecule: venv ## Run the molecule scenarios in SCENARIOS
	@for scenario in $(SCENARIOS); do \
		echo "== molecule test -s $$scenario"; \
		$(BIN)/molecule test -s $$scenario || exit 1; \
	done

.PHONY: test
test: lint unit syntax molecule ## Everything: lint, unit tests, syntax, molecule scenarios
