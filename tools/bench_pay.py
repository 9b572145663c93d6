#!/usr/bin/env python3
"""Pay 1,000 invoices through the deployed system, one at a time and with
bounded concurrency, side by side in one run, and print the ratio.

For each mode invoice-app's Deployment gets PAY_CONCURRENCY (1, then the
bounded value), rolls out, and the clock runs from the first
POST /invoices/pay until every invoice of the batch is paid (a run stops at
its time budget and answers `remaining`; the benchmark calls again). Each
mode pays a fresh batch created beforehand, outside the clock. Afterwards
the Deployment is put back as it was (PAY_CONCURRENCY removed), which rolls
it out once more.

Needs the deployed system (`make deploy`) and the project's venv.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
CURRENCIES = ("EUR", "GBP", "DKK", "SEK", "NOK")


def call(url: str, method: str, body=None, timeout: float = 120):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with HTTP.open(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def set_concurrency(apps, core, namespace: str, name: str, value: int | None, timeout: float = 300) -> None:
    """Set (or remove, for None) PAY_CONCURRENCY on the Deployment and wait
    until the rollout is complete and the old pods are gone (a request that
    lands on a pod on its way out would time the wrong thing)."""
    dep = apps.read_namespaced_deployment(name, namespace)
    container = dep.spec.template.spec.containers[0].name
    # A strategic merge patch: env entries merge by name, and $patch: delete
    # removes one, leaving the others (PGPASSWORD) alone.
    entry = {"name": "PAY_CONCURRENCY", "$patch": "delete"} if value is None else {
        "name": "PAY_CONCURRENCY", "value": str(value)}
    patch = {"spec": {"template": {"spec": {"containers": [{"name": container, "env": [entry]}]}}}}
    apps.patch_namespaced_deployment(name, namespace, patch, field_manager="bench-pay")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dep = apps.read_namespaced_deployment(name, namespace)
        st = dep.status
        selector = ",".join(f"{k}={v}" for k, v in sorted(dep.spec.selector.match_labels.items()))
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        if (st.observed_generation or 0) >= dep.metadata.generation and dep.spec.replicas == (st.updated_replicas or 0) \
                == (st.ready_replicas or 0) == (st.replicas or 0) == len(pods):
            return
        time.sleep(2)
    sys.exit(f"bench-pay: {namespace}/{name} did not roll out within {timeout} s")


def create_batch(base: str, count: int) -> set[str]:
    def one(i):
        status, body = call(base + "/invoices", "POST",
                            {"value": round(1 + (i * 7919 % 100000) / 100, 2), "currency": CURRENCIES[i % 5]})
        if status != 201:
            sys.exit(f"bench-pay: POST /invoices answered {status}: {body}")
        return body["InvoiceId"]

    with ThreadPoolExecutor(8) as pool:
        return set(pool.map(one, range(count)))


def pay_all(base: str, batch: set[str], timeout: float) -> tuple[float, int]:
    """Seconds until every invoice of the batch is paid, and pay calls made."""
    started, calls = time.monotonic(), 0
    while time.monotonic() - started < timeout:
        status, body = call(base + "/invoices/pay", "POST")
        calls += 1
        if status == 409:
            time.sleep(0.2)
            continue
        if status not in (200, 502):
            sys.exit(f"bench-pay: POST /invoices/pay answered {status}: {body}")
        if body.get("remaining", 1) == 0:
            status, invoices = call(base + "/invoices", "GET")
            if not [i for i in invoices if i["InvoiceId"] in batch and not i["IsPaid"]]:
                return time.monotonic() - started, calls
    sys.exit(f"bench-pay: the batch was not paid within {timeout} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:30081", help="invoice-app's external URL")
    parser.add_argument("--kubeconfig", default=os.path.expanduser("~/.kube/invoice-platform.kubeconfig"))
    parser.add_argument("--context", default="invoice-platform")
    parser.add_argument("--namespace", default="invoices")
    parser.add_argument("--deployment", default="invoice-app")
    parser.add_argument("--invoices", type=int, default=1000, help="invoices per mode (default 1000)")
    parser.add_argument("--concurrency", type=int, default=8, help="the bounded mode's PAY_CONCURRENCY (default 8)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds each mode may take")
    args = parser.parse_args()
    if args.invoices < 1 or args.concurrency < 2:
        parser.error("--invoices must be at least 1 and --concurrency at least 2")

    from kubernetes import client, config

    api = config.new_client_from_config(config_file=args.kubeconfig, context=args.context)
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    results = {}
    try:
        for label, value in (("one at a time", 1), (f"{args.concurrency} at a time", args.concurrency)):
            print(f"-> {label}: PAY_CONCURRENCY={value}, rolling out", flush=True)
            set_concurrency(apps, core, args.namespace, args.deployment, value)
            batch = create_batch(args.url, args.invoices)
            seconds, calls = pay_all(args.url, batch, args.timeout)
            results[label] = seconds
            print(f"   {label}: {args.invoices} invoices paid in {seconds:.1f} s ({calls} pay calls, "
                  f"{args.invoices / seconds:.0f} invoices/s)", flush=True)
    finally:
        print("-> restoring the Deployment (PAY_CONCURRENCY removed)", flush=True)
        set_concurrency(apps, core, args.namespace, args.deployment, None)

    serial, bounded = results["one at a time"], results[f"{args.concurrency} at a time"]
    print(f"\nratio  one at a time / {args.concurrency} at a time  {serial / bounded:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
