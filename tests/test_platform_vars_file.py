"""Unit tests for the platform_vars_file vars plugin."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleError
from ansible.inventory.group import Group
from ansible.inventory.host import Host
from ansible.parsing.dataloader import DataLoader

PLUGIN = Path(__file__).resolve().parent.parent / "plugins" / "vars" / "platform_vars_file.py"


@pytest.fixture(name="plugin")
def fixture_plugin():
    spec = importlib.util.spec_from_file_location("platform_vars_file", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.VarsModule()


def get(plugin, entities, cache=False):
    return plugin.get_vars(DataLoader(), "/", entities, cache=cache)


def test_unset_gives_nothing(plugin, monkeypatch):
    monkeypatch.delenv("PLATFORM_VARS_FILE", raising=False)
    assert get(plugin, [Group("all")]) == {}


def test_file_variables_belong_to_group_all(plugin, monkeypatch, tmp_path):
    source = tmp_path / "vars.yml"
    source.write_text("minikube_preload: false\nminikube_addons:\n  storage-provisioner: false\n")
    monkeypatch.setenv("PLATFORM_VARS_FILE", str(source))
    assert get(plugin, [Group("all")]) == {"minikube_preload": False, "minikube_addons": {"storage-provisioner": False}}
    assert get(plugin, [Group("ungrouped")]) == {}
    assert get(plugin, [Host("localhost")]) == {}


def test_missing_file_is_an_error(plugin, monkeypatch, tmp_path):
    monkeypatch.setenv("PLATFORM_VARS_FILE", str(tmp_path / "absent.yml"))
    with pytest.raises(AnsibleError, match="does not exist"):
        get(plugin, [Group("all")])


def test_non_mapping_is_an_error(plugin, monkeypatch, tmp_path):
    source = tmp_path / "list.yml"
    source.write_text("- a\n- b\n")
    monkeypatch.setenv("PLATFORM_VARS_FILE", str(source))
    with pytest.raises(AnsibleError, match="mapping"):
        get(plugin, [Group("all")])


def test_empty_file_gives_nothing(plugin, monkeypatch, tmp_path):
    source = tmp_path / "empty.yml"
    source.write_text("")
    monkeypatch.setenv("PLATFORM_VARS_FILE", str(source))
    assert get(plugin, [Group("all")]) == {}
