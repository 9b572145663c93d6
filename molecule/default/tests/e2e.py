"""Helpers for the end-to-end tests: run Ansible the way test.sh does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def clean_env() -> dict[str, str]:
    """The environment of a plain `ansible-playbook` run from the project
    root: molecule's ANSIBLE_* settings (its ephemeral ansible.cfg, relative
    roles path) would change what runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", PATH=f"{BIN}:{env.get('PATH', '')}")
    return env


def inventory_args() -> list[str]:
    """The scenario's own inventory (molecule links the environment's hosts
    and group_vars into it), so the tests see what converge saw."""
    return ["-i", str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)]


def inventory_vars(names: list[str]) -> dict:
    """Variables of the scenario's inventory, rendered by Ansible; an
    undefined one is None."""
    expr = "{{ {" + ", ".join(f"'{n}': {n} | default(none)" for n in names) + "} | to_json }}"
    env = clean_env()
    env.update(ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    out = subprocess.run([str(BIN / "ansible"), "localhost", *inventory_args(), "-m", "ansible.builtin.debug",
                          "-a", f"msg={expr}"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    # ansible.cfg's profile_tasks callback prints timing lines around the JSON.
    doc, _ = json.JSONDecoder().raw_decode(out.stdout[out.stdout.index("{"):])
    msg = doc["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    return json.loads(msg) if isinstance(msg, str) else msg


def ansible_playbook(*args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ansible-playbook"), *inventory_args(), *args], cwd=PROJECT_ROOT,
                          env=clean_env(), capture_output=True, text=True, timeout=timeout)


def run_verify(tmp_path: Path, name: str, **variables) -> tuple[subprocess.CompletedProcess, dict]:
    """Run playbooks/verify.yml with variables; return the run and its report."""
    report = tmp_path / f"{name}-report.json"
    variables["verify_report_path"] = str(report)
    varfile = tmp_path / f"{name}-vars.json"
    varfile.write_text(json.dumps(variables))
    run = ansible_playbook("playbooks/verify.yml", "-e", f"@{varfile}")
    (tmp_path / f"{name}.log").write_text(run.stdout + run.stderr)
    assert report.exists(), f"verify.yml wrote no report (rc {run.returncode}):\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
    return run, json.loads(report.read_text())
