"""The deploy runs without root and changes nothing on the host outside the
user's home and the project's cache: /etc and /usr/local are byte for byte
what they were before converge (recorded by prepare.yml)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from etc_snapshot import snapshot

DAEMON_JSON = "/etc/docker/daemon.json"


def before() -> dict:
    return json.loads((Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "etc-before.json").read_text())


def test_deploy_ran_as_an_ordinary_user():
    assert os.geteuid() != 0, "molecule runs as root: the deploy must be proven as an ordinary user"


def test_docker_daemon_json_is_unchanged_by_the_deploy():
    old, new = before().get(DAEMON_JSON), snapshot().get(DAEMON_JSON)
    print(f"{DAEMON_JSON} sha256 before converge: {old and old.get('sha256')}, after: {new and new.get('sha256')}")
    assert old == new


def test_nothing_under_etc_or_usr_local_changed():
    old, new = before(), snapshot()
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(path for path in set(old) & set(new) if old[path] != new[path])
    assert (added, removed, changed) == ([], [], []), f"added {added[:20]}, removed {removed[:20]}, changed {changed[:20]}"
