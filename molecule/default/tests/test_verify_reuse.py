"""A rerun of the deployment (site.yml turns verify_reuse on) reuses the last
full verification only while it still describes the cluster: the same
objects at the same versions, the same inputs, a passing result, a recent
proof. Anything else, such as one write to a NetworkPolicy, runs every
check again. A reuse still reads the invoices through the external URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e import ansible_playbook

CHECKS = ["pod_security"]
PROBING_TASK = "TASK [verify : pod_security | Submit a privileged pod"


class Runner:
    """playbooks/verify.yml with one report path for every run, so that each
    run sees the report of the one before."""

    def __init__(self, tmp_path: Path):
        self.tmp_path = tmp_path
        self.report = tmp_path / "report.json"
        self.runs = 0

    def __call__(self, **variables):
        self.runs += 1
        variables.update(verify_report_path=str(self.report), verify_checks=CHECKS)
        varfile = self.tmp_path / f"run{self.runs}-vars.json"
        varfile.write_text(json.dumps(variables))
        run = ansible_playbook("playbooks/verify.yml", "-e", f"@{varfile}")
        (self.tmp_path / f"run{self.runs}.log").write_text(run.stdout + run.stderr)
        assert run.returncode == 0, run.stdout[-4000:]
        return run, json.loads(self.report.read_text())


@pytest.fixture()
def verify(tmp_path):
    return Runner(tmp_path)


def test_an_unchanged_cluster_reuses_the_proof_and_still_reads_the_invoices(verify):
    run, full = verify(verify_reuse=False)
    assert PROBING_TASK in run.stdout
    assert full["reused"] is False and full["result"] == "PASS"
    assert full["proved"] == full["started"]
    assert full["state"]["sha256"] and len(full["state"]["objects"]) > 50

    run, reused = verify(verify_reuse=True)
    assert "Reusing the last verification" in run.stdout
    assert PROBING_TASK not in run.stdout, "the probing check ran although nothing changed"
    assert reused["reused"] is True and reused["result"] == "PASS"
    assert reused["proved"] == full["proved"]
    assert reused["state"]["sha256"] == full["state"]["sha256"]
    checks = {c["name"]: c for c in reused["checks"]}
    assert list(checks) == ["pod_security", "invoices_paid"]
    assert checks["pod_security"]["proved"] == full["proved"]
    assert checks["pod_security"]["summary"] == full["checks"][0]["summary"]
    # The live read, with its evidence: every invoice paid.
    assert checks["invoices_paid"]["status"] == "PASS" and "proved" not in checks["invoices_paid"]
    assert all(inv["IsPaid"] is True for inv in checks["invoices_paid"]["details"]["invoices"])

    # A proof older than the limit is not reused.
    run, aged = verify(verify_reuse=True, verify_reuse_max_age=0)
    assert "Running every check: the last full verification is" in run.stdout
    assert PROBING_TASK in run.stdout
    assert aged["reused"] is False and aged["proved"] == aged["started"]


def test_one_write_to_a_network_policy_runs_every_check_and_is_named(verify, networking, services):
    namespace = services["payment_provider"]["namespace"]
    policy = networking.list_namespaced_network_policy(namespace).items[0].metadata.name
    verify(verify_reuse=False)
    patch = {"metadata": {"annotations": {"example.com/touched": "by-a-test"}}}
    networking.patch_namespaced_network_policy(policy, namespace, patch)
    try:
        run, report = verify(verify_reuse=True)
    finally:
        networking.patch_namespaced_network_policy(policy, namespace, {"metadata": {"annotations": {"example.com/touched": None}}})
    assert f"changed /apis/networking.k8s.io/v1/networkpolicies {namespace}/{policy}" in run.stdout
    assert PROBING_TASK in run.stdout
    assert report["reused"] is False and report["result"] == "PASS"
