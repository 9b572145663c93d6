"""Facts the roles share are declared once (inventory/shared) and reach each
role as an input its playbook passes: change one and every name, label and
UID built from it follows, in the deployment and in its verification alike.

Each test evaluates a role's own vars and templates with the inputs its real
playbook gives it, on an inventory whose shared facts are overridden."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from ansible_run import PROJECT_ROOT, first_debug_msg

OVERRIDES = {
    "platform_cluster_domain": "corp.example",
    "platform_pod_security_version": "v1.33",
    "platform_run_as_uid": 4242,
}


def role_params(playbook: str, role: str, service: str | None = None) -> dict:
    """The play vars and role parameters the project's playbook gives a role."""
    play = yaml.safe_load((PROJECT_ROOT / playbook).read_text())[0]
    for entry in play["roles"]:
        if entry["role"] == role and entry.get("workloads_service", service) == service:
            params = {k: v for k, v in entry.items() if k != "role"}
            return {**play.get("vars", {}), **params}
    raise AssertionError(f"{playbook} runs no role {role} for {service}")


def evaluate(tmp_path, role: str, params: dict, expressions: dict[str, str]) -> dict:
    """Template expressions with the role's vars/main.yml and defaults, as the
    role would see them, on inventory/local with OVERRIDES as extra vars."""
    # Precedence as in a role: parameters over defaults, vars/main.yml over both.
    defaults = yaml.safe_load((PROJECT_ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    probe = [{
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(PROJECT_ROOT / "roles" / role / "vars" / "main.yml")],
        "vars": {**defaults, **params},
        "tasks": [{"ansible.builtin.debug": {"msg": "{{ {" + ", ".join(
            f"'{name}': ({expr})" for name, expr in expressions.items()) + "} | to_json }}"}}],
    }]
    path = tmp_path / "probe.yml"
    path.write_text(yaml.safe_dump(probe))
    return first_debug_msg(["ansible-playbook", "-i", "inventory/local", "-e", json.dumps(OVERRIDES), str(path)])


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return evaluate(tmp_path_factory.mktemp("shared"), "verify", {}, {
        "urls": "platform_service_urls",
        "labels": "platform_pod_security_labels",
    })


def test_the_shared_facts_follow_their_overrides(shared):
    assert shared["urls"]["payment_provider"] == "http://payment-provider.payments.svc.corp.example:8082"
    assert shared["labels"] == {f"pod-security.kubernetes.io/{mode}{suffix}": value
                                for mode in ("enforce", "audit", "warn")
                                for suffix, value in (("", "restricted"), ("-version", "v1.33"))}


def test_verification_probes_the_names_and_labels_the_deployment_uses(tmp_path, shared):
    got = evaluate(tmp_path, "verify", role_params("playbooks/verify.yml", "verify"), {
        "payment_provider_url": "__verify_payment_provider_url",
        "databases": "__verify_database_addresses",
        "namespace": "lookup('ansible.builtin.template', '" + str(PROJECT_ROOT / "roles/verify/templates/namespace.yaml.j2")
                     + "') | from_yaml",
        "probe": "lookup('ansible.builtin.template', '" + str(PROJECT_ROOT / "roles/verify/templates/probe-pod.yaml.j2")
                 + "', template_vars={'__verify_probe': {'pod': 'p', 'namespace': 'n', 'labels': {}, 'containers': "
                 "[{'name': 'c', 'args': []}]}}) | from_yaml",
    })
    assert got["payment_provider_url"] == shared["urls"]["payment_provider"]
    assert got["databases"] == {"invoices_db": "invoice-app-db.invoices.svc.corp.example:5432",
                                "payments_db": "payment-provider-db.payments.svc.corp.example:5432"}
    labels = got["namespace"]["metadata"]["labels"]
    assert {k: v for k, v in labels.items() if k.startswith("pod-security.")} == shared["labels"]
    spec = got["probe"]["spec"]
    assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"]) == (4242, 4242)
    assert {(c["securityContext"]["runAsUser"], c["securityContext"]["runAsGroup"]) for c in spec["containers"]} \
        == {(4242, 4242)}


@pytest.mark.parametrize("service", ["invoice_app", "payment_provider"])
def test_each_service_gets_the_same_shared_inputs(tmp_path, shared, service):
    params = role_params("playbooks/resources.yml", "workloads", service)
    got = evaluate(tmp_path, "workloads", params, {
        "db_url": "__workloads_db_url",
        "config": "__workloads_config",
        "labels": "workloads_pod_security_labels",
        "uid": "[workloads_run_as_user, workloads_run_as_group]",
    })
    assert ".svc.corp.example:5432/" in got["db_url"]
    if service == "invoice_app":
        assert got["config"]["PAYMENT_PROVIDER_URL"] == shared["urls"]["payment_provider"]
    assert got["labels"] == shared["labels"]
    assert got["uid"] == [4242, 4242]


ROLE_PARTS = ("defaults", "vars", "tasks", "handlers", "templates")
ROLES = sorted(p.name for p in (PROJECT_ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file())
# A YAML key being set (a parameter handed to an included role, a module
# argument) is not a read; only the names inside the values are.
KEY = re.compile(r"^\s*(?:-\s+)?[A-Za-z_][A-Za-z0-9_]*:")
COMMENT = re.compile(r"^\s*(?:#|\{#)")


def declared_inputs(role: str) -> set[str]:
    specs = yaml.safe_load((PROJECT_ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return {name for spec in specs["argument_specs"].values() for name in spec.get("options", {})}


def foreign_reads(role: str) -> list[str]:
    """Names a role's files read that belong to the platform (platform_*)
    or to another role (its prefix), and that its argument spec does not
    declare as an input."""
    foreign = re.compile(r"(?<![A-Za-z0-9_.])((?:platform|" + "|".join(r for r in ROLES if r != role) + r")_[a-z0-9_]+)")
    declared = declared_inputs(role)
    found = []
    for part in ROLE_PARTS:
        for path in sorted((PROJECT_ROOT / "roles" / role / part).rglob("*")):
            if not path.is_file():
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if COMMENT.match(line):
                    continue
                for name in foreign.findall(KEY.sub("", line)):
                    if name not in declared:
                        found.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {name}")
    return found


@pytest.mark.parametrize("role", ROLES)
def test_a_role_reads_only_its_declared_inputs_of_the_shared_facts(role):
    """A shared fact reaches a role only as an input its argument spec
    declares and its playbook passes; a role that read a global would follow
    an inventory no play of the role's own ever shows."""
    assert foreign_reads(role) == []


def test_the_guard_sees_a_global_read(tmp_path, monkeypatch):
    """The check above would find a role reading platform_name by itself."""
    role = tmp_path / "roles" / "probe_role"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text("argument_specs: {main: {options: {probe_role_name: {type: str}}}}\n")
    (role / "tasks").mkdir()
    (role / "tasks" / "main.yml").write_text(
        "- name: Set\n  ansible.builtin.set_fact:\n    probe_role_name: \"{{ platform_name }}\"\n"
        "    kube_objects_list: \"{{ probe_role_name }}\"\n")
    monkeypatch.setattr(__import__(__name__), "PROJECT_ROOT", tmp_path)
    assert foreign_reads("probe_role") == ["roles/probe_role/tasks/main.yml:3: platform_name"]
