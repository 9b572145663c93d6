"""Lookup plugin: a short, stable hash of a Docker build context."""

from __future__ import annotations

import fnmatch
import hashlib
import os

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: context_hash
short_description: Hash the files of a Docker build context
description:
  - Returns the first O(length) hex digits of a SHA-256 over every file of a
    build context (relative path, executable bit and content), in sorted order.
  - Files matched by the context's C(.dockerignore) are left out, as Docker
    leaves them out of the build, so editing one does not change the tag.
  - Relative paths are taken from the project root (the directory that holds
    C(plugins/)), so the result does not depend on which playbook asks.
options:
  _terms:
    description: Build context directories.
    required: true
  length:
    description: Number of hex digits to return.
    type: int
    default: 12
"""

EXAMPLES = r"""
- name: Tag an image by its content
  ansible.builtin.debug:
    msg: "invoice-app:{{ lookup('context_hash', 'invoice-app') }}"
"""

RETURN = r"""
_raw:
  description: One hex string for each context.
  type: list
  elements: str
"""

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def read_ignore_patterns(context):
    path = os.path.join(context, ".dockerignore")
    if not os.path.exists(path):
        return []
    patterns = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if line and not line.startswith("#"):
                patterns.append(line.rstrip("/").lstrip("/"))
    return patterns


def is_ignored(relpath, patterns):
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.replace("**/", "*/")
        parts = relpath.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(prefix, body) for prefix in prefixes):
            ignored = not negate
    return ignored


def context_hash(context):
    if not os.path.isdir(context):
        raise AnsibleLookupError(f"build context {context!r} is not a directory")
    patterns = read_ignore_patterns(context)
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(context):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, context).replace(os.sep, "/")
            if is_ignored(rel, patterns) or not os.path.isfile(full):
                continue
            executable = os.access(full, os.X_OK)
            digest.update(f"{rel}\0{int(executable)}\0".encode())
            with open(full, "rb") as handle:
                for chunk in iter(lambda: handle.read(65536), b""):
                    digest.update(chunk)
            digest.update(b"\0")
    return digest.hexdigest()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        length = self.get_option("length")
        results = []
        for term in terms:
            context = term if os.path.isabs(term) else os.path.join(PROJECT_ROOT, term)
            results.append(context_hash(context)[:length])
        return results
