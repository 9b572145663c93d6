"""Run the project's playbooks and ad-hoc commands from the project root,
the way a user does, for tests that exercise them end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    clean.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PATH=f"{BIN}:{clean.get('PATH', '')}")
    return clean


def playbook(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ansible-playbook"), *args], cwd=PROJECT_ROOT, env=env(),
                          capture_output=True, text=True, timeout=timeout, check=False)


def first_debug_msg(command: list[str]) -> object:
    """Run an ansible or ansible-playbook command from the project root with
    the JSON callback; return the msg of its first task's debug output."""
    run_env = env()
    run_env.update(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    out = subprocess.run([str(BIN / command[0]), *command[1:]], cwd=PROJECT_ROOT, env=run_env, capture_output=True,
                         text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    # ansible.cfg's profile_tasks callback prints timing lines around the JSON.
    doc, _ = json.JSONDecoder().raw_decode(out.stdout[out.stdout.index("{"):])
    msg = doc["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    return json.loads(msg) if isinstance(msg, str) else msg


def host_vars(inventory: str, names: list[str], *extra: str) -> dict:
    """The named variables of localhost in an inventory, templated by Ansible."""
    expr = "{{ {" + ", ".join(f"'{n}': {n} | default('<undefined>')" for n in names) + "} | to_json }}"
    return first_debug_msg(["ansible", "localhost", "-i", inventory, *extra, "-m", "ansible.builtin.debug",
                            "-a", f"msg={expr}"])
