# -*- coding: utf-8 -*-
"""Filters that turn the verify role's raw observations into verdicts.

Kept in Python so the decisions (what counts as paid, allowed, blocked) are
unit-tested without a cluster: roles/verify/tests/unit/.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

# A blocked connection: the policy dropped (timeout) or rejected it. A DNS
# failure or a reset after connecting is not evidence of a NetworkPolicy.
BLOCKED_KINDS = ("timeout", "refused", "unreachable")

# The team RBAC matrix. `own`: allowed in the team's own namespace, forbidden
# in every other; `never`: forbidden everywhere. Cluster-scoped actions are
# asked once per team.
RESTART_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
NAMESPACED_ACTIONS = [
    dict(action="list pods", method="GET", path="/api/v1/namespaces/{ns}/pods",
         query={"limit": 5}, kind="PodList", rule="own"),
    dict(action="read pod logs", method="GET", path="/api/v1/namespaces/{ns}/pods/{pod}/log",
         query={"tailLines": 1}, rule="own"),
    dict(action="restart deployment (server-side dry run)", method="PATCH",
         path="/apis/apps/v1/namespaces/{ns}/deployments/{deployment}", query={"dryRun": "All"},
         content_type="application/strategic-merge-patch+json", kind="Deployment", rule="own", restart=True),
    dict(action="list services", method="GET", path="/api/v1/namespaces/{ns}/services",
         query={"limit": 5}, kind="ServiceList", rule="own"),
    dict(action="list configmaps", method="GET", path="/api/v1/namespaces/{ns}/configmaps",
         query={"limit": 5}, kind="ConfigMapList", rule="own"),
    dict(action="list secrets", method="GET", path="/api/v1/namespaces/{ns}/secrets",
         query={"limit": 5}, rule="never"),
    dict(action="read a secret", method="GET", path="/api/v1/namespaces/{ns}/secrets/{deployment}",
         rule="never"),
]
CLUSTER_ACTIONS = [
    dict(action="list nodes", method="GET", path="/api/v1/nodes", query={"limit": 5}, rule="never"),
    dict(action="list namespaces", method="GET", path="/api/v1/namespaces", query={"limit": 5}, rule="never"),
]


def verify_teams(services, user_suffix="-member"):
    """One entry per team: its group, namespace, service and verification user."""
    teams = {}
    for key in sorted(services):
        svc = services[key]
        teams.setdefault(svc["team"], dict(
            team=svc["team"], user=svc["team"] + user_suffix, namespace=svc["namespace"],
            service=svc["name"], key=key))
    return [teams[name] for name in sorted(teams)]


def verify_rbac_targets(pod_results, deployment_results):
    """One target per team namespace: a pod to read logs of and the
    Deployment to restart, from k8s_info results looped over the teams."""
    targets = []
    for pods, deployments in zip(pod_results, deployment_results):
        team = deployments["item"]
        found = pods.get("resources") or []
        names = verify_ready_pods(found) or sorted((p.get("metadata") or {}).get("name") for p in found)
        deployment = ((deployments.get("resources") or [{}])[0].get("metadata") or {}).get("name") or team["service"]
        targets.append(dict(namespace=team["namespace"], pod=names[0] if names else "", deployment=deployment))
    return targets


def verify_rbac_cells(teams, targets, credentials_dir, restart_stamp):
    """Every (team, namespace, action) to try, with the expected outcome.

    targets: one dict per namespace: namespace, pod (a pod to read logs of),
    deployment (a deployment to restart)."""
    cells = []
    for team in teams:
        kubeconfig = "%s/%s.kubeconfig" % (credentials_dir.rstrip("/"), team["team"])
        for target in targets:
            own = target["namespace"] == team["namespace"]
            for spec in NAMESPACED_ACTIONS:
                cell = _cell(team, kubeconfig, spec, target["namespace"],
                             spec["rule"] == "own" and own, target, restart_stamp)
                cells.append(cell)
        for spec in CLUSTER_ACTIONS:
            cells.append(_cell(team, kubeconfig, spec, "(cluster)", False, {}, restart_stamp))
    return cells


def _cell(team, kubeconfig, spec, namespace, allowed, target, restart_stamp):
    path = spec["path"].format(ns=namespace, pod=target.get("pod", ""), deployment=target.get("deployment", ""))
    body = None
    if spec.get("restart"):
        body = {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: restart_stamp}}}}}
    return dict(
        team=team["team"], user=team["user"], kubeconfig=kubeconfig, namespace=namespace,
        action=spec["action"], method=spec["method"], path=path, query=dict(spec.get("query", {})),
        body=body, content_type=spec.get("content_type", "application/json"),
        kind=spec.get("kind", ""), restart_stamp=restart_stamp if spec.get("restart") else "",
        expect="allowed" if allowed else "forbidden")


def _message(result):
    doc = result.get("json")
    if isinstance(doc, dict) and doc.get("message"):
        return doc["message"]
    return (result.get("body") or result.get("reason") or "")[:300]


def verify_rbac_outcome(cell, result):
    """Judge one cell against the API's answer. Returns the cell with
    status, observed, ok and evidence."""
    status = int(result.get("status", -1))
    doc = result.get("json") if isinstance(result.get("json"), dict) else {}
    if status == 403 and doc.get("reason") == "Forbidden":
        observed = "forbidden"
    elif 200 <= status < 300:
        observed = "allowed"
    else:
        observed = "error"
    ok = observed == cell["expect"]
    problem = ""
    if ok and observed == "allowed":
        if cell["kind"] and doc.get("kind") != cell["kind"]:
            ok, problem = False, "answered kind %r, not %r" % (doc.get("kind"), cell["kind"])
        elif cell["restart_stamp"]:
            annotations = (((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}
            if annotations.get(RESTART_ANNOTATION) != cell["restart_stamp"]:
                ok, problem = False, "the dry-run answer does not carry the restartedAt annotation"
    out = dict((k, cell[k]) for k in ("team", "user", "namespace", "action", "method", "path", "expect"))
    out.update(status=status, observed=observed, ok=ok,
               evidence=problem or _message(result) if not ok or observed != "allowed" else "")
    return out


def verify_rbac_outcomes(cells, results):
    """verify_rbac_outcome for each cell and its answer, in order."""
    if len(cells) != len(results):
        raise ValueError("%d cells but %d answers" % (len(cells), len(results)))
    return [verify_rbac_outcome(c, r) for c, r in zip(cells, results)]


def verify_rbac_summary(outcomes):
    """Matrix size and every mismatch."""
    return dict(
        cells=len(outcomes),
        allowed=sum(1 for o in outcomes if o["expect"] == "allowed"),
        denied=sum(1 for o in outcomes if o["expect"] == "forbidden"),
        api_calls=len(outcomes),
        passed=sum(1 for o in outcomes if o["ok"]),
        mismatches=[o for o in outcomes if not o["ok"]],
    )


def verify_invoice_problems(body, expected):
    """What is wrong with a GET /invoices body, apart from payment state:
    not a list, missing or unexpected invoices, wrong amounts or fields."""
    if not isinstance(body, list):
        return ["the body is not a JSON list: %s" % json.dumps(body)[:300]]
    problems = []
    want = dict((e["InvoiceId"], e) for e in expected)
    seen = set()
    for inv in body:
        if not isinstance(inv, dict) or set(inv) != {"InvoiceId", "Value", "Currency", "IsPaid"}:
            problems.append("unexpected entry %s" % json.dumps(inv)[:200])
            continue
        iid = inv["InvoiceId"]
        if iid in seen:
            problems.append("invoice %s is listed twice" % iid)
        seen.add(iid)
        if iid not in want:
            problems.append("unexpected invoice %s" % iid)
            continue
        if abs(float(inv["Value"]) - float(want[iid]["Value"])) > 1e-9 or inv["Currency"] != want[iid]["Currency"]:
            problems.append("invoice %s is %s %s, expected %s %s" % (
                iid, inv["Value"], inv["Currency"], want[iid]["Value"], want[iid]["Currency"]))
        if not isinstance(inv["IsPaid"], bool):
            problems.append("invoice %s has a non-boolean IsPaid %r" % (iid, inv["IsPaid"]))
    for iid in sorted(set(want) - seen):
        problems.append("invoice %s is missing" % iid)
    return problems


def verify_unpaid_ids(body):
    """IDs of the invoices a GET /invoices body shows unpaid."""
    if not isinstance(body, list):
        return []
    return sorted(inv.get("InvoiceId") for inv in body if isinstance(inv, dict) and inv.get("IsPaid") is not True)


def verify_payment_log(text):
    """The payments a payment-provider log (slog JSON lines) accepted."""
    entries = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("msg") == "payment accepted":
            entries.append(dict(id=doc.get("id"), value=doc.get("value"), currency=doc.get("currency"),
                                duplicate=bool(doc.get("duplicate")), time=doc.get("time")))
    return entries


def verify_count_by(items, key):
    """{value of key: how many items carry it}."""
    counts = {}
    for item in items:
        counts[item[key]] = counts.get(item[key], 0) + 1
    return counts


def verify_payment_problems(newly_paid, logged, expected):
    """Compare the invoices invoice-app reported paid in this run with the
    payments payment-provider logged in the same time. Every newly paid
    invoice must show up there with its amount (once per replica that paid it)."""
    problems = []
    want = dict((e["InvoiceId"], e) for e in expected)
    paid_counts = verify_count_by([dict(id=i) for i in newly_paid], "id")
    logged_counts = verify_count_by(logged, "id")
    for iid in sorted(paid_counts):
        if logged_counts.get(iid, 0) < paid_counts[iid]:
            problems.append("invoice-app paid %s %d time(s) in this run, payment-provider logged %d" % (
                iid, paid_counts[iid], logged_counts.get(iid, 0)))
    for entry in logged:
        exp = want.get(entry["id"])
        if exp and (entry["currency"] != exp["Currency"] or abs(float(entry["value"] or 0) - float(exp["Value"])) > 1e-9):
            problems.append("payment-provider logged %s as %s %s, expected %s %s" % (
                entry["id"], entry["value"], entry["currency"], exp["Value"], exp["Currency"]))
    return problems


def verify_ready_pods(pods):
    """Names of the pods that run, are Ready and are not being deleted."""
    names = []
    for pod in pods or []:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        if ready and status.get("phase") == "Running" and not meta.get("deletionTimestamp"):
            names.append(meta.get("name"))
    return sorted(names)


def verify_selector(labels):
    """['key=value', ...] for a matchLabels dict, as k8s_info's label_selectors takes it."""
    return ["%s=%s" % (k, labels[k]) for k in sorted(labels or {})]


def verify_exposed_services(services):
    """The Services that can be reached from outside the cluster: NodePort,
    LoadBalancer or ExternalName types, external IPs, or node ports."""
    exposed = []
    for svc in services or []:
        spec = svc.get("spec") or {}
        reasons = []
        if spec.get("type", "ClusterIP") != "ClusterIP":
            reasons.append("type %s" % spec.get("type"))
        if spec.get("externalIPs"):
            reasons.append("externalIPs %s" % ",".join(spec["externalIPs"]))
        node_ports = [str(p["nodePort"]) for p in spec.get("ports") or [] if p.get("nodePort")]
        if node_ports:
            reasons.append("nodePort %s" % ",".join(node_ports))
        if ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress"):
            reasons.append("load balancer ingress")
        if reasons:
            exposed.append(dict(name=(svc.get("metadata") or {}).get("name"), reasons=reasons))
    return exposed


def verify_label_values(objects, key):
    """The value of label key on each object ('' where it is missing).
    Jinja's map(attribute=) would split a key such as
    pod-security.kubernetes.io/enforce at its dots."""
    return [((o.get("metadata") or {}).get("labels") or {}).get(key, "") for o in objects or []]


def verify_pod_phases(pods):
    """'name=phase' for each pod, for evidence."""
    return ["%s=%s%s" % ((p.get("metadata") or {}).get("name"), (p.get("status") or {}).get("phase"),
                         " (terminating)" if (p.get("metadata") or {}).get("deletionTimestamp") else "")
            for p in pods or []]


def verify_join_counts(values):
    """'I1 x3, I2 x3' for a list of values, or 'none'."""
    counts = verify_count_by([dict(v=v) for v in values or []], "v")
    return ", ".join("%s x%d" % (k, counts[k]) for k in sorted(counts)) or "none"


def verify_replica_problems(results, expected, want_paid):
    """Problems in GET /invoices answers collected per replica (module
    results whose item is the pod name): a status other than 200, a wrong
    body, and, when want_paid, any unpaid invoice."""
    problems = []
    for res in results or []:
        pod = res.get("item")
        if res.get("status") != 200:
            problems.append("replica %s answered %s %s: %s" % (pod, res.get("status"), res.get("reason", ""),
                                                                (res.get("body") or "")[:300]))
            continue
        body = res.get("json")
        problems.extend("replica %s: %s" % (pod, p) for p in verify_invoice_problems(body, expected))
        unpaid = verify_unpaid_ids(body)
        if want_paid and unpaid:
            problems.append("replica %s still shows %s unpaid" % (pod, ", ".join(unpaid)))
    return problems


def verify_probe_plan(catalogue, selected, enforced, invoice_app_labels, base_labels, probe_label,
                      dns_name, urls, timeout, attempts):
    """The probe pods to run: for each selected catalogue entry its
    namespace, labels, expectation and one container per request (`dns`,
    then one `http-*` container per entry of urls). A request the policies
    must stop gets one attempt; one that must connect gets `attempts`."""
    known = [entry["name"] for entry in catalogue]
    unknown = sorted(set(selected) - set(known))
    if unknown:
        raise ValueError("unknown probe(s) %s; known: %s" % (", ".join(unknown), ", ".join(known)))
    plan = []
    for entry in catalogue:
        if entry["name"] not in selected:
            continue
        expect = "blocked" if entry["blocked"] and enforced else "connect"
        labels = dict(base_labels)
        if entry["as_invoice_app"]:
            labels.update(invoice_app_labels)
        else:
            labels["app.kubernetes.io/name"] = "netprobe"
        labels[probe_label] = entry["name"]
        common = ["-timeout", "%ds" % int(timeout)]
        http_attempts = 1 if expect == "blocked" else int(attempts)
        containers = [dict(name="dns", args=common + ["-attempts", str(int(attempts)), "dns", dns_name])]
        for name in sorted(urls):
            containers.append(dict(name=name, args=common + ["-attempts", str(http_attempts), "http", "GET", urls[name]]))
        plan.append(dict(name=entry["name"], namespace=entry["namespace"], pod="verify-probe-" + entry["name"],
                         labels=labels, expect=expect, as_invoice_app=bool(entry["as_invoice_app"]),
                         containers=containers))
    return plan


def verify_probe_log_requests(probes):
    """One log request per probe container, in plan order."""
    return [dict(path="/api/v1/namespaces/%s/pods/%s/log" % (p["namespace"], p["pod"]), query={"container": c["name"]})
            for p in probes for c in p["containers"]]


def verify_probe_verdicts(probes, pods, responses):
    """verify_probe_verdict for every planned probe, given the probe pods
    found and the answers to verify_probe_log_requests(probes)."""
    answers = iter(responses)
    verdicts = []
    for probe in probes:
        logs = dict((c["name"], next(answers).get("body", "")) for c in probe["containers"])
        pod = next((p for p in pods if (p.get("metadata") or {}).get("namespace") == probe["namespace"]
                    and (p.get("metadata") or {}).get("name") == probe["pod"]), {})
        verdicts.append(verify_probe_verdict(pod, logs, probe))
    return verdicts


def verify_pick(mapping, keys):
    """The given keys of a dict, leaving out those whose value is None."""
    return dict((k, mapping[k]) for k in keys if mapping.get(k) is not None)


def verify_url_host(address):
    """An IP address as a URL host: IPv6 in brackets."""
    return "[%s]" % address if ":" in address else address


def _container_results(pod, logs):
    statuses = dict((s.get("name"), s) for s in ((pod.get("status") or {}).get("containerStatuses") or []))
    out = {}
    for name, text in (logs or {}).items():
        state = ((statuses.get(name) or {}).get("state") or {}).get("terminated") or {}
        result = None
        for line in reversed((text or "").strip().splitlines()):
            try:
                result = json.loads(line)
                break
            except ValueError:
                continue
        out[name] = dict(exit_code=state.get("exitCode"), reason=state.get("reason", ""), result=result)
    return out


def verify_probe_verdict(pod, logs, probe):
    """Judge one probe pod. probe: name, namespace, labels, expect (`connect`
    or `blocked`) for its http containers; its dns container must always
    resolve. logs: {container name: log text}."""
    containers = _container_results(pod, logs)
    checks = []
    for name in sorted(containers):
        got = containers[name]
        res = got["result"] if isinstance(got["result"], dict) else {}
        if name == "dns":
            want = "resolves"
            ok = got["exit_code"] == 0 and res.get("ok") is True and bool(res.get("addresses"))
        elif probe["expect"] == "connect":
            want = "connects"
            ok = got["exit_code"] == 0 and res.get("ok") is True and int(res.get("status") or 0) > 0
        else:
            want = "blocked (%s)" % "/".join(BLOCKED_KINDS)
            ok = got["exit_code"] == 1 and res.get("ok") is False and res.get("kind") in BLOCKED_KINDS
        if res.get("ok") is True:
            seen = "answered HTTP %s" % res["status"] if res.get("status") else "resolved to %s" % ",".join(res.get("addresses") or [])
        elif res:
            seen = "%s: %s" % (res.get("kind"), res.get("error"))
        else:
            seen = "no result line (exit %s, %s)" % (got["exit_code"], got["reason"])
        checks.append(dict(container=name, target=res.get("target", ""), want=want, seen=seen,
                           attempts=res.get("attempts"), exit_code=got["exit_code"], ok=ok))
    status = pod.get("status") or {}
    phase = status.get("phase", "")
    waiting = ["%s: %s %s" % (s.get("name"), s["state"]["waiting"].get("reason", ""), s["state"]["waiting"].get("message", ""))
               for s in status.get("containerStatuses") or [] if (s.get("state") or {}).get("waiting")]
    return dict(probe=probe["name"], namespace=probe["namespace"], labels=probe.get("labels", {}),
                expect=probe["expect"], phase=phase, checks=checks, waiting=waiting,
                message=status.get("message", "") or status.get("reason", ""),
                ok=bool(checks) and all(c["ok"] for c in checks) and phase in ("Succeeded", "Failed"))


def verify_start_state(unpaid_before, invoices):
    """One phrase for the replicas' payment state before paying."""
    counts = list(unpaid_before.values())
    if counts and all(len(c) == invoices for c in counts):
        return "every replica started with all %d invoices unpaid" % invoices
    if counts and all(len(c) == 0 for c in counts):
        return "every replica had all invoices paid before this run (a rerun)"
    return "unpaid per replica at the start: %s" % json.dumps(unpaid_before, sort_keys=True)


def verify_probe_summary(verdicts, enforced):
    """One line for the probe verdicts."""
    parts = []
    for v in verdicts:
        outcome = "must connect" if v["expect"] == "connect" else "must be blocked"
        parts.append("%s %s: %s" % (v["probe"], outcome, "as expected" if v["ok"] else "NOT AS EXPECTED"))
    return "%d of %d probes as expected (policies %s): %s" % (
        sum(1 for v in verdicts if v["ok"]), len(verdicts),
        "enforced" if enforced else "expected ABSENT", "; ".join(parts))


def verify_generations(results):
    """metadata.generation of the one object each looped k8s_info result found."""
    return [((r.get("resources") or [{}])[0].get("metadata") or {}).get("generation") for r in results or []]


def verify_psa_summary(namespace_results, privileged_results, compliant_results):
    """One line per team namespace: its enforce label and what admission did."""
    parts = []
    for ns, priv, ok in zip(namespace_results, privileged_results, compliant_results):
        enforce = (verify_label_values(ns.get("resources"), "pod-security.kubernetes.io/enforce") or [""])[0] or "unset"
        parts.append("%s: enforce=%s, privileged pod %s, compliant pod %s" % (
            ns.get("item"), enforce,
            "refused" if priv.get("status") == 403 else "NOT refused (%s)" % priv.get("status"),
            "admitted" if ok.get("status") == 201 else "NOT admitted (%s)" % ok.get("status")))
    return "; ".join(parts)


def verify_table_row(result):
    """One line of the summary table."""
    text = result.get("summary") or ""
    if result["status"] != "PASS":
        text = result.get("evidence") or text
        text = text if len(text) <= 300 else text[:297] + "..."
    return "%-18s %-4s  %s" % (result["name"], result["status"], " ".join(str(text).split()))


class FilterModule(object):
    def filters(self):
        return dict(
            verify_teams=verify_teams,
            verify_table_row=verify_table_row,
            verify_generations=verify_generations,
            verify_psa_summary=verify_psa_summary,
            verify_start_state=verify_start_state,
            verify_probe_summary=verify_probe_summary,
            verify_rbac_cells=verify_rbac_cells,
            verify_rbac_targets=verify_rbac_targets,
            verify_rbac_outcome=verify_rbac_outcome,
            verify_rbac_outcomes=verify_rbac_outcomes,
            verify_rbac_summary=verify_rbac_summary,
            verify_invoice_problems=verify_invoice_problems,
            verify_unpaid_ids=verify_unpaid_ids,
            verify_payment_log=verify_payment_log,
            verify_count_by=verify_count_by,
            verify_ready_pods=verify_ready_pods,
            verify_pod_phases=verify_pod_phases,
            verify_selector=verify_selector,
            verify_label_values=verify_label_values,
            verify_exposed_services=verify_exposed_services,
            verify_join_counts=verify_join_counts,
            verify_replica_problems=verify_replica_problems,
            verify_payment_problems=verify_payment_problems,
            verify_probe_verdict=verify_probe_verdict,
            verify_probe_plan=verify_probe_plan,
            verify_url_host=verify_url_host,
            verify_probe_log_requests=verify_probe_log_requests,
            verify_probe_verdicts=verify_probe_verdicts,
            verify_pick=verify_pick,
        )
