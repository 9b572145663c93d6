# -*- coding: utf-8 -*-
# Shared by the verify role's modules: a kubernetes API client for one
# kubeconfig file and context, and the cluster facts that carry no secret.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import io
import os
import re
import http.client as http_client
from urllib.parse import urlencode

try:
    import yaml
    from kubernetes import config as kube_config

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as err:  # pragma: no cover - reported by the module
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = err

KUBE_ARGUMENT_SPEC = dict(
    kubeconfig=dict(type="path", required=True),
    context=dict(type="str"),
)


def new_api_client(kubeconfig, context=None):
    """Return a kubernetes.client.ApiClient for kubeconfig and context."""
    return kube_config.new_client_from_config(config_file=kubeconfig, context=context)


def cluster_facts(kubeconfig, context=None):
    """Return the API server URL, CA bundle (base64 PEM) and cluster name that
    kubeconfig's context points at. Nothing about the user is read."""
    with open(kubeconfig, "r", encoding="utf-8") as handle:
        doc = yaml.safe_load(handle) or {}
    context = context or doc.get("current-context")
    contexts = {c.get("name"): c.get("context") or {} for c in doc.get("contexts") or []}
    if context not in contexts:
        raise ValueError("context %r is not in %s" % (context, kubeconfig))
    cluster_name = contexts[context].get("cluster")
    clusters = {c.get("name"): c.get("cluster") or {} for c in doc.get("clusters") or []}
    if cluster_name not in clusters:
        raise ValueError("cluster %r (context %r) is not in %s" % (cluster_name, context, kubeconfig))
    cluster = clusters[cluster_name]
    ca_data = cluster.get("certificate-authority-data")
    if not ca_data and cluster.get("certificate-authority"):
        ca_path = cluster["certificate-authority"]
        if not os.path.isabs(ca_path):
            ca_path = os.path.join(os.path.dirname(os.path.abspath(kubeconfig)), ca_path)
        with open(ca_path, "rb") as handle:
            ca_data = base64.b64encode(handle.read()).decode("ascii")
    return dict(
        cluster=cluster_name,
        server=cluster.get("server"),
        certificate_authority_data=ca_data or "",
        insecure_skip_tls_verify=bool(cluster.get("insecure-skip-tls-verify", False)),
    )


def raw_request(api, method, path, query=None, body=None, content_type="application/json", timeout=30,
                accept="application/json, */*"):
    """Send one request with api's credentials and return (status, reason,
    body bytes). An HTTP error status is returned, not raised; a connection
    failure raises."""
    import json

    headers = {"Accept": accept}
    if body is not None:
        headers["Content-Type"] = content_type
        # The client serialises JSON bodies itself (including +json patch
        # types); a JSON body given as text is parsed so it is not encoded twice.
        if "json" in content_type and isinstance(body, (str, bytes)):
            body = json.loads(body)
    method, url, headers, body, post = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=sorted((query or {}).items()),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, header_params=headers, body=body, post_params=post, _request_timeout=timeout)
    return int(response.status), response.reason or "", response.read() or b""


POD_PROXY_PATH = re.compile(r"^/api/v1/namespaces/(?P<namespace>[^/]+)/pods/(?P<pod>[^/:]+):(?P<port>\d+)/proxy(?P<rest>/.*)?$")


class _Received(object):
    """The bytes of one HTTP response, as the socket http.client reads."""

    def __init__(self, data):
        self._file = io.BytesIO(data)

    def makefile(self, *args, **kwargs):
        return self._file


def port_forward_request(api, method, path, query=None, body=None, content_type="application/json", timeout=30):
    """Send a pod proxy request (/api/v1/namespaces/N/pods/P:PORT/proxy/...)
    through a port-forward to the pod instead, and return (status, reason,
    body bytes) like raw_request. The kubelet connects to the port inside the
    pod's own network namespace, so no NetworkPolicy stands between the API
    server and a pod on another node: the pod proxy comes from the API
    server's address, which a policy admitting only other pods refuses."""
    import json

    from kubernetes import client
    from kubernetes.stream import portforward

    match = POD_PROXY_PATH.match(path)
    if not match:
        raise ValueError("a port-forward request needs a pod proxy path, got %r" % path)
    target = (match.group("rest") or "/") + ("?" + urlencode(sorted(query.items())) if query else "")
    if body is not None and not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    payload = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    head = ["%s %s HTTP/1.1" % (method, target), "Host: localhost", "Connection: close",
            "Accept: application/json, */*", "Content-Length: %d" % len(payload)]
    if body is not None:
        head.append("Content-Type: %s" % content_type)
    port = int(match.group("port"))
    forward = portforward(client.CoreV1Api(api).connect_get_namespaced_pod_portforward, match.group("pod"),
                          match.group("namespace"), ports=str(port), _request_timeout=timeout)
    try:
        sock = forward.socket(port)
        sock.settimeout(timeout)
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("ascii") + payload)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.close()
        if not data:
            raise ConnectionError("no answer through the port-forward: %s" % (forward.error(port) or "connection closed"))
    finally:
        forward.close()
    response = http_client.HTTPResponse(_Received(data))
    response.begin()
    return int(response.status), response.reason or "", response.read() or b""
