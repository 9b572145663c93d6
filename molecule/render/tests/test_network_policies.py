"""NetworkPolicies: their shape, and what they let through, evaluated over
the rendered policies for the services' pods and a few strangers."""

from __future__ import annotations

import pytest

from manifests import EXTERNAL, Pod, allowed, deployment_pod, egress_allowed, ingress_allowed

NAMESPACES = ("invoices", "payments")
KUBE_DNS = Pod("kube-system", {"k8s-app": "kube-dns"}, "coredns")


def strangers(namespace: str) -> Pod:
    """A pod without the services' labels, e.g. a debug pod someone started."""
    return Pod(namespace, {"app": "debug"}, f"debug-{namespace}")


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_namespace_denies_everything_by_default(default, namespace):
    deny = [
        p
        for p in default.kind("NetworkPolicy")
        if p["metadata"]["namespace"] == namespace
        and p["spec"]["podSelector"] == {}
        and sorted(p["spec"]["policyTypes"]) == ["Egress", "Ingress"]
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert len(deny) == 1, f"{namespace} has no default-deny policy for Ingress and Egress"


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_dns_is_the_only_namespace_wide_egress_and_skips_the_database(default, namespace):
    wide = [
        p
        for p in default.kind("NetworkPolicy")
        if p["metadata"]["namespace"] == namespace
        and not p["spec"]["podSelector"].get("matchLabels")
        and p["spec"].get("egress")
    ]
    [dns] = wide
    # Every pod but the database's: the database has no egress at all.
    assert dns["spec"]["podSelector"] == {"matchExpressions": [
        {"key": "app.kubernetes.io/component", "operator": "NotIn", "values": ["database"]}]}
    [rule] = dns["spec"]["egress"]
    assert sorted((p["protocol"], p["port"]) for p in rule["ports"]) == [("TCP", 53), ("UDP", 53)]
    [peer] = rule["to"]
    assert peer == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }


def test_payment_provider_admits_only_invoice_app(default):
    policies = [
        p
        for p in default.kind("NetworkPolicy")
        if p["metadata"]["namespace"] == "payments" and p["spec"].get("ingress")
        and p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "payment-provider"
    ]
    [policy] = policies
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8082}]
    # One peer holding both selectors: pods labelled invoice-app AND in the
    # invoices namespace (two peers would mean OR).
    [peer] = rule["from"]
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "invoices"}}
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "invoice-app"


def test_invoice_app_egress_only_to_payment_provider_and_its_database(default):
    policies = [
        p
        for p in default.kind("NetworkPolicy")
        if p["metadata"]["namespace"] == "invoices" and p["spec"]["podSelector"].get("matchLabels")
        and p["spec"].get("egress")
    ]
    [policy] = policies
    rule, database = policy["spec"]["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8082}]
    [peer] = rule["to"]
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "payments"}}
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "payment-provider"
    # Its own database: no namespaceSelector, so only in its own namespace.
    assert database["ports"] == [{"protocol": "TCP", "port": 5432}]
    assert database["to"] == [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "invoice-app-db", "app.kubernetes.io/instance": "invoice-app-db"}}}]


@pytest.mark.parametrize(("namespace", "app"), [("invoices", "invoice-app"), ("payments", "payment-provider")])
def test_database_admits_only_its_own_app(default, namespace, app):
    [policy] = [p for p in default.kind("NetworkPolicy") if p["metadata"]["name"] == f"{app}-db-ingress"]
    assert policy["metadata"]["namespace"] == namespace
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 5432}]
    assert rule["from"] == [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": app, "app.kubernetes.io/instance": app}}}]


def test_invoice_app_admits_anyone_on_its_port_only(default):
    invoice = deployment_pod(default, "invoice-app")
    assert allowed(default, EXTERNAL, invoice, 8081)
    assert not allowed(default, EXTERNAL, invoice, 8082)
    assert not allowed(default, EXTERNAL, invoice, 22)


CONNECTIONS = [
    # (source, destination, port, allowed?)
    ("invoice-app", "payment-provider", 8082, True),
    ("invoice-app", "payment-provider", 8081, False),
    ("payment-provider", "invoice-app", 8081, False),
    ("payment-provider", "payment-provider", 8082, False),
    ("invoice-app", "invoice-app", 8081, False),
    ("stranger:invoices", "payment-provider", 8082, False),
    ("stranger:payments", "payment-provider", 8082, False),
    ("stranger:default", "payment-provider", 8082, False),
    ("external", "payment-provider", 8082, False),
    ("stranger:default", "invoice-app", 8081, True),
    ("invoice-app", "stranger:default", 80, False),
    ("payment-provider", "stranger:default", 443, False),
    ("invoice-app", "kube-dns", 53, True),
    ("payment-provider", "kube-dns", 53, True),
    ("invoice-app", "external", 443, False),
    ("payment-provider", "external", 443, False),
    # Each team's database: its own app only, and no egress at all.
    ("invoice-app", "invoice-app-db", 5432, True),
    ("payment-provider", "payment-provider-db", 5432, True),
    ("invoice-app", "invoice-app-db", 22, False),
    ("invoice-app", "payment-provider-db", 5432, False),
    ("payment-provider", "invoice-app-db", 5432, False),
    ("stranger:invoices", "invoice-app-db", 5432, False),
    ("stranger:payments", "payment-provider-db", 5432, False),
    ("stranger:default", "invoice-app-db", 5432, False),
    ("stranger:default", "payment-provider-db", 5432, False),
    ("external", "invoice-app-db", 5432, False),
    ("invoice-app-db", "kube-dns", 53, False),
    ("payment-provider-db", "kube-dns", 53, False),
    ("invoice-app-db", "invoice-app", 8081, False),
    ("payment-provider-db", "payment-provider", 8082, False),
    ("invoice-app-db", "payment-provider-db", 5432, False),
    ("invoice-app-db", "external", 443, False),
]


def _pod(render, name):
    if name == "external":
        return EXTERNAL
    if name == "kube-dns":
        return KUBE_DNS
    if name.startswith("stranger:"):
        return strangers(name.split(":", 1)[1])
    if name.endswith("-db"):
        return deployment_pod(render, name, "StatefulSet")
    return deployment_pod(render, name)


@pytest.mark.parametrize(("source", "destination", "port", "expected"), CONNECTIONS)
def test_connection_matrix(default, source, destination, port, expected):
    verdict = allowed(default, _pod(default, source), _pod(default, destination), port)
    assert verdict is expected, f"{source} -> {destination}:{port} should be {'allowed' if expected else 'denied'}"


@pytest.mark.parametrize("source", ["stranger:invoices", "stranger:payments", "stranger:default", "external"])
def test_payment_provider_rejects_others_on_its_own(default, source):
    """payment-provider's ingress alone rejects them, whatever the egress side allows."""
    payment = deployment_pod(default, "payment-provider")
    assert ingress_allowed(default, deployment_pod(default, "invoice-app"), payment, 8082)
    assert not ingress_allowed(default, _pod(default, source), payment, 8082)
    impostor = Pod("payments", dict(deployment_pod(default, "invoice-app").labels), "impostor")
    assert not ingress_allowed(default, impostor, payment, 8082)


@pytest.mark.parametrize("protocol", ["UDP", "TCP"])
def test_dns_over_both_protocols(default, protocol):
    for name in ("invoice-app", "payment-provider"):
        assert egress_allowed(default, deployment_pod(default, name), KUBE_DNS, 53, protocol)
    assert not egress_allowed(default, deployment_pod(default, "invoice-app"), KUBE_DNS, 54, protocol)


def test_matrix_holds_with_other_namespaces(custom):
    """The policies follow the namespaces, they do not name them literally."""
    invoice = deployment_pod(custom, "invoice-app")
    payment = deployment_pod(custom, "payment-provider")
    assert (invoice.namespace, payment.namespace) == ("billing", "psp")
    assert allowed(custom, invoice, payment, 8082)
    assert not allowed(custom, payment, invoice, 8081)
    assert not allowed(custom, strangers("billing"), payment, 8082)
    assert not allowed(custom, Pod("invoices", dict(invoice.labels)), payment, 8082)
