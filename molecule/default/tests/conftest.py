"""Fixtures for the end-to-end scenario's tests.

The tests drive the verify role exactly as test.sh does (`ansible-playbook
playbooks/verify.yml` from the project root) and assert on its JSON report,
and they check the live cluster themselves with the kubernetes client.
Outside molecule they are skipped (molecule/conftest.py, the one skip hook
of every scenario): they would otherwise act on whatever cluster this
machine runs.
"""

from __future__ import annotations

import pytest
from e2e import inventory_vars, run_verify


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "disruptive: breaks the cluster and repairs it; runs after every other test")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("disruptive") is not None)


@pytest.fixture(scope="session")
def facts() -> dict:
    """The shared facts from the scenario's inventory, rendered by Ansible."""
    return inventory_vars(["platform_kubeconfig", "platform_kube_context", "platform_services",
                           "platform_invoice_app_url", "platform_images", "minikube_profile", "platform_cluster"])


@pytest.fixture(scope="session")
def api(facts):
    from kubernetes import config

    client = config.new_client_from_config(config_file=facts["platform_kubeconfig"],
                                           context=facts["platform_kube_context"])
    yield client
    client.close()


@pytest.fixture(scope="session")
def core(api):
    from kubernetes import client

    return client.CoreV1Api(api)


@pytest.fixture(scope="session")
def apps(api):
    from kubernetes import client

    return client.AppsV1Api(api)


@pytest.fixture(scope="session")
def networking(api):
    from kubernetes import client

    return client.NetworkingV1Api(api)


@pytest.fixture(scope="session")
def services(facts) -> dict:
    return facts["platform_services"]


@pytest.fixture(scope="session")
def verify_run(tmp_path_factory):
    """One full run of playbooks/verify.yml, every check, default settings."""
    return run_verify(tmp_path_factory.mktemp("verify"), "full")
