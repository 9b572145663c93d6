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


@pytest.mark.parametrize("role", ["workloads", "team_access"])
def test_apply_and_render_are_one_mechanism(role):
    """The owner roles render their objects and hand the list to kube_objects
    in either mode; none applies or writes an object itself."""
    tasks_dir = PROJECT_ROOT / "roles" / role / "tasks"
    def flat(tasks: list[dict]) -> list[dict]:
        return [leaf for task in tasks
                for leaf in ([task] + flat(task.get("block", []) + task.get("rescue", []) + task.get("always", [])))]

    tasks = flat([task for path in sorted(tasks_dir.glob("*.yml"))
                  for task in yaml.safe_load(path.read_text(encoding="utf-8")) or []])
    modules = {key for task in tasks for key in task if "." in key}
    assert not modules & {"kubernetes.core.k8s", "ansible.builtin.template", "ansible.builtin.copy"}, modules
    includes = [task for task in tasks if task.get("ansible.builtin.include_role", {}).get("name") == "kube_objects"]
    assert len(includes) == 1, f"{role} hands its objects to kube_objects once"
    assert includes[0]["vars"]["kube_objects_mode"] == f"{{{{ {role}_mode }}}}"
