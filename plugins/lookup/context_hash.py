"""Lookup plugin: a short, stable hash of a Docker build context."""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import time

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


def compile_patterns(patterns):
    """Each .dockerignore pattern as (negated, compiled regex), compiled once
    per context rather than matched with fnmatch once per file and prefix."""
    compiled = []
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = (pattern[1:] if negate else pattern).replace("**/", "*/")
        compiled.append((negate, re.compile(fnmatch.translate(body))))
    return compiled


def is_ignored(relpath, patterns):
    ignored = False
    parts = relpath.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for negate, regex in patterns:
        if any(regex.match(prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def listing(context):
    """Every file of the context with what says it changed: a cheap stat,
    where the hash reads every byte."""
    found = []
    for root, dirs, files in os.walk(context):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            try:
                stat = os.stat(full)
            except OSError:  # a dangling link: not a file Docker would send
                continue
            found.append((os.path.relpath(full, context).replace(os.sep, "/"), stat.st_mode, stat.st_size,
                          stat.st_mtime_ns))
    return tuple(found)


# One templating of platform_images hashes every context it names, and one
# task may template it several times: the hash is kept per process for as
# long as no file of the context changed (name, mode, size, mtime). As in
# git's index, a file modified in the last RACY_SECONDS may change again
# within the clock's granularity without a new mtime: such a context is
# hashed every time.
_MEMO = {}
RACY_SECONDS = 2


def context_hash(context):
    if not os.path.isdir(context):
        raise AnsibleLookupError(f"build context {context!r} is not a directory")
    files = listing(context)
    key = (os.path.abspath(context), files)
    if key in _MEMO:
        return _MEMO[key]
    patterns = compile_patterns(read_ignore_patterns(context))
    digest = hashlib.sha256()
    for rel, _mode, _size, _mtime in files:
        full = os.path.join(context, rel)
        if is_ignored(rel, patterns) or not os.path.isfile(full):
            continue
        executable = os.access(full, os.X_OK)
        digest.update(f"{rel}\0{int(executable)}\0".encode())
        with open(full, "rb") as handle:
            for chunk in iter(lambda: handle.read(65536), b""):
                digest.update(chunk)
        digest.update(b"\0")
    result = digest.hexdigest()
    if all(mtime < time.time_ns() - RACY_SECONDS * 10**9 for _rel, _mode, _size, mtime in files):
        _MEMO[key] = result
    return result


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        length = self.get_option("length")
        results = []
        for term in terms:
            context = term if os.path.isabs(term) else os.path.join(PROJECT_ROOT, term)
            results.append(context_hash(context)[:length])
        return results
