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
def test_dns_is_the_only_namespace_wide_egress(default, namespace):
    wide = [
        p
        for p in default.kind("NetworkPolicy")
        if p["metadata"]["namespace"] == namespace and p["spec"]["podSelector"] == {} and p["spec"].get("egress")
    ]
    [dns] = wide
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
    ]
    [policy] = policies
    [rule] = policy["spec"]["ingress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8082}]
    # One peer holding both selectors: pods labelled invoice-app AND in the
    # invoices namespace (two peers would mean OR).
    [peer] = rule["from"]
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "invoices"}}
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "invoice-app"


def test_invoice_app_egress_only_to_payment_provider(default):
    policies = [
        p
        for p in default.kind("NetworkPolicy")
        if p["metadata"]["namespace"] == "invoices" and p["spec"]["podSelector"] != {} and p["spec"].get("egress")
    ]
    [policy] = policies
    [rule] = policy["spec"]["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8082}]
    [peer] = rule["to"]
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "payments"}}
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "payment-provider"


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
]


def _pod(render, name):
    if name == "external":
        return EXTERNAL
    if name == "kube-dns":
        return KUBE_DNS
    if name.startswith("stranger:"):
        return strangers(name.split(":", 1)[1])
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
