"""The live cluster's state, read with the kubernetes client."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from platform_api import deployment_pods


def test_node_is_ready(core):
    nodes = core.list_node().items
    assert nodes
    for node in nodes:
        ready = {c.type: c.status for c in node.status.conditions}
        assert ready.get("Ready") == "True", (node.metadata.name, ready)


def test_kube_system_pods_are_healthy(core):
    pods = core.list_namespaced_pod("kube-system").items
    assert pods
    bad = []
    for pod in pods:
        if pod.status.phase == "Succeeded":
            continue
        statuses = pod.status.container_statuses or []
        if pod.status.phase != "Running" or not statuses or not all(s.ready for s in statuses):
            bad.append(f"{pod.metadata.name}: {pod.status.phase} {[(s.name, s.ready, s.restart_count) for s in statuses]}")
    assert not bad, bad
    names = " ".join(p.metadata.name for p in pods)
    for component in ("kube-apiserver", "etcd", "kube-scheduler", "kube-controller-manager", "coredns"):
        assert component in names, f"no {component} pod in kube-system: {names}"


@pytest.fixture(params=["invoice_app", "payment_provider"])
def deployment(request, apps, core, services):
    svc = services[request.param]
    dep = apps.read_namespaced_deployment(svc["name"], svc["namespace"])
    pods = [p for p in deployment_pods(core, dep) if not p.metadata.deletion_timestamp]
    return svc, dep, pods


def test_deployment_has_three_ready_replicas(deployment):
    svc, dep, pods = deployment
    status = dep.status
    assert (dep.spec.replicas, status.ready_replicas, status.available_replicas, status.updated_replicas) == (3, 3, 3, 3), status
    assert len(pods) == 3
    assert all(p.status.phase == "Running" for p in pods)
    assert all(all(s.ready for s in p.status.container_statuses) for p in pods)


def test_pods_are_specified_non_root(deployment):
    svc, dep, pods = deployment
    for pod in pods:
        psc = pod.spec.security_context
        assert psc.run_as_non_root is True and psc.run_as_user and psc.run_as_user > 0, psc
        for c in pod.spec.containers:
            sc = c.security_context
            assert sc.allow_privilege_escalation is False and sc.read_only_root_filesystem is True
            assert sc.capabilities.drop == ["ALL"] and not sc.privileged
            uid = sc.run_as_user if sc.run_as_user is not None else psc.run_as_user
            assert uid > 0


def node_exec(profile: str, *cmd: str) -> str:
    return subprocess.run(["docker", "exec", profile, *cmd], capture_output=True, text=True, check=True, timeout=60).stdout


@pytest.fixture(scope="module")
def node_container(facts):
    """The minikube node container, whose runtime runs the pods."""
    if facts.get("platform_cluster", "minikube") != "minikube" or not shutil.which("docker"):
        pytest.skip("the runtime's view needs the local minikube node")
    return facts["minikube_profile"]


def test_containers_really_run_as_non_root(deployment, node_container):
    """The runtime's view: the OCI spec containerd started each container
    with, and the kernel's view of its main process."""
    _, _, pods = deployment
    for pod in pods:
        for status in pod.status.container_statuses:
            cid = status.container_id.split("://", 1)[1]
            info = json.loads(node_exec(node_container, "crictl", "inspect", cid))["info"]
            user = info["runtimeSpec"]["process"]["user"]
            assert user["uid"] > 0 and user["gid"] > 0, (pod.metadata.name, user)
            proc = node_exec(node_container, "cat", f"/proc/{info['pid']}/status")
            fields = dict(line.split(":", 1) for line in proc.splitlines() if ":" in line)
            uids = fields["Uid"].split()
            assert all(int(u) == user["uid"] for u in uids), (pod.metadata.name, uids)
            # capabilities: drop ALL leaves the process none.
            assert int(fields["CapEff"].strip(), 16) == 0, (pod.metadata.name, fields["CapEff"])


def test_images_declare_a_numeric_non_root_user(deployment, node_container):
    _, dep, _ = deployment
    image = dep.spec.template.spec.containers[0].image
    out = json.loads(node_exec(node_container, "crictl", "inspecti", image))
    user = out["info"]["imageSpec"]["config"]["User"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) > 0, user
