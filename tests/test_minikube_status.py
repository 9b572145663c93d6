"""The minikube role's start decision (plugins/filter/minikube_status.py):
a profile counts as running only when minikube's JSON status says every
node runs its host and kubelet and every control plane its API server."""

from __future__ import annotations

import importlib.util
import json

import pytest
from ansible_run import PROJECT_ROOT

PATH = PROJECT_ROOT / "plugins" / "filter" / "minikube_status.py"
spec = importlib.util.spec_from_file_location("minikube_status_under_test", PATH)
status = importlib.util.module_from_spec(spec)
spec.loader.exec_module(status)


def node(name="invoice-platform", worker=False, **states):
    doc = {"Name": name, "Host": "Running", "Kubelet": "Running", "APIServer": "Running",
           "Kubeconfig": "Configured", "Worker": worker}
    doc.update(states)
    return doc


NOT_FOUND = "\n".join(json.dumps({"specversion": "1.0", "type": "io.k8s.sigs.minikube.info",
                                  "data": {"message": message}})
                      for message in ['Profile "invoice-platform" not found.', "To start a cluster, run: ..."])

CASES = {
    "one node running": (json.dumps(node()), True),
    "host stopped": (json.dumps(node(Host="Stopped", Kubelet="Stopped", APIServer="Stopped")), False),
    "node container gone": (json.dumps(node(Host="Nonexistent", Kubelet="Nonexistent", APIServer="Nonexistent")), False),
    "apiserver down": (json.dumps(node(APIServer="Stopped")), False),
    "kubelet down": (json.dumps(node(Kubelet="Stopped")), False),
    "profile not found (CloudEvents only)": (NOT_FOUND, False),
    "nothing printed": ("", False),
    "node container removed: v1.37.0 prints null and exits 0": ("null", False),
    "two nodes running, the worker has no API server": (
        json.dumps([node(), node("invoice-platform-m02", worker=True, APIServer="Irrelevant")]), True),
    "two nodes, the worker stopped": (
        json.dumps([node(), node("invoice-platform-m02", worker=True, Host="Stopped", Kubelet="Stopped")]), False),
    "a warning line before the status": ("W1202 something\n" + json.dumps(node()), True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_running_only_when_every_node_runs(case):
    stdout, running = CASES[case]
    assert status.minikube_status_running(stdout) is running


def test_nodes_are_read_from_every_document():
    stdout = NOT_FOUND + "\n" + json.dumps([node(), node("m02", worker=True)])
    assert [n["Name"] for n in status.minikube_status_nodes(stdout)] == ["invoice-platform", "m02"]
