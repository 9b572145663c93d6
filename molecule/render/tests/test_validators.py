"""Every render passes kubernetes-validate (strict, at the Kubernetes version
the clusters run, from inventory/shared/versions.yml), checkov and
kube-score. Their exceptions live, with reasons, in .checkov.yaml and
.kube-score.yaml at the project root."""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import yaml

from conftest import RENDERS
from manifests import PROJECT_ROOT

# The version the clusters run, as the inventory pins it (v1.34.0 -> 1.34.0).
KUBERNETES_VERSION = yaml.safe_load((PROJECT_ROOT / "inventory" / "shared" / "versions.yml").read_text())[
    "minikube_kubernetes_version"].lstrip("v")


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False, **kwargs)


@pytest.mark.parametrize("name", RENDERS)
def test_kubernetes_validate_strict(renders, kubernetes_validate, name):
    files = [str(path) for path in renders[name].files]
    result = _run([kubernetes_validate, "--strict", "--kubernetes-version", KUBERNETES_VERSION, "--quiet", *files])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", RENDERS)
def test_checkov(renders, checkov, name):
    env = dict(os.environ, BC_SKIP_MAPPING="TRUE")
    # checkov leaves out paths under hidden directories (molecule's ephemeral
    # directory is one), so it scans "." from inside the render.
    result = _run(
        [checkov, "--config-file", str(PROJECT_ROOT / ".checkov.yaml"), "--directory", "."],
        env=env,
        cwd=renders[name].root,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"Passed checks: [1-9]\d*, Failed checks: 0,", result.stdout), result.stdout + result.stderr


def _kube_score_config() -> dict:
    with (PROJECT_ROOT / ".kube-score.yaml").open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _kube_score_args() -> list[str]:
    config = _kube_score_config()
    args = ["--kubernetes-version", config["kubernetes_version"], "--exit-one-on-warning", "--output-format", "ci"]
    for test in config["optional_tests"]["enable"]:
        args += ["--enable-optional-test", test]
    for test in config["ignore_tests"]:
        args += ["--ignore-test", test]
    return args


def test_kube_score_exceptions_have_reasons(kube_score):
    """Every optional test is either on or left off with a reason; every ignored test has one."""
    config = _kube_score_config()
    listing = _run([kube_score, "list"])
    assert listing.returncode == 0, listing.stderr
    # CSV lines: name,kind,description (may hold commas),default|optional
    checks = {line.split(",", 1)[0]: line.rsplit(",", 1)[1] for line in listing.stdout.splitlines() if "," in line}
    optional = {name for name, kind in checks.items() if kind == "optional"}
    assert optional, listing.stdout
    enabled = set(config["optional_tests"]["enable"])
    left_off = config["optional_tests"]["leave_off"]
    assert enabled | set(left_off) == optional
    assert not enabled & set(left_off)
    for test, reason in {**left_off, **config["ignore_tests"]}.items():
        assert isinstance(reason, str) and len(reason.split()) >= 5, f"{test}: no reason given"
    assert set(config["ignore_tests"]) <= set(checks) - optional


@pytest.mark.parametrize("name", RENDERS)
def test_kube_score(renders, kube_score, name):
    files = [str(path) for path in renders[name].files]
    result = _run([kube_score, "score", *_kube_score_args(), *files])
    assert result.returncode == 0, result.stdout + result.stderr
