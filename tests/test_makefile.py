"""The Makefile's own checks: an interpreter older than Python 3.11 is
refused before a virtualenv is made, with the way to pick another; an
unknown environment names the ones that exist."""

from __future__ import annotations

import subprocess

from ansible_run import PROJECT_ROOT


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


def test_an_old_python_is_refused_with_the_fix(tmp_path):
    old = tmp_path / "python3.10"
    old.write_text("#!/bin/sh\n"
                   'case "$*" in *--version*) echo "Python 3.10.12";; *) exit 1;; esac\n')
    old.chmod(0o755)
    venv = tmp_path / "venv"
    run = make("venv", f"PYTHON={old}", f"VENV={venv}")
    assert run.returncode != 0
    assert "is not Python 3.11 or newer (Python 3.10.12)" in run.stderr, run.stderr
    assert "make PYTHON=python3.12 venv" in run.stderr, run.stderr
    assert not venv.exists()


def test_an_unknown_environment_names_the_known_ones():
    run = make("preflight", "ENV=staging")
    assert run.returncode != 0
    assert "ENV=staging: there is no inventory/staging/hosts.yml" in run.stderr, run.stderr
    for name in ("local", "airgap", "existing"):
        assert name in run.stderr
