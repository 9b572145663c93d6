#!/usr/bin/env bash
# Run the verification checks against the deployed system and exit non-zero
# if any fails. A thin wrapper around `make verify`; arguments go to
# ansible-playbook; ENV picks the inventory (local, airgap, existing).
set -o errexit -o nounset -o pipefail
cd "$(dirname "$0")"
if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  sed -n '2,4s/^# \{0,1\}//p' "$0"
  exit 0
fi
make venv
exec .venv/bin/ansible-playbook -i "inventory/${ENV:-local}" playbooks/verify.yml "$@"
