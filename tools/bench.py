#!/usr/bin/env python3
"""Time the deployment's phases side by side, in one run, and print ratios.

Each phase is a real ansible-playbook run against the same machine:

  cluster-cold   playbooks/cluster.yml after `make destroy` (a new cluster)
  cluster-noop   playbooks/cluster.yml again (the profile is running)
  site-first     site.yml on that fresh cluster (images, resources, checks)
  site-noop      site.yml again (nothing to change; the checks still run)
  bundle-noop    playbooks/airgap-bundle.yml on a built bundle (inventory/airgap only)

The ratios say what idempotence buys: how much cheaper a run is when there
is nothing to do. Absolute seconds depend on the machine; ratios measured in
one run are comparable between runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--inventory",
        default="inventory/local",
        help="the environment's inventory, e.g. inventory/airgap (default: inventory/local)",
    )
    parser.add_argument("--log-dir", default=str(ROOT / "build" / "bench"), help="where each run's output goes")
    args = parser.parse_args()
    if not (ROOT / args.inventory / "hosts.yml").is_file():
        parser.error(f"no inventory at {args.inventory} (expected {args.inventory}/hosts.yml)")
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ANSIBLE_FORCE_COLOR", "false")

    times: dict[str, float] = {}
    if Path(args.inventory).name == "airgap":
        times["bundle-noop"] = run("bundle-noop", playbook(args, "playbooks/airgap-bundle.yml"), log_dir)
    run("destroy", playbook(args, "playbooks/destroy.yml"), log_dir)
    times["cluster-cold"] = run("cluster-cold", playbook(args, "playbooks/cluster.yml"), log_dir)
    times["cluster-noop"] = run("cluster-noop", playbook(args, "playbooks/cluster.yml"), log_dir)
    times["site-first"] = run("site-first", playbook(args, "site.yml"), log_dir)
    times["site-noop"] = run("site-noop", playbook(args, "site.yml"), log_dir)

    print("\nphase          seconds")
    for name, seconds in times.items():
        print(f"{name:<14} {seconds:7.1f}")
    print("\nratio                         value")
    print(f"cluster-cold / cluster-noop  {times['cluster-cold'] / times['cluster-noop']:6.1f}x")
    print(f"site-first / site-noop       {times['site-first'] / times['site-noop']:6.1f}x")
    print(f"cluster-cold / site-first    {times['cluster-cold'] / times['site-first']:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
