"""The air-gapped bundle is reused only while it is whole: a rerun skips the
build steps when every file of its manifest is there at its size and its
images are in the Docker engine; a missing file sends the run down the
build, which puts back that file and changes nothing else. Only where the
scenario's inventory is air-gapped: elsewhere there is no bundle."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from e2e import ansible_playbook, inventory_vars
from test_check_mode import changed_tasks, recap

REUSED = "reuse | Decide whether the bundle is whole"
BUILT = "kubernetes | Build the Kubernetes binaries"


@pytest.fixture(scope="module")
def bundle() -> Path:
    found = inventory_vars(["platform_airgap", "airgap_bundle_generated"])
    if not found["platform_airgap"]:
        pytest.skip("no air-gapped bundle in this scenario's inventory")
    # The vars file of the current bundle names its directory.
    return Path(found["airgap_bundle_generated"]["airgap_bundle_dir"])


def ran(run, task: str) -> bool:
    return re.search(rf"^TASK \[airgap_bundle : {re.escape(task)}", run.stdout, re.MULTILINE) is not None


def test_a_whole_bundle_is_reused_without_its_build_steps(bundle):
    run = ansible_playbook("playbooks/airgap-bundle.yml")
    assert run.returncode == 0, run.stdout[-4000:]
    assert ran(run, REUSED)
    assert not ran(run, BUILT), "the build steps ran on a whole bundle"
    assert recap(run)["changed"] == 0, changed_tasks(run)


def test_a_missing_file_sends_the_run_down_the_build_which_puts_it_back(bundle):
    manifest = bundle / "cni" / "kube-router.yaml"
    before = manifest.read_text()
    manifest.unlink()
    run = ansible_playbook("playbooks/airgap-bundle.yml")
    assert run.returncode == 0, run.stdout[-4000:]
    assert "files or images are missing or changed" in run.stdout
    assert ran(run, BUILT), "a bundle missing a file was reused"
    assert manifest.read_text() == before
    # A build ends with the prune, which may now remove another key's image
    # that a cluster's node container still used when that key's bundle was
    # built: not this bundle's content, so not counted here.
    built = [task for task in changed_tasks(run) if not task.startswith("airgap_bundle : prune |")]
    assert built == ["airgap_bundle : cni | Write the kube-router manifest for minikube's --cni"]
