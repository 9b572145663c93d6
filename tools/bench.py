#!/usr/bin/env python3
"""Time the deployment's phases side by side, in one run, and print ratios.

Each phase is a real ansible-playbook run against the same machine:

  cluster-cold   playbooks/cluster.yml after `make destroy` (a new cluster)
  cluster-noop   playbooks/cluster.yml again (the profile is running)
  site-first     site.yml on that fresh cluster (images, resources, checks)
  site-noop      site.yml again (nothing to change: the verification reuses
                 site-first's proof and reads the invoices; the bench says
                 whether it did)
  site-proof     site.yml again with verify_reuse=false (every check runs)
  bundle-noop    playbooks/airgap-bundle.yml on a built bundle (inventory/airgap only)

Then the Kubernetes resources against their raw floor, on the same cluster:

  floor-fresh      kubectl apply --server-side of the rendered manifests (the
                   namespaces first) plus kubectl rollout status of every
                   Deployment and StatefulSet, after the services' namespaces
                   and the teams' cluster-wide objects were deleted
  floor-noop       the same again, with nothing to change
  resources-fresh  playbooks/resources.yml after the same deletion
  resources-noop   playbooks/resources.yml again

The ratios say what idempotence buys and what Ansible costs over kubectl.
Absolute seconds depend on the machine; ratios measured in one run are
comparable between runs. The goals: resources-fresh within 2x floor-fresh,
resources-noop within 5 s, site-noop within 30 s and a third of site-first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def playbook(args: argparse.Namespace, path: str) -> list[str]:
    return [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", args.inventory, path]


def run(name: str, command: list[str], log_dir: Path) -> float:
    log = log_dir / f"{name}.log"
    print(f"-> {name}: {' '.join(command[1:])} (log: {log})", flush=True)
    started = time.monotonic()
    with log.open("w") as handle:
        result = subprocess.run(command, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, check=False)
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"bench: {name} failed with exit code {result.returncode}; see {log}")
    print(f"   {name}: {elapsed:.1f} s", flush=True)
    return elapsed


def facts(args: argparse.Namespace, names: list[str]) -> dict:
    """Variables of localhost in the inventory, templated by Ansible."""
    expr = "{{ {" + ", ".join(f"'{n}': {n} | default(none)" for n in names) + "} | to_json }}"
    env = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
    out = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible"), "localhost", "-i", args.inventory, "-m",
                          "ansible.builtin.debug", "-a", f"msg={expr}"], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"bench: cannot read the inventory's variables:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    # ansible.cfg's profile_tasks callback prints timing lines around the JSON.
    doc, _ = json.JSONDecoder().raw_decode(out.stdout[out.stdout.index("{"):])
    msg = doc["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    return json.loads(msg) if isinstance(msg, str) else msg


class Kubectl:
    def __init__(self, binary: str, kubeconfig: str, context: str) -> None:
        self.base = [binary, "--kubeconfig", kubeconfig, "--context", context]

    def __call__(self, *args: str, capture: bool = False) -> str:
        out = subprocess.run([*self.base, *args], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.exit(f"bench: kubectl {' '.join(args)} failed: {out.stderr.strip()}")
        return out.stdout if capture else ""


def find_kubectl(args: argparse.Namespace, fact: dict) -> str:
    if args.kubectl:
        return args.kubectl
    # The minikube role's default home, unless the inventory sets another.
    home = fact["minikube_home"] or str(Path.home() / ".minikube")
    cached = Path(home) / "cache" / "linux" / "amd64" / fact["minikube_kubernetes_version"] / "kubectl"
    found = str(cached) if cached.is_file() else shutil.which("kubectl")
    if not found:
        sys.exit("bench: no kubectl in minikube's cache or on PATH; pass --kubectl")
    return found


def reset_resources(kubectl: Kubectl, namespaces: list[str], part_of: str) -> None:
    """Delete what playbooks/resources.yml makes: the services' namespaces
    (and all in them) and the teams' cluster-wide admission policies."""
    for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
        kubectl("delete", kind, "-l", f"app.kubernetes.io/part-of={part_of}", "--ignore-not-found", "--wait")
    kubectl("delete", "namespace", *namespaces, "--ignore-not-found", "--wait", "--timeout=300s")


def floor(name: str, kubectl: Kubectl, manifests: Path, rollouts: list[tuple[str, str, str]]) -> float:
    """What the resources play does, with nothing but kubectl."""
    print(f"-> {name}: kubectl apply --server-side -R -f {manifests} (namespaces first), then rollout status",
          flush=True)
    started = time.monotonic()
    apply = ("apply", "--server-side", "--force-conflicts", "--field-manager=bench")
    kubectl(*apply, *[arg for ns in sorted(manifests.glob("*/namespace.yaml")) for arg in ("-f", str(ns))])
    kubectl(*apply, "-R", "-f", str(manifests))
    for kind, namespace, obj in rollouts:
        kubectl("rollout", "status", f"{kind}/{obj}", "-n", namespace, "--timeout=300s")
    elapsed = time.monotonic() - started
    print(f"   {name}: {elapsed:.1f} s", flush=True)
    return elapsed


def resources(args: argparse.Namespace, log_dir: Path, times: dict[str, float]) -> None:
    fact = facts(args, ["platform_kubeconfig", "platform_kube_context", "platform_services", "platform_name",
                        "minikube_home", "minikube_kubernetes_version"])
    kubectl = Kubectl(find_kubectl(args, fact), fact["platform_kubeconfig"], fact["platform_kube_context"])
    services = fact["platform_services"].values()
    namespaces = [s["namespace"] for s in services]
    rollouts = [("statefulset", s["namespace"], f"{s['name']}-db") for s in services if "database" in s]
    rollouts += [("deployment", s["namespace"], s["name"]) for s in services]
    with tempfile.TemporaryDirectory(prefix="bench-manifests-") as tmp:
        manifests = Path(tmp) / "manifests"
        run("render", [*playbook(args, "playbooks/render.yml"), "-e", f"render_dir={manifests}"], log_dir)
        # The rendered files leave out the databases' Secrets; the floor
        # applies the running ones, as a team with its own secret store would.
        for s in services:
            if "database" not in s:
                continue
            secret = json.loads(kubectl("get", "secret", f"{s['name']}-db", "-n", s["namespace"], "-o", "json",
                                        capture=True))
            meta = secret["metadata"]
            secret["metadata"] = {k: meta[k] for k in ("name", "namespace", "labels") if k in meta}
            (manifests / s["name"] / "secret-database.json").write_text(json.dumps(secret))
        reset_resources(kubectl, namespaces, fact["platform_name"])
        times["floor-fresh"] = floor("floor-fresh", kubectl, manifests, rollouts)
        times["floor-noop"] = floor("floor-noop", kubectl, manifests, rollouts)
    reset_resources(kubectl, namespaces, fact["platform_name"])
    times["resources-fresh"] = run("resources-fresh", playbook(args, "playbooks/resources.yml"), log_dir)
    times["resources-noop"] = run("resources-noop", playbook(args, "playbooks/resources.yml"), log_dir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--inventory",
        default="inventory/local",
        help="the environment's inventory, e.g. inventory/airgap (default: inventory/local)",
    )
    parser.add_argument("--log-dir", default=str(ROOT / "build" / "bench"), help="where each run's output goes")
    parser.add_argument("--kubectl", help="kubectl for the floor (default: minikube's cached one, else PATH)")
    parser.add_argument("--only-resources", action="store_true",
                        help="only the resources against their floor, on the running cluster")
    args = parser.parse_args()
    if not (ROOT / args.inventory / "hosts.yml").is_file():
        parser.error(f"no inventory at {args.inventory} (expected {args.inventory}/hosts.yml)")
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ANSIBLE_FORCE_COLOR", "false")

    times: dict[str, float] = {}
    if args.only_resources:
        resources(args, log_dir, times)
        report(times)
        return 0
    if Path(args.inventory).name == "airgap":
        times["bundle-noop"] = run("bundle-noop", playbook(args, "playbooks/airgap-bundle.yml"), log_dir)
    run("destroy", playbook(args, "playbooks/destroy.yml"), log_dir)
    times["cluster-cold"] = run("cluster-cold", playbook(args, "playbooks/cluster.yml"), log_dir)
    times["cluster-noop"] = run("cluster-noop", playbook(args, "playbooks/cluster.yml"), log_dir)
    times["site-first"] = run("site-first", playbook(args, "site.yml"), log_dir)
    times["site-noop"] = run("site-noop", playbook(args, "site.yml"), log_dir)
    reused = "Reusing the last verification" in (log_dir / "site-noop.log").read_text()
    times["site-proof"] = run("site-proof", playbook(args, "site.yml") + ["-e", "verify_reuse=false"], log_dir)
    resources(args, log_dir, times)
    report(times)
    print(f"site-noop reused site-first's verification: {'yes' if reused else 'NO (every check ran)'}")
    return 0


def report(times: dict[str, float]) -> None:
    print("\nphase            seconds")
    for name, seconds in times.items():
        print(f"{name:<16} {seconds:7.1f}")
    print("\nratio                               value   goal")

    def line(label: str, value: float, goal: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None else ("met" if met else "NOT MET")
        print(f"{label:<34} {value:6.2f}   {goal:<10} {verdict}".rstrip())

    if "site-noop" in times:
        line("cluster-cold / cluster-noop", times["cluster-cold"] / times["cluster-noop"])
        line("cluster-cold / site-first", times["cluster-cold"] / times["site-first"])
        ratio = times["site-noop"] / times["site-first"]
        line("site-noop / site-first", ratio, "<= 0.33", ratio <= 1 / 3)
        line("site-noop (s)", times["site-noop"], "<= 30 s", times["site-noop"] <= 30)
        line("site-proof / site-noop", times["site-proof"] / times["site-noop"])
    ratio = times["resources-fresh"] / times["floor-fresh"]
    line("resources-fresh / floor-fresh", ratio, "<= 2", ratio <= 2)
    line("resources-noop / floor-noop", times["resources-noop"] / times["floor-noop"])
    line("resources-noop (s)", times["resources-noop"], "<= 5 s", times["resources-noop"] <= 5)


if __name__ == "__main__":
    sys.exit(main())
