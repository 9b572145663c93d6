"""Environments are inventories: each says only what differs from the
shared defaults (inventory/shared, linked as every environment's
group_vars/all), and its own group's variables win over them."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_run import PROJECT_ROOT, host_vars

ENVIRONMENTS = ["local", "airgap", "existing"]


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_every_environment_links_the_one_shared_group_vars(name):
    link = PROJECT_ROOT / "inventory" / name / "group_vars" / "all"
    assert link.is_symlink()
    assert link.resolve() == (PROJECT_ROOT / "inventory" / "shared").resolve()


def test_local_is_the_shared_defaults_and_the_default_inventory():
    config = (PROJECT_ROOT / "ansible.cfg").read_text()
    assert "inventory = inventory/local\n" in config
    got = host_vars("inventory/local", ["platform_cluster", "platform_airgap", "platform_image_registry", "group_names"])
    assert got == {"platform_cluster": "minikube", "platform_airgap": False, "platform_image_registry": "",
                   "group_names": ["local"]}


def test_existing_overrides_shared_defaults_and_keeps_the_rest():
    shared = host_vars("inventory/local", ["platform_services", "platform_kube_context", "platform_invoice_app_expose"])
    got = host_vars("inventory/existing", ["platform_cluster", "platform_services", "platform_kube_context",
                                           "platform_invoice_app_expose", "platform_image_registry", "platform_images"])
    # The environment's group wins over group `all` ...
    assert got["platform_cluster"] == "existing"
    assert got["platform_kube_context"] == "my-cluster" != shared["platform_kube_context"]
    assert got["platform_invoice_app_expose"] == "ingress" != shared["platform_invoice_app_expose"]
    # ... and what it does not say comes from the shared defaults, templated
    # with its own values (images named for its registry).
    assert got["platform_services"] == shared["platform_services"]
    assert got["platform_images"]["invoice_app"].startswith(got["platform_image_registry"] + "/invoice-app:")


def test_airgap_overrides_shared_pins_with_the_bundle_and_extra_vars_win_over_both(tmp_path):
    names = ["platform_airgap", "images_pull_builder", "images_builder_image", "minikube_sha256", "airgap_go_version"]
    bundle = tmp_path / "airgap" / "current"
    bundle.mkdir(parents=True)
    (bundle / "airgap-vars.yml").write_text("minikube_sha256: {amd64: " + "a" * 64 + "}\n")
    got = host_vars("inventory/airgap", names, "-e", f"platform_cache_dir={tmp_path}")
    shared = host_vars("inventory/local", ["minikube_sha256"])
    assert got["platform_airgap"] is True
    assert got["images_pull_builder"] is False
    assert got["images_builder_image"] == f"localhost/go-builder:{got['airgap_go_version']}"
    # The bundle's own pin replaces the official release's.
    assert got["minikube_sha256"] == {"amd64": "a" * 64} != shared["minikube_sha256"]
    # Extra vars still beat every inventory.
    again = host_vars("inventory/airgap", ["platform_airgap"], "-e", '{"platform_airgap": false}')
    assert again["platform_airgap"] is False


def test_no_environment_variable_or_vars_plugin_selects_an_environment():
    assert not (PROJECT_ROOT / "plugins" / "vars").exists()
    for path in [PROJECT_ROOT / "Makefile", PROJECT_ROOT / "ansible.cfg", *Path(PROJECT_ROOT / "molecule").glob("*/molecule.yml")]:
        text = path.read_text()
        assert "PLATFORM_VARS_FILE" not in text and "vars_plugins" not in text, path
