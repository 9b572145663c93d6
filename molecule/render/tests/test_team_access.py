"""Team RBAC: each team works in its own namespace, with least privilege."""

from __future__ import annotations

import pytest

TEAMS = {"team-invoices": "invoices", "team-payments": "payments"}
FORBIDDEN_RESOURCES = {
    "secrets",
    "pods/exec",
    "pods/attach",
    "roles",
    "rolebindings",
    "clusterroles",
    "clusterrolebindings",
}
FORBIDDEN_VERBS = {"escalate", "bind", "impersonate", "*"}


def _allows(role, api_group, resource, verb):
    return any(
        api_group in rule.get("apiGroups", [])
        and resource in rule.get("resources", [])
        and verb in rule.get("verbs", [])
        for rule in role["rules"]
    )


def test_nothing_cluster_wide(renders):
    for render in renders.values():
        kinds = {m.kind for m in render.manifests}
        assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, render.root


@pytest.mark.parametrize(("team", "namespace"), TEAMS.items())
def test_team_is_bound_in_its_namespace_only(default, team, namespace):
    bindings = [b for b in default.kind("RoleBinding") if any(s["name"] == team for s in b["subjects"])]
    [binding] = bindings
    assert binding["metadata"]["namespace"] == namespace
    assert binding["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": team}]
    assert binding["roleRef"]["kind"] == "Role"
    role = default.get("Role", binding["roleRef"]["name"], namespace)
    assert role["metadata"]["namespace"] == namespace


@pytest.mark.parametrize(("team", "namespace"), TEAMS.items())
def test_team_can_run_its_service(default, team, namespace):
    role = default.get("Role", team, namespace)
    for verb in ("get", "list", "watch", "update", "patch"):
        assert _allows(role, "apps", "deployments", verb), f"deployments {verb}"
    for verb in ("get", "list", "watch", "delete"):
        assert _allows(role, "", "pods", verb), f"pods {verb}"
    assert _allows(role, "", "pods/log", "get")
    assert _allows(role, "", "pods/portforward", "create")
    for resource in ("services", "configmaps"):
        for verb in ("get", "list", "watch"):
            assert _allows(role, "", resource, verb), f"{resource} {verb}"


@pytest.mark.parametrize(("team", "namespace"), TEAMS.items())
def test_team_gets_nothing_more(default, team, namespace):
    role = default.get("Role", team, namespace)
    for rule in role["rules"]:
        assert "*" not in rule.get("apiGroups", []) and "*" not in rule.get("resources", []), rule
        assert not set(rule.get("resources", [])) & FORBIDDEN_RESOURCES, rule
        assert not set(rule["verbs"]) & FORBIDDEN_VERBS, rule
        assert "rbac.authorization.k8s.io" not in rule.get("apiGroups", []), rule
        assert not rule.get("resourceNames"), rule
        assert "nonResourceURLs" not in rule, rule
    # Configuration comes from Ansible; a hand edit would be overwritten and
    # would bypass the checksum that rolls the pods.
    for verb in ("create", "update", "patch", "delete"):
        assert not _allows(role, "", "configmaps", verb), f"configmaps {verb}"
        assert not _allows(role, "", "services", verb), f"services {verb}"
    assert not _allows(role, "apps", "deployments", "create")
    assert not _allows(role, "apps", "deployments", "delete")


@pytest.mark.parametrize(("team", "namespace"), TEAMS.items())
def test_team_deployment_updates_keep_the_pod_spec(default, team, namespace):
    """The Role may patch the Deployment; the admission policy keeps the pod
    spec the platform's, so no team can mount its database Secret."""
    [policy] = [p for p in default.kind("ValidatingAdmissionPolicy") if f"'{team}' in request.userInfo.groups"
                in p["spec"]["matchConditions"][0]["expression"]]
    assert policy["spec"]["failurePolicy"] == "Fail"
    [rule] = policy["spec"]["matchConstraints"]["resourceRules"]
    assert (rule["apiGroups"], rule["resources"], rule["operations"]) == (["apps"], ["deployments"], ["UPDATE"])
    [validation] = policy["spec"]["validations"]
    assert "object.spec.template.spec == oldObject.spec.template.spec" in validation["expression"]
    assert validation["reason"] == "Forbidden"
    [binding] = [b for b in default.kind("ValidatingAdmissionPolicyBinding")
                 if b["spec"]["policyName"] == policy["metadata"]["name"]]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": namespace}}
