"""Fixtures for the render scenario: the three render directories converge.yml
wrote, and the external validators.

Outside molecule every test here is skipped (molecule/conftest.py).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from manifests import PROJECT_ROOT, Render

# The values converge.yml passes to its second and third render.
CUSTOM = {
    "replicas": 2,
    "node_port": 30999,
    "namespaces": {"invoices": "billing", "payments": "psp"},
}
INGRESS = {"host": "invoices.example.test", "class": "traefik", "tls_secret": "invoices-tls",
           "pull_secrets": ["registry-credentials"]}

RENDERS = ("default", "custom", "ingress")

TOOLS_BIN = Path.home() / ".cache" / "invoice-platform" / "tools" / "bin"
CHECKOV_VENVS = (
    Path.home() / ".cache" / "invoice-platform" / "venv-checkov",
    PROJECT_ROOT / ".venv-checkov",
)



@pytest.fixture(scope="session")
def render_root() -> Path:
    return Path(os.environ["RENDER_ROOT"])


@pytest.fixture(scope="session")
def renders(render_root: Path) -> dict[str, Render]:
    result = {}
    for name in RENDERS:
        directory = render_root / name
        assert directory.is_dir(), f"converge did not render {directory}"
        result[name] = Render(directory)
        assert result[name].manifests, f"{directory} holds no manifests"
    return result


@pytest.fixture(scope="session")
def default(renders: dict[str, Render]) -> Render:
    return renders["default"]


@pytest.fixture(scope="session")
def custom(renders: dict[str, Render]) -> Render:
    return renders["custom"]


@pytest.fixture(scope="session")
def ingress(renders: dict[str, Render]) -> Render:
    return renders["ingress"]


def _required() -> bool:
    return os.environ.get("REQUIRE_VALIDATORS", "") not in ("", "0", "false")


def find_tool(name: str, env_var: str, candidates: list[Path]) -> str:
    """Path of a validator; skip when absent, or fail under REQUIRE_VALIDATORS=1."""
    explicit = os.environ.get(env_var)
    if explicit:
        if not os.access(explicit, os.X_OK):
            pytest.fail(f"{env_var}={explicit} is not an executable")
        return explicit
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return str(candidate)
    on_path = shutil.which(name)
    if on_path:
        return on_path
    message = f"{name} not found (set {env_var}, or install it: see molecule/render/README.md)"
    if _required():
        pytest.fail(f"REQUIRE_VALIDATORS is set and {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def kubernetes_validate() -> str:
    return find_tool(
        "kubernetes-validate", "KUBERNETES_VALIDATE", [Path(sys.executable).parent / "kubernetes-validate"]
    )


@pytest.fixture(scope="session")
def checkov() -> str:
    return find_tool("checkov", "CHECKOV", [venv / "bin" / "checkov" for venv in CHECKOV_VENVS])


@pytest.fixture(scope="session")
def kube_score() -> str:
    return find_tool("kube-score", "KUBE_SCORE", [TOOLS_BIN / "kube-score"])
