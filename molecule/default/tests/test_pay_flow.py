"""The invoices are really paid, on every replica, and payment-provider
really received the payments. Independent of the role's own judgement."""

from __future__ import annotations

import json
import urllib.request

import pytest

EXPECTED = {"I1": (12.15, "EUR"), "I2": (10.25, "GBP"), "I3": (66.13, "DKK")}
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ready_pods(core, svc, apps):
    dep = apps.read_namespaced_deployment(svc["name"], svc["namespace"])
    selector = ",".join(f"{k}={v}" for k, v in sorted(dep.spec.selector.match_labels.items()))
    pods = core.list_namespaced_pod(svc["namespace"], label_selector=selector).items
    return [p for p in pods if p.status.phase == "Running" and not p.metadata.deletion_timestamp
            and all(s.ready for s in p.status.container_statuses or [])]


def proxy(api, method, svc, pod, path):
    """Call one pod through the API server's pod proxy; return (status, JSON)."""
    url = f"/api/v1/namespaces/{svc['namespace']}/pods/{pod}:{svc['port']}/proxy{path}"
    method, full, headers, body, post = api.param_serialize(method=method, resource_path=url, auth_settings=["BearerToken"])
    resp = api.call_api(method, full, header_params=headers, body=body, post_params=post, _request_timeout=30)
    return resp.status, json.loads(resp.read())


def assert_all_paid(invoices, where):
    assert isinstance(invoices, list), (where, invoices)
    seen = {i["InvoiceId"]: (i["Value"], i["Currency"], i["IsPaid"]) for i in invoices}
    assert set(seen) == set(EXPECTED), (where, invoices)
    for iid, (value, currency) in EXPECTED.items():
        assert seen[iid] == (value, currency, True), (where, iid, seen[iid])


@pytest.fixture(scope="module")
def invoice_pods(verify_run, core, apps, services):
    # After the verify role has paid (or found everything paid).
    pods = ready_pods(core, services["invoice_app"], apps)
    assert len(pods) == 3
    return [p.metadata.name for p in pods]


def test_paying_through_each_replica_succeeds_and_leaves_all_paid(api, services, invoice_pods):
    svc = services["invoice_app"]
    for pod in invoice_pods:
        status, body = proxy(api, "POST", svc, pod, "/invoices/pay")
        assert status == 200 and body["failed"] == [], (pod, status, body)
        status, body = proxy(api, "GET", svc, pod, "/invoices")
        assert status == 200
        assert_all_paid(body, pod)


def test_external_url_shows_all_paid(facts, invoice_pods):
    for _ in range(6):
        with HTTP.open(facts["platform_invoice_app_url"] + "/invoices", timeout=15) as resp:
            assert resp.status == 200
            assert_all_paid(json.loads(resp.read()), "external URL")


def test_payment_provider_received_every_invoice_from_every_replica(core, apps, services, invoice_pods):
    """Each invoice-app replica pays each invoice once over its life, so each
    invoice shows up at least once per replica in payment-provider's logs."""
    svc = services["payment_provider"]
    counts = {iid: 0 for iid in EXPECTED}
    for pod in ready_pods(core, svc, apps):
        for raw in core.read_namespaced_pod_log(pod.metadata.name, svc["namespace"]).splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            if entry.get("msg") == "payment accepted" and entry.get("id") in EXPECTED:
                assert (entry["value"], entry["currency"]) == EXPECTED[entry["id"]], entry
                counts[entry["id"]] += 1
    assert all(n >= len(invoice_pods) for n in counts.values()), counts
