"""The minikube binary is checked against the sha256 pinned in the
inventory, not against a checksum file served next to it: a binary with
another hash is refused, even when its own .sha256 file vouches for it."""

from __future__ import annotations

import hashlib
import json
import platform

from ansible_run import playbook, host_vars

ARCH = {"x86_64": "amd64", "aarch64": "arm64"}[platform.machine()]


def mirror(tmp_path, content: bytes):
    """A download base in minikube's release layout, with a matching .sha256."""
    version = host_vars("inventory/local", ["minikube_version"])["minikube_version"]
    release = tmp_path / "mirror" / version
    release.mkdir(parents=True)
    (release / f"minikube-linux-{ARCH}").write_bytes(content)
    (release / f"minikube-linux-{ARCH}.sha256").write_text(hashlib.sha256(content).hexdigest() + "\n")
    return tmp_path / "mirror", tmp_path / "bin" / f"minikube-{version}"


def install(tmp_path, base, *extra):
    return playbook("-i", "inventory/local", "tests/minikube_install.yml",
                    "-e", f"minikube_download_base=file://{base}", "-e", f"minikube_install_dir={tmp_path / 'bin'}", *extra)


def test_a_binary_that_does_not_match_the_pin_is_refused(tmp_path):
    base, binary = mirror(tmp_path, b"#!/bin/sh\necho tampered\n")
    run = install(tmp_path, base)
    assert run.returncode != 0
    assert "checksum" in run.stdout.lower() and "did not match" in run.stdout, run.stdout[-3000:]
    assert not binary.exists()


def test_the_same_binary_is_installed_once_it_is_the_pinned_one(tmp_path):
    content = b"#!/bin/sh\necho pinned\n"
    base, binary = mirror(tmp_path, content)
    pins = json.dumps({"minikube_sha256": {ARCH: hashlib.sha256(content).hexdigest()}})
    run = install(tmp_path, base, "-e", pins)
    assert run.returncode == 0, run.stdout[-3000:]
    assert binary.read_bytes() == content


def test_the_official_pins_are_the_v1_37_0_release_values():
    pins = host_vars("inventory/local", ["minikube_version", "minikube_sha256"])
    assert pins == {
        "minikube_version": "v1.37.0",
        "minikube_sha256": {
            "amd64": "d5cf561c71171152ff67d799f041ac0f65c235c87a1e9fc02a6a17b8226214d0",
            "arm64": "32f95860fffbbc825be38d05888542f10d3d580fe4d138f4aad71339b8038fb1",
        },
    }
