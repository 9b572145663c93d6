"""Check mode is honest, as kubernetes.core tests its own k8s module: on the
converged platform `site.yml --check` fails nothing and reports nothing to
change; after a real drift it reports the change and leaves it in place, and
only a real run takes it back."""

from __future__ import annotations

import re

from e2e import ansible_playbook

TAMPERED = "tampered-by-test"


def recap(run) -> dict[str, int]:
    """The counts of the PLAY RECAP line for localhost."""
    found = re.search(r"^localhost\s+:\s+(.*)$", run.stdout, re.MULTILINE)
    assert found, f"no PLAY RECAP (rc {run.returncode}):\n{run.stdout[-3000:]}\n{run.stderr[-2000:]}"
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", found.group(1))}


def changed_tasks(run) -> list[str]:
    """Names of the tasks that reported a change."""
    names, current = [], None
    for line in run.stdout.splitlines():
        task = re.match(r"^TASK \[(.*)\]", line)
        if task:
            current = task.group(1)
        elif line.startswith("changed:") and current not in names:
            names.append(current)
    return names


def test_site_in_check_mode_fails_nothing_and_would_change_nothing():
    run = ansible_playbook("site.yml", "--check")
    counts = recap(run)
    assert run.returncode == 0, run.stdout[-4000:]
    assert counts["failed"] == 0 and counts["unreachable"] == 0
    assert counts["changed"] == 0, f"check mode would change: {changed_tasks(run)}"


def test_check_mode_reports_a_drift_without_repairing_it(core, services):
    svc = services["invoice_app"]
    core.patch_namespaced_service(svc["name"], svc["namespace"],
                                  {"metadata": {"labels": {"app.kubernetes.io/component": TAMPERED}}})
    try:
        check = ansible_playbook("playbooks/resources.yml", "--check")
        assert check.returncode == 0, check.stdout[-4000:]
        assert recap(check)["changed"] >= 1, "check mode did not see the drifted label"
        live = core.read_namespaced_service(svc["name"], svc["namespace"])
        assert live.metadata.labels["app.kubernetes.io/component"] == TAMPERED, "check mode changed the Service"
    finally:
        repair = ansible_playbook("playbooks/resources.yml")
    assert repair.returncode == 0, repair.stdout[-4000:]
    assert recap(repair)["changed"] >= 1
    live = core.read_namespaced_service(svc["name"], svc["namespace"])
    assert live.metadata.labels["app.kubernetes.io/component"] == "server"
