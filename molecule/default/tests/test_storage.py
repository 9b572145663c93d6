"""Dynamic volumes: a claim without a storageClassName gets a volume from the
default StorageClass's provisioner, and what one pod writes there a later pod
reads back.

Runs in a throwaway namespace that enforces Pod Security `restricted`, with
the PostgreSQL image (`postgres_image`): the image the platform's volumes are
for, with a shell, and present on an air-gapped node (the images role loads
it there; see images_preloaded_refs).
"""

from __future__ import annotations

import time
import uuid

import pytest
from e2e import inventory_vars

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
MOUNT = "/data"
PROOF = f"{MOUNT}/proof.txt"


@pytest.fixture(scope="module")
def image() -> str:
    return inventory_vars(["postgres_image"])["postgres_image"]


@pytest.fixture(scope="module")
def storage(api):
    from kubernetes import client

    return client.StorageV1Api(api)


@pytest.fixture(scope="module")
def default_class(storage, facts):
    classes = [sc for sc in storage.list_storage_class().items
               if (sc.metadata.annotations or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"]
    assert len(classes) == 1, f"expected one default StorageClass, found {[sc.metadata.name for sc in classes]}"
    sc = classes[0]
    if facts.get("platform_cluster", "minikube") == "minikube":
        # minikube's default-storageclass addon, served by its storage-provisioner addon.
        assert (sc.metadata.name, sc.provisioner) == ("standard", "k8s.io/minikube-hostpath"), sc
    return sc


@pytest.fixture(scope="module")
def namespace(core):
    """A namespace of its own that enforces Pod Security `restricted`,
    deleted with everything in it whatever happens."""
    name = f"storage-test-{uuid.uuid4().hex[:8]}"
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}
    core.create_namespace({"metadata": {"name": name, "labels": labels}})
    try:
        yield name
    finally:
        core.delete_namespace(name)
        deadline = time.monotonic() + 180
        while any(ns.metadata.name == name for ns in core.list_namespace().items) and time.monotonic() < deadline:
            time.sleep(2)


def evidence(core, ns: str, kind: str, name: str) -> str:
    events = core.list_namespaced_event(ns, field_selector=f"involvedObject.kind={kind},involvedObject.name={name}")
    return "; ".join(f"{e.reason}: {e.message}" for e in events.items) or "no events"


def wait_for(what: str, check, timeout: float, why=lambda: ""):
    """Poll check() until it returns something truthy; fail with why()."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:.0f}s: {why()}")
        time.sleep(2)


def pod(name: str, image: str, claim: str, script: str) -> dict:
    """A one-shot pod that runs script with the claim at MOUNT, admissible
    under Pod Security `restricted`."""
    return {
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 999, "runAsGroup": 999,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", script],
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}},
                "volumeMounts": [{"name": "data", "mountPath": MOUNT}],
            }],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
        },
    }


def finished_pod(core, ns: str, name: str) -> tuple[str, str]:
    """Wait until the pod has run to the end; return its node and log."""
    def finished():
        p = core.read_namespaced_pod(name, ns)
        return p if p.status.phase in ("Succeeded", "Failed") else None

    p = wait_for(f"pod {name} did not finish", finished, 180, lambda: evidence(core, ns, "Pod", name))
    log = core.read_namespaced_pod_log(name, ns)
    assert p.status.phase == "Succeeded", f"pod {name} {p.status.phase}: {log!r}; {evidence(core, ns, 'Pod', name)}"
    return p.spec.node_name, log


def delete_pod(core, ns: str, name: str) -> None:
    from kubernetes.client.exceptions import ApiException

    core.delete_namespaced_pod(name, ns, grace_period_seconds=0)

    def gone():
        try:
            core.read_namespaced_pod(name, ns)
        except ApiException as err:
            return err.status == 404
        return False

    wait_for(f"pod {name} was not deleted", gone, 120)


def test_claim_without_class_gets_a_dynamic_volume_that_keeps_data(core, namespace, default_class, image):
    claim = "proof"
    core.create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": claim},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}},
    })
    # The writer goes in before the claim is bound, so that a class that
    # binds only for a consumer (WaitForFirstConsumer) binds too.
    token = uuid.uuid4().hex
    core.create_namespaced_pod(namespace, pod("writer", image, claim, f"echo {token} > {PROOF} && cat {PROOF}"))

    def bound():
        pvc = core.read_namespaced_persistent_volume_claim(claim, namespace)
        return pvc if pvc.status.phase == "Bound" else None

    pvc = wait_for(f"claim {claim} was not bound", bound, 120,
                   lambda: evidence(core, namespace, "PersistentVolumeClaim", claim))
    assert pvc.spec.storage_class_name == default_class.metadata.name, pvc.spec

    # Provisioned for this claim: by the class's provisioner, after the claim.
    pv = core.read_persistent_volume(pvc.spec.volume_name)
    annotations = pv.metadata.annotations or {}
    assert annotations.get("pv.kubernetes.io/provisioned-by") == default_class.provisioner, annotations
    assert pv.spec.storage_class_name == default_class.metadata.name, pv.spec
    ref = pv.spec.claim_ref
    assert (ref.namespace, ref.name, ref.uid) == (namespace, claim, pvc.metadata.uid), ref
    assert pv.metadata.creation_timestamp >= pvc.metadata.creation_timestamp, "the volume predates the claim"

    _, written = finished_pod(core, namespace, "writer")
    assert written.strip() == token, written

    # A new pod, once the writer is gone, reads what it wrote.
    delete_pod(core, namespace, "writer")
    core.create_namespaced_pod(namespace, pod("reader", image, claim, f"cat {PROOF}"))
    _, read = finished_pod(core, namespace, "reader")
    assert read.strip() == token, f"read {read!r} from the volume, wrote {token!r}"

    # With reclaim policy Delete the provisioner removes the volume along
    # with its claim.
    delete_pod(core, namespace, "reader")
    core.delete_namespaced_persistent_volume_claim(claim, namespace)
    if default_class.reclaim_policy == "Delete":
        def volume_gone():
            return pv.metadata.name not in {v.metadata.name for v in core.list_persistent_volume().items}

        def volume_status():
            found = [v for v in core.list_persistent_volume().items if v.metadata.name == pv.metadata.name]
            return f"{found[0].status}" if found else "gone"

        wait_for(f"volume {pv.metadata.name} was not deleted with its claim", volume_gone, 120, volume_status)
