"""The decisions the verify role takes: what counts as paid, allowed, blocked."""

import json
import pathlib

import pytest
import yaml

EXPECTED = [
    {"InvoiceId": "I1", "Value": 12.15, "Currency": "EUR"},
    {"InvoiceId": "I2", "Value": 10.25, "Currency": "GBP"},
    {"InvoiceId": "I3", "Value": 66.13, "Currency": "DKK"},
]
# The role's own matrix, as the role passes it.
MATRIX = yaml.safe_load(
    (pathlib.Path(__file__).resolve().parents[2] / "vars" / "main.yml").read_text())["__verify_rbac_matrix"]
SERVICES = {
    "invoice_app": {"name": "invoice-app", "namespace": "invoices", "team": "team-invoices", "port": 8081},
    "payment_provider": {"name": "payment-provider", "namespace": "payments", "team": "team-payments", "port": 8082},
}


def invoices(paid=(), **override):
    out = [dict(e, IsPaid=e["InvoiceId"] in paid) for e in EXPECTED]
    for inv in out:
        inv.update(override.get(inv["InvoiceId"], {}))
    return out


def test_invoice_problems_accepts_the_seed_data_paid_or_not(vf):
    assert vf.verify_invoice_problems(invoices(), EXPECTED) == []
    assert vf.verify_invoice_problems(invoices(paid=("I1", "I2", "I3")), EXPECTED) == []


@pytest.mark.parametrize(
    "body, fragment",
    [
        ({"error": "boom"}, "not a JSON list"),
        (None, "not a JSON list"),
        (invoices()[:2], "I3 is missing"),
        (invoices() + [dict(InvoiceId="I9", Value=1, Currency="EUR", IsPaid="no")], "I9 has a non-boolean"),
        (invoices(I2={"Value": 10.26}), "I2 is 10.26 GBP"),
        (invoices(I3={"Currency": "EUR"}), "I3 is 66.13 EUR"),
        (invoices(I1={"IsPaid": "yes"}), "non-boolean"),
        (invoices() + invoices()[:1], "listed twice"),
        ([{"InvoiceId": "I1"}], "unexpected entry"),
    ],
)
def test_invoice_problems_names_what_is_wrong(vf, body, fragment):
    problems = vf.verify_invoice_problems(body, EXPECTED)
    assert any(fragment in p for p in problems), problems


def test_invoice_problems_allow_other_well_formed_invoices(vf):
    other = dict(InvoiceId="I9", Value=1, Currency="EUR", IsPaid=False)
    assert vf.verify_invoice_problems(invoices() + [other], EXPECTED) == []
    # Amounts are compared to the cent, not as binary floats.
    assert vf.verify_invoice_problems(invoices(I1={"Value": 12.150000001}), EXPECTED) == []


def test_unpaid_ids(vf):
    assert vf.verify_unpaid_ids(invoices()) == ["I1", "I2", "I3"]
    assert vf.verify_unpaid_ids(invoices(paid=("I2",))) == ["I1", "I3"]
    assert vf.verify_unpaid_ids(invoices(paid=("I1", "I2", "I3"))) == []
    # A string "true" is not paid.
    assert vf.verify_unpaid_ids(invoices(paid=("I1", "I2"), I3={"IsPaid": "true"})) == ["I3"]


def test_replica_problems_require_every_replica_paid(vf):
    results = [
        {"item": "pod-a", "status": 200, "json": invoices(paid=("I1", "I2", "I3"))},
        {"item": "pod-b", "status": 200, "json": invoices(paid=("I1",))},
        {"item": "pod-c", "status": 503, "reason": "Service Unavailable", "body": "no endpoints"},
    ]
    problems = vf.verify_replica_problems(results, EXPECTED, True)
    assert "replica pod-b still shows I2, I3 unpaid" in problems
    assert any(p.startswith("replica pod-c answered 503") and "no endpoints" in p for p in problems)
    assert not any("pod-a" in p for p in problems)
    assert vf.verify_replica_problems(results[:2], EXPECTED, False) == []


LOG = "\n".join([
    json.dumps({"time": "t", "level": "INFO", "msg": "listening", "addr": ":8082"}),
    json.dumps({"time": "t1", "level": "INFO", "msg": "payment accepted", "id": "I1", "value": 12.15, "currency": "EUR", "duplicate": False}),
    json.dumps({"time": "t1", "level": "INFO", "msg": "request", "method": "POST", "path": "/payments/pay", "status": 200}),
    "panic: not json",
    json.dumps({"time": "t2", "level": "INFO", "msg": "payment accepted", "id": "I2", "value": 10.25, "currency": "GBP", "duplicate": True}),
])


def test_payment_log_reads_only_accepted_payments(vf):
    entries = vf.verify_payment_log(LOG)
    assert [(e["id"], e["value"], e["currency"], e["duplicate"]) for e in entries] == [
        ("I1", 12.15, "EUR", False), ("I2", 10.25, "GBP", True)]
    assert vf.verify_payment_log("") == []
    assert vf.verify_payment_log(None) == []


ASKED = [{"value": 19.99, "currency": "EUR"}, {"value": 7.5, "currency": "GBP"}]


def created(*ids, **override):
    out = [dict(InvoiceId=i, Value=a["value"], Currency=a["currency"], IsPaid=False) for i, a in zip(ids, ASKED)]
    for inv in out:
        inv.update(override.get(inv["InvoiceId"], {}))
    return out


def test_created_problems(vf):
    assert vf.verify_created_problems(created("I4", "I5"), ASKED) == []
    assert vf.verify_created_problems(created("I4"), ASKED) == ["asked for 2 invoices, got 1 answers"]
    assert vf.verify_created_problems(created("I4", "I4"), ASKED) == ["invoice ID I4 was handed out twice"]
    assert vf.verify_created_problems(created("I4", "I5", I5={"Value": 7.49}), ASKED) == [
        "I5 is 7.49 GBP, asked for 7.5 GBP"]
    assert vf.verify_created_problems(created("I4", "I5", I4={"IsPaid": True}), ASKED) == [
        "I4 is not created unpaid: IsPaid True"]
    assert "without an InvoiceId" in vf.verify_created_problems([{"error": "x"}, created("I5")[0]], ASKED)[0]


def test_replicas_must_agree(vf):
    same = {"item": "a", "status": 200, "json": invoices(paid=("I1",))}
    assert vf.verify_replicas_disagree([same, dict(same, item="b")]) == []
    other = {"item": "c", "status": 200, "json": invoices(paid=("I1", "I2"))}
    assert vf.verify_replicas_disagree([same, dict(same, item="b"), other]) == [
        "replica c lists other invoices or states than replica a"]
    assert vf.verify_replicas_disagree([same]) == []


def test_ledger_problems(vf):
    invs = [dict(InvoiceId="I4", Value=19.99, Currency="EUR"), dict(InvoiceId="I5", Value=7.5, Currency="GBP")]
    good = [{"status": 200, "json": {"id": "I4", "value": 19.99, "currency": "EUR"}},
            {"status": 200, "json": {"id": "I5", "value": 7.50, "currency": "GBP"}}]
    assert vf.verify_ledger_problems(good, invs) == []
    missing = [good[0], {"status": 404, "body": '{"error":"no payment I5"}'}]
    assert vf.verify_ledger_problems(missing, invs) == ['I5: the ledger answered 404 {"error":"no payment I5"}']
    wrong = [good[0], {"status": 200, "json": {"id": "I5", "value": 7.5, "currency": "EUR"}}]
    assert vf.verify_ledger_problems(wrong, invs) == ["I5 is booked as 7.5 EUR, the invoice is 7.5 GBP"]
    assert vf.verify_ledger_problems(good[:1], invs) == ["1 ledger answers for 2 invoices"]


def test_booking_problems_want_exactly_one_each(vf):
    assert vf.verify_booking_problems(["I4", "I5"], ["I4", "I5"]) == []
    assert vf.verify_booking_problems(["I4", "I4"], ["I4", "I5"]) == [
        "I4 was booked 2 times, expected exactly once", "I5 was booked 0 times, expected exactly once"]
    # Bookings of other invoices (another run, a user) are not this run's business.
    assert vf.verify_booking_problems(["I4", "I1"], ["I4"]) == []
    assert vf.verify_as_request("/x") == {"path": "/x"}


def test_ready_pods(vf):
    def pod(name, phase="Running", ready="True", deleting=False):
        meta = {"name": name}
        if deleting:
            meta["deletionTimestamp"] = "2025-01-01T00:00:00Z"
        return {"metadata": meta, "status": {"phase": phase, "conditions": [{"type": "Ready", "status": ready}]}}

    pods = [pod("c"), pod("a"), pod("b", ready="False"), pod("d", phase="Pending"), pod("e", deleting=True)]
    assert vf.verify_ready_pods(pods) == ["a", "c"]
    assert vf.verify_pod_phases(pods[-1:]) == ["e=Running (terminating)"]


def test_selector_and_labels(vf):
    assert vf.verify_selector({"b": "2", "a": "1"}) == ["a=1", "b=2"]
    objs = [{"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}, {"metadata": {}}]
    assert vf.verify_label_values(objs, "pod-security.kubernetes.io/enforce") == ["restricted", ""]


def test_exposed_services(vf):
    services = [
        {"metadata": {"name": "ok"}, "spec": {"type": "ClusterIP", "ports": [{"port": 8082}]}},
        {"metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": [{"port": 8082, "nodePort": 30082}]}},
        {"metadata": {"name": "ext"}, "spec": {"type": "ClusterIP", "externalIPs": ["1.2.3.4"], "ports": []}},
    ]
    exposed = vf.verify_exposed_services(services)
    assert [e["name"] for e in exposed] == ["np", "ext"]
    assert exposed[0]["reasons"] == ["type NodePort", "nodePort 30082"]


def test_teams(vf):
    teams = vf.verify_teams(SERVICES)
    assert teams == [
        dict(team="team-invoices", user="team-invoices-member", namespace="invoices", service="invoice-app", key="invoice_app"),
        dict(team="team-payments", user="team-payments-member", namespace="payments", service="payment-provider",
             key="payment_provider"),
    ]


TARGETS = [
    dict(namespace="invoices", pod="invoice-app-1", deployment="invoice-app"),
    dict(namespace="payments", pod="payment-provider-1", deployment="payment-provider"),
]


def test_rbac_matrix_size_and_expectations(vf):
    cells = vf.verify_rbac_cells(vf.verify_teams(SERVICES), TARGETS, MATRIX, "/creds/", "2025-01-01T00:00:00Z")
    # 2 teams x (8 namespaced actions x 2 namespaces + 2 cluster-scoped).
    assert len(cells) == 36
    allowed = [c for c in cells if c["expect"] == "allowed"]
    assert len(allowed) == 10
    assert all(c["namespace"] == ("invoices" if c["team"] == "team-invoices" else "payments") for c in allowed)
    assert not any("secret" in c["action"] for c in allowed)
    assert all(c["expect"] == "forbidden" for c in cells if c["namespace"] == "(cluster)")
    assert {c["kubeconfig"] for c in cells} == {"/creds/team-invoices.kubeconfig", "/creds/team-payments.kubeconfig"}
    restart = [c for c in cells if c["method"] == "PATCH" and c["action"].startswith("restart")]
    assert len(restart) == 4 and all(c["query"] == {"dryRun": "All"} for c in restart)
    leak = [c for c in cells if c["action"].startswith("mount the database Secret")]
    assert len(leak) == 4 and all(c["expect"] == "forbidden" and c["query"] == {"dryRun": "All"} for c in leak)
    [own] = [c for c in leak if c["team"] == "team-invoices" and c["namespace"] == "invoices"]
    env = own["body"]["spec"]["template"]["spec"]["containers"][0]["env"][0]
    assert env["valueFrom"]["secretKeyRef"] == {"name": "invoice-app-db", "key": "password"}
    logs = [c for c in cells if c["action"] == "read pod logs" and c["namespace"] == "payments"]
    assert logs[0]["path"] == "/api/v1/namespaces/payments/pods/payment-provider-1/log"


def forbidden(msg="forbidden"):
    return {"status": 403, "json": {"kind": "Status", "reason": "Forbidden", "message": msg}, "body": "{}"}


def test_rbac_outcome_judges_each_answer(vf):
    cells = vf.verify_rbac_cells(vf.verify_teams(SERVICES), TARGETS, MATRIX, "/c", "STAMP")
    by = {(c["team"], c["namespace"], c["action"]): c for c in cells}
    list_own = by[("team-invoices", "invoices", "list pods")]
    assert vf.verify_rbac_outcome(list_own, {"status": 200, "json": {"kind": "PodList"}})["ok"]
    # A 200 of the wrong kind is not proof.
    assert not vf.verify_rbac_outcome(list_own, {"status": 200, "json": {"kind": "Status"}})["ok"]
    # Forbidden where it should be allowed.
    out = vf.verify_rbac_outcome(list_own, forbidden("User cannot list"))
    assert not out["ok"] and out["observed"] == "forbidden" and out["evidence"] == "User cannot list"

    other = by[("team-invoices", "payments", "list pods")]
    assert vf.verify_rbac_outcome(other, forbidden())["ok"]
    assert not vf.verify_rbac_outcome(other, {"status": 200, "json": {"kind": "PodList"}})["ok"]
    # 401 (bad credential) or 404 is not a proof of "forbidden".
    assert not vf.verify_rbac_outcome(other, {"status": 401, "json": {"reason": "Unauthorized"}})["ok"]
    secret = by[("team-invoices", "invoices", "read the database Secret")]
    assert secret["path"].endswith("/secrets/invoice-app-db")
    assert not vf.verify_rbac_outcome(secret, {"status": 404, "json": {"reason": "NotFound"}})["ok"]
    assert vf.verify_rbac_outcome(secret, forbidden())["ok"]

    restart = by[("team-invoices", "invoices", "restart deployment (server-side dry run)")]
    answer = {"status": 200, "json": {"kind": "Deployment", "spec": {"template": {"metadata": {
        "annotations": {"kubectl.kubernetes.io/restartedAt": "STAMP"}}}}}}
    assert vf.verify_rbac_outcome(restart, answer)["ok"]
    answer["json"]["spec"]["template"]["metadata"]["annotations"] = {}
    assert not vf.verify_rbac_outcome(restart, answer)["ok"]


def test_rbac_summary(vf):
    cells = vf.verify_rbac_cells(vf.verify_teams(SERVICES), TARGETS, MATRIX, "/c", "S")
    answers = [{"status": 200, "json": {"kind": c["kind"]}} if c["expect"] == "allowed" else forbidden() for c in cells]
    for a, c in zip(answers, cells):
        if c["restart_stamp"]:
            a["json"]["spec"] = {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "S"}}}}
    summary = vf.verify_rbac_summary(vf.verify_rbac_outcomes(cells, answers))
    assert (summary["cells"], summary["allowed"], summary["denied"], summary["api_calls"], summary["passed"]) == (36, 10, 26, 36, 36)
    assert summary["mismatches"] == []
    answers[0] = forbidden()
    assert len(vf.verify_rbac_summary(vf.verify_rbac_outcomes(cells, answers))["mismatches"]) == 1
    with pytest.raises(ValueError):
        vf.verify_rbac_outcomes(cells, answers[:-1])


def test_rbac_targets(vf):
    teams = vf.verify_teams(SERVICES)
    pods = [{"resources": [{"metadata": {"name": "ia-2"}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}]},
            {"resources": [{"metadata": {"name": "pp-1"}, "status": {"phase": "Pending"}}]}]
    deps = [{"item": teams[0], "resources": [{"metadata": {"name": "invoice-app"}}]}, {"item": teams[1], "resources": []}]
    assert vf.verify_rbac_targets(pods, deps) == [
        dict(namespace="invoices", pod="ia-2", deployment="invoice-app"),
        dict(namespace="payments", pod="pp-1", deployment="payment-provider"),
    ]


CATALOGUE = [
    dict(name="outside-namespace", namespace="probe", as_invoice_app=False, blocked=True),
    dict(name="invoices-as-invoice-app", namespace="invoices", as_invoice_app=True, blocked=False),
]
INVOICE_LABELS = {"app.kubernetes.io/name": "invoice-app", "app.kubernetes.io/instance": "invoice-app"}


def plan(vf, selected=("outside-namespace", "invoices-as-invoice-app"), enforced=True):
    return vf.verify_probe_plan(CATALOGUE, selected=list(selected), enforced=enforced, invoice_app_labels=INVOICE_LABELS,
                                base_labels={"app.kubernetes.io/part-of": "p"}, probe_label="p/verify-probe",
                                dns_name="pp.payments.svc.cluster.local",
                                urls={"http-service": "http://pp:8082/healthz", "http-pod": "http://10.0.0.1:8082/healthz"},
                                timing={"timeout": 5, "attempts": 20})


def test_probe_plan(vf):
    outside, labelled = plan(vf)
    assert outside["expect"] == "blocked" and labelled["expect"] == "connect"
    assert outside["labels"] == {"app.kubernetes.io/part-of": "p", "app.kubernetes.io/name": "netprobe",
                                 "p/verify-probe": "outside-namespace"}
    assert labelled["labels"]["app.kubernetes.io/name"] == "invoice-app"
    assert labelled["labels"]["app.kubernetes.io/instance"] == "invoice-app"
    assert [c["name"] for c in outside["containers"]] == ["dns", "http-pod", "http-service"]
    assert outside["containers"][0]["args"] == ["-timeout", "5s", "-attempts", "20", "dns", "pp.payments.svc.cluster.local"]
    # A request that must be blocked gets one attempt; one that must connect gets retries.
    assert outside["containers"][2]["args"] == ["-timeout", "5s", "-attempts", "1", "http", "GET", "http://pp:8082/healthz"]
    assert labelled["containers"][2]["args"][3] == "20"


def test_probe_plan_without_enforcement_expects_connections(vf):
    assert [p["expect"] for p in plan(vf, enforced=False)] == ["connect", "connect"]
    assert [p["name"] for p in plan(vf, selected=["outside-namespace"])] == ["outside-namespace"]
    with pytest.raises(ValueError, match="unknown probe"):
        plan(vf, selected=["nope"])


def finished_pod(codes, phase="Failed"):
    return {"status": {"phase": phase, "containerStatuses": [
        {"name": n, "state": {"terminated": {"exitCode": c, "reason": "Completed" if c == 0 else "Error"}}} for n, c in codes.items()]}}


def line(**kw):
    return json.dumps(kw)


def test_probe_verdict_blocked(vf):
    probe = plan(vf)[0]
    logs = {"dns": line(mode="dns", ok=True, addresses=["10.96.0.10"], attempts=1),
            "http-service": line(mode="http", ok=False, kind="timeout", error="deadline", attempts=1),
            "http-pod": line(mode="http", ok=False, kind="refused", error="refused", attempts=1)}
    verdict = vf.verify_probe_verdict(finished_pod({"dns": 0, "http-service": 1, "http-pod": 1}), logs, probe)
    assert verdict["ok"], verdict
    # Connecting where it must be blocked fails the probe.
    logs["http-pod"] = line(mode="http", ok=True, status=200, attempts=1)
    verdict = vf.verify_probe_verdict(finished_pod({"dns": 0, "http-service": 1, "http-pod": 0}), logs, probe)
    assert not verdict["ok"]
    assert [c["seen"] for c in verdict["checks"] if not c["ok"]] == ["answered HTTP 200"]


def test_probe_verdict_dns_failure_is_not_a_block(vf):
    probe = plan(vf)[0]
    logs = {"dns": line(mode="dns", ok=False, kind="dns", error="no such host"),
            "http-service": line(mode="http", ok=False, kind="dns", error="no such host"),
            "http-pod": line(mode="http", ok=False, kind="timeout", error="deadline")}
    verdict = vf.verify_probe_verdict(finished_pod({"dns": 1, "http-service": 1, "http-pod": 1}), logs, probe)
    assert not verdict["ok"]
    assert {c["container"] for c in verdict["checks"] if not c["ok"]} == {"dns", "http-service"}


def test_probe_verdict_connect(vf):
    probe = plan(vf)[1]
    logs = {"dns": line(ok=True, addresses=["10.96.0.10"]), "http-service": line(ok=True, status=200, attempts=3),
            "http-pod": line(ok=True, status=200, attempts=1)}
    assert vf.verify_probe_verdict(finished_pod({"dns": 0, "http-service": 0, "http-pod": 0}, "Succeeded"), logs, probe)["ok"]
    logs["http-service"] = line(ok=False, kind="timeout", error="deadline", attempts=20)
    assert not vf.verify_probe_verdict(finished_pod({"dns": 0, "http-service": 1, "http-pod": 0}), logs, probe)["ok"]


def test_probe_verdict_unfinished_pod(vf):
    probe = plan(vf)[0]
    pod = {"status": {"phase": "Pending", "containerStatuses": [
        {"name": "dns", "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "image not present"}}}]}}
    verdict = vf.verify_probe_verdict(pod, {"dns": "container is waiting to start"}, probe)
    assert not verdict["ok"]
    assert verdict["waiting"] == ["dns: ErrImageNeverPull image not present"]
    assert verdict["checks"][0]["seen"].startswith("no result line")
    assert not vf.verify_probe_verdict({}, {}, probe)["ok"]


def test_summaries(vf):
    assert vf.verify_join_counts(["I2", "I1", "I1"]) == "I1 x2, I2 x1"
    assert vf.verify_join_counts([]) == "none"
    assert vf.verify_url_host("10.1.2.3") == "10.1.2.3"
    assert vf.verify_url_host("fd00::1") == "[fd00::1]"
    row = vf.verify_table_row({"name": "pay_flow", "status": "PASS", "summary": "a\n  b"})
    assert row.split() == ["pay_flow", "PASS", "a", "b"]
    assert vf.verify_generations([{"resources": [{"metadata": {"generation": 3}}]}, {"resources": []}]) == [3, None]


def test_probe_log_requests_and_verdicts_line_up(vf):
    probes = plan(vf)
    reqs = vf.verify_probe_log_requests(probes)
    assert [r["query"]["container"] for r in reqs] == ["dns", "http-pod", "http-service"] * 2
    assert reqs[0]["path"] == "/api/v1/namespaces/probe/pods/verify-probe-outside-namespace/log"
    blocked = line(ok=False, kind="refused", error="refused", attempts=1)
    answers = [{"body": line(ok=True, addresses=["10.96.0.10"])}, {"body": blocked}, {"body": blocked},
               {"body": line(ok=True, addresses=["10.96.0.10"])}, {"body": line(ok=True, status=200)},
               {"body": line(ok=True, status=200)}]
    pods = [dict(finished_pod({"dns": 0, "http-pod": 1, "http-service": 1}),
                 metadata={"namespace": "probe", "name": "verify-probe-outside-namespace"}),
            dict(finished_pod({"dns": 0, "http-pod": 0, "http-service": 0}, "Succeeded"),
                 metadata={"namespace": "invoices", "name": "verify-probe-invoices-as-invoice-app"})]
    verdicts = vf.verify_probe_verdicts(probes, pods, answers)
    assert [v["ok"] for v in verdicts] == [True, True]
    # Swapped answers must not pass.
    assert not all(v["ok"] for v in vf.verify_probe_verdicts(probes, pods, answers[3:] + answers[:3]))


def test_pick(vf):
    assert vf.verify_pick({"a": 1, "b": None, "c": 3}, ["a", "b"]) == {"a": 1}


TCP_CATALOGUE = [
    {"name": "own", "namespace": "invoices", "wears": "app", "targets": ["db"], "blocked": False},
    {"name": "stranger", "namespace": "invoices", "wears": None, "targets": ["db", "other"], "blocked": True},
]


def tcp_plan(vf, enforced=True):
    return vf.verify_tcp_probe_plan(TCP_CATALOGUE, enforced=enforced, wears={"app": {"app.kubernetes.io/name": "invoice-app"}},
                                    base_labels={"part-of": "x"}, probe_label="probe",
                                    targets={"db": "db.invoices:5432", "other": "10.0.0.1:53"},
                                    timing={"timeout": 3, "attempts": 7, "settle": 4})


def test_tcp_probe_plan(vf):
    own, stranger = tcp_plan(vf)
    assert own["expect"] == "connect" and own["labels"]["app.kubernetes.io/name"] == "invoice-app"
    assert own["containers"] == [{"name": "tcp-db", "args": ["-timeout", "3s", "-attempts", "7", "tcp", "db.invoices:5432"]}]
    assert stranger["expect"] == "blocked" and stranger["labels"]["app.kubernetes.io/name"] == "netprobe"
    assert [c["args"][-1] for c in stranger["containers"]] == ["db.invoices:5432", "10.0.0.1:53"]
    assert all(c["args"][2:6] == ["-attempts", "1", "-delay", "4s"] for c in stranger["containers"])
    assert tcp_plan(vf, enforced=False)[1]["expect"] == "connect"
    with pytest.raises(ValueError):
        vf.verify_tcp_probe_plan([dict(TCP_CATALOGUE[0], targets=["nope"])], enforced=True, wears={"app": {}}, base_labels={},
                                 probe_label="p", targets={}, timing={"timeout": 1, "attempts": 1})


def test_tcp_probe_verdicts(vf):
    own, stranger = tcp_plan(vf)
    done = {"status": {"phase": "Succeeded", "containerStatuses": [
        {"name": "tcp-db", "state": {"terminated": {"exitCode": 0}}}]}}
    line = json.dumps({"mode": "tcp", "target": "db.invoices:5432", "ok": True, "attempts": 2})
    verdict = vf.verify_probe_verdict(done, {"tcp-db": line}, own)
    assert verdict["ok"] and verdict["checks"][0]["seen"] == "connected"
    failed = {"status": {"phase": "Failed", "containerStatuses": [
        {"name": n, "state": {"terminated": {"exitCode": 1}}} for n in ("tcp-db", "tcp-other")]}}
    blocked = json.dumps({"mode": "tcp", "ok": False, "kind": "timeout", "error": "i/o timeout"})
    assert vf.verify_probe_verdict(failed, {"tcp-db": blocked, "tcp-other": blocked}, stranger)["ok"]
    # A name that does not resolve is not a proof of blocking.
    unresolved = json.dumps({"mode": "tcp", "ok": False, "kind": "dns", "error": "no such host"})
    assert not vf.verify_probe_verdict(failed, {"tcp-db": unresolved, "tcp-other": blocked}, stranger)["ok"]
    # Connected where it must be blocked.
    assert not vf.verify_probe_verdict(done, {"tcp-db": line}, dict(own, expect="blocked"))["ok"]


def test_probe_plan_holds_blocked_requests(vf):
    outside, labelled = vf.verify_probe_plan(
        CATALOGUE, selected=["outside-namespace", "invoices-as-invoice-app"], enforced=True, invoice_app_labels=INVOICE_LABELS,
        base_labels={}, probe_label="p/verify-probe", dns_name="pp", urls={"http-service": "http://pp:8082/healthz"},
        timing={"timeout": 5, "attempts": 20, "settle": 4, "hold": 3})
    # Blocked: wait for the engine, then stay blocked for three attempts.
    assert outside["containers"][1]["args"] == ["-timeout", "5s", "-attempts", "3", "-delay", "4s",
                                                "http", "GET", "http://pp:8082/healthz"]
    # Must connect: retried until the engine lets it in, with no wait.
    assert labelled["containers"][1]["args"] == ["-timeout", "5s", "-attempts", "20", "http", "GET", "http://pp:8082/healthz"]
    # The wait is on record, for the report.
    assert (outside["settle"], labelled["settle"]) == (4, 0)


TIMING = {"timeout": 5, "attempts": 20}
HOST_CATALOGUE = CATALOGUE + [
    {"name": "host-bare", "namespace": "payments", "wears": None, "targets": ["apiserver_node", "etcd"], "blocked": True},
    {"name": "host-app", "namespace": "invoices", "wears": "invoice_app", "targets": ["kubelet"], "blocked": True},
]


def test_http_plan_leaves_host_probes_out_and_tcp_plan_takes_only_them(vf):
    names = ["outside-namespace", "host-bare", "host-app"]
    http = vf.verify_probe_plan(HOST_CATALOGUE, selected=names, enforced=True, invoice_app_labels=INVOICE_LABELS, base_labels={},
                                probe_label="p", dns_name="pp", urls={"http-pod": "http://x/"}, timing=TIMING)
    assert [p["name"] for p in http] == ["outside-namespace"]
    targets = {"apiserver_node": ["192.168.49.2:8443"], "etcd": ["192.168.49.2:2379", "192.168.49.3:2379"],
               "kubelet": ["192.168.49.2:10250"]}
    tcp = vf.verify_tcp_probe_plan(HOST_CATALOGUE, enforced=True, wears={"invoice_app": INVOICE_LABELS}, base_labels={},
                                   probe_label="p", targets=targets, timing=dict(TIMING, settle=5, hold=3), selected=names)
    assert [p["name"] for p in tcp] == ["host-bare", "host-app"]
    bare, app = tcp
    # One container per address; a list of several is numbered.
    assert [(c["name"], c["args"][-1]) for c in bare["containers"]] == [
        ("tcp-apiserver-node", "192.168.49.2:8443"), ("tcp-etcd-1", "192.168.49.2:2379"), ("tcp-etcd-2", "192.168.49.3:2379")]
    assert all(c["args"][:6] == ["-timeout", "5s", "-attempts", "3", "-delay", "5s"] for c in bare["containers"])
    assert bare["settle"] == 5
    assert app["labels"]["app.kubernetes.io/name"] == "invoice-app" and app["as_invoice_app"]
    assert bare["labels"]["app.kubernetes.io/name"] == "netprobe" and not bare["as_invoice_app"]
    # Selection leaves entries out; an unknown name is an error.
    assert [p["name"] for p in vf.verify_tcp_probe_plan(HOST_CATALOGUE, enforced=True, wears={"invoice_app": {}}, base_labels={},
                                                         probe_label="p", targets=targets, timing=TIMING,
                                                         selected=["host-app"])] == ["host-app"]
    with pytest.raises(ValueError, match="unknown probe"):
        vf.verify_tcp_probe_plan(HOST_CATALOGUE, enforced=True, wears={}, base_labels={}, probe_label="p", targets=targets,
                                 timing=TIMING, selected=["nope"])


def test_tcp_plan_names_absent_targets_and_refuses_an_empty_probe(vf):
    targets = {"apiserver_node": ["10.0.0.1:6443"], "etcd": [], "kubelet": []}
    bare = vf.verify_tcp_probe_plan(HOST_CATALOGUE, enforced=True, wears={}, base_labels={}, probe_label="p", targets=targets,
                                   timing=TIMING, selected=["host-bare"])[0]
    assert [c["name"] for c in bare["containers"]] == ["tcp-apiserver-node"] and bare["absent"] == ["etcd"]
    with pytest.raises(ValueError, match="no target"):
        vf.verify_tcp_probe_plan(HOST_CATALOGUE, enforced=True, wears={"invoice_app": {}}, base_labels={}, probe_label="p",
                                 targets=targets, timing=TIMING, selected=["host-app"])


def test_host_targets(vf):
    service = {"spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"], "ports": [{"name": "https", "port": 443}]}}
    slices = [{"ports": [{"name": "https", "port": 8443}],
               "endpoints": [{"addresses": ["192.168.49.2"], "conditions": {"ready": True}},
                             {"addresses": ["192.168.49.9"], "conditions": {"ready": False}}]}]
    nodes = [{"status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                         "addresses": [{"type": "InternalIP", "address": "192.168.49.2"},
                                       {"type": "Hostname", "address": "minikube"}]}},
             {"status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                         "addresses": [{"type": "InternalIP", "address": "fd00::3"}]}}]
    etcd = [{"metadata": {"annotations": {
        "kubeadm.kubernetes.io/etcd.advertise-client-urls": "https://192.168.49.2:2379,https://[fd00::2]:2379"}}}]
    assert vf.verify_host_targets(service, slices, nodes, etcd) == {
        "apiserver_service": ["10.96.0.1:443"],
        "apiserver_node": ["192.168.49.2:8443"],  # the endpoint that is not ready is left out
        "kubelet": ["192.168.49.2:10250", "[fd00::3]:10250"],
        "etcd": ["192.168.49.2:2379", "[fd00::2]:2379"],
    }
    # A managed control plane: no etcd pod, nothing to aim at.
    assert vf.verify_host_targets(service, slices, nodes, [])["etcd"] == []
    assert vf.verify_host_targets(service, slices, nodes, [{"metadata": {}}])["etcd"] == []


def test_probe_summary_reports_propagation_and_hold(vf):
    verdicts = [
        {"probe": "app", "expect": "connect", "ok": True, "absent": [],
         "checks": [{"container": "dns", "elapsed_ms": 9000}, {"container": "http-pod", "elapsed_ms": 1500},
                    {"container": "http-service", "elapsed_ms": 2300}]},
        {"probe": "bare", "expect": "blocked", "ok": False, "absent": ["etcd"],
         "checks": [{"container": "tcp-kubelet", "attempts": 3}, {"container": "tcp-apiserver-node", "attempts": 1}]},
    ]
    line = vf.verify_probe_summary(verdicts, True)
    assert line.startswith("1 of 2 probes as expected (policies enforced)")
    assert "app must connect (within 2.3 s): as expected" in line
    # The weakest hold is reported: one request got through on its first attempt.
    assert "bare must be blocked (held 1 attempts): NOT AS EXPECTED [no etcd]" in line


def test_probe_cleanup_deletes_by_label_once_per_namespace(vf):
    reqs = vf.verify_probe_cleanup_requests(["probe", "invoices"], "invoice-platform/verify-probe")
    assert reqs == [
        {"method": "DELETE", "path": "/api/v1/namespaces/probe/pods", "query": {"labelSelector": "invoice-platform/verify-probe"}},
        {"method": "DELETE", "path": "/api/v1/namespaces/invoices/pods", "query": {"labelSelector": "invoice-platform/verify-probe"}},
    ]
    assert vf.verify_probe_cleanup_requests([], "x") == []


# Reuse of the last full verification (verify_reuse).
CHECKS = ["pay_flow", "network_policy"]
STATE = {"sha256": "s1", "objects": {"/api/v1/pods payments/p-1": "u1 10", "/api/v1/nodes n1": "u9"}}
PROVED = "2026-12-03T10:00:00Z"


def proof_report(**override):
    report = {
        "result": "PASS", "proved": PROVED, "inputs": "i1", "reused": False,
        "checks": [{"name": name, "status": "PASS", "summary": name + " ok"} for name in CHECKS],
        "rbac_matrix": {"cells": 36}, "state": dict(STATE),
    }
    report.update(override)
    return json.dumps(report)


def decide(vf, text, state=STATE, checks=CHECKS, inputs="i1", max_age=3600, now="2026-12-03T10:30:00Z"):
    return vf.verify_reuse_decision(text, state, checks, inputs, max_age, now)


def test_a_passing_proof_of_the_same_objects_inputs_and_checks_is_reused_with_its_time(vf):
    decision = decide(vf, proof_report())
    assert decision["reuse"] is True
    assert decision["proved"] == PROVED
    assert [r["name"] for r in decision["results"]] == CHECKS
    assert all(r["proved"] == PROVED and r["status"] == "PASS" for r in decision["results"])
    assert decision["rbac_matrix"] == {"cells": 36}
    assert "2 objects" in decision["reason"]
    # A report written by a reuse carries the proof's time, so the age still
    # counts from the full verification.
    again = decide(vf, proof_report(reused=True, checks=decision["results"] + [{"name": "invoices_paid", "status": "PASS"}]))
    assert again["reuse"] is True and again["proved"] == PROVED
    assert decide(vf, proof_report(), checks=["pay_flow"])["reuse"] is True


@pytest.mark.parametrize(
    "text, kwargs, reason",
    [
        ("", {}, "no earlier report"),
        ("{not json", {}, "not JSON"),
        (json.dumps({"result": "PASS", "checks": []}), {}, "records no proof"),
        (proof_report(result="FAIL"), {}, "did not pass"),
        (proof_report(inputs="i0"), {}, "inputs or tasks changed"),
        (proof_report(), {"checks": CHECKS + ["pod_security"]}, "did not prove pod_security"),
        (proof_report(checks=[{"name": "pay_flow", "status": "PASS"}, {"name": "network_policy", "status": "FAIL"}]), {},
         "did not prove network_policy"),
        (proof_report(), {"now": "2026-12-03T11:00:01Z"}, "3601 s old, more than 3600 s"),
        (proof_report(), {"now": "2026-12-03T09:59:00Z"}, "old, more than"),
        (proof_report(proved="yesterday"), {}, "unreadable"),
    ],
)
def test_anything_but_a_matching_passing_proof_runs_every_check(vf, text, kwargs, reason):
    decision = decide(vf, text, **kwargs)
    assert decision["reuse"] is False
    assert reason in decision["reason"]


def test_a_changed_object_runs_every_check_and_is_named(vf):
    now = {"sha256": "s2", "objects": {"/api/v1/pods payments/p-1": "u1 11", "/api/v1/pods payments/p-2": "u2 12"}}
    decision = decide(vf, proof_report(), state=now)
    assert decision["reuse"] is False
    assert decision["reason"].startswith("3 object(s) differ")
    for line in ("removed /api/v1/nodes n1", "added /api/v1/pods payments/p-2", "changed /api/v1/pods payments/p-1"):
        assert line in decision["reason"]
    many = {"sha256": "s3", "objects": {"/api/v1/pods ns/p-%d" % i: "u" for i in range(30)}}
    assert decide(vf, proof_report(), state=many)["reason"].endswith("; ...")


def test_a_carried_result_says_when_it_was_proved(vf):
    row = vf.verify_table_row({"name": "pay_flow", "status": "PASS", "summary": "paid", "proved": PROVED})
    assert row.split() == ["pay_flow", "PASS", "(proved", PROVED + ",", "cluster", "unchanged)", "paid"]


@pytest.mark.parametrize("change, message", [({"rule": "sometimes"}, "rule must be own or never"),
                                             ({"body": "other"}, "body must be restart or leak")])
def test_a_matrix_entry_with_an_unknown_rule_or_body_is_refused(vf, change, message):
    matrix = {"namespaced": [dict(MATRIX["namespaced"][0], **change)], "cluster": []}
    with pytest.raises(ValueError, match=message):
        vf.verify_rbac_cells(vf.verify_teams(SERVICES), TARGETS, matrix, "/c", "S")


def test_probe_plans_take_keywords_and_need_a_timeout_and_attempts(vf):
    with pytest.raises(TypeError):
        vf.verify_tcp_probe_plan(TCP_CATALOGUE, True, {}, {}, "p", {}, TIMING)
    with pytest.raises(ValueError, match="timing lacks attempts"):
        vf.verify_tcp_probe_plan(TCP_CATALOGUE, enforced=True, wears={"app": {}}, base_labels={}, probe_label="p",
                                 targets={"db": "x:1", "other": "y:2"}, timing={"timeout": 1})


def test_a_container_the_runtime_could_not_start_is_named_as_not_started_with_its_message(vf):
    own, stranger = tcp_plan(vf)
    blocked = json.dumps({"mode": "tcp", "ok": False, "kind": "timeout", "error": "i/o timeout"})
    pod = {"status": {"phase": "Failed", "containerStatuses": [
        {"name": "tcp-db", "state": {"terminated": {"exitCode": 128, "reason": "StartError",
                                                    "message": "failed to create containerd task:\n  context deadline exceeded"}}},
        {"name": "tcp-other", "state": {"terminated": {"exitCode": 1}}}]}}
    verdict = vf.verify_probe_verdict(pod, {"tcp-db": "", "tcp-other": blocked}, stranger)
    # Still a failed verdict: a rerun, not a pass, is what a StartError earns.
    assert not verdict["ok"]
    assert verdict["not_started"] == ["tcp-db"]
    assert verdict["checks"][0]["seen"] == (
        "no result line (exit 128, StartError: failed to create containerd task: context deadline exceeded)")
    # A container that ran and printed nothing is a failure, not a start error.
    ran = {"status": {"phase": "Failed", "containerStatuses": [
        {"name": n, "state": {"terminated": {"exitCode": 2, "reason": "Error"}}} for n in ("tcp-db", "tcp-other")]}}
    assert vf.verify_probe_verdict(ran, {"tcp-db": "", "tcp-other": blocked}, stranger)["not_started"] == []
