#!/usr/bin/python
# -*- coding: utf-8 -*-
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: verify_cluster_state
short_description: Fingerprint the objects a verification depends on
description:
  - Lists the given collections of the API concurrently, asking for object metadata only, and
    returns one digest of every object's identity and version.
  - Two equal digests mean that no object of those collections was created, deleted or written in
    between, since any write gives an object a new resourceVersion. The verify role compares the
    digest with the one its last full verification recorded, to know whether that proof still
    describes the cluster.
  - Reads only; check mode changes nothing.
options:
  lists:
    description:
      - The collections to list, each a dict with C(path), the collection's API path such as
        C(/apis/networking.k8s.io/v1/networkpolicies), and C(versioned).
      - With C(versioned) false, only the objects' names and UIDs count. For objects whose status
        is rewritten on a timer while nothing about them changes, such as Nodes.
    type: list
    elements: dict
    required: true
  exclude_namespaces:
    description:
      - Namespaces left out, with their objects, such as the verification's own probe namespace.
    type: list
    elements: str
    default: []
  parallel:
    description: How many lists are in flight at once.
    type: int
    default: 8
  timeout:
    description: Seconds to wait for each list.
    type: int
    default: 30
extends_documentation_fragment:
  - invoice_platform.platform.kube
author:
  - invoice-platform
notes:
  - Fails when a list is refused or does not answer, since a partial digest would prove nothing.
"""

EXAMPLES = r"""
- name: Fingerprint the policies and the pods
  invoice_platform.platform.verify_cluster_state:
    lists:
      - {path: /apis/networking.k8s.io/v1/networkpolicies, versioned: true}
      - {path: /api/v1/pods, versioned: true}
      - {path: /api/v1/nodes, versioned: false}
    exclude_namespaces: [invoice-platform-verify-probe]
  register: verify__state
"""

RETURN = r"""
sha256:
  description: Digest of RV(objects), the same for the same objects at the same versions.
  type: str
  returned: always
objects:
  description:
    - One entry per object, C(<path> <namespace>/<name>) (C(<path> <name>) when cluster-scoped)
      to C(<uid> <resourceVersion>), or C(<uid>) for a list that is not versioned.
  type: dict
  returned: always
"""

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.invoice_platform.platform.plugins.module_utils.verify_kube import (
    HAS_KUBERNETES,
    KUBE_ARGUMENT_SPEC,
    KUBERNETES_IMPORT_ERROR,
    new_api_client,
    raw_request,
)

# Metadata only: the lists carry no spec or status, so even every pod of a
# cluster fits in a small answer.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json"


def entries(path, doc, versioned, excluded):
    """The objects of one list answer, as {key: version}."""
    out = {}
    for item in doc.get("items") or []:
        meta = item.get("metadata") or {}
        namespace = meta.get("namespace")
        if namespace in excluded or (namespace is None and path.endswith("/namespaces") and meta.get("name") in excluded):
            continue
        name = "%s/%s" % (namespace, meta.get("name")) if namespace else meta.get("name")
        version = meta.get("uid", "")
        if versioned:
            version += " " + meta.get("resourceVersion", "")
        out["%s %s" % (path, name)] = version
    return out


def main():
    argument_spec = dict(
        lists=dict(type="list", elements="dict", required=True),
        exclude_namespaces=dict(type="list", elements="str", default=[]),
        parallel=dict(type="int", default=8),
        timeout=dict(type="int", default=30),
    )
    argument_spec.update(KUBE_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))
    params = module.params
    lists = []
    for entry in params["lists"]:
        path = str(entry.get("path") or "")
        if not path.startswith("/"):
            module.fail_json(msg="each list needs an absolute path, got %r" % entry)
        lists.append((path, bool(entry.get("versioned", True))))
    excluded = set(params["exclude_namespaces"])
    try:
        client = new_api_client(params["kubeconfig"], params["context"])
    except Exception as err:
        module.fail_json(msg="cannot load %s: %s" % (params["kubeconfig"], err))

    def read(path):
        try:
            return raw_request(client, "GET", path, timeout=params["timeout"], accept=METADATA_ONLY)
        except Exception as err:  # reported with the list it belongs to
            return -1, "%s: %s" % (type(err).__name__, err), b""

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(params["parallel"], len(lists)))) as pool:
            answers = list(pool.map(read, [path for path, _ in lists]))
    finally:
        client.close()
    objects, failures = {}, []
    for (path, versioned), (status, reason, raw) in zip(lists, answers):
        if status != 200:
            failures.append("%s: %s %s %s" % (path, status, reason, raw[:300].decode("utf-8", "replace")))
            continue
        objects.update(entries(path, json.loads(raw), versioned, excluded))
    if failures:
        module.fail_json(msg="Could not list every collection: " + "; ".join(failures))
    digest = hashlib.sha256(json.dumps(objects, sort_keys=True).encode("utf-8")).hexdigest()
    module.exit_json(changed=False, sha256=digest, objects=objects)


if __name__ == "__main__":
    main()
