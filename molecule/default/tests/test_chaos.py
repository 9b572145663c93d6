"""Exactly once under failure. A few hundred fresh invoices are paid, and once
the run has paid some of them, while it is still in flight, every invoice-app
pod, a payment-provider pod and both database pods are deleted; then paying
resumes until nothing is unpaid (claims of the dead replicas are taken over
after their lease).
Every invoice must end up paid and booked exactly once, with its amount;
nothing is marked paid without a booking; nothing written before the
database restarts is lost. Bounded in count (CHAOS_INVOICES) and time
(CHAOS_DEADLINE). Counts go to chaos-report.json in the platform's cache
directory. Runs after the non-disruptive tests (marked disruptive).
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from platform_api import call, proxy, psql, ready_pods

CHAOS_INVOICES = int(os.environ.get("CHAOS_INVOICES", "500"))
CHAOS_DEADLINE = float(os.environ.get("CHAOS_DEADLINE", "600"))
CURRENCIES = ("EUR", "GBP", "DKK", "SEK", "NOK")


def cents(value) -> int:
    return round(float(value) * 100)


def wait_for(what, check, timeout=300, interval=2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - pods are coming back; keep the last error as evidence
            last = exc
        time.sleep(interval)
    pytest.fail(f"{what} not within {timeout} s; last: {last!r}")


class Payer(threading.Thread):
    """Calls POST /invoices/pay through the external URL again and again
    until stopped, recording every answer; errors are expected while pods
    and databases die."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.stop, self.answers = url, threading.Event(), []

    def run(self):
        while not self.stop.is_set():
            try:
                status, body = call(self.url, "POST", "/invoices/pay", timeout=60)
                self.answers.append((status, len(body.get("paid", [])) if isinstance(body, dict) else 0))
            except OSError as exc:
                self.answers.append((type(exc).__name__, 0))
            time.sleep(0.2)


def delete_pod(core, namespace, name, grace):
    core.delete_namespaced_pod(name, namespace, grace_period_seconds=grace)
    return f"{namespace}/{name}"


@pytest.mark.disruptive
def test_every_invoice_paid_and_booked_exactly_once_through_pod_and_database_deaths(api, core, apps, facts, services):
    url = facts["platform_invoice_app_url"]
    inv_svc, pay_svc = services["invoice_app"], services["payment_provider"]
    started = time.monotonic()

    # Fresh invoices, created concurrently through the external URL.
    def create(i):
        doc = {"value": round(1 + (i * 7919 % 100000) / 100, 2), "currency": CURRENCIES[i % len(CURRENCIES)]}
        status, body = call(url, "POST", "/invoices", doc)
        assert status == 201, (status, body)
        return body

    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(create, range(CHAOS_INVOICES)))
    ids = [c["InvoiceId"] for c in created]
    assert len(set(ids)) == CHAOS_INVOICES
    want = {c["InvoiceId"]: (cents(c["Value"]), c["Currency"]) for c in created}

    def paid_count():
        try:
            status, invoices = call(url, "GET", "/invoices", timeout=10)
        except OSError:
            return None
        return sum(1 for i in invoices if i["InvoiceId"] in want and i["IsPaid"]) if status == 200 else None

    # Pay, and as soon as the run has paid anything, while it is still in
    # flight: delete one payment-provider pod and every invoice-app pod at
    # once (no grace; the replica serving the run dies with it, leaving its
    # claims behind), then both databases (a one-second grace: a StatefulSet
    # pod must be gone before its replacement starts).
    payer = Payer(url)
    payer.start()
    deadline = time.monotonic() + 60
    while not paid_count() and time.monotonic() < deadline:
        time.sleep(0.05)
    progress = {"paid when the pods died": paid_count()}
    killed = [delete_pod(core, pay_svc["namespace"], p.metadata.name, 0) for p in ready_pods(core, apps, pay_svc)[:1]]
    killed += [delete_pod(core, inv_svc["namespace"], p.metadata.name, 0) for p in ready_pods(core, apps, inv_svc)]
    progress["paid when the databases died"] = paid_count()
    killed += [delete_pod(core, svc["namespace"], f"{svc['name']}-db-0", 1) for svc in (inv_svc, pay_svc)]
    # The failures must hit a run in flight, or this test proves nothing.
    assert progress["paid when the pods died"] and progress["paid when the pods died"] < CHAOS_INVOICES, progress

    # Keep paying until nothing of ours is unpaid, or the deadline passes.
    def all_paid():
        status, invoices = call(url, "GET", "/invoices", timeout=15)
        if status != 200:
            return False
        unpaid = [i["InvoiceId"] for i in invoices if i["InvoiceId"] in want and not i["IsPaid"]]
        return not unpaid and len([i for i in invoices if i["InvoiceId"] in want]) == len(want)

    try:
        wait_for("every chaos invoice paid", all_paid, timeout=CHAOS_DEADLINE, interval=3)
    finally:
        payer.stop.set()
        payer.join(90)

    # Everything back and ready before reading the ledger.
    wait_for("payment-provider ready again", lambda: len(ready_pods(core, apps, pay_svc)) == 3)
    wait_for("invoice-app ready again", lambda: len(ready_pods(core, apps, inv_svc)) == 3)

    # No data lost across the database restarts: every invoice is there,
    # paid, with its amount, on every replica.
    for pod in [p.metadata.name for p in ready_pods(core, apps, inv_svc)]:
        status, invoices = proxy(api, "GET", inv_svc, pod, "/invoices", timeout=60)
        assert status == 200, invoices
        mine = {i["InvoiceId"]: i for i in invoices if i["InvoiceId"] in want}
        assert sorted(mine) == sorted(want), f"{pod} lost invoices: {sorted(set(want) - set(mine))[:10]}"
        wrong = [(k, i) for k, i in mine.items() if (cents(i["Value"]), i["Currency"]) != want[k] or i["IsPaid"] is not True]
        assert not wrong, f"{pod}: {wrong[:5]}"

    # The ledger, in its own table: one row per invoice, with its amount.
    db = f"{pay_svc['name']}-db-0"
    rows = psql(core, pay_svc["namespace"], db, pay_svc["database"],
                "SELECT id, count(*), min(value)::text, min(currency) FROM payments WHERE id = ANY('{%s}') GROUP BY id"
                % ",".join(ids))
    booked = {r[0]: (int(r[1]), cents(r[2]), r[3]) for r in rows}
    missing = sorted(set(want) - set(booked))
    twice = sorted(k for k, (n, _, _) in booked.items() if n != 1)
    wrong = sorted(k for k, (_, v, c) in booked.items() if (v, c) != want[k])
    assert not missing, f"paid but never booked: {missing[:10]}"
    assert not twice, f"booked more than once: {twice[:10]}"
    assert not wrong, f"booked with another amount: {[(k, booked[k], want[k]) for k in wrong[:5]]}"

    # And invoice-app's own table agrees: paid, no claim left behind.
    inv_db = f"{inv_svc['name']}-db-0"
    [[paid, claimed]] = psql(core, inv_svc["namespace"], inv_db, inv_svc["database"],
                             "SELECT count(*) FILTER (WHERE paid_at IS NOT NULL), count(*) FILTER (WHERE claimed_by IS NOT NULL)"
                             " FROM invoices WHERE id = ANY('{%s}')" % ",".join(ids))
    assert (int(paid), int(claimed)) == (CHAOS_INVOICES, 0)

    answers = {}
    for status, _ in payer.answers:
        answers[str(status)] = answers.get(str(status), 0) + 1
    report = {
        "invoices": CHAOS_INVOICES,
        "pods_killed": killed,
        "progress": progress,
        "pay_requests": answers,
        "bookings_per_invoice": sorted({n for n, _, _ in booked.values()}),
        "seconds": round(time.monotonic() - started, 1),
    }
    out = Path(os.environ.get("HOME", "/tmp")) / ".cache" / "invoice-platform" / "chaos-report.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print("chaos:", json.dumps(report))
