"""Read rendered manifests, and answer questions about them.

Besides loading, this module holds a small NetworkPolicy evaluator: given the
rendered policies and a set of pods, it says whether a connection is allowed.
It implements the subset of the API the templates use (matchLabels, port
numbers) and raises on anything else, so a template change cannot make it
answer wrongly in silence.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[3]

# The standard labels every object must carry.
STANDARD_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)


@dataclass(frozen=True)
class Manifest:
    path: str  # relative to the render directory
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.doc["kind"]

    @property
    def name(self) -> str:
        return self.doc["metadata"]["name"]

    @property
    def namespace(self) -> str | None:
        return self.doc["metadata"].get("namespace")


class Render:
    """Every object of one render directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifests: list[Manifest] = []
        for path in sorted(root.rglob("*.yaml")):
            with path.open(encoding="utf-8") as handle:
                for doc in yaml.safe_load_all(handle):
                    if doc is not None:
                        self.manifests.append(Manifest(str(path.relative_to(root)), doc))

    @property
    def files(self) -> list[Path]:
        return sorted(self.root.rglob("*.yaml"))

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [m.doc for m in self.manifests if m.kind == kind]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        found = [
            m.doc
            for m in self.manifests
            if m.kind == kind and m.name == name and (namespace is None or m.namespace == namespace)
        ]
        assert found, f"no {kind} {namespace}/{name} in {self.root}"
        # A namespace-wide object may be rendered once per service; all copies must agree.
        assert all(doc == found[0] for doc in found), f"copies of {kind} {namespace}/{name} differ"
        return found[0]

    def find(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        try:
            return self.get(kind, name, namespace)
        except AssertionError:
            return None

    def by_path(self) -> dict[str, dict[str, Any]]:
        return {m.path: m.doc for m in self.manifests}

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        labels = {"kubernetes.io/metadata.name": namespace}
        for doc in self.kind("Namespace"):
            if doc["metadata"]["name"] == namespace:
                labels.update(doc["metadata"].get("labels", {}))
        return labels


def containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    spec = deployment["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def container_port(container: dict[str, Any], port: int | str) -> int:
    """Resolve a probe's or Service's port (number or name) to a number."""
    if isinstance(port, int):
        return port
    for declared in container.get("ports", []):
        if declared.get("name") == port:
            return declared["containerPort"]
    raise AssertionError(f"container {container['name']} declares no port named {port!r}")


_CPU = re.compile(r"^(\d+(?:\.\d+)?)(m?)$")
_MEMORY = re.compile(r"^(\d+)(Ki|Mi|Gi|k|M|G)?$")
_MEMORY_UNITS = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def cpu_cores(quantity: str | int | float) -> float:
    match = _CPU.match(str(quantity))
    assert match, f"unsupported CPU quantity {quantity!r}"
    value = float(match.group(1))
    return value / 1000 if match.group(2) else value


def memory_bytes(quantity: str | int) -> int:
    match = _MEMORY.match(str(quantity))
    assert match, f"unsupported memory quantity {quantity!r}"
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2)]


# --- NetworkPolicy evaluation --------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict[str, str] = field(hash=False)
    name: str = ""


# Traffic from or to an address outside the cluster (a client of a NodePort,
# or the internet).
EXTERNAL = None


_OPERATORS = {
    "In": lambda labels, key, values: key in labels and labels[key] in values,
    "NotIn": lambda labels, key, values: key not in labels or labels[key] not in values,
    "Exists": lambda labels, key, values: key in labels,
    "DoesNotExist": lambda labels, key, values: key not in labels,
}


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    unsupported = set(selector) - {"matchLabels", "matchExpressions"}
    if unsupported:
        raise NotImplementedError(f"selector keys {sorted(unsupported)} are not evaluated")
    if not all(labels.get(key) == value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        if expr["operator"] not in _OPERATORS:
            raise NotImplementedError(f"operator {expr['operator']} is not evaluated")
        if not _OPERATORS[expr["operator"]](labels, expr["key"], expr.get("values", [])):
            return False
    return True


def _peer_matches(peer: dict[str, Any], pod: Pod | None, policy_namespace: str, render: Render) -> bool:
    unsupported = set(peer) - {"namespaceSelector", "podSelector"}
    if unsupported:
        raise NotImplementedError(f"peer keys {sorted(unsupported)} are not evaluated")
    if pod is EXTERNAL:
        return False
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], render.namespace_labels(pod.namespace)):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return _selects(peer.get("podSelector", {}), pod.labels)


def _port_matches(ports: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if isinstance(entry.get("port"), str) or "endPort" in entry:
            raise NotImplementedError("named ports and port ranges are not evaluated")
        if entry.get("protocol", "TCP") == protocol and entry.get("port") in (None, port):
            return True
    return False


def _policies(render: Render, pod: Pod, policy_type: str) -> list[dict[str, Any]]:
    return [
        policy
        for policy in render.kind("NetworkPolicy")
        if policy["metadata"]["namespace"] == pod.namespace
        and policy_type in policy["spec"].get("policyTypes", ["Ingress"])
        and _selects(policy["spec"]["podSelector"], pod.labels)
    ]


def egress_allowed(render: Render, src: Pod | None, dst: Pod | None, port: int, protocol: str = "TCP") -> bool:
    if src is EXTERNAL:
        return True
    policies = _policies(render, src, "Egress")
    if not policies:
        return True
    for policy in policies:
        for rule in policy["spec"].get("egress", []):
            if not _port_matches(rule.get("ports"), port, protocol):
                continue
            if "to" not in rule or any(
                _peer_matches(peer, dst, policy["metadata"]["namespace"], render) for peer in rule["to"]
            ):
                return True
    return False


def ingress_allowed(render: Render, src: Pod | None, dst: Pod | None, port: int, protocol: str = "TCP") -> bool:
    if dst is EXTERNAL:
        return True
    policies = _policies(render, dst, "Ingress")
    if not policies:
        return True
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            if not _port_matches(rule.get("ports"), port, protocol):
                continue
            if "from" not in rule or any(
                _peer_matches(peer, src, policy["metadata"]["namespace"], render) for peer in rule["from"]
            ):
                return True
    return False


def allowed(render: Render, src: Pod | None, dst: Pod | None, port: int, protocol: str = "TCP") -> bool:
    """Both ends' policies must let the connection through."""
    return egress_allowed(render, src, dst, port, protocol) and ingress_allowed(render, src, dst, port, protocol)


def deployment_pod(render: Render, name: str, kind: str = "Deployment") -> Pod:
    """A pod of the Deployment (or StatefulSet) called name."""
    deployments = [d for d in render.kind(kind) if d["metadata"]["name"] == name]
    assert len(deployments) == 1, f"expected one {kind} {name}"
    deployment = deployments[0]
    return Pod(
        deployment["metadata"]["namespace"],
        dict(deployment["spec"]["template"]["metadata"]["labels"]),
        name,
    )


def deep_copy(value: Any) -> Any:
    return copy.deepcopy(value)
