#!/usr/bin/python
# -*- coding: utf-8 -*-

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: verify_csr_approve
short_description: Approve a CertificateSigningRequest and return the issued certificate
description:
  - Adds an C(Approved) condition to a CertificateSigningRequest through its
    C(approval) subresource, unless it is approved already, then waits until the
    signer has issued the certificate and returns it.
  - Fails when the request was denied or the signer reported a failure.
  - The user of O(kubeconfig) must be allowed to approve requests for the signer.
options:
  name:
    description: Name of the CertificateSigningRequest.
    type: str
    required: true
  reason:
    description: Reason recorded in the Approved condition.
    type: str
    default: ApprovedByAnsible
  message:
    description: Message recorded in the Approved condition.
    type: str
    default: Approved for verification
  wait_timeout:
    description: Seconds to wait for the certificate.
    type: int
    default: 60
extends_documentation_fragment:
  - invoice_platform.platform.kube
author:
  - invoice-platform
"""

EXAMPLES = r"""
- name: Approve the request and fetch the certificate
  invoice_platform.platform.verify_csr_approve:
    kubeconfig: "{{ platform_kubeconfig }}"
    context: "{{ platform_kube_context }}"
    name: team-invoices-member-0123abcd
  register: verify__csr
"""

RETURN = r"""
certificate:
  description: The issued certificate, PEM. Empty in check mode.
  type: str
  returned: always
approved:
  description: Whether the request carries an Approved condition now.
  type: bool
  returned: always
"""

import base64
import json
import time
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.invoice_platform.platform.plugins.module_utils.verify_kube import (
    HAS_KUBERNETES,
    KUBE_ARGUMENT_SPEC,
    KUBERNETES_IMPORT_ERROR,
    new_api_client,
    raw_request,
)

CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests/"


class CSRError(Exception):
    pass


def call(api, method, path, body=None):
    status, reason, raw = raw_request(api, method, path, body=body)
    if status != 200:
        raise CSRError("%s %s answered %s %s: %s" % (method, path, status, reason, raw.decode("utf-8", "replace")[:2000]))
    return json.loads(raw)


def conditions(csr):
    return {c.get("type"): c for c in (csr.get("status") or {}).get("conditions") or []}


def true_condition(csr, kind):
    cond = conditions(csr).get(kind)
    return cond if cond and cond.get("status") == "True" else None


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        reason=dict(type="str", default="ApprovedByAnsible"),
        message=dict(type="str", default="Approved for verification"),
        wait_timeout=dict(type="int", default=60),
    )
    argument_spec.update(KUBE_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))

    name = module.params["name"]
    path = CSR_PATH + name
    api = new_api_client(module.params["kubeconfig"], module.params["context"])
    try:
        csr = call(api, "GET", path)
        for bad in ("Denied", "Failed"):
            cond = true_condition(csr, bad)
            if cond:
                raise CSRError("CertificateSigningRequest %s is %s: %s" % (name, bad, cond.get("message", "")))
        changed = true_condition(csr, "Approved") is None
        if changed and module.check_mode:
            module.exit_json(changed=True, approved=False, certificate="")
        if changed:
            now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            status = csr.setdefault("status", {})
            status["conditions"] = (status.get("conditions") or []) + [dict(
                type="Approved", status="True", reason=module.params["reason"],
                message=module.params["message"], lastUpdateTime=now, lastTransitionTime=now)]
            csr = call(api, "PUT", path + "/approval", body=csr)

        deadline = time.monotonic() + module.params["wait_timeout"]
        while not (csr.get("status") or {}).get("certificate"):
            cond = true_condition(csr, "Failed")
            if cond:
                raise CSRError("the signer failed CertificateSigningRequest %s: %s" % (name, cond.get("message", "")))
            if time.monotonic() > deadline:
                raise CSRError(
                    "CertificateSigningRequest %s is approved but no certificate was issued within %ss; is the "
                    "controller-manager's signer for %s enabled? Conditions: %s"
                    % (name, module.params["wait_timeout"], csr["spec"].get("signerName"),
                       json.dumps((csr.get("status") or {}).get("conditions"))))
            time.sleep(1)
            csr = call(api, "GET", path)
    except CSRError as err:
        module.fail_json(msg=str(err))
    finally:
        api.close()

    pem = base64.b64decode(csr["status"]["certificate"]).decode("ascii", "replace")
    if "-----BEGIN CERTIFICATE-----" not in pem:
        module.fail_json(msg="CertificateSigningRequest %s holds no PEM certificate" % name)
    module.exit_json(changed=changed, approved=True, certificate=pem)


if __name__ == "__main__":
    main()
