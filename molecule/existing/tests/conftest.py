"""Fixtures for the existing-cluster scenario: the default scenario's
(facts, the Kubernetes clients, one verify run), so that its helpers and
its verification tests run unchanged against this cluster."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

DEFAULT_TESTS = Path(__file__).resolve().parents[2] / "default" / "tests"
sys.path.insert(0, str(DEFAULT_TESTS))

_spec = importlib.util.spec_from_file_location("default_conftest", DEFAULT_TESTS / "conftest.py")
_default = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_default)

pytest_configure = _default.pytest_configure
api, apps, core, facts, networking, services, verify_run = (
    _default.api, _default.apps, _default.core, _default.facts, _default.networking, _default.services,
    _default.verify_run)
pytest_collection_modifyitems = _default.pytest_collection_modifyitems


@_default.pytest.fixture(scope="session")
def stand_in() -> dict:
    """What create.yml made: the cluster's name and addresses, the registry
    and the directory holding its CA."""
    from e2e import inventory_vars

    return inventory_vars(["existing_cluster_name", "existing_cluster_address", "existing_cluster_state_dir",
                           "existing_registry_address", "existing_registry_port", "platform_image_registry"])
