"""A rolling update under steady load fails no request: every replica of
invoice-app is replaced while GET /invoices runs at 20 requests per second
through the external URL. What makes it hold: the readiness probe keeps a
new pod out until it serves, `maxUnavailable: 0` keeps the old ones until
then, and a terminating pod goes on serving through its preStop pause while
its endpoint is withdrawn, then drains in-flight requests on SIGTERM."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path

from load import Load
from platform_api import deployment_pods, ready_pods

REPORT = Path.home() / ".cache" / "invoice-platform" / "rollout-report.json"
RATE = 20
# The least time the load runs in all; a scenario may ask for longer.
MIN_LOAD_SECONDS = 0


def rollout_done(apps, core, svc, name: str) -> bool:
    dep = apps.read_namespaced_deployment(name, svc["namespace"])
    st = dep.status
    if (st.observed_generation or 0) < dep.metadata.generation:
        return False
    want = dep.spec.replicas
    if not (st.updated_replicas == st.ready_replicas == st.available_replicas == st.replicas == want):
        return False
    pods = deployment_pods(core, dep)
    # The old pods are gone, not only out of the counts.
    return len(pods) == want and not any(p.metadata.deletion_timestamp for p in pods)


def test_rolling_update_under_load_fails_no_request(facts, apps, core, services):
    svc = services["invoice_app"]
    name = svc["name"]
    before = {p.metadata.name for p in ready_pods(core, apps, svc)}
    assert len(before) == apps.read_namespaced_deployment(name, svc["namespace"]).spec.replicas
    stamp = datetime.datetime.now(datetime.timezone.utc).isoformat()
    started = time.monotonic()
    with Load(facts["platform_invoice_app_url"], "/invoices", rate=RATE) as load:
        time.sleep(5)
        # What `kubectl rollout restart` does: a new pod template.
        apps.patch_namespaced_deployment(name, svc["namespace"], {"spec": {"template": {"metadata": {
            "annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}})
        deadline = time.monotonic() + 300
        while not rollout_done(apps, core, svc, name):
            assert time.monotonic() < deadline, "the rollout did not finish within 300 s"
            time.sleep(1)
        rolled = time.monotonic() - started
        # The last old pod is gone; keep the load a moment longer.
        time.sleep(max(5.0, MIN_LOAD_SECONDS - (time.monotonic() - started)))
    after = {p.metadata.name for p in ready_pods(core, apps, svc)}
    summary = dict(load.summary(), rate=RATE, rollout_seconds=round(rolled, 1),
                   replaced=sorted(before), replacements=sorted(after))
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(summary, indent=2))
    # Every replica was replaced, under load the whole time...
    assert before.isdisjoint(after) and len(after) == len(before), summary
    assert load.sent >= RATE * 10, summary
    # ...and not one request failed.
    assert not load.failures, summary
    assert load.succeeded == load.sent, summary
