"""Parameters flow: the two non-default renders differ from the default one
exactly where their values say, and nowhere else."""

from __future__ import annotations

from typing import Any

from conftest import CUSTOM, INGRESS
from manifests import deep_copy


def _remap_namespace_names(value: Any, mapping: dict[str, str]) -> Any:
    """Rename namespaces wherever a selector names one."""
    if isinstance(value, dict):
        return {
            key: (
                mapping.get(item, item)
                if key == "kubernetes.io/metadata.name"
                else _remap_namespace_names(item, mapping)
            )
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_remap_namespace_names(item, mapping) for item in value]
    return value


def _assert_same(expected: dict[str, dict], actual: dict[str, dict]) -> None:
    assert sorted(actual) == sorted(expected), "the rendered files differ"
    for path, doc in expected.items():
        assert actual[path] == doc, f"{path} differs beyond the changed values"


def test_custom_values_change_exactly_their_fields(default, custom):
    mapping = CUSTOM["namespaces"]
    actual = custom.by_path()
    expected = {}
    for path, original in default.by_path().items():
        doc = _remap_namespace_names(deep_copy(original), mapping)
        metadata = doc["metadata"]
        if "namespace" in metadata:
            metadata["namespace"] = mapping[metadata["namespace"]]
        if doc["kind"] == "Namespace":
            metadata["name"] = mapping[metadata["name"]]
        if doc["kind"] == "Deployment":
            doc["spec"]["replicas"] = CUSTOM["replicas"]
        if doc["kind"] == "Service" and doc["spec"].get("type") == "NodePort":
            doc["spec"]["ports"][0]["nodePort"] = CUSTOM["node_port"]
        if doc["kind"] == "ConfigMap":
            if "PAYMENT_PROVIDER_URL" in doc["data"]:
                doc["data"]["PAYMENT_PROVIDER_URL"] = "http://payment-provider.psp.svc.cluster.local:8082"
            doc["data"]["DATABASE_URL"] = doc["data"]["DATABASE_URL"].replace(
                f".{original['metadata']['namespace']}.svc.", f".{metadata['namespace']}.svc.")
        if doc["kind"] == "Deployment" and "annotations" in doc["spec"]["template"]["metadata"]:
            # New ConfigMap data, new checksum: the pods roll.
            old = doc["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            new = actual[path]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
            assert new != old, "the checksum did not follow the ConfigMap"
            doc["spec"]["template"]["metadata"]["annotations"]["checksum/config"] = new
        expected[path] = doc
    _assert_same(expected, actual)


def test_ingress_replaces_the_node_port(default, ingress):
    actual = ingress.by_path()
    expected = {}
    for path, original in default.by_path().items():
        doc = deep_copy(original)
        if doc["kind"] == "Service" and doc["spec"].get("type") == "NodePort":
            doc["spec"]["type"] = "ClusterIP"
            for port in doc["spec"]["ports"]:
                del port["nodePort"]
        if doc["kind"] == "Deployment":
            # The autoscaler owns the replica count.
            del doc["spec"]["replicas"]
            doc["spec"]["template"]["spec"]["imagePullSecrets"] = [{"name": n} for n in INGRESS["pull_secrets"]]
        expected[path] = doc
    added = {
        "invoice-app/ingress.yaml",
        "invoice-app/horizontalpodautoscaler.yaml",
        "payment-provider/horizontalpodautoscaler.yaml",
    }
    assert added <= actual.keys()
    for path in added:
        expected[path] = actual[path]
    _assert_same(expected, actual)


def test_ingress_routes_to_invoice_app(ingress):
    [route] = ingress.kind("Ingress")
    assert route["metadata"]["namespace"] == "invoices"
    assert route["spec"]["ingressClassName"] == INGRESS["class"]
    [rule] = route["spec"]["rules"]
    assert rule["host"] == INGRESS["host"]
    [path] = rule["http"]["paths"]
    assert path["backend"]["service"]["name"] == "invoice-app"
    service = ingress.get("Service", "invoice-app", "invoices")
    assert path["backend"]["service"]["port"]["name"] in [p["name"] for p in service["spec"]["ports"]]
    # TLS for exactly the rule's host, from the Secret named.
    assert route["spec"]["tls"] == [{"hosts": [INGRESS["host"]], "secretName": INGRESS["tls_secret"]}]


def test_no_tls_and_no_pull_secrets_unless_asked(default):
    assert not default.kind("Ingress")
    for deployment in default.kind("Deployment"):
        assert "imagePullSecrets" not in deployment["spec"]["template"]["spec"]


def test_autoscalers_scale_their_deployment(ingress):
    for hpa in ingress.kind("HorizontalPodAutoscaler"):
        name = hpa["metadata"]["name"]
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        ingress.get("Deployment", name, hpa["metadata"]["namespace"])
        assert hpa["spec"]["minReplicas"] == 3
        assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
