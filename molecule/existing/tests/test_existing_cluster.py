"""The platform on a cluster it does not own, used as a cluster: images come
from a TLS registry and run by digest, each service spreads over the nodes,
and a node drain and a rolling update under load fail no request. The
verification role's own tests run here unchanged (imported below)."""

from __future__ import annotations

import json
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import test_rollout
from load import Load
from platform_api import deployment_pods, ready_pods

# The verification role against this cluster, with the default scenario's
# assertions, unchanged.
from test_verify_report import *  # noqa: F401,F403

CACHE = Path.home() / ".cache" / "invoice-platform"
test_rollout.REPORT = CACHE / "existing-rollout-report.json"
# The same load as the drain's: 20 requests per second for at least 60 s.
test_rollout.MIN_LOAD_SECONDS = 60
from test_rollout import test_rolling_update_under_load_fails_no_request  # noqa: E402,F401

DRAIN_REPORT = CACHE / "existing-drain-report.json"
RATE = 20
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json"])


def registry_get(stand_in, path: str, context: ssl.SSLContext | None = None, method: str = "GET"):
    ca = Path(stand_in["existing_cluster_state_dir"]) / "tls" / "ca.crt"
    ctx = context or ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(f"https://127.0.0.1:{stand_in['existing_registry_port']}{path}", method=method,
                                 headers={"Accept": MANIFEST_TYPES})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
    return opener.open(req, timeout=10)


def node_containers(stand_in) -> list[str]:
    out = subprocess.run(["docker", "ps", "--format", "{{.Names}}", "--filter", "label=created_by.minikube.sigs.k8s.io=true",
                          "--filter", f"network={stand_in['existing_cluster_name']}"],
                         capture_output=True, text=True, check=True)
    return sorted(out.stdout.split())


def crictl_pull(node: str, ref: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", "exec", node, "crictl", "pull", ref], capture_output=True, text=True, timeout=120)


def test_the_cluster_has_several_ready_nodes(core):
    nodes = core.list_node().items
    ready = [n.metadata.name for n in nodes
             if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)]
    assert len(ready) >= 2 and len(ready) == len(nodes), ready


@pytest.mark.parametrize("key", ["invoice_app", "payment_provider"])
def test_each_service_runs_by_the_digest_the_registry_holds(key, apps, core, services, facts, stand_in):
    svc = services[key]
    dep = apps.read_namespaced_deployment(svc["name"], svc["namespace"])
    image = dep.spec.template.spec.containers[0].image
    repo = f"{stand_in['platform_image_registry']}/{svc['name']}"
    match = re.fullmatch(re.escape(repo) + r"@(sha256:[0-9a-f]{64})", image)
    assert match, image
    # The tag that was built and pushed names the same manifest in the registry.
    tag = facts["platform_images"][key].rsplit(":", 1)[1]
    name = repo.split("/", 1)[1]
    with registry_get(stand_in, f"/v2/{name}/manifests/{tag}", method="HEAD") as resp:
        assert resp.headers["Docker-Content-Digest"] == match.group(1)
    # And every pod runs that image, pulled from the registry.
    pods = deployment_pods(core, dep)
    assert pods
    for pod in pods:
        for status in pod.status.container_statuses:
            assert status.image_id.endswith("@" + match.group(1)), (pod.metadata.name, status.image_id)


def test_the_registry_speaks_tls_only_and_checks_out_against_the_ca(stand_in):
    port = stand_in["existing_registry_port"]
    with registry_get(stand_in, "/v2/") as resp:
        assert resp.status == 200
    # Without the scenario's CA the certificate is not trusted...
    with pytest.raises(urllib.error.URLError) as err:
        registry_get(stand_in, "/v2/", context=ssl.create_default_context())
    assert isinstance(err.value.reason, ssl.SSLCertVerificationError), err.value
    # ...and plain HTTP is refused.
    plain = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with pytest.raises(urllib.error.HTTPError) as err:
        plain.open(f"http://127.0.0.1:{port}/v2/", timeout=10)
    assert err.value.code == 400 and b"HTTPS" in err.value.read()


def test_nodes_pull_only_with_the_ca(stand_in, apps, services):
    """Every node pulls the running image through containerd's configuration
    for the registry, which names the CA. The same registry under a second name
    whose configuration lacks the CA fails certificate verification."""
    svc = services["payment_provider"]
    image = apps.read_namespaced_deployment(svc["name"], svc["namespace"]).spec.template.spec.containers[0].image
    nodes = node_containers(stand_in)
    assert len(nodes) >= 2, nodes
    for node in nodes:
        trusted = crictl_pull(node, image)
        assert trusted.returncode == 0, (node, trusted.stderr)
    node = nodes[-1]
    alias = f"untrusted.invalid:{stand_in['existing_registry_port']}"
    conf = f"/etc/containerd/certs.d/{alias}"
    upstream = f"https://{stand_in['existing_registry_address']}:{stand_in['existing_registry_port']}"
    hosts = f'server = "{upstream}"\n[host."{upstream}"]\n  capabilities = ["pull", "resolve"]\n'
    subprocess.run(["docker", "exec", "-i", node, "sh", "-c", f"mkdir -p {conf} && cat > {conf}/hosts.toml"],
                   input=hosts, text=True, check=True)
    try:
        untrusted = crictl_pull(node, alias + "/" + image.split("/", 1)[1])
    finally:
        subprocess.run(["docker", "exec", node, "rm", "-rf", conf], check=True)
    assert untrusted.returncode != 0
    assert "x509" in untrusted.stderr or "certificate" in untrusted.stderr, untrusted.stderr


@pytest.mark.parametrize("key", ["invoice_app", "payment_provider"])
def test_replicas_spread_over_the_nodes(key, apps, core, services):
    svc = services[key]
    pods = ready_pods(core, apps, svc)
    want = apps.read_namespaced_deployment(svc["name"], svc["namespace"]).spec.replicas
    assert len(pods) == want
    per_node: dict[str, int] = {}
    for pod in pods:
        per_node[pod.spec.node_name] = per_node.get(pod.spec.node_name, 0) + 1
    schedulable = [n.metadata.name for n in core.list_node().items if not n.spec.unschedulable]
    counts = [per_node.get(n, 0) for n in schedulable]
    assert len(per_node) >= 2, per_node
    assert max(counts) - min(counts) <= 1, per_node


def evict(core, pod, dry_run: bool = False) -> int:
    """Ask for an eviction, as `kubectl drain` does; the HTTP status (201
    granted, 429 refused by a PodDisruptionBudget)."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=pod.metadata.name,
                                                         namespace=pod.metadata.namespace))
    try:
        core.create_namespaced_pod_eviction(pod.metadata.name, pod.metadata.namespace, body,
                                            dry_run="All" if dry_run else None)
        return 201
    except ApiException as err:
        if err.status == 404 and not dry_run:
            return 201  # already gone
        if err.status != 429:
            raise
        return 429


def service_pods(core, apps, services) -> list:
    return [p for svc in services.values()
            for p in deployment_pods(core, apps.read_namespaced_deployment(svc["name"], svc["namespace"]))]


def settled(core, apps, services, node: str) -> bool:
    """Every Deployment has all its replicas ready, none on the drained node,
    and no pod left terminating."""
    for svc in services.values():
        dep = apps.read_namespaced_deployment(svc["name"], svc["namespace"])
        pods = deployment_pods(core, dep)
        ready = ready_pods(core, apps, svc)
        if len(ready) != dep.spec.replicas or len(pods) != len(ready):
            return False
        if any(p.spec.node_name == node for p in pods):
            return False
    return True


@pytest.mark.disruptive
def test_node_drain_under_load_fails_no_request(apps, core, services, facts, stand_in):
    """Drain a node that runs service replicas while GET /invoices runs at 20
    requests per second: cordon it, then evict each of its pods as `kubectl
    drain` does. Each service's PodDisruptionBudget (maxUnavailable 1) must
    hold a further eviction back while a replacement is not Ready: the test
    asks for one (a dry run, on a replica on another node) right after each
    eviction and requires 429 until the Deployment is whole again."""
    nodes = core.list_node().items
    address = {n.metadata.name: next(a.address for a in n.status.addresses if a.type == "InternalIP") for n in nodes}
    namespaces = sorted({svc["namespace"] for svc in services.values()})
    databases = {p.spec.node_name for ns in namespaces for p in core.list_namespaced_pod(
        ns, label_selector="app.kubernetes.io/component=database").items}
    replicas = service_pods(core, apps, services)
    # The node must run replicas, no database (a single-instance database
    # cannot move without an outage, by design) and must not be the address
    # the load goes to.
    candidates = sorted({p.spec.node_name for p in replicas} - databases
                        - {n for n, a in address.items() if a == stand_in["existing_cluster_address"]})
    assert candidates, f"no node runs replicas without a database: databases on {databases}"
    node = candidates[0]
    on_node = [p for p in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
               if not any(o.kind == "DaemonSet" for o in p.metadata.owner_references or [])
               and p.metadata.namespace in namespaces]
    assert on_node, node
    events: list[dict] = []
    started = time.monotonic()
    try:
        with Load(facts["platform_invoice_app_url"], "/invoices", rate=RATE) as load:
            time.sleep(5)
            core.patch_node(node, {"spec": {"unschedulable": True}})
            pending = list(on_node)
            deadline = time.monotonic() + 300
            while pending:
                assert time.monotonic() < deadline, f"evictions still refused after 300 s: {events[-5:]}"
                for pod in list(pending):
                    status = evict(core, pod)
                    events.append({"t": round(time.monotonic() - started, 1), "pod": pod.metadata.name,
                                   "eviction": status})
                    if status != 201:
                        continue
                    pending.remove(pod)
                    # The budget now forbids a second disruption of this
                    # Deployment until the replacement is Ready.
                    sibling = next((p for p in replicas if p.metadata.namespace == pod.metadata.namespace
                                    and p.spec.node_name != node and p.metadata.labels.get("app.kubernetes.io/name")
                                    == pod.metadata.labels.get("app.kubernetes.io/name")), None)
                    if sibling is None:
                        continue
                    while True:
                        assert time.monotonic() < deadline, "the budget never allowed an eviction again"
                        answer = evict(core, sibling, dry_run=True)
                        svc = next(s for s in services.values()
                                   if s["name"] == pod.metadata.labels["app.kubernetes.io/name"])
                        want = apps.read_namespaced_deployment(svc["name"], svc["namespace"]).spec.replicas
                        events.append({"t": round(time.monotonic() - started, 1), "pod": sibling.metadata.name,
                                       "dry_run_eviction": answer, "ready": len(ready_pods(core, apps, svc)),
                                       "want": want, "after": pod.metadata.name})
                        if answer == 201:
                            break
                        time.sleep(0.5)
                time.sleep(1)
            while not settled(core, apps, services, node):
                assert time.monotonic() < deadline, "the Deployments did not settle after the drain"
                time.sleep(1)
            drained = time.monotonic() - started
            # At least 60 s of load in all.
            time.sleep(max(5.0, 60 - (time.monotonic() - started)))
    finally:
        core.patch_node(node, {"spec": {"unschedulable": False}})
    held = [e for e in events if e.get("dry_run_eviction") == 429]
    allowed = [e for e in events if e.get("dry_run_eviction") == 201]
    summary = dict(load.summary(), rate=RATE, node=node, drained_seconds=round(drained, 1),
                   evicted=sorted(p.metadata.name for p in on_node), held_back=len(held),
                   refused_evictions=sum(1 for e in events if e.get("eviction") == 429), events=events)
    DRAIN_REPORT.parent.mkdir(parents=True, exist_ok=True)
    DRAIN_REPORT.write_text(json.dumps(summary, indent=2))
    assert load.sent >= RATE * 55, summary
    assert not load.failures, summary
    assert load.succeeded == load.sent, summary
    # The budgets held: each service pod evicted made the next eviction wait
    # (429) until its replacement was Ready, and then allowed it.
    assert len(held) >= len(on_node), summary
    assert allowed and all(e["ready"] >= e["want"] for e in allowed), summary
