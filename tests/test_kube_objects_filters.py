"""The kube_objects filters: pairing a role's rendered templates with its
object table, and the plan of what to apply, delete, write and remove."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("kube_objects_filters", PROJECT_ROOT / "plugins/filter/kube_objects.py")
mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mod)

RENDERED = """
# kube_objects template: namespace.yaml.j2
apiVersion: v1
kind: Namespace
metadata:
  name: ns

# kube_objects template: secret.yaml.j2
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: ns
data:
  password: cHc=
"""


def test_each_template_becomes_one_entry_with_its_flags_and_file():
    table = [{"template": "namespace.yaml.j2"}, {"template": "secret.yaml.j2", "secret": True}]
    out = mod.kube_objects_from_templates(RENDERED, objects=table, directory="app")
    assert [(o["file"], o["definition"]["kind"], o.get("secret")) for o in out] == [
        ("app/namespace.yaml", "Namespace", None), ("app/secret.yaml", "Secret", True)]


def test_templates_other_than_the_table_says_fail():
    with pytest.raises(AnsibleFilterError, match="expected"):
        mod.kube_objects_from_templates(RENDERED, objects=[{"template": "namespace.yaml.j2"}], directory="app")


def test_a_template_that_renders_two_objects_fails():
    two = RENDERED.replace("# kube_objects template: secret.yaml.j2\n", "---\n")
    with pytest.raises(AnsibleFilterError, match="namespace.yaml.j2: a template must render exactly one"):
        mod.kube_objects_from_templates(two, objects=[{"template": "namespace.yaml.j2"}], directory="app")


def entry(kind: str, name: str, **flags) -> dict:
    return {"file": f"app/{name}.yaml", "definition": {"kind": kind, "metadata": {"name": name}}, **flags}


def test_the_plan_sorts_entries_by_their_flags():
    secret = entry("Secret", "db", secret=True, keep_data=True)
    secret["definition"]["data"] = {"password": "cHc="}
    plan = mod.kube_objects_plan([entry("Namespace", "ns"), secret, entry("Deployment", "app"),
                                  entry("ValidatingAdmissionPolicy", "p", server_side=False),
                                  entry("Ingress", "web", enabled=False)])
    assert [o["metadata"]["name"] for o in plan["objects"]] == ["ns", "app"]
    assert [o["metadata"]["name"] for o in plan["client_side"]] == ["p"]
    # The data travels apart from the Secret, so only the data is masked.
    assert plan["secrets"] == [{"kind": "Secret", "metadata": {"name": "db"}}]
    assert (plan["secret_data"], plan["secret_keep"]) == ([{"password": "cHc="}], [True])
    assert [o["metadata"]["name"] for o in plan["absent"]] == ["web"]
    # Secrets are never written as files.
    assert [f["file"] for f in plan["files"]] == ["app/ns.yaml", "app/app.yaml", "app/p.yaml"]
    assert plan["removed_files"] == ["app/web.yaml"]
