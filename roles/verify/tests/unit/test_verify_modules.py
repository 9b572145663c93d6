"""The role's modules, run by Ansible against a small fake API server."""

import base64
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[4]
BIN = pathlib.Path(sys.executable).parent
TOKEN = "fake-token"
PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
# An empty configuration, so the project's ansible.cfg (callbacks, inventory) stays out.
CONFIG = pathlib.Path(tempfile.mkdtemp()) / "ansible.cfg"
CONFIG.write_text("[defaults]\n")


class FakeAPI(BaseHTTPRequestHandler):
    # Keep-alive, as a real API server does; the client reuses connections.
    protocol_version = "HTTP/1.1"
    csrs = {}
    seen = []
    lists = {}
    lock = threading.Lock()
    in_flight = most_in_flight = 0

    def log_message(self, *args):
        pass

    def reply(self, status, doc=None, text=None):
        raw = (text if text is not None else json.dumps(doc)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if text is not None else "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def handle_any(self):
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        FakeAPI.seen.append(dict(method=self.command, path=url.path, query=query, body=body,
                                 content_type=self.headers.get("Content-Type"), auth=self.headers.get("Authorization"),
                                 accept=self.headers.get("Accept")))
        if self.headers.get("Authorization") != "Bearer " + TOKEN:
            return self.reply(401, {"kind": "Status", "reason": "Unauthorized"})
        path, method = url.path, self.command
        if path.startswith("/slow/"):
            # Counts how many requests are in flight at once.
            with FakeAPI.lock:
                FakeAPI.in_flight += 1
                FakeAPI.most_in_flight = max(FakeAPI.most_in_flight, FakeAPI.in_flight)
            time.sleep(0.3)
            with FakeAPI.lock:
                FakeAPI.in_flight -= 1
            return self.reply(200, {"kind": "Status", "name": path.rsplit("/", 1)[1]})
        if path in FakeAPI.lists:
            return self.reply(200, {"kind": "List", "items": FakeAPI.lists[path]})
        if path == "/api/v1/namespaces/a/pods" and method == "GET":
            return self.reply(200, {"kind": "PodList", "items": []})
        if path == "/api/v1/namespaces/b/pods":
            return self.reply(403, {"kind": "Status", "reason": "Forbidden", "message": 'User "x" cannot list resource "pods"'})
        if path == "/api/v1/namespaces/a/pods/p/log":
            return self.reply(200, text="container=%s since=%s\n" % (query.get("container"), query.get("sinceTime")))
        if path == "/apis/apps/v1/namespaces/a/deployments/d" and method == "PATCH":
            return self.reply(200, {"kind": "Deployment", "dryRun": query.get("dryRun"), "patch": json.loads(body)})
        if path.startswith("/apis/certificates.k8s.io/v1/certificatesigningrequests/"):
            return self.csr(path.rsplit("/", 2), method, body)
        return self.reply(404, {"kind": "Status", "reason": "NotFound"})

    def csr(self, parts, method, body):
        if parts[-1] == "approval" and method == "PUT":
            name = parts[-2]
            doc = json.loads(body)
            conds = doc["status"]["conditions"]
            if conds[-1]["type"] != "Approved" or conds[-1]["status"] != "True":
                return self.reply(422, {"kind": "Status", "message": "bad condition"})
            FakeAPI.csrs[name]["status"]["conditions"] = conds
            if name != "never-signed":
                FakeAPI.csrs[name]["status"]["certificate"] = base64.b64encode(PEM.encode()).decode()
            return self.reply(200, FakeAPI.csrs[name])
        name = parts[-1]
        if name not in FakeAPI.csrs:
            return self.reply(404, {"kind": "Status", "reason": "NotFound"})
        return self.reply(200, FakeAPI.csrs[name])

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAPI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path_factory.mktemp("kube") / "config"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake-cluster", "cluster": {"server": "http://127.0.0.1:%d" % server.server_port,
                                                           "certificate-authority-data": "Q0EK"}}],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake-cluster", "user": "u"}}],
    }))
    yield str(kubeconfig)
    server.shutdown()


def run_module(name, args, check=False):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(PROJECT_ROOT / "collections"),
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_CONFIG=str(CONFIG))
    cmd = [str(BIN / "ansible"), "localhost", "-c", "local", "-i", "localhost,", "-e",
           "ansible_python_interpreter=" + sys.executable, "-m", "invoice_platform.platform." + name, "-a", json.dumps(args)]
    if check:
        cmd.append("--check")
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip(), out.stderr
    doc = json.loads(out.stdout)
    return doc["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_request_returns_success_and_error_statuses(api):
    ok = run_module("verify_kube_request", dict(kubeconfig=api, path="/api/v1/namespaces/a/pods", query={"limit": 5}))
    assert ok["status"] == 200 and ok["json"]["kind"] == "PodList" and not ok["changed"] and not ok.get("failed")
    assert FakeAPI.seen[-1]["query"] == {"limit": "5"}
    no = run_module("verify_kube_request", dict(kubeconfig=api, path="/api/v1/namespaces/b/pods"))
    assert no["status"] == 403 and no["json"]["reason"] == "Forbidden" and not no.get("failed")


def test_request_reads_text_and_sends_patches(api):
    log = run_module("verify_kube_request", dict(kubeconfig=api, path="/api/v1/namespaces/a/pods/p/log",
                                                  query={"container": "dns", "sinceTime": "2025-01-01T00:00:00Z"}))
    assert log["body"] == "container=dns since=2025-01-01T00:00:00Z\n" and "json" not in log
    patch = run_module("verify_kube_request", dict(
        kubeconfig=api, method="PATCH", path="/apis/apps/v1/namespaces/a/deployments/d", query={"dryRun": "All"},
        body={"spec": {"replicas": 3}}, content_type="application/strategic-merge-patch+json"))
    assert patch["json"] == {"kind": "Deployment", "dryRun": "All", "patch": {"spec": {"replicas": 3}}}
    assert FakeAPI.seen[-1]["content_type"] == "application/strategic-merge-patch+json"
    # A dry run changes nothing.
    assert patch["changed"] is False


def test_request_in_check_mode_sends_no_write(api):
    before = len(FakeAPI.seen)
    res = run_module("verify_kube_request", dict(kubeconfig=api, method="POST", path="/api/v1/namespaces/a/pods",
                                                  body={}), check=True)
    assert res["status"] == -1 and res["changed"] and len(FakeAPI.seen) == before


def test_request_reports_connection_failure_as_status(tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    res = run_module("verify_kube_request", dict(kubeconfig=str(kubeconfig), path="/api", timeout=3))
    assert res["status"] == -1 and not res.get("failed") and res["reason"]


def test_csr_approve_appends_approval_and_returns_pem(api):
    FakeAPI.csrs["c1"] = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                          "metadata": {"name": "c1"}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client"},
                          "status": {}}
    res = run_module("verify_csr_approve", dict(kubeconfig=api, name="c1", reason="Because"))
    assert res["changed"] and res["approved"] and res["certificate"] == PEM, res
    put = [s for s in FakeAPI.seen if s["method"] == "PUT"][-1]
    assert put["path"].endswith("/c1/approval")
    cond = json.loads(put["body"])["status"]["conditions"][-1]
    assert (cond["type"], cond["status"], cond["reason"]) == ("Approved", "True", "Because")
    # Approved already: nothing to change.
    again = run_module("verify_csr_approve", dict(kubeconfig=api, name="c1"))
    assert not again["changed"] and again["certificate"] == PEM


def test_csr_approve_fails_on_denied_or_unsigned(api):
    FakeAPI.csrs["denied"] = {"metadata": {"name": "denied"}, "spec": {},
                              "status": {"conditions": [{"type": "Denied", "status": "True", "message": "no"}]}}
    res = run_module("verify_csr_approve", dict(kubeconfig=api, name="denied"))
    assert res["failed"] and "Denied" in res["msg"]
    FakeAPI.csrs["never-signed"] = {"metadata": {"name": "never-signed"}, "spec": {"signerName": "s"}, "status": {}}
    res = run_module("verify_csr_approve", dict(kubeconfig=api, name="never-signed", wait_timeout=2))
    assert res["failed"] and "no certificate was issued" in res["msg"]
    res = run_module("verify_csr_approve", dict(kubeconfig=api, name="missing"))
    assert res["failed"] and "404" in res["msg"]


def test_cluster_info_reads_no_user_data(api, tmp_path):
    res = run_module("verify_cluster_info", dict(kubeconfig=api, context="fake"))
    assert res["cluster"] == "fake-cluster" and res["server"].startswith("http://127.0.0.1:")
    assert res["certificate_authority_data"] == "Q0EK" and TOKEN not in json.dumps(res)
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"CA\n")
    cfg = tmp_path / "config"
    cfg.write_text(json.dumps({"clusters": [{"name": "c", "cluster": {"server": "https://x", "certificate-authority": "ca.crt"}}],
                               "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    res = run_module("verify_cluster_info", dict(kubeconfig=str(cfg), context="c"))
    assert res["certificate_authority_data"] == base64.b64encode(b"CA\n").decode()
    res = run_module("verify_cluster_info", dict(kubeconfig=str(cfg), context="nope"))
    assert res["failed"] and "nope" in res["msg"]


def test_request_batch_answers_in_order_with_per_request_credentials(api, tmp_path):
    bad = tmp_path / "bad-config"
    bad.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": json.loads(open(api).read())["clusters"][0]["cluster"]["server"]}}],
        "users": [{"name": "u", "user": {"token": "wrong"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    res = run_module("verify_kube_request", dict(kubeconfig=api, requests=[
        dict(path="/api/v1/namespaces/a/pods"),
        dict(path="/api/v1/namespaces/b/pods"),
        dict(path="/api/v1/namespaces/a/pods", kubeconfig=str(bad)),
        dict(method="PATCH", path="/apis/apps/v1/namespaces/a/deployments/d", query={"dryRun": "All"},
             body={"spec": {}}, content_type="application/merge-patch+json"),
    ]))
    assert [r["status"] for r in res["responses"]] == [200, 403, 401, 200]
    assert res["responses"][0]["json"]["kind"] == "PodList"
    assert not res["changed"]


def test_request_batch_rejects_relative_paths(api):
    res = run_module("verify_kube_request", dict(kubeconfig=api, requests=[dict(path="api/v1")]))
    assert res["failed"] and "absolute" in res["msg"]


def test_request_port_forward_takes_only_pod_proxy_paths(api):
    # Only a pod's port can be forwarded to; anything else is a result that
    # names the problem, sent nowhere.
    before = len(FakeAPI.seen)
    res = run_module("verify_kube_request", dict(kubeconfig=api, path="/api/v1/namespaces/a/pods", port_forward=True))
    assert res["status"] == -1 and "pod proxy path" in res["reason"] and not res.get("failed")
    assert len(FakeAPI.seen) == before


@pytest.mark.parametrize("parallel", [1, 8])
def test_requests_go_out_together_and_come_back_in_order(api, parallel):
    FakeAPI.most_in_flight = 0
    names = ["r%d" % i for i in range(8)]
    res = run_module("verify_kube_request", dict(kubeconfig=api, parallel=parallel,
                                                 requests=[dict(path="/slow/" + n) for n in names]))
    assert [r["json"]["name"] for r in res["responses"]] == names
    assert all(r["status"] == 200 for r in res["responses"])
    # parallel=1 sends one at a time; the default overlaps them.
    assert FakeAPI.most_in_flight == 1 if parallel == 1 else FakeAPI.most_in_flight > 1


def test_the_action_group_passes_kubeconfig_and_context_through_module_defaults(api, tmp_path):
    """A play names the credentials once, as kubernetes.core's group/k8s does:
    the modules run without kubeconfig or context of their own."""
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "module_defaults": {"group/invoice_platform.platform.kube": {"kubeconfig": api, "context": "fake"}},
        "tasks": [
            {"name": "info", "invoice_platform.platform.verify_cluster_info": {}},
            {"name": "request", "invoice_platform.platform.verify_kube_request": {"path": "/api/v1/namespaces/a/pods"}},
        ],
    }]
    path = tmp_path / "play.yml"
    path.write_text(json.dumps(play))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(PROJECT_ROOT / "collections"),
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_CONFIG=str(CONFIG))
    out = subprocess.run([str(BIN / "ansible-playbook"), "-c", "local", "-i", "localhost,", "-e",
                          "ansible_python_interpreter=" + sys.executable, str(path)],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    tasks = {t["task"]["name"]: t["hosts"]["localhost"] for t in json.loads(out.stdout)["plays"][0]["tasks"]}
    for result in tasks.values():
        assert {k: result["invocation"]["module_args"][k] for k in ("kubeconfig", "context")} == {
            "kubeconfig": api, "context": "fake"}
    assert tasks["info"]["cluster"] == "fake-cluster"
    assert tasks["request"]["status"] == 200 and tasks["request"]["json"]["kind"] == "PodList"


def test_every_module_that_talks_to_kubernetes_is_in_the_action_group():
    """A module that opens an API client (kubeconfig and context) must join the
    group, or module_defaults would skip it and every call would need the
    credentials by hand. Preflight only checks that a kubeconfig file exists."""
    import yaml

    groups = yaml.safe_load((PROJECT_ROOT / "meta" / "runtime.yml").read_text())["action_groups"]
    takes_kubeconfig = set()
    for module in (PROJECT_ROOT / "plugins" / "modules").glob("*.py"):
        source = module.read_text()
        doc = yaml.safe_load(source.split('DOCUMENTATION = r"""', 1)[1].split('"""', 1)[0])
        if ({"kubeconfig", "context"} <= set(doc.get("options") or {})
                or "invoice_platform.platform.kube" in doc.get("extends_documentation_fragment", [])):
            takes_kubeconfig.add(module.stem)
    assert sorted(groups["kube"]) == sorted(takes_kubeconfig) == [
        "kube_objects_apply", "verify_cluster_info", "verify_cluster_state", "verify_csr_approve", "verify_kube_request"]


def meta(name, rv, namespace=None, uid=None):
    out = {"metadata": {"name": name, "resourceVersion": str(rv), "uid": uid or "uid-" + name}}
    if namespace:
        out["metadata"]["namespace"] = namespace
    return out


STATE_LISTS = [dict(path="/api/v1/namespaces"), dict(path="/api/v1/pods", versioned=True),
               dict(path="/api/v1/nodes", versioned=False)]


def state(api, **args):
    return run_module("verify_cluster_state", dict(kubeconfig=api, lists=STATE_LISTS, **args))


def test_cluster_state_digests_identity_and_version_asking_for_metadata_only(api):
    FakeAPI.lists = {
        "/api/v1/namespaces": [meta("payments", 5), meta("probe", 6)],
        "/api/v1/pods": [meta("p-1", 10, "payments"), meta("x", 11, "probe")],
        "/api/v1/nodes": [meta("n1", 100)],
    }
    FakeAPI.seen = []
    first = state(api, exclude_namespaces=["probe"])
    assert first["changed"] is False
    # The excluded namespace is left out, and so are the objects in it.
    assert first["objects"] == {
        "/api/v1/namespaces payments": "uid-payments 5",
        "/api/v1/pods payments/p-1": "uid-p-1 10",
        "/api/v1/nodes n1": "uid-n1",
    }
    assert all("as=PartialObjectMetadataList" in seen["accept"] for seen in FakeAPI.seen)
    # A node's status rewrite (its resourceVersion alone) changes nothing...
    FakeAPI.lists["/api/v1/nodes"] = [meta("n1", 101)]
    # ...nor does anything in the excluded namespace.
    FakeAPI.lists["/api/v1/pods"] = [meta("p-1", 10, "payments"), meta("x", 12, "probe")]
    assert state(api, exclude_namespaces=["probe"])["sha256"] == first["sha256"]
    # A write to a pod does, and so does a pod recreated under the same name.
    FakeAPI.lists["/api/v1/pods"] = [meta("p-1", 13, "payments")]
    assert state(api, exclude_namespaces=["probe"])["sha256"] != first["sha256"]
    FakeAPI.lists["/api/v1/pods"] = [meta("p-1", 10, "payments", uid="other")]
    assert state(api, exclude_namespaces=["probe"])["sha256"] != first["sha256"]
    # Without the exclusion, the probe namespace counts.
    assert "/api/v1/namespaces probe" in state(api)["objects"]


def test_cluster_state_fails_when_a_list_cannot_be_read(api):
    FakeAPI.lists = {"/api/v1/namespaces": [], "/api/v1/pods": []}
    res = run_module("verify_cluster_state", dict(kubeconfig=api, lists=STATE_LISTS))
    assert res["failed"] is True
    assert "/api/v1/nodes: 404" in res["msg"]
    res = run_module("verify_cluster_state", dict(kubeconfig=api, lists=[dict(path="api/v1/pods")]))
    assert res["failed"] is True and "absolute path" in res["msg"]
