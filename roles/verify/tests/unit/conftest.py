"""Make the verify filters (plugins/filter/verify.py) importable as a plain module."""

import importlib.util
import pathlib

import pytest

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[4]


@pytest.fixture(scope="session")
def vf():
    spec = importlib.util.spec_from_file_location("verify_filters", PROJECT_ROOT / "plugins" / "filter" / "verify.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
