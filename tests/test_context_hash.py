"""Unit tests for the context_hash lookup plugin (plugins/lookup/context_hash.py).

The image tags of the whole platform come from this hash, so it must be
stable for unchanged content and change whenever Docker would build
something different.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from pathlib import Path

import pytest
from ansible.errors import AnsibleLookupError
from ansible.plugins.loader import lookup_loader

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PLUGIN_PATH = PROJECT_ROOT / "plugins" / "lookup" / "context_hash.py"


def load_plugin():
    spec = importlib.util.spec_from_file_location("context_hash_under_test", PLUGIN_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plugin = load_plugin()


def lookup(*terms, **options):
    """Run the plugin as Ansible does: through the loader, which also reads
    its DOCUMENTATION for the option definitions (length)."""
    lookup_loader.add_directory(str(PLUGIN_PATH.parent))
    module = lookup_loader.get("context_hash")
    assert module is not None, f"Ansible cannot load {PLUGIN_PATH}"
    assert Path(module._original_path) == PLUGIN_PATH
    return module.run(list(terms), variables={}, **options)


@pytest.fixture
def context(tmp_path):
    """A small build context shaped like the services' own."""
    root = tmp_path / "svc"
    root.mkdir()
    (root / "Dockerfile").write_text("FROM scratch\nCOPY app /app\n")
    (root / "main.go").write_text("package main\n\nfunc main() {}\n")
    (root / "main_test.go").write_text("package main\n")
    (root / "internal").mkdir()
    (root / "internal" / "store.go").write_text("package internal\n")
    (root / "docs").mkdir()
    (root / "docs" / "notes.md").write_text("notes\n")
    (root / ".dockerignore").write_text("# comments are ignored\n*_test.go\ndocs/\n")
    return root


def digest(path):
    return plugin.context_hash(str(path))


def test_hash_is_stable(context):
    assert digest(context) == digest(context)


def test_hash_does_not_depend_on_the_context_location(context, tmp_path):
    copy = tmp_path / "elsewhere" / "svc"
    shutil.copytree(context, copy)
    assert digest(copy) == digest(context)


def test_hash_changes_when_a_file_content_changes(context):
    before = digest(context)
    (context / "main.go").write_text("package main\n\nfunc main() { println() }\n")
    assert digest(context) != before


def test_hash_changes_when_a_nested_file_changes(context):
    before = digest(context)
    (context / "internal" / "store.go").write_text("package internal\n\nvar x int\n")
    assert digest(context) != before


def test_hash_changes_when_a_file_is_added(context):
    before = digest(context)
    (context / "extra.go").write_text("package main\n")
    assert digest(context) != before


def test_hash_changes_when_a_file_is_renamed(context):
    before = digest(context)
    (context / "main.go").rename(context / "app.go")
    assert digest(context) != before


def test_hash_changes_when_the_exec_bit_changes(context):
    before = digest(context)
    os.chmod(context / "main.go", 0o755)
    after = digest(context)
    assert after != before
    os.chmod(context / "main.go", 0o644)
    assert digest(context) == before


def test_hash_changes_when_the_dockerfile_changes(context):
    before = digest(context)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY app /app\nUSER 65532:65532\n")
    assert digest(context) != before


@pytest.mark.parametrize(
    "ignored",
    [
        pytest.param("main_test.go", id="glob-pattern"),
        pytest.param("docs/notes.md", id="directory-pattern"),
    ],
)
def test_hash_ignores_dockerignored_files(context, ignored):
    before = digest(context)
    (context / ignored).write_text("edited, but Docker never sees it\n")
    assert digest(context) == before


def test_hash_ignores_new_dockerignored_files(context):
    before = digest(context)
    (context / "other_test.go").write_text("package main\n")
    (context / "docs" / "more.md").write_text("more\n")
    assert digest(context) == before


def test_hash_changes_when_the_dockerignore_changes(context):
    before = digest(context)
    (context / ".dockerignore").write_text("*_test.go\n")
    assert digest(context) != before


def test_allowlist_dockerignore_with_negations(tmp_path):
    """The services' style: ignore everything, then re-include what the build reads."""
    root = tmp_path / "allow"
    root.mkdir()
    (root / ".dockerignore").write_text("*\n!Dockerfile\n!.dockerignore\n!*.go\n*_test.go\n")
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "main.go").write_text("package main\n")
    (root / "main_test.go").write_text("package main\n")
    (root / "README.md").write_text("readme\n")
    before = digest(root)

    (root / "README.md").write_text("edited readme\n")
    (root / "main_test.go").write_text("package main // edited\n")
    assert digest(root) == before

    (root / "main.go").write_text("package main // edited\n")
    assert digest(root) != before


def test_missing_directory_is_an_error(tmp_path):
    with pytest.raises(AnsibleLookupError, match="is not a directory"):
        digest(tmp_path / "does-not-exist")


def test_lookup_of_a_missing_directory_is_an_error(tmp_path):
    with pytest.raises(AnsibleLookupError, match="is not a directory"):
        lookup(str(tmp_path / "does-not-exist"))


def test_a_file_is_not_a_context(context):
    with pytest.raises(AnsibleLookupError):
        digest(context / "main.go")


def test_lookup_returns_12_hex_digits_by_default(context):
    (value,) = lookup(str(context))
    assert re.fullmatch(r"[0-9a-f]{12}", value)
    assert value == digest(context)[:12]


def test_lookup_length_option(context):
    (value,) = lookup(str(context), length=20)
    assert value == digest(context)[:20]


def test_lookup_resolves_relative_contexts_from_the_project_root():
    for service in ("invoice-app", "payment-provider"):
        (value,) = lookup(service)
        assert value == digest(PROJECT_ROOT / service)[:12]


def test_lookup_returns_one_hash_per_term(context, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(context, other)
    (other / "main.go").write_text("package main // other\n")
    values = lookup(str(context), str(other))
    assert len(values) == 2
    assert values[0] != values[1]


def test_an_unchanged_context_is_hashed_once_per_process(context, monkeypatch):
    old = plugin.time.time_ns() - 10 * 10**9
    for path in context.rglob("*"):
        os.utime(path, ns=(old, old))
    first = plugin.context_hash(str(context))
    reads = []
    monkeypatch.setattr(plugin, "open", lambda *a, **k: reads.append(a) or open(*a, **k), raising=False)
    assert plugin.context_hash(str(context)) == first
    assert reads == []
    # A change the stat sees (size and mtime) is hashed anew.
    (context / "main.go").write_text("package main // changed\n")
    os.utime(context / "main.go", ns=(old + 10**9, old + 10**9))
    assert plugin.context_hash(str(context)) != first
    assert reads


def test_a_context_changed_just_now_is_never_served_from_memory(context):
    first = plugin.context_hash(str(context))
    # Same size, same second: only the content tells.
    content = (context / "main.go").read_text()
    (context / "main.go").write_text(content.replace("main", "mai2", 1))
    assert plugin.context_hash(str(context)) != first
