"""Preflight (plugins/modules/platform_preflight.py): every problem
it can report is one line that names its fix, and a ready machine gets none.
The last test runs the real preflight play with an impossible memory size."""

from __future__ import annotations

import importlib.util
import os

import pytest
from ansible_run import PROJECT_ROOT, playbook

PATH = PROJECT_ROOT / "plugins" / "modules" / "platform_preflight.py"
spec = importlib.util.spec_from_file_location("platform_preflight_under_test", PATH)
preflight = importlib.util.module_from_spec(spec)
spec.loader.exec_module(preflight)

ALL_CAPS = (1 << 41) - 1
NO_SYS_RESOURCE = ALL_CAPS & ~(1 << preflight.CAP_SYS_RESOURCE)


def ready_params(**changes):
    params = {
        "cluster": "minikube", "driver": "docker", "airgap": False, "memory_mb": 4096, "host_port": 30081,
        "cluster_running": False, "disk_paths": ["/home/u"], "disk_min_gb": 10, "min_python": "3.11",
        "docker_host": "unix:///var/run/docker.sock", "docker_context_host": "unix:///var/run/docker.sock",
        "docker_error": "", "docker_default_runtime": "runc", "docker_runtime": "capfix", "kubeconfig": "",
    }
    params.update(changes)
    return params


def ready_facts(**changes):
    facts = {
        "system": "Linux", "machine": "x86_64", "python": "3.11.2", "python_executable": "/usr/bin/python3",
        "uid": 1000, "user": "u", "mem_available_mb": 20000, "disk_free_gb": {"/home/u": 80.0}, "port_free": True,
        "capbnd": ALL_CAPS, "commands": {"mmdebstrap": True, "newuidmap": True, "newgidmap": True},
        "subids": {"subuid": True, "subgid": True}, "kubeconfig_exists": False,
    }
    facts.update(changes)
    return facts


def test_a_ready_machine_has_no_problems():
    assert preflight.evaluate(ready_params(), ready_facts()) == []
    assert preflight.evaluate(ready_params(airgap=True), ready_facts()) == []
    assert preflight.evaluate(ready_params(cluster="existing", kubeconfig="/k"), ready_facts(kubeconfig_exists=True)) == []


# (what is wrong: params, facts) -> words the one line must hold, its fix included
CASES = {
    "not linux": ({}, {"system": "Darwin"}, ["Darwin, not Linux", "Linux machine or VM"]),
    "architecture": ({}, {"machine": "riscv64"}, ["riscv64", "amd64", "arm64"]),
    "old python": ({}, {"python": "3.10.12"}, ["3.10.12", "3.11 or newer", "make venv PYTHON=python3.12"]),
    "docker unreachable": ({"docker_error": "permission denied"}, {},
                           ["does not answer", "permission denied", "usermod -aG docker"]),
    "docker context differs": ({"docker_context_host": "ssh://build@far"}, {},
                               ["ssh://build@far", "export DOCKER_HOST=ssh://build@far"]),
    "root": ({}, {"uid": 0}, ["root", "ordinary user in the docker group", "make host-setup"]),
    "memory": ({}, {"mem_available_mb": 3000}, ["3000 MiB", "minikube_memory_mb=4096", "-e minikube_memory_mb=3072"]),
    "port": ({}, {"port_free": False}, ["127.0.0.1:30081 is in use", "platform_invoice_app_node_port"]),
    "shim missing": ({}, {"capbnd": NO_SYS_RESOURCE}, ["CAP_SYS_RESOURCE", "'runc'", "make host-setup"]),
    "disk": ({}, {"disk_free_gb": {"/home/u": 2.5}}, ["2.5 GiB free", "/home/u", "10 GiB needed"]),
    "mmdebstrap missing": ({"airgap": True}, {"commands": {"mmdebstrap": False, "newuidmap": True, "newgidmap": True}},
                           ["mmdebstrap is missing", "apt-get install mmdebstrap uidmap"]),
    "no subordinate ids": ({"airgap": True}, {"subids": {"subuid": False, "subgid": True}},
                           ["/etc/subuid", "usermod --add-subuids"]),
    "no kubeconfig": ({"cluster": "existing", "kubeconfig": "/nope"}, {},
                      ["/nope does not exist", "inventory/existing/group_vars/existing.yml"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_problem_is_one_line_naming_its_fix(case):
    params, facts, words = CASES[case]
    problems = preflight.evaluate(ready_params(**params), ready_facts(**facts))
    assert len(problems) == 1, problems
    assert "\n" not in problems[0]
    for word in words:
        assert word in problems[0], (word, problems[0])


def test_what_a_running_cluster_already_holds_is_not_a_problem():
    facts = ready_facts(mem_available_mb=100, port_free=False)
    assert len(preflight.evaluate(ready_params(), facts)) == 2
    assert preflight.evaluate(ready_params(cluster_running=True), facts) == []


def test_the_shim_is_not_asked_for_where_it_runs_or_is_not_needed():
    assert preflight.evaluate(ready_params(docker_default_runtime="capfix"), ready_facts(capbnd=NO_SYS_RESOURCE)) == []
    assert preflight.evaluate(ready_params(), ready_facts(capbnd=ALL_CAPS)) == []


def test_several_problems_are_all_reported():
    problems = preflight.evaluate(ready_params(), ready_facts(system="Darwin", uid=0, python="3.9.1"))
    assert len(problems) == 3


def test_reading_this_machine_gives_every_fact():
    facts = preflight.read_facts(ready_params(host_port=0, disk_paths=[str(PROJECT_ROOT)]))
    assert set(facts) == set(ready_facts())
    assert facts["uid"] == os.geteuid()
    assert facts["disk_free_gb"][str(PROJECT_ROOT)] > 0
    assert facts["capbnd"] is not None


def test_preflight_play_fails_on_too_little_memory_with_its_one_line():
    run = playbook("-i", "inventory/local", "playbooks/preflight.yml", "-e", "minikube_memory_mb=99999999",
                   "-e", "minikube_profile=preflight-test-no-such-profile")
    assert run.returncode != 0
    assert "the node needs minikube_memory_mb=99999999 plus 512 for the host" in run.stdout, run.stdout[-3000:]
