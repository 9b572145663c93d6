#!/usr/bin/python
"""Check that this machine can run the platform, before anything changes."""

from __future__ import annotations

import errno
import os
import platform
import pwd
import shutil
import socket
import sys

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: platform_preflight
short_description: Check that this machine can run the platform
description:
  - Reads the facts a deploy depends on (operating system, architecture, Python, user, memory, disk, a free
    host port, dockerd's bounding capabilities, the air-gapped bundle's tools) and compares them with what
    the inventory asks for.
  - Fails with one line per problem, each naming its fix. Changes nothing.
options:
  cluster:
    description: C(minikube) or C(existing).
    type: str
    required: true
  driver:
    description: minikube's driver.
    type: str
    default: docker
  airgap:
    description: Whether the air-gapped bundle will be built.
    type: bool
    default: false
  memory_mb:
    description: Memory the minikube node gets.
    type: int
    default: 0
  host_port:
    description: Loopback port minikube publishes for invoice-app; 0 for none.
    type: int
    default: 0
  cluster_running:
    description: Whether the minikube profile's node already runs (its memory and port are then in use by it).
    type: bool
    default: false
  disk_paths:
    description: Paths whose file systems must have disk_min_gb free.
    type: list
    elements: path
    default: []
  disk_min_gb:
    description: Free space needed on each of disk_paths, in GiB.
    type: int
    default: 10
  min_python:
    description: Oldest Python that runs the automation.
    type: str
    default: "3.11"
  docker_host:
    description: The Docker endpoint every module and the CLI use.
    type: str
    default: ""
  docker_context_host:
    description: The endpoint of the current Docker CLI context.
    type: str
    default: ""
  docker_error:
    description: Why the Docker engine did not answer; empty when it did.
    type: str
    default: ""
  docker_default_runtime:
    description: Docker's default runtime, as the engine reports it.
    type: str
    default: ""
  docker_runtime:
    description: The runtime shim's name, which host setup registers.
    type: str
    default: capfix
  kubeconfig:
    description: For an existing cluster, the kubeconfig that must exist.
    type: path
    default: ""
"""

RETURN = r"""
problems:
  description: One line per problem, each naming its fix; empty when the machine is ready.
  type: list
  elements: str
  returned: always
facts:
  description: What was read.
  type: dict
  returned: always
"""

CAP_SYS_RESOURCE = 24
ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def read_facts(params):
    """Everything the checks look at, read from this machine."""
    user = pwd.getpwuid(os.geteuid()).pw_name
    facts = {
        "system": platform.system(),
        "machine": platform.machine(),
        "python": "%d.%d.%d" % sys.version_info[:3],
        "python_executable": sys.executable,
        "uid": os.geteuid(),
        "user": user,
        "mem_available_mb": mem_available_mb(),
        "disk_free_gb": {path: disk_free_gb(path) for path in params["disk_paths"]},
        "port_free": port_free(params["host_port"]) if params["host_port"] else True,
        "capbnd": capbnd(),
        "commands": {name: bool(shutil.which(name)) for name in ("mmdebstrap", "newuidmap", "newgidmap")},
        "subids": {name: has_subid_range(path, user) for name, path in (("subuid", "/etc/subuid"), ("subgid", "/etc/subgid"))},
        "kubeconfig_exists": bool(params["kubeconfig"]) and os.path.isfile(params["kubeconfig"]),
    }
    return facts


def mem_available_mb():
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def disk_free_gb(path):
    """Free GiB on the file system that holds path, or its nearest existing parent."""
    while path and not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    try:
        stat = os.statvfs(path or "/")
    except OSError:
        return None
    return round(stat.f_bavail * stat.f_frsize / 2**30, 1)


def port_free(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        return exc.errno not in (errno.EADDRINUSE, errno.EACCES)
    finally:
        sock.close()
    return True


def capbnd():
    """The bounding capability set of the local dockerd, else of this process."""
    for pid in sorted((entry for entry in os.listdir("/proc") if entry.isdigit()), key=int):
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8") as handle:
                if handle.read().strip() != "dockerd":
                    continue
        except OSError:
            continue
        value = status_capbnd(f"/proc/{pid}/status")
        if value is not None:
            return value
    return status_capbnd("/proc/self/status")


def status_capbnd(path):
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("CapBnd:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return None


def has_subid_range(path, user):
    try:
        with open(path, encoding="utf-8") as handle:
            return any(line.split(":")[0] in (user, str(os.geteuid())) for line in handle if line.count(":") == 2)
    except OSError:
        return False


def version_tuple(text):
    return tuple(int(part) for part in text.split(".")[:2])


def evaluate(params, facts):
    """The problems that stop a deploy, one line each, each naming its fix."""
    problems = []
    minikube = params["cluster"] == "minikube"
    if facts["system"] != "Linux":
        problems.append(f"This is {facts['system']}, not Linux: run the platform on a Linux machine or VM.")
    if facts["machine"] not in ARCHES:
        problems.append(
            f"The architecture is {facts['machine']}: minikube and the images are built for amd64 (x86_64) and arm64 (aarch64) only; use such a machine."
        )
    if version_tuple(facts["python"]) < version_tuple(params["min_python"]):
        problems.append(
            f"Ansible runs on Python {facts['python']} ({facts['python_executable']}); {params['min_python']} or newer is needed:"
            f" rebuild the virtualenv with a newer interpreter, e.g. `rm -rf .venv && make venv PYTHON=python3.12`."
        )
    if params["docker_error"]:
        problems.append(
            f"Docker does not answer at {params['docker_host'] or 'the default socket'} ({params['docker_error']}):"
            " start dockerd, or add this user to the docker group (`sudo usermod -aG docker $USER`, then log in again)."
        )
    elif params["docker_context_host"] and params["docker_host"] and params["docker_context_host"] != params["docker_host"]:
        problems.append(
            f"The current Docker context points at {params['docker_context_host']}, but the playbooks use {params['docker_host']}:"
            f" export DOCKER_HOST={params['docker_context_host']} so both use the same engine."
        )
    if minikube:
        if params["driver"] == "docker" and facts["uid"] == 0:
            problems.append(
                "Running as root: minikube's docker driver refuses root; run as an ordinary user in the docker group"
                " (root is only for `make host-setup`)."
            )
        if not params["cluster_running"]:
            available = facts["mem_available_mb"]
            if available is not None and params["memory_mb"] and available < params["memory_mb"] + 512:
                problems.append(
                    f"{available} MiB of memory is available, the node needs minikube_memory_mb={params['memory_mb']} plus 512 for the host:"
                    " free memory, or lower it (e.g. -e minikube_memory_mb=3072)."
                )
            if not facts["port_free"]:
                problems.append(
                    f"Port 127.0.0.1:{params['host_port']} is in use, and minikube publishes invoice-app there:"
                    " stop what listens on it, or set platform_invoice_app_node_port to a free port in 30000-32767."
                )
        if (
            params["driver"] == "docker"
            and not params["docker_error"]
            and facts["capbnd"] is not None
            and not facts["capbnd"] >> CAP_SYS_RESOURCE & 1
            and params["docker_default_runtime"] != params["docker_runtime"]
        ):
            problems.append(
                f"This host refuses CAP_SYS_RESOURCE to containers and Docker's default runtime is"
                f" '{params['docker_default_runtime']}', so minikube's node cannot start: run `make host-setup` once (it uses sudo)."
            )
    for path, free in sorted(facts["disk_free_gb"].items()):
        if free is not None and free < params["disk_min_gb"]:
            problems.append(
                f"{free} GiB free on the file system of {path}, {params['disk_min_gb']} GiB needed: free some space there."
            )
    if minikube and params["airgap"]:
        missing = sorted(name for name, found in facts["commands"].items() if not found)
        if missing:
            problems.append(
                f"The air-gapped bundle builds Debian images without root, with mmdebstrap and uidmap; {', '.join(missing)}"
                " is missing: `sudo apt-get install mmdebstrap uidmap`."
            )
        lacking = sorted(name for name, found in facts["subids"].items() if not found)
        if lacking:
            problems.append(
                f"User {facts['user']} has no range in /etc/{' or /etc/'.join(lacking)}, which mmdebstrap's user namespace needs:"
                f" `sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {facts['user']}`."
            )
    if not minikube and not facts["kubeconfig_exists"]:
        problems.append(
            f"platform_kubeconfig {params['kubeconfig'] or '(unset)'} does not exist:"
            " point it at the cluster's kubeconfig in inventory/existing/group_vars/existing.yml."
        )
    return problems


def main():
    module = AnsibleModule(
        argument_spec={
            "cluster": {"type": "str", "required": True, "choices": ["minikube", "existing"]},
            "driver": {"type": "str", "default": "docker"},
            "airgap": {"type": "bool", "default": False},
            "memory_mb": {"type": "int", "default": 0},
            "host_port": {"type": "int", "default": 0},
            "cluster_running": {"type": "bool", "default": False},
            "disk_paths": {"type": "list", "elements": "path", "default": []},
            "disk_min_gb": {"type": "int", "default": 10},
            "min_python": {"type": "str", "default": "3.11"},
            "docker_host": {"type": "str", "default": ""},
            "docker_context_host": {"type": "str", "default": ""},
            "docker_error": {"type": "str", "default": ""},
            "docker_default_runtime": {"type": "str", "default": ""},
            "docker_runtime": {"type": "str", "default": "capfix"},
            "kubeconfig": {"type": "path", "default": ""},
        },
        supports_check_mode=True,
    )
    facts = read_facts(module.params)
    problems = evaluate(module.params, facts)
    if problems:
        module.fail_json(msg="\n".join(problems), problems=problems, facts=facts)
    module.exit_json(changed=False, problems=[], facts=facts)


if __name__ == "__main__":
    main()
