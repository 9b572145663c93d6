#!/usr/bin/python
# -*- coding: utf-8 -*-

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: verify_kube_request
short_description: Make one raw Kubernetes API request and return its status and body
description:
  - Sends one request to the API server named by a kubeconfig file and context,
    with that kubeconfig's credentials, and returns the HTTP status and body.
  - An HTTP error status is a result, not a module failure, so a caller can assert
    that a request was forbidden (403) as readily as that it succeeded. The module
    fails only when its arguments are wrong or the kubeconfig cannot be loaded.
  - Used for RBAC matrices, pod proxy requests, server-side dry runs and log reads,
    where the status code itself is the evidence.
options:
  kubeconfig:
    description: Path of the kubeconfig file whose credentials are used.
    type: path
    required: true
  context:
    description: Context in O(kubeconfig); its current context when omitted.
    type: str
  method:
    description: HTTP method.
    type: str
    choices: [GET, POST, PUT, PATCH, DELETE]
    default: GET
  path:
    description: Absolute API path, for example C(/api/v1/namespaces/default/pods).
    type: str
    required: true
  query:
    description: Query parameters.
    type: dict
    default: {}
  body:
    description: Request body; a dict or list is sent as JSON, a string as is.
    type: raw
  content_type:
    description: Content-Type of the body; for PATCH a patch type such as C(application/merge-patch+json).
    type: str
    default: application/json
  timeout:
    description: Seconds to wait for the response.
    type: int
    default: 30
  max_body:
    description: Longest body text returned, in characters; the rest is cut.
    type: int
    default: 65536
author:
  - invoice-platform
notes:
  - C(changed) is true for a method other than GET unless the query holds C(dryRun=All);
    callers that know better override it with C(changed_when).
  - In check mode a request that could change something is not sent.
"""

EXAMPLES = r"""
- name: Ask whether team-invoices may list secrets in payments
  verify_kube_request:
    kubeconfig: /root/.cache/invoice-platform/verify/credentials/team-invoices.kubeconfig
    path: /api/v1/namespaces/payments/secrets
  register: verify__cell
"""

RETURN = r"""
status:
  description: HTTP status, or -1 when no response arrived.
  type: int
  returned: always
reason:
  description: HTTP reason phrase, or the connection error.
  type: str
  returned: always
body:
  description: Response body as text, cut to O(max_body) characters.
  type: str
  returned: always
json:
  description: The body parsed as JSON, when it is JSON.
  type: raw
  returned: when the body is JSON
truncated:
  description: Whether the body was cut.
  type: bool
  returned: always
"""

import json

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.verify_kube import (
    HAS_KUBERNETES,
    KUBE_ARGUMENT_SPEC,
    KUBERNETES_IMPORT_ERROR,
    new_api_client,
    raw_request,
)

SAFE_METHODS = ("GET",)


def main():
    argument_spec = dict(
        method=dict(type="str", default="GET", choices=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        path=dict(type="str", required=True),
        query=dict(type="dict", default={}),
        body=dict(type="raw"),
        content_type=dict(type="str", default="application/json"),
        timeout=dict(type="int", default=30),
        max_body=dict(type="int", default=65536),
    )
    argument_spec.update(KUBE_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))

    params = module.params
    if not params["path"].startswith("/"):
        module.fail_json(msg="path must be absolute, got %r" % params["path"])
    query = params["query"] or {}
    dry_run = str(query.get("dryRun", "")) == "All"
    mutating = params["method"] not in SAFE_METHODS and not dry_run
    result = dict(changed=mutating, status=-1, reason="", body="", truncated=False)
    if mutating and module.check_mode:
        result["reason"] = "not sent in check mode"
        module.exit_json(**result)

    try:
        api = new_api_client(params["kubeconfig"], params["context"])
    except Exception as err:  # the kubernetes loader raises many kinds
        module.fail_json(msg="cannot load kubeconfig %s: %s" % (params["kubeconfig"], err))

    try:
        status, reason, raw = raw_request(api, params["method"], params["path"], query=query, body=params["body"],
                                          content_type=params["content_type"], timeout=params["timeout"])
    except Exception as err:  # connection refused, TLS, timeout: a result, not a failure
        result["changed"] = False
        result["reason"] = "%s: %s" % (type(err).__name__, err)
        module.exit_json(**result)
    finally:
        api.close()
    result["status"], result["reason"] = status, reason

    text = raw.decode("utf-8", errors="replace")
    if len(text) > params["max_body"]:
        result["truncated"] = True
    result["body"] = text[: params["max_body"]]
    try:
        result["json"] = json.loads(text)
    except ValueError:
        pass
    if not 200 <= result["status"] < 300:
        result["changed"] = False
    module.exit_json(**result)


if __name__ == "__main__":
    main()
