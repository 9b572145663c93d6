"""Filters that read `minikube status --output=json`."""

from __future__ import annotations

import json


def minikube_status_nodes(stdout):
    """The node objects of minikube's JSON status.

    One JSON document per line: the status itself (an object, or a list of
    objects for a profile with several nodes), or CloudEvents messages such
    as "Profile not found". Only objects with a Host field are nodes.
    """
    nodes = []
    for line in (stdout or "").splitlines():
        line = line.strip()
        if not line.startswith(("{", "[")):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        for item in doc if isinstance(doc, list) else [doc]:
            if isinstance(item, dict) and "Host" in item:
                nodes.append(item)
    return nodes


def minikube_status_running(stdout):
    """True when every node runs its host and kubelet, and every control
    plane its API server. The exit code alone is not enough: v1.37.0 exits
    0 for a profile whose node container is gone."""
    nodes = minikube_status_nodes(stdout)
    return bool(nodes) and all(
        node.get("Host") == "Running"
        and node.get("Kubelet") == "Running"
        and (node.get("Worker") is True or node.get("APIServer") == "Running")
        for node in nodes
    )


class FilterModule:
    def filters(self):
        return {
            "minikube_status_nodes": minikube_status_nodes,
            "minikube_status_running": minikube_status_running,
        }
