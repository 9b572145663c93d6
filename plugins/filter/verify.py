# -*- coding: utf-8 -*-
"""Filters that turn the verify role's raw observations into verdicts.

Kept in Python so the decisions (what counts as paid, allowed, blocked) are
unit-tested without a cluster: roles/verify/tests/unit/.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json

# A blocked connection: the policy dropped (timeout) or rejected it. A DNS
# failure or a reset after connecting is not evidence of a NetworkPolicy.
BLOCKED_KINDS = ("timeout", "refused", "unreachable")
# A container the runtime could not start ran no request: no evidence
# either way, so its probes are run again once (probes.yml's callers).
NOT_STARTED_REASONS = ("StartError", "ContainerCannotRun")

# The dry-run restart's annotation, as `kubectl rollout restart` sets it.
RESTART_ANNOTATION = "kubectl.kubernetes.io/restartedAt"


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


def verify_rbac_cells(teams, targets, matrix, credentials_dir, restart_stamp):
    """Every (team, namespace, action) to try, with the expected outcome.

    targets: one dict per namespace: namespace, pod (a pod to read logs of),
    deployment (a deployment to restart). matrix: the role's data
    (vars/main.yml, __verify_rbac_matrix), `namespaced` actions tried in
    every team namespace and `cluster` actions tried once per team; `rule`
    own: allowed in the team's own namespace only; never: forbidden
    everywhere."""
    cells = []
    for spec in matrix["namespaced"] + matrix["cluster"]:
        if spec.get("rule") not in ("own", "never"):
            raise ValueError("RBAC matrix action %r: rule must be own or never, not %r" % (spec.get("action"), spec.get("rule")))
        if spec.get("body") not in (None, "restart", "leak"):
            raise ValueError("RBAC matrix action %r: body must be restart or leak, not %r" % (spec.get("action"), spec.get("body")))
    for team in teams:
        kubeconfig = "%s/%s.kubeconfig" % (credentials_dir.rstrip("/"), team["team"])
        for target in targets:
            own = target["namespace"] == team["namespace"]
            for spec in matrix["namespaced"]:
                cell = _cell(team, kubeconfig, spec, target["namespace"],
                             spec["rule"] == "own" and own, target, restart_stamp)
                cells.append(cell)
        for spec in matrix["cluster"]:
            cells.append(_cell(team, kubeconfig, spec, "(cluster)", False, {}, restart_stamp))
    return cells


def _cell(team, kubeconfig, spec, namespace, allowed, target, restart_stamp):
    path = spec["path"].format(ns=namespace, pod=target.get("pod", ""), deployment=target.get("deployment", ""))
    body = None
    if spec.get("body") == "restart":
        body = {"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: restart_stamp}}}}}
    if spec.get("body") == "leak":
        deployment = target.get("deployment", "")
        body = {"spec": {"template": {"spec": {"containers": [{"name": deployment, "env": [
            {"name": "LEAKED", "valueFrom": {"secretKeyRef": {"name": deployment + "-db", "key": "password"}}}]}]}}}}
    return dict(
        team=team["team"], user=team["user"], kubeconfig=kubeconfig, namespace=namespace,
        action=spec["action"], method=spec["method"], path=path, query=dict(spec.get("query", {})),
        body=body, content_type=spec.get("content_type", "application/json"),
        kind=spec.get("kind", ""), restart_stamp=restart_stamp if spec.get("body") == "restart" else "",
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
    not a list, malformed or duplicate entries, an expected invoice missing
    or with another amount. Other invoices (created by users or earlier
    runs) are allowed."""
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
        if not isinstance(inv["IsPaid"], bool):
            problems.append("invoice %s has a non-boolean IsPaid %r" % (iid, inv["IsPaid"]))
        if iid in want and not _same_amount(inv, want[iid]):
            problems.append("invoice %s is %s %s, expected %s %s" % (
                iid, inv["Value"], inv["Currency"], want[iid]["Value"], want[iid]["Currency"]))
    for iid in sorted(set(want) - seen):
        problems.append("invoice %s is missing" % iid)
    return problems


def _same_amount(got, want, value="Value", currency="Currency"):
    """Same currency, and amounts equal to the cent."""
    try:
        return got[currency] == want[currency] and round(float(got[value]) * 100) == round(float(want[value]) * 100)
    except (KeyError, TypeError, ValueError):
        return False


def verify_created_problems(created, asked):
    """Each POST /invoices answer against what was asked: an ID, the same
    amount and currency, unpaid; and no ID handed out twice."""
    problems = []
    if len(created or []) != len(asked or []):
        return ["asked for %d invoices, got %d answers" % (len(asked or []), len(created or []))]
    ids = [c.get("InvoiceId") if isinstance(c, dict) else None for c in created]
    for got, want in zip(created, asked):
        if not isinstance(got, dict) or not got.get("InvoiceId"):
            problems.append("answer without an InvoiceId: %s" % json.dumps(got)[:200])
            continue
        if not _same_amount(got, {"Value": want["value"], "Currency": want["currency"]}):
            problems.append("%s is %s %s, asked for %s %s" % (
                got["InvoiceId"], got.get("Value"), got.get("Currency"), want["value"], want["currency"]))
        if got.get("IsPaid") is not False:
            problems.append("%s is not created unpaid: IsPaid %r" % (got["InvoiceId"], got.get("IsPaid")))
    for iid in sorted(set(i for i in ids if i and ids.count(i) > 1)):
        problems.append("invoice ID %s was handed out twice" % iid)
    return problems


def verify_replicas_disagree(results):
    """Replicas share one database, so their GET /invoices answers must be
    identical; name every replica whose list differs from the first one's."""
    answers = [(r.get("item"), r.get("json")) for r in results or [] if r.get("status") == 200]
    if len(answers) < 2:
        return []
    first_pod, first = answers[0]
    canon = json.dumps(first, sort_keys=True)
    return ["replica %s lists other invoices or states than replica %s" % (pod, first_pod)
            for pod, body in answers[1:] if json.dumps(body, sort_keys=True) != canon]


def verify_as_request(path):
    """A verify_kube_request `requests` entry for a GET of path."""
    return {"path": path}


def verify_ledger_problems(responses, invoices):
    """GET /payments/{id} answers (in the order of invoices) against the
    invoices: each must be booked, under its ID, with its amount and currency."""
    problems = []
    if len(responses or []) != len(invoices or []):
        return ["%d ledger answers for %d invoices" % (len(responses or []), len(invoices or []))]
    for resp, inv in zip(responses, invoices):
        iid = inv["InvoiceId"]
        if resp.get("status") != 200:
            problems.append("%s: the ledger answered %s %s" % (iid, resp.get("status"), (resp.get("body") or "")[:200]))
            continue
        booking = resp.get("json")
        if not isinstance(booking, dict) or booking.get("id") != iid:
            problems.append("%s: the ledger answered %s" % (iid, json.dumps(booking)[:200]))
        elif not _same_amount({"Value": booking.get("value"), "Currency": booking.get("currency")}, inv):
            problems.append("%s is booked as %s %s, the invoice is %s %s" % (
                iid, booking.get("value"), booking.get("currency"), inv["Value"], inv["Currency"]))
    return problems


def verify_booking_problems(booked_ids, invoice_ids):
    """Bookings (payment IDs logged as new) against invoices paid once:
    each invoice booked exactly once."""
    counts = verify_count_by([dict(id=i) for i in booked_ids or []], "id")
    return ["%s was booked %d times, expected exactly once" % (iid, counts.get(iid, 0))
            for iid in invoice_ids or [] if counts.get(iid, 0) != 1]


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


def _check_selected(catalogue, selected):
    known = [entry["name"] for entry in catalogue]
    unknown = sorted(set(selected or []) - set(known))
    if unknown:
        raise ValueError("unknown probe(s) %s; known: %s" % (", ".join(unknown), ", ".join(known)))


def _probe_labels(base_labels, worn, probe_label, name):
    """The probe pod's labels: the base set, then either the labels it
    wears (another workload's) or a netprobe name of its own."""
    labels = dict(base_labels)
    labels.update({"app.kubernetes.io/name": "netprobe"} if worn is None else worn)
    labels[probe_label] = name
    return labels


def _request_args(expect, attempts, settle, hold):
    """netprobe's attempt flags for one request: retried until it connects,
    or, where it must be blocked, a wait of `settle` seconds and then
    `hold` attempts that must all fail."""
    if expect != "blocked":
        return ["-attempts", str(max(int(attempts), 1))]
    return ["-attempts", str(max(int(hold), 1))] + (["-delay", "%ds" % int(settle)] if int(settle) > 0 else [])


def _timing(timing):
    """timeout, attempts, settle and hold from a timing dict (settle 0 and
    hold 1 when left out)."""
    missing = [key for key in ("timeout", "attempts") if key not in (timing or {})]
    if missing:
        raise ValueError("timing lacks %s" % ", ".join(missing))
    return int(timing["timeout"]), int(timing["attempts"]), int(timing.get("settle", 0)), int(timing.get("hold", 1))


def verify_probe_plan(catalogue, *, selected, enforced, invoice_app_labels, base_labels, probe_label, dns_name, urls,
                      timing):
    """The probe pods to run: for each selected catalogue entry its
    namespace, labels, expectation and one container per request (`dns`,
    then one `http-*` container per entry of urls). timing: timeout (seconds
    per request), attempts, settle, hold. A request that must connect gets
    `attempts`, a second apart; one the policies must stop waits `settle`
    seconds and must then stay blocked for `hold` attempts (see
    verify_tcp_probe_plan). Entries of the catalogue without `urls` (host
    probes, planned by verify_tcp_probe_plan) are left out."""
    timeout, attempts, settle, hold = _timing(timing)
    _check_selected(catalogue, selected)
    plan = []
    for entry in catalogue:
        if entry["name"] not in selected or "targets" in entry:
            continue
        expect = "blocked" if entry["blocked"] and enforced else "connect"
        labels = _probe_labels(base_labels, invoice_app_labels if entry["as_invoice_app"] else None,
                               probe_label, entry["name"])
        common = ["-timeout", "%ds" % int(timeout)]
        http = _request_args(expect, attempts, settle, hold)
        containers = [dict(name="dns", args=common + ["-attempts", str(int(attempts)), "dns", dns_name])]
        for name in sorted(urls):
            containers.append(dict(name=name, args=common + http + ["http", "GET", urls[name]]))
        plan.append(dict(name=entry["name"], namespace=entry["namespace"], pod="verify-probe-" + entry["name"],
                         labels=labels, expect=expect, as_invoice_app=bool(entry["as_invoice_app"]),
                         containers=containers, settle=int(settle) if expect == "blocked" else 0))
    return plan


def verify_tcp_probe_plan(catalogue, *, enforced, wears, base_labels, probe_label, targets, timing, selected=None):
    """Probe pods that each open TCP connections to some targets, with one
    expectation per pod. catalogue entries: name, namespace, wears (a key of
    wears, whose labels the pod carries, or none), targets (keys of
    targets), blocked (the policies must stop every target). A target is
    one host:port or a list of them (one container each); a key whose list
    is empty probes nothing and is named in the entry's `absent`.

    Propagation is told from enforcement: a probe that must connect tries
    `attempts` times a second apart, until the policy engine has let its
    address in; one that must be blocked waits `settle` seconds, until the
    engine has its own pod's rules, and then must stay blocked for `hold`
    attempts a second apart (timing: timeout, attempts, settle, hold, as
    for verify_probe_plan). selected: the entry names to plan (all when
    None); entries without targets (verify_probe_plan's) are left out."""
    timeout, attempts, settle, hold = _timing(timing)
    _check_selected(catalogue, selected)
    plan = []
    for entry in catalogue:
        if (selected is not None and entry["name"] not in selected) or "targets" not in entry:
            continue
        unknown = [t for t in entry["targets"] if t not in targets]
        if unknown or (entry.get("wears") and entry["wears"] not in wears):
            raise ValueError("probe %s names unknown targets %s or labels %s" % (
                entry["name"], ", ".join(unknown), entry.get("wears")))
        expect = "blocked" if entry["blocked"] and enforced else "connect"
        labels = _probe_labels(base_labels, wears[entry["wears"]] if entry.get("wears") else None,
                               probe_label, entry["name"])
        common = ["-timeout", "%ds" % int(timeout)] + _request_args(expect, attempts, settle, hold)
        containers, absent = [], []
        for key in entry["targets"]:
            addresses = targets[key] if isinstance(targets[key], list) else [targets[key]]
            if not addresses:
                absent.append(key)
            base = "tcp-" + key.replace("_", "-")
            for index, address in enumerate(addresses):
                name = base if len(addresses) == 1 else "%s-%d" % (base, index + 1)
                containers.append(dict(name=name, args=common + ["tcp", address]))
        if not containers:
            raise ValueError("probe %s has no target to probe (absent: %s)" % (entry["name"], ", ".join(absent)))
        plan.append(dict(name=entry["name"], namespace=entry["namespace"], pod="verify-probe-" + entry["name"],
                         labels=labels, expect=expect, as_invoice_app=entry.get("wears") == "invoice_app",
                         containers=containers, absent=absent, settle=int(settle) if expect == "blocked" else 0))
    return plan


def _url_address(url):
    """host:port of an https URL (IPv6 hosts stay bracketed)."""
    rest = url.split("://", 1)[-1].split("/", 1)[0]
    return rest if rest.rsplit(":", 1)[-1].isdigit() and not rest.endswith("]") else None


def verify_host_targets(kubernetes_service, endpoint_slices, nodes, etcd_pods):
    """The host-network destinations a pod's egress policy must also cover,
    as lists of host:port: the API server through its Service
    (`apiserver_service`) and at its endpoints, which are node addresses
    (`apiserver_node`); each node's kubelet (`kubelet`); each etcd member's
    client URL, as kubeadm annotates its static pod (`etcd`, empty on a
    cluster whose etcd is not visible, such as a managed control plane)."""
    spec = kubernetes_service.get("spec") or {}
    https = [p for p in spec.get("ports") or [] if p.get("name") == "https"] or spec.get("ports") or []
    service = ["%s:%s" % (verify_url_host(ip), https[0]["port"])
               for ip in (spec.get("clusterIPs") or [spec.get("clusterIP")]) if ip and ip != "None" and https]
    apiserver = []
    for eps in endpoint_slices:
        ports = [p["port"] for p in eps.get("ports") or [] if p.get("name") == "https" and p.get("port")]
        for endpoint in eps.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            apiserver += ["%s:%s" % (verify_url_host(a), port) for a in endpoint.get("addresses") or [] for port in ports]
    kubelet = []
    for node in nodes:
        status = node.get("status") or {}
        port = (((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port"))
        kubelet += ["%s:%s" % (verify_url_host(a["address"]), port)
                    for a in status.get("addresses") or [] if a.get("type") == "InternalIP" and port]
    etcd = []
    for pod in etcd_pods:
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        urls = annotations.get("kubeadm.kubernetes.io/etcd.advertise-client-urls", "")
        etcd += [a for a in (_url_address(u.strip()) for u in urls.split(",") if u.strip()) if a]
    return dict(apiserver_service=sorted(set(service)), apiserver_node=sorted(set(apiserver)),
                kubelet=sorted(set(kubelet)), etcd=sorted(set(etcd)))


def verify_probe_log_requests(probes):
    """One log request per probe container, in plan order."""
    return [dict(path="/api/v1/namespaces/%s/pods/%s/log" % (p["namespace"], p["pod"]), query={"container": c["name"]})
            for p in probes for c in p["containers"]]


def verify_probe_cleanup_requests(namespaces, label):
    """One request per namespace that deletes every pod there carrying the
    probe label: this run's probes and any an interrupted run left behind."""
    return [dict(method="DELETE", path="/api/v1/namespaces/%s/pods" % namespace, query={"labelSelector": label})
            for namespace in namespaces]


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
        out[name] = dict(exit_code=state.get("exitCode"), reason=state.get("reason", ""),
                         message=" ".join(str(state.get("message") or "").split())[:300], result=result)
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
            ok = got["exit_code"] == 0 and res.get("ok") is True and (
                res.get("mode") == "tcp" or int(res.get("status") or 0) > 0)
        else:
            want = "blocked (%s)" % "/".join(BLOCKED_KINDS)
            ok = got["exit_code"] == 1 and res.get("ok") is False and res.get("kind") in BLOCKED_KINDS
        if res.get("ok") is True and res.get("mode") == "tcp":
            seen = "connected"
        elif res.get("ok") is True:
            seen = "answered HTTP %s" % res["status"] if res.get("status") else "resolved to %s" % ",".join(res.get("addresses") or [])
        elif res:
            seen = "%s: %s" % (res.get("kind"), res.get("error"))
        else:
            seen = "no result line (exit %s, %s%s)" % (got["exit_code"], got["reason"],
                                                       ": " + got["message"] if got["message"] else "")
        checks.append(dict(container=name, target=res.get("target", ""), want=want, seen=seen,
                           attempts=res.get("attempts"), elapsed_ms=res.get("elapsed_ms"),
                           exit_code=got["exit_code"], ok=ok,
                           not_started=not res and got["reason"] in NOT_STARTED_REASONS))
    status = pod.get("status") or {}
    phase = status.get("phase", "")
    waiting = ["%s: %s %s" % (s.get("name"), s["state"]["waiting"].get("reason", ""), s["state"]["waiting"].get("message", ""))
               for s in status.get("containerStatuses") or [] if (s.get("state") or {}).get("waiting")]
    return dict(probe=probe["name"], namespace=probe["namespace"], labels=probe.get("labels", {}),
                expect=probe["expect"], phase=phase, checks=checks, waiting=waiting, absent=probe.get("absent", []),
                settle=probe.get("settle", 0),
                message=status.get("message", "") or status.get("reason", ""),
                not_started=[c["container"] for c in checks if c["not_started"]],
                ok=bool(checks) and all(c["ok"] for c in checks) and phase in ("Succeeded", "Failed"))


def verify_probe_summary(verdicts, enforced):
    """One line for the probe verdicts: for a probe that must connect, how
    long its slowest request took to get through (policy propagation); for
    one that must be blocked, how many attempts each request was held."""
    parts = []
    for v in verdicts:
        checks = [c for c in v["checks"] if c["container"] != "dns"]
        if v["expect"] == "connect":
            took = max([c.get("elapsed_ms") or 0 for c in checks] or [0]) / 1000.0
            outcome = "must connect (within %.1f s)" % took
        else:
            held = min([c.get("attempts") or 0 for c in checks] or [0])
            outcome = "must be blocked (held %d attempts)" % held
        absent = (" [no %s]" % ", ".join(v["absent"])) if v.get("absent") else ""
        parts.append("%s %s: %s%s" % (v["probe"], outcome, "as expected" if v["ok"] else "NOT AS EXPECTED", absent))
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
    """One line of the summary table; a result carried forward by a reuse
    says when it was proved."""
    text = result.get("summary") or ""
    if result["status"] != "PASS":
        text = result.get("evidence") or text
        text = text if len(text) <= 300 else text[:297] + "..."
    if result.get("proved"):
        text = "(proved %s, cluster unchanged) %s" % (result["proved"], text)
    return "%-18s %-4s  %s" % (result["name"], result["status"], " ".join(str(text).split()))


# Differences named when a fingerprint does not match; the count says how many.
CHANGES_SHOWN = 10


def _state_changes(before, after):
    """What differs between two verify_cluster_state objects maps."""
    lines = ["removed " + key for key in sorted(set(before) - set(after))]
    lines += ["added " + key for key in sorted(set(after) - set(before))]
    return lines + ["changed " + key for key in sorted(set(after) & set(before)) if after[key] != before[key]]


def _utc(stamp):
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")


def verify_reuse_decision(report_text, state, checks, inputs, max_age, now):
    """Whether the last report, as text, still proves the cluster: it passed,
    as a full verification or a reuse of one, every check in `checks`, with
    the same `inputs` digest, against the same `state` (the
    verify_cluster_state result, compared with the report's objects), and
    was proved at most `max_age` seconds before `now`.

    Returns reuse (bool), reason (one line) and, when reused, the report's
    proved time, results (the checks, each marked with that time) and
    rbac_matrix."""
    def refuse(reason):
        return dict(reuse=False, reason=reason)

    if not report_text:
        return refuse("no earlier report")
    try:
        report = json.loads(report_text)
    except ValueError:
        return refuse("the earlier report is not JSON")
    if not isinstance(report, dict) or not report.get("proved") or not isinstance(report.get("state"), dict):
        return refuse("the earlier report records no proof to reuse")
    if report.get("result") != "PASS":
        return refuse("the last verification did not pass")
    if report.get("inputs") != inputs:
        return refuse("the verification's inputs or tasks changed since")
    passed = dict((c.get("name"), c) for c in report.get("checks") or [] if c.get("status") == "PASS")
    unproved = [name for name in checks if name not in passed]
    if unproved:
        return refuse("the last verification did not prove %s" % ", ".join(unproved))
    try:
        age = (_utc(now) - _utc(report["proved"])).total_seconds()
    except (TypeError, ValueError):
        return refuse("the earlier report's proof time is unreadable")
    if not 0 <= age <= int(max_age):
        return refuse("the last full verification is %d s old, more than %d s" % (age, int(max_age)))
    if report["state"].get("sha256") != state.get("sha256"):
        changes = _state_changes(report["state"].get("objects") or {}, state.get("objects") or {})
        return refuse("%d object(s) differ from the last full verification: %s%s" % (
            len(changes), "; ".join(changes[:CHANGES_SHOWN]), "; ..." if len(changes) > CHANGES_SHOWN else ""))
    results = [dict(passed[name], proved=report["proved"]) for name in checks]
    return dict(reuse=True, proved=report["proved"], results=results, rbac_matrix=report.get("rbac_matrix") or {},
                reason="the last full verification, %s, passed %s against the same %d objects" % (
                    report["proved"], ", ".join(checks), len(state.get("objects") or {})))


class FilterModule(object):
    # Only what the role's tasks call; the helpers they build on stay plain
    # functions (unit-tested all the same).
    def filters(self):
        return dict(
            verify_teams=verify_teams,
            verify_table_row=verify_table_row,
            verify_generations=verify_generations,
            verify_psa_summary=verify_psa_summary,
            verify_probe_summary=verify_probe_summary,
            verify_rbac_cells=verify_rbac_cells,
            verify_rbac_targets=verify_rbac_targets,
            verify_rbac_outcomes=verify_rbac_outcomes,
            verify_rbac_summary=verify_rbac_summary,
            verify_invoice_problems=verify_invoice_problems,
            verify_unpaid_ids=verify_unpaid_ids,
            verify_payment_log=verify_payment_log,
            verify_ready_pods=verify_ready_pods,
            verify_pod_phases=verify_pod_phases,
            verify_selector=verify_selector,
            verify_label_values=verify_label_values,
            verify_exposed_services=verify_exposed_services,
            verify_join_counts=verify_join_counts,
            verify_replica_problems=verify_replica_problems,
            verify_created_problems=verify_created_problems,
            verify_replicas_disagree=verify_replicas_disagree,
            verify_as_request=verify_as_request,
            verify_ledger_problems=verify_ledger_problems,
            verify_booking_problems=verify_booking_problems,
            verify_probe_plan=verify_probe_plan,
            verify_tcp_probe_plan=verify_tcp_probe_plan,
            verify_host_targets=verify_host_targets,
            verify_url_host=verify_url_host,
            verify_probe_log_requests=verify_probe_log_requests,
            verify_probe_cleanup_requests=verify_probe_cleanup_requests,
            verify_probe_verdicts=verify_probe_verdicts,
            verify_pick=verify_pick,
            verify_reuse_decision=verify_reuse_decision,
        )
