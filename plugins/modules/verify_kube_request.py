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
  method:
    description: HTTP method.
    type: str
    choices: [GET, POST, PUT, PATCH, DELETE]
    default: GET
  path:
    description:
      - Absolute API path, for example C(/api/v1/namespaces/default/pods).
      - Required unless O(requests) is given.
    type: str
  requests:
    description:
      - Several requests in one go, each a dict with the keys C(path) (required), C(method),
        C(query), C(body), C(content_type), C(port_forward) and C(kubeconfig), C(context) (defaulting
        to the module's own). The answers come back in RV(responses), in the same order.
      - Saves starting the module once per request when a check makes dozens of them.
      - They are sent concurrently (up to O(parallel) at a time), except that requests
        through a port-forward go one after another.
    type: list
    elements: dict
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
  parallel:
    description: How many of O(requests) are in flight at once.
    type: int
    default: 8
  timeout:
    description: Seconds to wait for the response.
    type: int
    default: 30
  max_body:
    description: Longest body text returned, in characters; the rest is cut.
    type: int
    default: 65536
  port_forward:
    description:
      - Send a pod proxy path (C(/api/v1/namespaces/N/pods/P:PORT/proxy/...)) through a port-forward
        to the pod instead of the API server's proxy. The kubelet connects inside the pod's network
        namespace, so a NetworkPolicy that admits only certain pods does not refuse the request, as it
        refuses the API server's proxy to a pod on another node. Needs C(pods/portforward).
      - Also a key of each O(requests) item, defaulting to this value.
    type: bool
    default: false
extends_documentation_fragment:
  - invoice_platform.platform.kube
author:
  - invoice-platform
notes:
  - C(changed) is true for a method other than GET unless the query holds C(dryRun=All);
    callers that know better override it with C(changed_when).
  - In check mode a request that could change something is not sent.
"""

EXAMPLES = r"""
- name: Ask whether team-invoices may list secrets in payments
  invoice_platform.platform.verify_kube_request:
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
responses:
  description: With O(requests), one dict per request with C(status), C(reason), C(body), C(json) and C(truncated).
  type: list
  elements: dict
  returned: when O(requests) is given
"""

import json

from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.invoice_platform.platform.plugins.module_utils.verify_kube import (
    HAS_KUBERNETES,
    KUBE_ARGUMENT_SPEC,
    KUBERNETES_IMPORT_ERROR,
    new_api_client,
    port_forward_request,
    raw_request,
)

SAFE_METHODS = ("GET",)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def is_mutating(method, query):
    return method not in SAFE_METHODS and str((query or {}).get("dryRun", "")) != "All"


def client_for(clients, req):
    """The API client of req's kubeconfig and context, made once and shared;
    a kubeconfig that cannot be loaded is kept as the error it raised."""
    key = (req["kubeconfig"], req.get("context"))
    if key not in clients:
        try:
            clients[key] = new_api_client(*key)
        except Exception as err:  # a bad kubeconfig is a result of each request that uses it
            clients[key] = err
    return clients[key]


def send(client, req, max_body, timeout):
    """One request; returns status, reason, body, json, truncated, changed."""
    out = dict(status=-1, reason="", body="", truncated=False, changed=False)
    try:
        if isinstance(client, Exception):
            raise client
        send_one = port_forward_request if req.get("port_forward") else raw_request
        status, reason, raw = send_one(client, req.get("method") or "GET", req["path"], query=req.get("query"),
                                       body=req.get("body"), content_type=req.get("content_type") or "application/json",
                                       timeout=timeout)
    except Exception as err:  # connection refused, TLS, timeout, bad kubeconfig: a result, not a failure
        out["reason"] = "%s: %s" % (type(err).__name__, err)
        return out
    text = raw.decode("utf-8", errors="replace")
    out.update(status=status, reason=reason, truncated=len(text) > max_body, body=text[:max_body])
    try:
        out["json"] = json.loads(text)
    except ValueError:
        pass
    out["changed"] = 200 <= status < 300 and is_mutating(req.get("method") or "GET", req.get("query"))
    return out


def main():
    argument_spec = dict(
        method=dict(type="str", default="GET", choices=METHODS),
        path=dict(type="str"),
        query=dict(type="dict", default={}),
        body=dict(type="raw"),
        content_type=dict(type="str", default="application/json"),
        requests=dict(type="list", elements="dict"),
        timeout=dict(type="int", default=30),
        max_body=dict(type="int", default=65536),
        parallel=dict(type="int", default=8),
        port_forward=dict(type="bool", default=False),
    )
    argument_spec.update(KUBE_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[("path", "requests")], mutually_exclusive=[("path", "requests")])
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))

    params = module.params
    single = params["requests"] is None
    if single:
        reqs = [dict(method=params["method"], path=params["path"], query=params["query"], body=params["body"],
                     content_type=params["content_type"])]
    else:
        reqs = [dict(r) for r in params["requests"]]
    for req in reqs:
        req.setdefault("port_forward", params["port_forward"])
        req.setdefault("kubeconfig", params["kubeconfig"])
        req.setdefault("context", params["context"] if req["kubeconfig"] == params["kubeconfig"] else None)
        method = (req.get("method") or "GET").upper()
        if method not in METHODS:
            module.fail_json(msg="method %r is not one of %s" % (method, ", ".join(METHODS)))
        req["method"] = method
        if not str(req.get("path") or "").startswith("/"):
            module.fail_json(msg="path must be absolute, got %r" % req.get("path"))

    clients = {}
    for req in reqs:
        client_for(clients, req)

    def answer(req):
        if module.check_mode and is_mutating(req["method"], req.get("query")):
            return dict(status=-1, reason="not sent in check mode", body="", truncated=False, changed=True)
        return send(client_for(clients, req), req, params["max_body"], params["timeout"])

    # The API clients' connection pools are thread-safe; a port-forward opens
    # its own stream, so those requests go one at a time, in order.
    direct = [i for i, req in enumerate(reqs) if not req["port_forward"]]
    responses = [None] * len(reqs)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(params["parallel"], len(direct) or 1))) as pool:
            for i, response in zip(direct, pool.map(answer, [reqs[i] for i in direct])):
                responses[i] = response
        for i, req in enumerate(reqs):
            if req["port_forward"]:
                responses[i] = answer(req)
    finally:
        for client in clients.values():
            if not isinstance(client, Exception):
                client.close()

    changed = any(r.pop("changed") for r in responses)
    if single:
        module.exit_json(changed=changed, **responses[0])
    module.exit_json(changed=changed, responses=responses)


if __name__ == "__main__":
    main()
