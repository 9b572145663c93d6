"""Make the role's filter plugin importable as a plain module."""

import importlib.util
import pathlib

import pytest

ROLE = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def vf():
    spec = importlib.util.spec_from_file_location("verify_filters", ROLE / "filter_plugins" / "verify_filters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
