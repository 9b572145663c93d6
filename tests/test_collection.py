"""The collection's declared dependencies (galaxy.yml) and the pins
requirements.yml installs name the same collections at the same versions;
every plugin's documentation is valid YAML."""

from __future__ import annotations

import re

import pytest
import yaml
from ansible_run import PROJECT_ROOT

ROOT = PROJECT_ROOT


def test_galaxy_dependencies_start_at_the_pinned_versions():
    galaxy = yaml.safe_load((PROJECT_ROOT / "galaxy.yml").read_text())["dependencies"]
    pinned = {c["name"]: c["version"] for c in yaml.safe_load((PROJECT_ROOT / "requirements.yml").read_text())["collections"]}
    lower = {name: spec.split(",")[0].removeprefix(">=") for name, spec in galaxy.items()}
    assert lower == pinned


@pytest.mark.parametrize("plugin", sorted(str(p.relative_to(ROOT)) for p in (ROOT / "plugins").glob("*/*.py")
                                          if "DOCUMENTATION" in p.read_text()))
def test_every_plugin_documents_itself_in_valid_yaml(plugin):
    """ansible-doc and ansible-lint read these; a stray ': ' in a sentence
    turns it into a mapping and the documentation silently disappears."""
    text = (ROOT / plugin).read_text()
    for name in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
        match = re.search(rf'^\s*{name} = r"""(.*?)"""', text, re.DOTALL | re.MULTILINE)
        if match:
            assert yaml.safe_load(match.group(1)) is not None, f"{plugin}: {name} is empty"
