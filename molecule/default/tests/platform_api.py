"""Talking to the deployed services: through the external URL, and from
inside the cluster through the API server's pod proxy."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(base_url: str, method: str, path: str, body=None, timeout: float = 30) -> tuple[int, object]:
    """One request to a service URL; (status, decoded JSON body). An HTTP
    error status is returned, not raised; network errors are raised."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base_url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with HTTP.open(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw or b"null")
        except ValueError:
            return err.code, raw.decode(errors="replace")


def deployment_pods(core, dep) -> list:
    """Every pod the Deployment's selector matches, terminating ones too."""
    selector = ",".join(f"{k}={v}" for k, v in sorted(dep.spec.selector.match_labels.items()))
    return core.list_namespaced_pod(dep.metadata.namespace, label_selector=selector).items


def ready_pods(core, apps, svc) -> list:
    """Running, ready, not terminating pods of the service's Deployment."""
    pods = deployment_pods(core, apps.read_namespaced_deployment(svc["name"], svc["namespace"]))
    return [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp
            and all(s.ready for s in p.status.container_statuses or [])]


def proxy(api, method: str, svc: dict, pod: str, path: str, doc=None, timeout: float = 30) -> tuple[int, object]:
    """Call one pod through the API server's pod proxy, with doc as a JSON
    body if given; (status, JSON)."""
    url = f"/api/v1/namespaces/{svc['namespace']}/pods/{pod}:{svc['port']}/proxy{path}"
    extra = {} if doc is None else {"body": doc, "header_params": {"Content-Type": "application/json"}}
    method, full, headers, body, post = api.param_serialize(method=method, resource_path=url,
                                                            auth_settings=["BearerToken"], **extra)
    resp = api.call_api(method, full, header_params=headers, body=body, post_params=post, _request_timeout=timeout)
    raw = resp.read()
    try:
        return resp.status, json.loads(raw or b"null")
    except ValueError:
        return resp.status, raw.decode(errors="replace")


def psql(core, namespace: str, pod: str, database: str, sql: str) -> list[list[str]]:
    """Run one query in a database pod as the local superuser (over the
    socket, no password); rows of unaligned, tab-separated fields."""
    from kubernetes.stream import stream

    out = stream(core.connect_get_namespaced_pod_exec, pod, namespace, container="postgres",
                 command=["psql", "-h", "/var/run/postgresql", "-U", "postgres", "-d", database,
                          "-v", "ON_ERROR_STOP=1", "-AtF", "\t", "-c", sql],
                 stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    out.run_forever(timeout=60)
    stdout, stderr = out.read_stdout(), out.read_stderr()
    code = out.returncode
    out.close()
    assert code == 0, f"psql in {namespace}/{pod} failed ({code}): {stderr}"
    return [line.split("\t") for line in stdout.splitlines() if line]
