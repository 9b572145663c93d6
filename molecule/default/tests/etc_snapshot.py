#!/usr/bin/env python3
"""Print a JSON snapshot of the host paths a deploy must never change.

Every file, link and directory under /etc and /usr/local with its type,
mode, size, mtime and (for readable regular files) sha256. molecule's
prepare step saves one before converge; test_host_untouched.py takes
another afterwards and compares them.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys

ROOTS = ("/etc", "/usr/local")


def entry(path: str) -> dict:
    info = os.lstat(path)
    item = {"mode": oct(info.st_mode), "size": info.st_size, "mtime_ns": info.st_mtime_ns}
    if stat.S_ISLNK(info.st_mode):
        item["target"] = os.readlink(path)
    elif stat.S_ISREG(info.st_mode):
        try:
            with open(path, "rb") as handle:
                item["sha256"] = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError:
            item["sha256"] = "unreadable"
    return item


def snapshot(roots=ROOTS) -> dict:
    found = {}
    for root in roots:
        if not os.path.exists(root):
            continue
        found[root] = entry(root)
        for directory, dirs, files in os.walk(root, onerror=lambda _error: None):
            for name in dirs + files:
                path = os.path.join(directory, name)
                try:
                    found[path] = entry(path)
                except OSError:
                    continue
    return found


if __name__ == "__main__":
    json.dump(snapshot(sys.argv[1:] or ROOTS), sys.stdout, sort_keys=True)
