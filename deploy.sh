#!/usr/bin/env bash
# Deploy everything: minikube, images, Kubernetes resources, verification.
# A thin wrapper around `make deploy`; arguments go to ansible-playbook,
# e.g. ENV=airgap ./deploy.sh -e platform_invoice_app_node_port=30090
set -o errexit -o nounset -o pipefail
cd "$(dirname "$0")"
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,4s/^# \{0,1\}//p' "$0"
  exit 0
fi
make venv
exec .venv/bin/ansible-playbook -i "inventory/${ENV:-local}" site.yml "$@"
