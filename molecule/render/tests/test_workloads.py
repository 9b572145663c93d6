"""The default render, object by object: namespaces, service accounts,
Deployments, ConfigMap, Services, PodDisruptionBudgets."""

from __future__ import annotations

import importlib.util
import re

import pytest

from manifests import PROJECT_ROOT, STANDARD_LABELS, container_port, containers, cpu_cores, memory_bytes

PLATFORM_NAME = "invoice-platform"
SERVICES = {
    "invoice-app": {"namespace": "invoices", "port": 8081, "context": "invoice-app"},
    "payment-provider": {"namespace": "payments", "port": 8082, "context": "payment-provider"},
}
PAYMENT_PROVIDER_URL = "http://payment-provider.payments.svc.cluster.local:8082"


def _context_hash(context: str) -> str:
    spec = importlib.util.spec_from_file_location(
        "context_hash", PROJECT_ROOT / "plugins" / "lookup" / "context_hash.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.context_hash(str(PROJECT_ROOT / context))[:12]


# Applied, never written to a file: it holds the generated password.
NEVER_RENDERED = {"secret-database.yaml"}


def test_every_template_is_rendered(renders):
    """Each object template appears in at least one render, under its own
    name; the credentials Secret in none."""
    rendered = {path.name for render in renders.values() for path in render.files}
    templates = {
        path.name.removesuffix(".j2")
        for role in ("workloads", "team_access")
        for path in (PROJECT_ROOT / "roles" / role / "templates").glob("*.yaml.j2")
    }
    assert templates, "no templates found"
    assert NEVER_RENDERED <= templates
    assert templates - NEVER_RENDERED <= rendered, f"never rendered: {sorted(templates - NEVER_RENDERED - rendered)}"
    assert not NEVER_RENDERED & rendered
    assert not any(m.kind == "Secret" for render in renders.values() for m in render.manifests)


def test_one_kind_per_file_named_after_it(renders):
    for render in renders.values():
        for manifest in render.manifests:
            stem = manifest.path.rsplit("/", 1)[-1].split(".")[0]
            assert stem.split("-")[0] == manifest.kind.lower(), f"{manifest.path} holds a {manifest.kind}"


def test_standard_labels_on_every_object(renders):
    for render in renders.values():
        for manifest in render.manifests:
            labels = manifest.doc["metadata"].get("labels", {})
            missing = [label for label in STANDARD_LABELS if not labels.get(label)]
            assert not missing, f"{manifest.path}: missing {missing}"
            assert labels["app.kubernetes.io/part-of"] == PLATFORM_NAME, manifest.path
            assert labels["app.kubernetes.io/managed-by"] == "ansible", manifest.path


CLUSTER_SCOPED = {"Namespace", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}


def test_namespaced_objects_stay_in_the_service_namespaces(default):
    for manifest in default.manifests:
        if manifest.kind in CLUSTER_SCOPED:
            assert manifest.namespace is None, manifest.path
            continue
        service = manifest.path.split("/")[0]
        assert manifest.namespace == SERVICES[service]["namespace"], manifest.path


@pytest.mark.parametrize("namespace", ["invoices", "payments"])
def test_namespace_enforces_restricted_pod_security(default, namespace):
    labels = default.get("Namespace", namespace)["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels.get(f"pod-security.kubernetes.io/{mode}-version"), f"{mode}-version label missing"


@pytest.mark.parametrize("name", SERVICES)
def test_service_account_does_not_mount_a_token(default, name):
    namespace = SERVICES[name]["namespace"]
    account = default.get("ServiceAccount", name, namespace)
    assert account["automountServiceAccountToken"] is False
    pod = default.get("Deployment", name, namespace)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == name
    assert pod["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", SERVICES)
def test_deployment_shape(default, name):
    deployment = default.get("Deployment", name, SERVICES[name]["namespace"])
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    assert isinstance(spec["revisionHistoryLimit"], int) and 0 < spec["revisionHistoryLimit"] <= 10
    assert isinstance(spec["template"]["spec"]["terminationGracePeriodSeconds"], int)
    selector = spec["selector"]["matchLabels"]
    assert selector.items() <= spec["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize("name", SERVICES)
def test_deployment_image_is_content_tagged_and_local(default, name):
    [container] = containers(default.get("Deployment", name, SERVICES[name]["namespace"]))
    assert container["image"] == f"{name}:{_context_hash(SERVICES[name]['context'])}"
    assert container["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("name", SERVICES)
def test_pod_security_context(default, name):
    pod = default.get("Deployment", name, SERVICES[name]["namespace"])["spec"]["template"]["spec"]
    context = pod["securityContext"]
    assert context["runAsNonRoot"] is True
    assert context["runAsUser"] == 65532
    assert context["runAsGroup"] == 65532
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")


@pytest.mark.parametrize("name", SERVICES)
def test_every_container_is_locked_down(default, name):
    for container in containers(default.get("Deployment", name, SERVICES[name]["namespace"])):
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True, container["name"]
        assert context["runAsUser"] == 65532, container["name"]
        assert context["runAsGroup"] == 65532, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context.get("privileged", False) is False, container["name"]
        assert context["capabilities"]["drop"] == ["ALL"], container["name"]
        assert not context["capabilities"].get("add"), container["name"]
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, container["name"]


@pytest.mark.parametrize("name", SERVICES)
def test_probes_hit_the_service_port(default, name):
    port = SERVICES[name]["port"]
    [container] = containers(default.get("Deployment", name, SERVICES[name]["namespace"]))
    assert [p["containerPort"] for p in container["ports"]] == [port]
    expected = {"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"}
    for probe, path in expected.items():
        action = container[probe]["httpGet"]
        assert action["path"] == path, probe
        assert container_port(container, action["port"]) == port, probe
    assert container["readinessProbe"] != container["livenessProbe"]


def test_resources_are_set_and_small(default):
    total_cpu = total_memory = 0.0
    for deployment in default.kind("Deployment"):
        for container in containers(deployment):
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= resources[kind].keys(), f"{container['name']} {kind}"
            assert cpu_cores(resources["requests"]["cpu"]) <= cpu_cores(resources["limits"]["cpu"]) <= 0.5
            assert memory_bytes(resources["requests"]["memory"]) <= memory_bytes(resources["limits"]["memory"])
            assert memory_bytes(resources["limits"]["memory"]) <= 256 * 2**20
            total_cpu += cpu_cores(resources["requests"]["cpu"]) * deployment["spec"]["replicas"]
            total_memory += memory_bytes(resources["requests"]["memory"]) * deployment["spec"]["replicas"]
    # Two CPUs on the CI node, shared with the control plane.
    assert total_cpu <= 0.25, f"the pods request {total_cpu} CPUs"
    assert total_memory <= 1024 * 2**20, f"the pods request {total_memory / 2**20} MiB"


@pytest.mark.parametrize("name", SERVICES)
def test_replicas_spread_over_nodes(default, name):
    template = default.get("Deployment", name, SERVICES[name]["namespace"])["spec"]["template"]
    [spread] = template["spec"]["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    # Hard: no node runs two replicas more than another...
    assert spread["maxSkew"] == 1 and spread["whenUnsatisfiable"] == "DoNotSchedule"
    # ...counting only nodes a replica may go to, so a cordoned node being
    # drained does not hold its replacements back...
    assert spread["nodeTaintsPolicy"] == "Honor" and spread["nodeAffinityPolicy"] == "Honor"
    # ...and each revision on its own, so a rolling update spreads too.
    assert spread["matchLabelKeys"] == ["pod-template-hash"]
    assert spread["labelSelector"]["matchLabels"].items() <= template["metadata"]["labels"].items()


@pytest.mark.parametrize("name", SERVICES)
def test_replicas_prefer_different_nodes(default, name):
    template = default.get("Deployment", name, SERVICES[name]["namespace"])["spec"]["template"]
    anti_affinity = template["spec"]["affinity"]["podAntiAffinity"]
    # Soft: a single-node cluster must still take every replica.
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti_affinity
    [term] = anti_affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"].items() <= template["metadata"]["labels"].items()


@pytest.mark.parametrize("name", SERVICES)
def test_termination_outlasts_endpoint_removal(default, name):
    pod = default.get("Deployment", name, SERVICES[name]["namespace"])["spec"]["template"]["spec"]
    [container] = pod["containers"]
    # The images have no shell: the kubelet's own sleep, not `sh -c sleep`.
    pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    # The servers drain for at most 20 s after SIGTERM (shutdownTimeout).
    assert 0 < pause and pause + 20 < pod["terminationGracePeriodSeconds"]


def test_invoice_app_gets_the_payment_provider_url(default):
    config = default.get("ConfigMap", "invoice-app", "invoices")
    assert config["data"]["PAYMENT_PROVIDER_URL"] == PAYMENT_PROVIDER_URL
    assert sorted(config["data"]) == ["DATABASE_URL", "PAYMENT_PROVIDER_URL"]
    deployment = default.get("Deployment", "invoice-app", "invoices")
    [container] = containers(deployment)
    assert {"configMapRef": {"name": "invoice-app"}} in container["envFrom"]
    checksum = deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    assert re.fullmatch(r"[0-9a-f]{64}", checksum)


@pytest.mark.parametrize(("name", "namespace", "database"),
                         [("invoice-app", "invoices", "invoices"), ("payment-provider", "payments", "payments")])
def test_database_url_in_the_configmap_password_file_from_the_secret(default, name, namespace, database):
    config = default.get("ConfigMap", name, namespace)["data"]
    assert config["DATABASE_URL"] == (
        f"postgres://{database}@{name}-db.{namespace}.svc.cluster.local:5432/{database}?sslmode=disable")
    deployment = default.get("Deployment", name, namespace)
    [container] = containers(deployment)
    assert container["envFrom"] == [{"configMapRef": {"name": name}}]
    # A file, never an environment variable, carries the password.
    assert container["env"] == [{"name": "PGPASSFILE", "value": "/etc/invoice-platform/database/pgpass"}]
    assert "secretKeyRef" not in repr(container)
    [mount] = container["volumeMounts"]
    assert mount == {"name": "database-credentials", "mountPath": "/etc/invoice-platform/database", "readOnly": True}
    [volume] = deployment["spec"]["template"]["spec"]["volumes"]
    assert volume["secret"] == {"secretName": f"{name}-db", "defaultMode": 0o440,
                                "items": [{"key": "pgpass", "path": "pgpass"}]}
    assert deployment["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 65532


def test_payment_provider_is_cluster_internal(default):
    service = default.get("Service", "payment-provider", "payments")
    assert service["spec"]["type"] == "ClusterIP"
    for port in service["spec"]["ports"]:
        assert "nodePort" not in port
        assert port["port"] == 8082
    assert not default.kind("Ingress")


def test_invoice_app_is_published_on_a_node_port(default):
    service = default.get("Service", "invoice-app", "invoices")
    assert service["spec"]["type"] == "NodePort"
    [port] = service["spec"]["ports"]
    assert port["nodePort"] == 30081
    assert port["port"] == 8081


@pytest.mark.parametrize("name", SERVICES)
def test_service_targets_the_pods(default, name):
    namespace = SERVICES[name]["namespace"]
    service = default.get("Service", name, namespace)
    deployment = default.get("Deployment", name, namespace)
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    [container] = containers(deployment)
    for port in service["spec"]["ports"]:
        assert container_port(container, port["targetPort"]) == SERVICES[name]["port"]


@pytest.mark.parametrize("name", SERVICES)
def test_disruption_budget_keeps_pods_serving(default, name):
    namespace = SERVICES[name]["namespace"]
    budget = default.get("PodDisruptionBudget", name, namespace)["spec"]
    replicas = default.get("Deployment", name, namespace)["spec"]["replicas"]
    labels = default.get("Deployment", name, namespace)["spec"]["template"]["metadata"]["labels"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    if "maxUnavailable" in budget:
        assert 1 <= budget["maxUnavailable"] < replicas
    else:
        assert 1 <= budget["minAvailable"] < replicas


def test_no_autoscaler_by_default(default):
    assert not default.kind("HorizontalPodAutoscaler")


DATABASES = {"invoice-app-db": "invoices", "payment-provider-db": "payments"}


@pytest.mark.parametrize("name", DATABASES)
def test_database_is_a_locked_down_statefulset_on_a_claim(default, name):
    namespace = DATABASES[name]
    sts = default.get("StatefulSet", name, namespace)
    spec = sts["spec"]
    assert spec["replicas"] == 1
    assert spec["serviceName"] == f"{name}-headless"
    assert default.get("Service", f"{name}-headless", namespace)["spec"]["clusterIP"] == "None"
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    [claim] = spec["volumeClaimTemplates"]
    # No class named: the cluster's default StorageClass provisions it.
    assert "storageClassName" not in claim["spec"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    pod = spec["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 999
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {}
    for container in containers(sts):
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] == 999, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, container["name"]
        assert {"cpu", "memory"} <= container["resources"]["limits"].keys(), container["name"]
        mounts[container["name"]] = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    # PostgreSQL writes to its volume and to emptyDirs, nothing else.
    assert mounts["postgres"]["/var/lib/postgresql/data"] == "data"
    volumes = {v["name"]: v for v in pod["volumes"]}
    for path in ("/var/run/postgresql", "/tmp", "/dev/shm"):
        assert "emptyDir" in volumes[mounts["postgres"][path]], path
    [postgres] = pod["containers"]
    for probe in ("startupProbe", "readinessProbe"):
        assert postgres[probe]["exec"]["command"][0] == "pg_isready", probe
    assert postgres["livenessProbe"]["tcpSocket"]["port"] == "postgres"
    assert postgres["lifecycle"]["preStop"]["exec"]["command"][:2] == ["pg_ctl", "stop"]
    pdb = default.get("PodDisruptionBudget", name, namespace)
    assert pdb["spec"]["selector"]["matchLabels"] == spec["selector"]["matchLabels"]


@pytest.mark.parametrize("name", DATABASES)
def test_database_password_only_from_the_secret(default, name):
    sts = default.get("StatefulSet", name, DATABASES[name])
    text = repr(sts)
    assert "password" not in repr([c.get("env", []) for c in containers(sts)]).lower()
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert volumes["credentials"]["secret"]["secretName"] == name
    assert "PGPASSWORD" not in text and "secretKeyRef" not in text
