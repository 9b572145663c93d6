"""The probes are not vacuous: with payments' NetworkPolicies removed the
same probes, run through the role, connect; with them restored they are
blocked again."""

from __future__ import annotations

import time

import pytest
from e2e import run_verify
from kubernetes.client import ApiClient

PROBES = ["outside-namespace", "payments-unlabelled"]


def strip(policy) -> dict:
    """A saved NetworkPolicy, ready to be created again: only what its
    author set (no status, server-set metadata or empty fields)."""
    doc = ApiClient().sanitize_for_serialization(policy)
    meta = {k: doc["metadata"][k] for k in ("name", "namespace", "labels", "annotations") if doc["metadata"].get(k)}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta, "spec": doc["spec"]}


def probe_checks(report):
    check = next(c for c in report["checks"] if c["name"] == "network_policy")
    return check, {p["probe"]: p for p in check["details"]["probes"]}


@pytest.fixture
def without_payments_policies(networking, services):
    """Remove every NetworkPolicy of payment-provider's namespace (default
    deny, DNS egress, the ingress allow-list), and put the saved objects back
    whatever happens."""
    ns = services["payment_provider"]["namespace"]
    saved = networking.list_namespaced_network_policy(ns).items
    names = sorted(p.metadata.name for p in saved)
    assert "default-deny" in names and f"{services['payment_provider']['name']}-ingress" in names, names
    try:
        for policy in saved:
            networking.delete_namespaced_network_policy(policy.metadata.name, ns)
        deadline = time.monotonic() + 60
        while networking.list_namespaced_network_policy(ns).items:
            assert time.monotonic() < deadline, "the NetworkPolicies did not go away"
            time.sleep(1)
        yield names
    finally:
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
        assert sorted(restored) == names
        assert all(restored[p.metadata.name] == p.spec.to_dict() for p in saved)


def test_probes_connect_without_the_policies(tmp_path, without_payments_policies):
    run, report = run_verify(tmp_path, "open", verify_checks=["network_policy"], verify_network_policy_probes=PROBES,
                             verify_network_policy_expect_enforced=False)
    check, probes = probe_checks(report)
    assert check["status"] == "PASS", check.get("evidence")
    assert run.returncode == 0
    for name in PROBES:
        http = [c for c in probes[name]["checks"] if c["container"].startswith("http")]
        assert http and all(c["seen"].startswith("answered HTTP 200") for c in http), probes[name]


def test_probes_are_blocked_with_the_policies_restored(tmp_path, networking, services):
    # Runs after the test above has put the policies back (file order).
    ns = services["payment_provider"]["namespace"]
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
    for name in PROBES:
        http = [c for c in probes[name]["checks"] if c["container"].startswith("http")]
        assert http and all(c["ok"] and c["exit_code"] == 1 for c in http), probes[name]
