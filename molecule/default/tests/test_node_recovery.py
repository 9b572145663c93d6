"""The cluster play brings a profile back whose node container was removed.

minikube v1.37.0's `status` exits 0 for such a profile (it prints `null`);
the minikube role decides from the JSON status instead, and deletes the
profile's leftovers before starting, because minikube cannot restart a
cluster whose /etc/kubernetes went with the container. This test removes
the node container under the running profile, reruns playbooks/cluster.yml
and expects a Ready node with a healthy control plane. The workloads come
back with the rest of site.yml. It runs after every other test (marked
disruptive, see conftest.py).
"""

from __future__ import annotations

import subprocess
import time

import pytest
from e2e import ansible_playbook

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
def test_cluster_play_recreates_a_removed_node_container(facts):
    if facts["platform_cluster"] != "minikube":
        pytest.skip("only minikube clusters have a node container of the project's")
    profile = facts["minikube_profile"]
    assert container_state(profile) == "running"

    subprocess.run(["docker", "rm", "--force", profile], check=True, capture_output=True)
    assert container_state(profile) == "absent"

    run = ansible_playbook("playbooks/cluster.yml")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    deleted = run.stdout.split("Delete a profile whose node container is gone", 1)
    assert len(deleted) == 2 and "changed: [localhost]" in deleted[1].split("TASK [", 1)[0], (
        "the leftovers of the profile were not deleted:\n" + run.stdout[-4000:])
    start = run.stdout.split("Start minikube profile", 1)
    assert len(start) == 2 and "changed: [localhost]" in start[1].split("TASK [", 1)[0], (
        "the start task did not run for a profile without its node container:\n" + run.stdout[-4000:])
    assert container_state(profile) == "running"

    from kubernetes import client, config

    api = config.new_client_from_config(config_file=facts["platform_kubeconfig"], context=facts["platform_kube_context"])
    try:
        core = client.CoreV1Api(api)

        def node_ready():
            nodes = core.list_node().items
            return nodes and all({c.type: c.status for c in n.status.conditions}.get("Ready") == "True" for n in nodes)

        wait_for("the node Ready", node_ready)

        def control_plane_running():
            names = " ".join(p.metadata.name for p in core.list_namespaced_pod("kube-system").items
                             if p.status.phase == "Running")
            return all(c in names for c in ("kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager"))

        wait_for("the control plane Running", control_plane_running)
    finally:
        api.close()
