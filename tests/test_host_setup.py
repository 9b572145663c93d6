"""Host setup (playbooks/host.yml, the runc_capfix role) against the real
Docker engine: it changes only what it says, backs up what it edits, and
teardown restores a daemon.json written by someone else byte for byte.

These change /etc/docker and reload dockerd, so they run only as root with
HOST_SETUP_TESTS=1 (`make host-test`, which CI runs before `make host-setup`).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from ansible_run import playbook

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or os.environ.get("HOST_SETUP_TESTS") != "1",
    reason="changes the host's Docker engine: run as root with HOST_SETUP_TESTS=1 (make host-test)",
)

DAEMON_JSON = Path("/etc/docker/daemon.json")
RECORD_DIR = Path("/var/lib/invoice-platform-host")
SHIM_DIR = Path("/usr/local/lib/invoice-platform")
SOMEONE_ELSES = '{\n  "log-level": "warn",\n  "runtimes": {"other": {"path": "/usr/bin/runc"}}\n}\n'


def host(*args: str):
    return playbook("-i", "inventory/local", "playbooks/host.yml", *args)


def recap(run) -> dict:
    found = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+).*failed=(\d+)", run.stdout)
    assert found, run.stdout[-3000:]
    return {"ok": int(found[1]), "changed": int(found[2]), "failed": int(found[3])}


def engine() -> dict:
    out = subprocess.run(["docker", "info", "--format", "{{json .}}"], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    return {"default": info["DefaultRuntime"], "runtimes": sorted(info["Runtimes"])}


def reload_dockerd():
    subprocess.run(["pkill", "--signal", "HUP", "--oldest", "--exact", "dockerd"], check=True)
    time.sleep(2)


def listing() -> list[str]:
    paths = [Path("/etc/docker"), Path("/usr/local/lib"), Path("/var/lib")]
    return sorted(f"{p} {oct(p.lstat().st_mode)}" for root in paths for p in root.iterdir())


@pytest.fixture
def docker_config_of_someone_else():
    """Start from no earlier setup and a daemon.json of someone else's;
    put back whatever was there before the test."""
    if RECORD_DIR.exists():
        assert recap(host("-e", "host_state=absent"))["failed"] == 0
    original = DAEMON_JSON.read_bytes() if DAEMON_JSON.exists() else None
    DAEMON_JSON.parent.mkdir(exist_ok=True)
    DAEMON_JSON.write_text(SOMEONE_ELSES)
    DAEMON_JSON.chmod(0o600)
    reload_dockerd()
    yield
    if RECORD_DIR.exists():
        host("-e", "host_state=absent")
    if original is None:
        DAEMON_JSON.write_text('{"default-runtime": "runc", "runtimes": {}}\n')
        reload_dockerd()
        DAEMON_JSON.unlink()
    else:
        DAEMON_JSON.write_bytes(original)
        reload_dockerd()


def test_setup_is_announced_idempotent_honest_in_check_mode_and_teardown_restores_everything(docker_config_of_someone_else):
    before_bytes, before_mode, before_listing = DAEMON_JSON.read_bytes(), DAEMON_JSON.stat().st_mode, listing()
    before_engine = engine()

    check = host("--check")
    assert recap(check)["failed"] == 0 and DAEMON_JSON.read_bytes() == before_bytes and not SHIM_DIR.exists()

    setup = host()
    assert recap(setup)["failed"] == 0, setup.stdout[-3000:]
    assert "Back up /etc/docker/daemon.json (present)" in setup.stdout
    assert "Undo all of it with: make host-teardown" in setup.stdout
    after = json.loads(DAEMON_JSON.read_text())
    print("daemon.json changed by host setup:\n" + "".join(difflib.unified_diff(
        before_bytes.decode().splitlines(True), DAEMON_JSON.read_text().splitlines(True), "before", "after setup")))
    assert after["default-runtime"] == "capfix" and after["log-level"] == "warn"
    assert after["runtimes"]["other"] == {"path": "/usr/bin/runc"}
    assert engine()["default"] == "capfix"
    assert (RECORD_DIR / "daemon.json.orig").read_bytes() == before_bytes
    assert DAEMON_JSON.stat().st_mode == before_mode

    assert recap(host())["changed"] == 0
    assert recap(host("--check"))["changed"] == 0

    teardown = host("-e", "host_state=absent")
    assert recap(teardown)["failed"] == 0, teardown.stdout[-3000:]
    assert DAEMON_JSON.read_bytes() == before_bytes
    assert DAEMON_JSON.stat().st_mode == before_mode
    assert listing() == before_listing
    assert engine() == before_engine
    assert recap(host("-e", "host_state=absent"))["changed"] == 0


def test_setup_refuses_to_replace_a_default_runtime_chosen_by_someone_else(docker_config_of_someone_else):
    theirs = '{"default-runtime": "other", "runtimes": {"other": {"path": "/usr/bin/runc"}}}\n'
    DAEMON_JSON.write_text(theirs)
    reload_dockerd()
    run = host("-e", "runc_capfix_mode=always")
    assert recap(run)["failed"] == 1
    assert "sets default-runtime to 'other'; host setup will not replace it" in run.stdout
    assert DAEMON_JSON.read_text() == theirs
    assert not SHIM_DIR.exists()
