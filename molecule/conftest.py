"""Shared pytest configuration for the molecule scenarios' testinfra tests.

The tests assert the state a scenario's converge left behind, so they mean
something only when molecule runs them against its inventory. Anywhere else
(a bare ``pytest`` from the project root, an editor's test runner) they are
skipped instead of probing whatever this machine happens to run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

MOLECULE_DIR = Path(__file__).resolve().parent


def under_molecule() -> bool:
    return bool(os.environ.get("MOLECULE_INVENTORY_FILE"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if under_molecule():
        return
    skip = pytest.mark.skip(reason="molecule scenario test: run it with `molecule verify` or `molecule test`")
    for item in items:
        if MOLECULE_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(skip)
