#!/usr/bin/python
"""Apply a list of Kubernetes objects in one module run and wait for their
rollouts: what a loop of kubernetes.core.k8s tasks does, without paying
Ansible's per-task cost once per object."""

from __future__ import annotations

DOCUMENTATION = r"""
module: kube_objects_apply
short_description: Apply rendered objects with server-side apply, delete disabled ones, wait for rollouts
description:
  - Applies every object of O(objects) (and O(secrets)) in one run, with server-side apply under
    O(field_manager) (C(force_conflicts)); the objects of O(client_side) get a JSON merge patch instead.
  - The writes go in three waves, each sent concurrently (up to O(parallel) at a time) and finished
    before the next starts; namespaces, then the secrets and every other object without a rollout,
    then the Deployments, StatefulSets and DaemonSets and the objects of O(client_side). So a pod never
    starts before its ServiceAccount, ConfigMap or Secret exists. Results come back in that order.
  - Deletes the objects of O(absent) that exist.
  - With O(wait), waits until every applied Deployment, StatefulSet and DaemonSet has finished its
    rollout, all of them polled together, and fails naming those that did not within O(wait_timeout).
  - An object counts as changed when its content differs afterwards, not counting C(status),
    C(metadata.resourceVersion), C(metadata.generation) and C(metadata.managedFields).
  - Check mode sends every write as a server-side dry run (admission runs, nothing is stored). An object
    whose namespace does not exist yet and is not created by the same run counts as a change.
options:
  kubeconfig:
    description: Path of the kubeconfig.
    type: path
  context:
    description: Context of the kubeconfig; its current one when unset.
    type: str
  objects:
    description: The objects to apply, as dicts (each with apiVersion, kind and metadata.name).
    type: list
    elements: dict
    default: []
  secrets:
    description:
      - Secrets without their C(data); applied after the namespaces. Only their identity is ever
        returned.
    type: list
    elements: dict
    default: []
  secret_data:
    description:
      - The C(data) of each of O(secrets), in the same order. Apart, so that only these values are
        masked in the output (a secret's name and namespace stay readable).
    type: list
    elements: dict
    default: []
  secret_keep:
    description:
      - For each of O(secrets), in the same order, whether its data is generated once. Then the rendered
        data only goes into a Secret this run creates, and an existing Secret keeps the values it has
        (a generated password stays the one first deployed). Such a Secret that lacks a key of the
        rendered data fails the run rather than mix old and new values. Missing entries count as false.
    type: list
    elements: bool
    default: []
  client_side:
    description: Objects applied with a JSON merge patch rather than server-side apply.
    type: list
    elements: dict
    default: []
  absent:
    description: Objects to delete if they exist.
    type: list
    elements: dict
    default: []
  field_manager:
    description: Field manager of the server-side apply.
    type: str
    required: true
  wait:
    description: Wait for every applied Deployment, StatefulSet and DaemonSet to finish its rollout.
    type: bool
    default: true
  wait_timeout:
    description: Seconds the rollouts may take together.
    type: int
    default: 300
  parallel:
    description: Writes in flight at once within a wave; 1 sends them one after another.
    type: int
    default: 8
requirements:
  - kubernetes (Python)
"""

EXAMPLES = r"""
- name: Apply the objects and wait for their rollouts
  invoice_platform.platform.kube_objects_apply:
    kubeconfig: ~/.kube/invoice-platform.kubeconfig
    context: invoice-platform
    objects: "{{ rendered | map(attribute='definition') | list }}"
    field_manager: invoice-platform
"""

RETURN = r"""
objects:
  description: What happened to each object, secrets included by name only.
  returned: always
  type: list
  elements: dict
  sample: [{kind: Deployment, namespace: invoices, name: invoice-app, action: updated, changed: true}]
rollouts:
  description: Each waited rollout and the seconds it took from the end of the writes.
  returned: when waited
  type: list
  elements: dict
pending:
  description: The rollouts that did not finish in time (kind, namespace, name).
  returned: when the wait failed
  type: list
  elements: dict
"""

import copy
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

try:
    from kubernetes import config as kube_config
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError
    HAS_KUBERNETES = True
except ImportError:
    HAS_KUBERNETES = False

ROLLOUT_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
VOLATILE_METADATA = ("resourceVersion", "generation", "managedFields")


def content(obj: dict | None) -> dict | None:
    """The part of an object that says whether it changed."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    out.pop("status", None)
    for key in VOLATILE_METADATA:
        out.get("metadata", {}).pop(key, None)
    return out


def apply_waves(objects: list[dict], secrets: list[dict], client_side: list[dict]) -> list[list[tuple[str, dict]]]:
    """Namespaces; then the secrets and whatever a pod needs to exist first;
    then the objects that start pods, and the client-side ones. Each wave in
    the order listed."""
    namespaces = [("server", o) for o in objects if o.get("kind") == "Namespace"]
    before = [("server", o) for o in objects if o.get("kind") not in ("Namespace", *ROLLOUT_KINDS)]
    rollouts = [("server", o) for o in objects if o.get("kind") in ROLLOUT_KINDS]
    return [namespaces, [("secret", o) for o in secrets] + before, rollouts + [("client", o) for o in client_side]]


def identity(obj: dict) -> dict:
    meta = obj.get("metadata", {})
    return {"kind": obj.get("kind"), "namespace": meta.get("namespace"), "name": meta.get("name")}


def rollout_done(obj: dict) -> bool:
    """Whether a Deployment, StatefulSet or DaemonSet has finished rolling out
    its current spec: every replica updated, available, and observed."""
    spec, status, meta = obj.get("spec", {}), obj.get("status") or {}, obj.get("metadata", {})
    if status.get("observedGeneration") != meta.get("generation"):
        return False
    kind = obj.get("kind")
    if kind == "Deployment":
        want = spec.get("replicas", 1)
        return (status.get("replicas", 0) == want and status.get("updatedReplicas", 0) == want
                and status.get("availableReplicas", 0) == want and not status.get("unavailableReplicas"))
    if kind == "StatefulSet":
        want = spec.get("replicas", 1)
        return (status.get("updatedReplicas", 0) == want and status.get("readyReplicas", 0) == want
                and status.get("currentRevision") == status.get("updateRevision"))
    if kind == "DaemonSet":
        want = status.get("desiredNumberScheduled")
        return (want is not None and status.get("updatedNumberScheduled", 0) == want
                and status.get("numberReady", 0) == want and not status.get("numberUnavailable"))
    return True


def rollout_summary(obj: dict | None) -> str:
    if obj is None:
        return "not found"
    status = obj.get("status") or {}
    keys = ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas",
            "desiredNumberScheduled", "numberReady", "observedGeneration")
    return ", ".join(f"{k}={status[k]}" for k in keys if k in status) + f", generation={obj['metadata'].get('generation')}"


class KeptSecretError(Exception):
    """An existing Secret whose data is kept lacks a key the rendered one has."""


def kept_data(rendered: dict, existing: dict) -> dict:
    """The rendered Secret's keys with the values the existing Secret has."""
    have = existing.get("data") or {}
    missing = sorted(set(rendered.get("data") or {}) - set(have))
    if missing:
        raise KeptSecretError(
            f"Secret {rendered['metadata'].get('namespace')}/{rendered['metadata']['name']} exists without "
            f"{', '.join(missing)}; its data is kept as first generated, so delete it to generate it anew")
    return {key: have[key] for key in rendered.get("data") or {}}


class Applier:
    def __init__(self, module: AnsibleModule, client: Any) -> None:
        self.module = module
        self.client = client
        self.dry_run = "All" if module.check_mode else None
        self.new_namespaces: set[str] = set()

    def resource(self, obj: dict) -> Any:
        return self.client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])

    def read(self, resource: Any, obj: dict) -> dict | None:
        meta = obj["metadata"]
        try:
            return self.client.get(resource, name=meta["name"], namespace=meta.get("namespace")).to_dict()
        except NotFoundError:
            return None

    def namespace_missing(self, obj: dict) -> bool:
        """In check mode: the object's namespace neither exists nor is being
        created by this run, so the server cannot dry-run it."""
        namespace = obj["metadata"].get("namespace")
        if not namespace or not self.module.check_mode:
            return False
        if namespace in self.new_namespaces:
            return True
        ns = self.client.resources.get(api_version="v1", kind="Namespace")
        try:
            self.client.get(ns, name=namespace)
            return False
        except NotFoundError:
            return True

    def apply(self, how: str, obj: dict, field_manager: str, keep: bool = False) -> dict:
        result = identity(obj)
        resource = self.resource(obj)
        meta = obj["metadata"]
        before = self.read(resource, obj)
        if before is None and self.namespace_missing(obj):
            return {**result, "action": "created", "changed": True}
        if keep and before is not None:
            obj = {**obj, "data": kept_data(obj, before)}
        if how == "client":
            if before is None:
                after = self.client.create(resource, body=obj, namespace=meta.get("namespace"),
                                           dry_run=self.dry_run).to_dict()
            else:
                after = self.client.patch(resource, body=obj, name=meta["name"], namespace=meta.get("namespace"),
                                          content_type="application/merge-patch+json", dry_run=self.dry_run).to_dict()
        else:
            after = self.client.server_side_apply(resource, body=obj, name=meta["name"], namespace=meta.get("namespace"),
                                                  field_manager=field_manager, force_conflicts=True,
                                                  dry_run=self.dry_run).to_dict()
        if before is None and obj["kind"] == "Namespace":
            self.new_namespaces.add(meta["name"])
        changed = content(before) != content(after)
        action = "created" if before is None else ("updated" if changed else "unchanged")
        return {**result, "action": action, "changed": changed}

    def delete(self, obj: dict) -> dict:
        result = identity(obj)
        try:
            resource = self.resource(obj)
        except Exception:  # noqa: BLE001 - the kind's API is not served here, so no such object exists
            return {**result, "action": "absent", "changed": False}
        if self.read(resource, obj) is None:
            return {**result, "action": "absent", "changed": False}
        meta = obj["metadata"]
        self.client.delete(resource, name=meta["name"], namespace=meta.get("namespace"), dry_run=self.dry_run)
        return {**result, "action": "deleted", "changed": True}

    def wait(self, objects: list[dict], timeout: int) -> list[dict]:
        pending = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects}
        started = time.monotonic()
        done: list[dict] = []
        last: dict[tuple, dict | None] = {}
        while pending:
            for key, obj in list(pending.items()):
                current = self.read(self.resource(obj), obj)
                last[key] = current
                if current is not None and rollout_done(current):
                    done.append({**identity(obj), "seconds": round(time.monotonic() - started, 1)})
                    del pending[key]
            if not pending:
                break
            if time.monotonic() - started > timeout:
                self.module.fail_json(
                    msg="Rollouts not finished after %d s: %s" % (timeout, "; ".join(
                        f"{kind} {ns}/{name} ({rollout_summary(last.get((kind, ns, name)))})"
                        for kind, ns, name in pending)),
                    rollouts=done,
                    pending=[{"kind": kind, "namespace": ns, "name": name} for kind, ns, name in pending])
            time.sleep(1)
        return done


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "kubeconfig": {"type": "path"},
            "context": {"type": "str"},
            "objects": {"type": "list", "elements": "dict", "default": []},
            "secrets": {"type": "list", "elements": "dict", "default": []},
            "secret_data": {"type": "list", "elements": "dict", "default": [], "no_log": True},
            "secret_keep": {"type": "list", "elements": "bool", "default": []},
            "client_side": {"type": "list", "elements": "dict", "default": []},
            "absent": {"type": "list", "elements": "dict", "default": []},
            "field_manager": {"type": "str", "required": True},
            "wait": {"type": "bool", "default": True},
            "wait_timeout": {"type": "int", "default": 300},
            "parallel": {"type": "int", "default": 8},
        },
        supports_check_mode=True,
    )
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"))
    params = module.params
    if len(params["secrets"]) != len(params["secret_data"]):
        module.fail_json(msg=f"{len(params['secrets'])} secrets but {len(params['secret_data'])} secret_data entries")
    if len(params["secret_keep"]) > len(params["secrets"]):
        module.fail_json(msg=f"{len(params['secret_keep'])} secret_keep entries for {len(params['secrets'])} secrets")
    secrets = [{**obj, "data": data} for obj, data in zip(params["secrets"], params["secret_data"])]
    kept = {id(obj) for obj, keep in zip(secrets, params["secret_keep"]) if keep}
    try:
        api = kube_config.new_client_from_config(config_file=params["kubeconfig"], context=params["context"])
        applier = Applier(module, DynamicClient(api))
        results: list[dict] = []
        secret_ids = {id(o) for o in secrets}

        def write(item: tuple[str, dict]) -> dict | Exception:
            how, obj = item
            try:
                return applier.apply(how, obj, params["field_manager"], keep=id(obj) in kept)
            except (KeptSecretError, DynamicApiError) as err:
                return err

        with ThreadPoolExecutor(max_workers=max(1, params["parallel"])) as pool:
            for wave in apply_waves(params["objects"], secrets, params["client_side"]):
                for (how, obj), outcome in zip(wave, list(pool.map(write, wave))):
                    if isinstance(outcome, KeptSecretError):
                        module.fail_json(msg=str(outcome), objects=results)
                    if isinstance(outcome, DynamicApiError):
                        reason = "(not shown: the object holds a secret)" if id(obj) in secret_ids else outcome.summary()
                        module.fail_json(msg=f"Failed to apply {obj.get('kind')} "
                                             f"{obj['metadata'].get('namespace') or ''}/{obj['metadata'].get('name')}: "
                                             f"{reason}", objects=results)
                    results.append(outcome)
        for obj in params["absent"]:
            results.append(applier.delete(obj))
        rollouts = []
        if params["wait"] and not module.check_mode:
            applied = [o for o in params["objects"] if o.get("kind") in ROLLOUT_KINDS]
            rollouts = applier.wait(applied, params["wait_timeout"])
    except DynamicApiError as err:
        module.fail_json(msg=f"Kubernetes API error: {err.summary()}")
    module.exit_json(changed=any(r["changed"] for r in results), objects=results, rollouts=rollouts)


if __name__ == "__main__":
    main()
