"""The collection's declared dependencies (galaxy.yml) and the pins
requirements.yml installs name the same collections at the same versions."""

from __future__ import annotations

import yaml
from ansible_run import PROJECT_ROOT


def test_galaxy_dependencies_start_at_the_pinned_versions():
    galaxy = yaml.safe_load((PROJECT_ROOT / "galaxy.yml").read_text())["dependencies"]
    pinned = {c["name"]: c["version"] for c in yaml.safe_load((PROJECT_ROOT / "requirements.yml").read_text())["collections"]}
    lower = {name: spec.split(",")[0].removeprefix(">=") for name, spec in galaxy.items()}
    assert lower == pinned
