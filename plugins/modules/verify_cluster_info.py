#!/usr/bin/python
# -*- coding: utf-8 -*-

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: verify_cluster_info
short_description: Read the API server address and CA bundle from a kubeconfig context
description:
  - Returns where a kubeconfig context points and which CA it trusts, so that
    another kubeconfig can be written for the same cluster.
  - Reads nothing about the context's user; no credential leaves the file.
extends_documentation_fragment:
  - invoice_platform.platform.kube
author:
  - invoice-platform
"""

EXAMPLES = r"""
- name: Read the cluster the admin context points at
  invoice_platform.platform.verify_cluster_info:
    kubeconfig: "{{ platform_kubeconfig }}"
    context: "{{ platform_kube_context }}"
  register: verify__cluster
"""

RETURN = r"""
cluster:
  description: Name of the cluster entry.
  type: str
  returned: success
server:
  description: API server URL.
  type: str
  returned: success
certificate_authority_data:
  description: CA bundle, base64-encoded PEM, empty when the kubeconfig names none.
  type: str
  returned: success
insecure_skip_tls_verify:
  description: Whether the context skips TLS verification.
  type: bool
  returned: success
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.invoice_platform.platform.plugins.module_utils.verify_kube import (
    HAS_KUBERNETES,
    KUBE_ARGUMENT_SPEC,
    KUBERNETES_IMPORT_ERROR,
    cluster_facts,
)


def main():
    module = AnsibleModule(argument_spec=dict(KUBE_ARGUMENT_SPEC), supports_check_mode=True)
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))
    try:
        facts = cluster_facts(module.params["kubeconfig"], module.params["context"])
    except (OSError, ValueError) as err:
        module.fail_json(msg=str(err))
    module.exit_json(changed=False, **facts)


if __name__ == "__main__":
    main()
