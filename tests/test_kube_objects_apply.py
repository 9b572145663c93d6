"""kube_objects_apply: the order of the writes, what counts as a change, the
check-mode dry run, deletion and the rollout wait, against an in-memory
stand-in for the Kubernetes dynamic client. The cluster scenarios run the
module for real (site.yml, its idempotence step, and --check)."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("kube_objects_apply", PROJECT_ROOT / "plugins/modules/kube_objects_apply.py")
mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(mod)


class NotFound(Exception):
    pass


class Result(dict):
    def to_dict(self) -> dict:
        return copy.deepcopy(dict(self))


class Resource:
    def __init__(self, kind: str) -> None:
        self.kind = kind


class FakeClient:
    """Objects by (kind, namespace, name); every write bumps resourceVersion
    and managedFields, as the API server does even when nothing changes."""

    def __init__(self, *objects: dict) -> None:
        self.store: dict[tuple, dict] = {}
        self.writes: list[tuple] = []
        self.version = 0
        self.resources = self
        for obj in objects:
            self._store(obj)

    def get(self, resource=None, name=None, namespace=None, api_version=None, kind=None):
        if resource is None:  # resources.get(api_version=, kind=)
            return Resource(kind)
        key = (resource.kind, namespace, name)
        if key not in self.store:
            raise NotFound(key)
        return Result(self.store[key])

    def _store(self, obj: dict, dry_run: str | None = None) -> Result:
        self.version += 1
        out = copy.deepcopy(obj)
        meta = out.setdefault("metadata", {})
        meta["resourceVersion"] = str(self.version)
        meta["managedFields"] = [{"manager": "x", "time": str(self.version)}]
        if not dry_run:
            self.store[(out["kind"], meta.get("namespace"), meta["name"])] = out
        return Result(out)

    def server_side_apply(self, resource, body, name, namespace, field_manager, force_conflicts, dry_run):
        self.writes.append(("apply", body["kind"], name, dry_run))
        current = self.store.get((body["kind"], namespace, name), {})
        merged = {**copy.deepcopy(current), **copy.deepcopy(body)}
        merged["metadata"] = {**current.get("metadata", {}), **body["metadata"]}
        return self._store(merged, dry_run)

    def create(self, resource, body, namespace, dry_run):
        self.writes.append(("create", body["kind"], body["metadata"]["name"], dry_run))
        return self._store(body, dry_run)

    def patch(self, resource, body, name, namespace, content_type, dry_run):
        self.writes.append(("patch", body["kind"], name, dry_run))
        current = self.store[(body["kind"], namespace, name)]
        return self._store({**current, **body, "metadata": {**current["metadata"], **body["metadata"]}}, dry_run)

    def delete(self, resource, name, namespace, dry_run):
        self.writes.append(("delete", resource.kind, name, dry_run))
        if not dry_run:
            del self.store[(resource.kind, namespace, name)]


class FakeModule:
    def __init__(self, check_mode: bool = False) -> None:
        self.check_mode = check_mode

    def fail_json(self, **kwargs):
        raise AssertionError(kwargs["msg"])


@pytest.fixture(autouse=True)
def fake_not_found(monkeypatch):
    monkeypatch.setattr(mod, "NotFoundError", NotFound, raising=False)


def obj(kind: str, name: str, namespace: str | None = "ns", **spec) -> dict:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "v1", "kind": kind, "metadata": meta, **({"spec": spec} if spec else {})}


def test_namespaces_go_first_then_what_pods_need_then_what_starts_pods():
    objects = [obj("ConfigMap", "a"), obj("Namespace", "ns", None), obj("Deployment", "d"),
               obj("ServiceAccount", "sa"), obj("StatefulSet", "db")]
    waves = mod.apply_waves(objects, [obj("Secret", "s")], [obj("ValidatingAdmissionPolicy", "p", None)])
    assert [[(how, o["kind"]) for how, o in wave] for wave in waves] == [
        [("server", "Namespace")],
        [("secret", "Secret"), ("server", "ConfigMap"), ("server", "ServiceAccount")],
        [("server", "Deployment"), ("server", "StatefulSet"), ("client", "ValidatingAdmissionPolicy")]]


def test_a_new_object_is_created_and_an_unchanged_one_is_not_a_change():
    client = FakeClient()
    applier = mod.Applier(FakeModule(), client)
    first = applier.apply("server", obj("ConfigMap", "a", x=1), "fm")
    again = applier.apply("server", obj("ConfigMap", "a", x=1), "fm")
    assert (first["action"], first["changed"]) == ("created", True)
    # The second write bumped resourceVersion and managedFields: not a change.
    assert (again["action"], again["changed"]) == ("unchanged", False)


def test_a_changed_field_is_a_change():
    client = FakeClient(obj("ConfigMap", "a", x=1))
    result = mod.Applier(FakeModule(), client).apply("server", obj("ConfigMap", "a", x=2), "fm")
    assert (result["action"], result["changed"]) == ("updated", True)
    assert client.store[("ConfigMap", "ns", "a")]["spec"] == {"x": 2}


def test_status_alone_is_not_a_change():
    live = obj("Deployment", "d", replicas=3)
    live["status"] = {"readyReplicas": 1}
    client = FakeClient(live)
    result = mod.Applier(FakeModule(), client).apply("server", obj("Deployment", "d", replicas=3), "fm")
    assert result["changed"] is False


def test_check_mode_is_a_dry_run_that_reports_the_change_and_stores_nothing():
    client = FakeClient(obj("ConfigMap", "a", x=1))
    result = mod.Applier(FakeModule(check_mode=True), client).apply("server", obj("ConfigMap", "a", x=2), "fm")
    assert result["changed"] is True
    assert client.writes == [("apply", "ConfigMap", "a", "All")]
    assert client.store[("ConfigMap", "ns", "a")]["spec"] == {"x": 1}


def test_check_mode_counts_an_object_in_a_namespace_still_to_come_as_a_change():
    client = FakeClient()
    applier = mod.Applier(FakeModule(check_mode=True), client)
    ns = applier.apply("server", obj("Namespace", "ns", None), "fm")
    inside = applier.apply("server", obj("ConfigMap", "a"), "fm")
    assert ns["changed"] and inside["changed"]
    # Only the namespace was sent, as a dry run: the server could not place the rest.
    assert client.writes == [("apply", "Namespace", "ns", "All")]
    assert client.store == {}


def test_client_side_objects_are_created_then_merge_patched():
    client = FakeClient()
    applier = mod.Applier(FakeModule(), client)
    applier.apply("client", obj("ValidatingAdmissionPolicy", "p", None, a=1), "fm")
    again = applier.apply("client", obj("ValidatingAdmissionPolicy", "p", None, a=1), "fm")
    assert [w[0] for w in client.writes] == ["create", "patch"]
    assert again["changed"] is False


def test_disabled_objects_are_deleted_only_when_they_exist():
    client = FakeClient(obj("Ingress", "i"))
    applier = mod.Applier(FakeModule(), client)
    assert applier.delete(obj("Ingress", "i"))["action"] == "deleted"
    assert applier.delete(obj("Ingress", "i")) == {"kind": "Ingress", "namespace": "ns", "name": "i",
                                                   "action": "absent", "changed": False}
    assert client.store == {}


@pytest.mark.parametrize(("status", "done"), [
    ({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}, True),
    # A controller that has not seen the new spec yet.
    ({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}, False),
    # Mid-rollout: an old replica still counted.
    ({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 4}, False),
    ({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 3}, False),
    ({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2,
      "unavailableReplicas": 1}, False),
])
def test_a_deployment_is_rolled_out_when_every_replica_is_new_and_available(status, done):
    deployment = {"kind": "Deployment", "metadata": {"generation": 2}, "spec": {"replicas": 3}, "status": status}
    assert mod.rollout_done(deployment) is done


@pytest.mark.parametrize(("status", "done"), [
    ({"observedGeneration": 1, "updatedReplicas": 1, "readyReplicas": 1, "currentRevision": "a", "updateRevision": "a"}, True),
    ({"observedGeneration": 1, "updatedReplicas": 1, "readyReplicas": 0, "currentRevision": "a", "updateRevision": "a"}, False),
    ({"observedGeneration": 1, "updatedReplicas": 1, "readyReplicas": 1, "currentRevision": "a", "updateRevision": "b"}, False),
])
def test_a_statefulset_is_rolled_out_when_its_replicas_run_the_update_revision(status, done):
    statefulset = {"kind": "StatefulSet", "metadata": {"generation": 1}, "spec": {"replicas": 1}, "status": status}
    assert mod.rollout_done(statefulset) is done


def test_the_wait_names_what_did_not_finish(monkeypatch):
    stuck = obj("Deployment", "d", replicas=2)
    stuck["metadata"]["generation"] = 1
    stuck["status"] = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1,
                       "unavailableReplicas": 1}
    client = FakeClient(stuck)
    monkeypatch.setattr(mod.time, "sleep", lambda _: None)
    with pytest.raises(AssertionError, match=r"Deployment ns/d \(replicas=2, updatedReplicas=2, availableReplicas=1, "
                                             r"unavailableReplicas=1, observedGeneration=1, generation=1\)"):
        mod.Applier(FakeModule(), client).wait([stuck], timeout=-1)


def secret(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "ns"}, "data": data}


def test_a_kept_secret_is_created_with_the_rendered_data_then_keeps_what_it_has():
    client = FakeClient()
    applier = mod.Applier(FakeModule(), client)
    first = applier.apply("secret", secret("db", password="Zmlyc3Q=", pgpass="aDpmaXJzdA=="), "fm", keep=True)
    # A rerun renders a new random password: the Secret keeps the first one.
    again = applier.apply("secret", secret("db", password="bmV3", pgpass="aDpuZXc="), "fm", keep=True)
    assert (first["action"], again["action"], again["changed"]) == ("created", "unchanged", False)
    assert client.store[("Secret", "ns", "db")]["data"] == {"password": "Zmlyc3Q=", "pgpass": "aDpmaXJzdA=="}


def test_a_secret_not_kept_takes_the_rendered_data():
    client = FakeClient(secret("db", password="b2xk"))
    result = mod.Applier(FakeModule(), client).apply("secret", secret("db", password="bmV3"), "fm")
    assert result["changed"] is True
    assert client.store[("Secret", "ns", "db")]["data"] == {"password": "bmV3"}


def test_a_kept_secret_without_a_rendered_key_fails_rather_than_mix_old_and_new_values():
    client = FakeClient(secret("db", password="b2xk"))
    with pytest.raises(mod.KeptSecretError, match=r"Secret ns/db exists without pgpass"):
        mod.Applier(FakeModule(), client).apply("secret", secret("db", password="bmV3", pgpass="aDpuZXc="), "fm",
                                                keep=True)
    assert client.store[("Secret", "ns", "db")]["data"] == {"password": "b2xk"}
    assert client.writes == []
