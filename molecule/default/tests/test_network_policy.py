"""The probes are not vacuous: with both team namespaces' NetworkPolicies
removed the same probes, run through the role, connect (payment-provider
over HTTP; the API server, kubelet and etcd at the TCP level); with them
restored they are blocked again. So a blocked verdict means the policies
stopped the connection, not that nothing was listening."""

from __future__ import annotations

import time

import pytest
from e2e import run_verify
from kubernetes.client import ApiClient

PROBES = ["outside-namespace", "payments-unlabelled", "host-no-egress", "host-as-invoice-app"]
HOST_PROBES = ["host-no-egress", "host-as-invoice-app"]
# Every host-network destination the probes aim at on a minikube cluster.
HOST_TARGETS = ["apiserver_service", "apiserver_node", "kubelet", "etcd"]


def strip(policy) -> dict:
    """A saved NetworkPolicy, ready to be created again: only what its
    author set (no status, server-set metadata or empty fields)."""
    doc = ApiClient().sanitize_for_serialization(policy)
    meta = {k: doc["metadata"][k] for k in ("name", "namespace", "labels", "annotations") if doc["metadata"].get(k)}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta, "spec": doc["spec"]}


def probe_checks(report):
    check = next(c for c in report["checks"] if c["name"] == "network_policy")
    return check, {p["probe"]: p for p in check["details"]["probes"]}


def remove_policies(networking, ns: str) -> list:
    saved = networking.list_namespaced_network_policy(ns).items
    for policy in saved:
        networking.delete_namespaced_network_policy(policy.metadata.name, ns)
    deadline = time.monotonic() + 60
    while networking.list_namespaced_network_policy(ns).items:
        assert time.monotonic() < deadline, f"the NetworkPolicies of {ns} did not go away"
        time.sleep(1)
    return saved


def restore_policies(networking, ns: str, saved: list) -> None:
    present = {p.metadata.name for p in networking.list_namespaced_network_policy(ns).items}
    for policy in saved:
        if policy.metadata.name in present:
            continue
        # Server-side apply under the manager that applied it, so the
        # next converge sees its own object and changes nothing.
        managers = [m.manager for m in policy.metadata.managed_fields or [] if m.operation == "Apply"]
        if managers:
            networking.patch_namespaced_network_policy(
                policy.metadata.name, ns, strip(policy), field_manager=managers[0], force=True,
                _content_type="application/apply-patch+yaml")
        else:
            networking.create_namespaced_network_policy(ns, strip(policy))
    restored = {p.metadata.name: p.spec.to_dict() for p in networking.list_namespaced_network_policy(ns).items}
    assert sorted(restored) == sorted(p.metadata.name for p in saved)
    assert all(restored[p.metadata.name] == p.spec.to_dict() for p in saved)


@pytest.fixture
def without_team_policies(networking, services):
    """Remove every NetworkPolicy of both team namespaces (default deny, DNS
    egress, the allow-lists), and put the saved objects back whatever
    happens."""
    saved = {}
    try:
        for key in ("payment_provider", "invoice_app"):
            ns = services[key]["namespace"]
            names = sorted(p.metadata.name for p in networking.list_namespaced_network_policy(ns).items)
            assert "default-deny" in names and f"{services[key]['name']}-ingress" in names, names
            saved[ns] = remove_policies(networking, ns)
        yield saved
    finally:
        for ns, policies in saved.items():
            restore_policies(networking, ns, policies)


def host_checks(probe: dict, host_targets: dict) -> dict:
    """{target group: [checks]} of a host probe, by the address each check
    aimed at; every check belongs to a group."""
    groups = {g: [c for c in probe["checks"] if c["target"] in addresses] for g, addresses in host_targets.items()}
    groups = {g: checks for g, checks in groups.items() if checks}
    assert sum(len(checks) for checks in groups.values()) == len(probe["checks"]), probe
    return groups


def test_probes_connect_without_the_policies(tmp_path, without_team_policies):
    run, report = run_verify(tmp_path, "open", verify_checks=["network_policy"], verify_network_policy_probes=PROBES,
                             verify_network_policy_expect_enforced=False)
    check, probes = probe_checks(report)
    assert check["status"] == "PASS", check.get("evidence")
    assert run.returncode == 0
    for name in PROBES[:2]:
        http = [c for c in probes[name]["checks"] if c["container"].startswith("http")]
        assert http and all(c["seen"].startswith("answered HTTP 200") for c in http), probes[name]
    # Something listens at every host destination and a pod reaches it when
    # no policy stands in the way: the TCP connection opens.
    assert set(check["details"]["host_targets"]) == set(HOST_TARGETS)
    assert all(check["details"]["host_targets"][g] for g in HOST_TARGETS), check["details"]["host_targets"]
    for name in HOST_PROBES:
        groups = host_checks(probes[name], check["details"]["host_targets"])
        assert sorted(groups) == sorted(HOST_TARGETS), probes[name]
        assert all(c["seen"] == "connected" and c["exit_code"] == 0 for cs in groups.values() for c in cs), probes[name]


def test_probes_are_blocked_with_the_policies_restored(tmp_path, networking, services):
    # Runs after the test above has put the policies back (file order).
    for key in ("payment_provider", "invoice_app"):
        ns = services[key]["namespace"]
        assert {p.metadata.name for p in networking.list_namespaced_network_policy(ns).items} >= {"default-deny"}
    # The policy engine applies restored objects within seconds; allow it a
    # bounded moment, then the last attempt decides.
    for attempt in range(3):
        time.sleep(5 * (attempt + 1))
        run, report = run_verify(tmp_path, f"enforced-{attempt}", verify_checks=["network_policy"],
                                 verify_network_policy_probes=PROBES)
        check, probes = probe_checks(report)
        if check["status"] == "PASS":
            break
    assert check["status"] == "PASS", check.get("evidence")
    assert run.returncode == 0
    for name in PROBES[:2]:
        http = [c for c in probes[name]["checks"] if c["container"].startswith("http")]
        assert http and all(c["ok"] and c["exit_code"] == 1 for c in http), probes[name]
    # The same host destinations, now blocked: every attempt of every
    # connection failed at the TCP level (timeout or refusal).
    for name in HOST_PROBES:
        groups = host_checks(probes[name], check["details"]["host_targets"])
        assert sorted(groups) == sorted(HOST_TARGETS), probes[name]
        for cs in groups.values():
            assert all(c["ok"] and c["exit_code"] == 1 and c["attempts"] >= 3 for c in cs), probes[name]


def test_a_new_pod_is_restricted_from_its_first_packet(tmp_path):
    """No propagation window toward the host: probes whose blocked requests
    start at once, without waiting for the policy engine
    (`verify_probe_settle: 0`), are still blocked toward the API server,
    the kubelet and etcd (and toward payment-provider, whose own ingress
    policy stops them). Before the air-gapped CNI's pod guard, a pod's
    first second went through unjudged and the host connections opened."""
    run, report = run_verify(tmp_path, "first-packet", verify_checks=["network_policy"], verify_probe_settle=0)
    check = next(c for c in report["checks"] if c["name"] == "network_policy")
    assert check["status"] == "PASS", check.get("evidence")
    assert run.returncode == 0
    probes = {p["probe"]: p for p in check["details"]["probes"]}
    assert set(HOST_PROBES) <= set(probes)
    for probe in probes.values():
        if probe["expect"] != "blocked":
            continue
        # No wait before the first attempt: the probe really started at once.
        assert probe["settle"] == 0, probe
        aimed = [c for c in probe["checks"] if c["container"] != "dns"]
        assert aimed and all(c["ok"] and c["exit_code"] == 1 for c in aimed), probe
