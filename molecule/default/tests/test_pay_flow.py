"""Every invoice is paid exactly once, whichever replica is asked, and the
ledger agrees. Independent of the verify role's own judgement: these tests
read the replicas, the ledger API and the ledger's table themselves."""

from __future__ import annotations

import pytest
from platform_api import call, proxy, psql, ready_pods


def cents(value) -> int:
    return round(float(value) * 100)


@pytest.fixture(scope="module")
def invoice_pods(verify_run, core, apps, services):
    # After the verify role has created its invoices and paid them.
    pods = ready_pods(core, apps, services["invoice_app"])
    assert len(pods) == 3
    return [p.metadata.name for p in pods]


@pytest.fixture(scope="module")
def provider_pod(verify_run, core, apps, services):
    pods = ready_pods(core, apps, services["payment_provider"])
    assert pods
    return pods[0].metadata.name


def ledger_count(core, services) -> int:
    svc = services["payment_provider"]
    [[count]] = psql(core, svc["namespace"], f"{svc['name']}-db-0", svc["database"], "SELECT count(*) FROM payments")
    return int(count)


def test_every_replica_lists_the_same_invoices_all_paid(api, services, invoice_pods):
    svc = services["invoice_app"]
    answers = {}
    for pod in invoice_pods:
        status, body = proxy(api, "GET", svc, pod, "/invoices")
        assert status == 200, (pod, body)
        answers[pod] = body
    first = answers[invoice_pods[0]]
    assert {i["InvoiceId"] for i in first} >= {"I1", "I2", "I3"}
    assert all(body == first for body in answers.values()), "the replicas disagree"
    assert [i["InvoiceId"] for i in first if i["IsPaid"] is not True] == []


def test_an_invoice_paid_through_one_replica_is_paid_on_all(api, facts, services, invoice_pods):
    svc = services["invoice_app"]
    status, invoice = call(facts["platform_invoice_app_url"], "POST", "/invoices", {"value": 42.42, "currency": "SEK"})
    assert status == 201 and invoice["IsPaid"] is False, invoice
    status, body = proxy(api, "POST", svc, invoice_pods[0], "/invoices/pay")
    assert status == 200 and body["failed"] == [] and body["remaining"] == 0, body
    assert invoice["InvoiceId"] in [i["InvoiceId"] for i in body["paid"]], body
    for pod in invoice_pods[1:]:
        status, listed = proxy(api, "GET", svc, pod, "/invoices")
        [seen] = [i for i in listed if i["InvoiceId"] == invoice["InvoiceId"]]
        assert seen["IsPaid"] is True, (pod, seen)


def test_nothing_is_paid_without_its_booking(api, facts, services, provider_pod):
    """Each paid invoice's id is in the ledger with the invoice's amount."""
    status, invoices = call(facts["platform_invoice_app_url"], "GET", "/invoices")
    assert status == 200
    svc = services["payment_provider"]
    for inv in invoices:
        status, booking = proxy(api, "GET", svc, provider_pod, f"/payments/{inv['InvoiceId']}")
        if not inv["IsPaid"]:
            continue
        assert status == 200, (inv, booking)
        assert booking["id"] == inv["InvoiceId"]
        assert (cents(booking["value"]), booking["currency"]) == (cents(inv["Value"]), inv["Currency"]), (inv, booking)


def test_paying_again_through_every_replica_books_nothing(api, core, services, invoice_pods):
    before = ledger_count(core, services)
    for pod in invoice_pods:
        status, body = proxy(api, "POST", services["invoice_app"], pod, "/invoices/pay")
        assert status == 200 and body["paid"] == [] and body["failed"] == [], (pod, body)
    assert ledger_count(core, services) == before


def test_ledger_repeat_is_a_duplicate_and_a_changed_amount_a_conflict(api, core, services, provider_pod):
    svc = services["payment_provider"]
    status, booking = proxy(api, "GET", svc, provider_pod, "/payments/I1")
    assert status == 200, booking
    before = ledger_count(core, services)
    same = {"id": "I1", "value": booking["value"], "currency": booking["currency"]}
    status, body = proxy(api, "POST", svc, provider_pod, "/payments/pay", same)
    assert (status, body) == (200, {"id": "I1", "duplicate": True})
    status, body = proxy(api, "POST", svc, provider_pod, "/payments/pay", dict(same, value=float(booking["value"]) + 1))
    assert status == 409 and "error" in body, body
    assert ledger_count(core, services) == before

