"""The molecule scenarios share one base config and one skip hook: each
scenario's molecule.yml says only what differs, and outside molecule every
scenario's tests are skipped rather than run against whatever this machine
has."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_run import PROJECT_ROOT, env

BASE = PROJECT_ROOT / ".config" / "molecule" / "config.yml"
SCENARIOS = sorted(p.parent.name for p in (PROJECT_ROOT / "molecule").glob("*/molecule.yml"))


def leaves(doc: Any, prefix: tuple = ()) -> dict[tuple, Any]:
    """Every value that is not a mapping, by its path of keys."""
    if isinstance(doc, dict):
        return {path: value for key, item in doc.items() for path, value in leaves(item, (*prefix, key)).items()}
    return {prefix: doc}


def test_every_scenario_is_found():
    assert {"default", "airgap", "existing", "images", "render"} <= set(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_scenario_says_only_what_differs_from_the_base(scenario):
    base = leaves(yaml.safe_load(BASE.read_text()))
    own = leaves(yaml.safe_load((PROJECT_ROOT / "molecule" / scenario / "molecule.yml").read_text()))
    repeated = sorted(".".join(path) for path, value in own.items() if path in base and base[path] == value)
    assert not repeated, f"molecule/{scenario}/molecule.yml repeats the base config: {repeated}"


def test_make_passes_the_base_config_to_every_scenario():
    recipe = (PROJECT_ROOT / "Makefile").read_text()
    assert re.search(r"molecule --base-config \.config/molecule/config\.yml test -s \$\$scenario", recipe)


def test_outside_molecule_every_scenario_test_is_skipped():
    """A bare pytest on the scenarios' tests, without molecule's environment,
    collects them all and runs none."""
    dirs = [str(Path("molecule") / s / "tests") for s in SCENARIOS if (PROJECT_ROOT / "molecule" / s / "tests").is_dir()]
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", *dirs], cwd=PROJECT_ROOT, env=env(),
                         capture_output=True, text=True, timeout=300, check=False)
    summary = out.stdout.strip().splitlines()[-1]
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.fullmatch(r"=* ?\d+ skipped in [\d.]+s ?=*", summary), summary
    reasons = set(re.findall(r"SKIPPED \[\d+\] [^:]+:\d+: (.*)", out.stdout))
    assert reasons == {"molecule scenario test: run it with `molecule verify` or `molecule test`"}, reasons
