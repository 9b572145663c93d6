"""playbooks/render.yml as a user runs it, and its tie to the apply path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from manifests import PROJECT_ROOT

PLAYBOOK = PROJECT_ROOT / "playbooks" / "render.yml"


def _run_render(*extra: str) -> subprocess.CompletedProcess:
    # As a user runs it: from the project root, with the project's ansible.cfg
    # rather than the one molecule generated.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "MOLECULE_"))}
    env["ANSIBLE_NOCOLOR"] = "true"
    command = [str(Path(sys.executable).parent / "ansible-playbook"), str(PLAYBOOK), *extra]
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("extra", [(), ("-e", "render_dir=")], ids=["missing", "empty"])
def test_render_dir_is_required(extra):
    result = _run_render(*extra)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "ansible-playbook playbooks/render.yml -e render_dir=DIR" in output, output


def test_render_imports_the_apply_playbook():
    plays = yaml.safe_load(PLAYBOOK.read_text(encoding="utf-8"))
    imports = [play["ansible.builtin.import_playbook"] for play in plays if "ansible.builtin.import_playbook" in play]
    assert imports == ["resources.yml"]


@pytest.mark.parametrize(
    ("role", "objects"), [("workloads", "__workloads_objects"), ("team_access", "__team_access_items")]
)
def test_apply_and_render_loop_over_one_list(role, objects):
    tasks = PROJECT_ROOT / "roles" / role / "tasks"
    for mode in ("apply", "render"):
        text = (tasks / f"{mode}.yml").read_text(encoding="utf-8")
        looped = objects
        if role == "workloads" and mode == "apply":
            # In batches (the namespace, then the rest after the credentials),
            # each a slice of the one list, through apply_objects.yml.
            assert text.count(f'__workloads_batch: "{{{{ {objects}[') == 2, text
            text = (tasks / "apply_objects.yml").read_text(encoding="utf-8")
            looped = "__workloads_batch"
        assert f'loop: "{{{{ {looped}' in text, f"{role}/tasks/{mode}.yml does not loop over {looped}"
