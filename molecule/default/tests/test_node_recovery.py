"""The cluster play brings a profile back whose node container was removed.

minikube v1.37.0's `status` can exit 0 for such a profile; the minikube
role decides from the JSON status instead. This test removes the node
container under the running profile, reruns playbooks/cluster.yml and
expects the node, the services and invoice-app's NodePort back. It runs
after every other test (marked disruptive, see conftest.py).
"""

from __future__ import annotations

import subprocess
import time
import urllib.request

import pytest
from e2e import ansible_playbook

HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def container_state(name: str) -> str:
    out = subprocess.run(["docker", "container", "inspect", "--format", "{{.State.Status}}", name],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() if out.returncode == 0 else "absent"


def wait_for(what: str, check, timeout: float = 420, interval: float = 5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - the cluster is coming back; keep the last error as evidence
            last = exc
        time.sleep(interval)
    pytest.fail(f"{what} not within {timeout} s; last: {last!r}")


@pytest.mark.disruptive
def test_cluster_play_recreates_a_removed_node_container(facts, services):
    if facts["platform_cluster"] != "minikube":
        pytest.skip("only minikube clusters have a node container of the project's")
    profile = facts["minikube_profile"]
    assert container_state(profile) == "running"

    subprocess.run(["docker", "rm", "--force", profile], check=True, capture_output=True)
    assert container_state(profile) == "absent"

    run = ansible_playbook("playbooks/cluster.yml")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    start = run.stdout.split("Start minikube profile", 1)
    assert len(start) == 2 and "changed: [localhost]" in start[1].split("TASK [", 1)[0], (
        "the start task did not run for a profile without its node container:\n" + run.stdout[-4000:])
    assert container_state(profile) == "running"

    from kubernetes import client, config

    api = config.new_client_from_config(config_file=facts["platform_kubeconfig"], context=facts["platform_kube_context"])
    try:
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)

        def node_ready():
            nodes = core.list_node().items
            return nodes and all({c.type: c.status for c in n.status.conditions}.get("Ready") == "True" for n in nodes)

        wait_for("the node Ready", node_ready)
        for svc in services.values():
            wait_for(f"{svc['name']} available",
                     lambda svc=svc: (apps.read_namespaced_deployment(svc["name"], svc["namespace"]).status.available_replicas or 0) >= 1)
    finally:
        api.close()

    def invoices_answer():
        with HTTP.open(f"{facts['platform_invoice_app_url']}/invoices", timeout=10) as resp:
            return resp.status == 200

    wait_for("invoice-app's NodePort", invoices_answer)
