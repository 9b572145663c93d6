"""Filters of the kube_objects role: the list of objects from a role's
rendered per-object templates (one entry per template, in order), and what
to do with each entry of that list."""

from __future__ import annotations

from typing import Any

import re

import yaml
from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: kube_objects_from_templates
short_description: Pair rendered templates with their entries of a role's object table
description:
  - The input is what the kube_objects role's C(objects.yaml.j2) rendered for the C(template) of
    each entry of O(objects), every template after a marker line naming it, in the same order.
  - Fails when the templates named by the markers are not those of O(objects), in order, or when a
    template did not render exactly one Kubernetes object.
  - Each result keeps the entry's flags (C(enabled), C(secret), C(server_side)), adds the parsed
    object as C(definition) and its file name under O(directory) as C(file).
options:
  _input:
    description: The rendered templates, as one string.
    type: str
    required: true
  objects:
    description: The object table, entries with a C(template) and optional flags.
    type: list
    elements: dict
    required: true
  directory:
    description: Sub-directory of the objects' files, e.g. the service's name.
    type: str
    required: true
"""

EXAMPLES = r"""
__objects: >-
  {{ lookup('ansible.builtin.template', role_path ~ '/../kube_objects/templates/objects.yaml.j2',
            template_vars={'__kube_objects_templates': __table | map(attribute='template') | list})
     | invoice_platform.platform.kube_objects_from_templates(objects=__table, directory='invoice-app') }}
"""

RETURN = r"""
_value:
  description: One C({file, definition, ...flags}) per template.
  type: list
  elements: dict
"""


MARKER = re.compile(r"^# kube_objects template: (\S+)[ \t]*$", re.MULTILINE)


def kube_objects_from_templates(text: str, objects: list[dict[str, Any]], directory: str) -> list[dict]:
    parts = MARKER.split(str(text))
    names, bodies = parts[1::2], parts[2::2]
    expected = [entry["template"] for entry in objects]
    if names != expected:
        raise AnsibleFilterError(f"kube_objects_from_templates: rendered {names}, expected {expected}")
    result = []
    for body, entry in zip(bodies, objects):
        template = entry["template"]
        documents = [doc for doc in yaml.safe_load_all(body) if doc is not None]
        if len(documents) != 1 or not isinstance(documents[0], dict) or "kind" not in documents[0]:
            raise AnsibleFilterError(f"{template}: a template must render exactly one Kubernetes object")
        flags = {key: value for key, value in entry.items() if key != "template"}
        result.append({**flags, "file": f"{directory}/{template.removesuffix('.j2')}", "definition": documents[0]})
    return result


FLAGS = {"enabled": True, "secret": False, "keep_data": False, "server_side": True}


def kube_objects_plan(objects: list[dict[str, Any]]) -> dict[str, list]:
    """What the kube_objects role does with each entry: the arguments of
    kube_objects_apply, and the files to write or remove in render mode."""
    entries = [{**FLAGS, **entry} for entry in objects]
    enabled = [e for e in entries if e["enabled"]]
    secrets = [e for e in enabled if e["secret"]]
    return {
        "objects": [e["definition"] for e in enabled if not e["secret"] and e["server_side"]],
        "client_side": [e["definition"] for e in enabled if not e["secret"] and not e["server_side"]],
        # A Secret's data travels apart, so only the data is masked in logs.
        "secrets": [{k: v for k, v in e["definition"].items() if k != "data"} for e in secrets],
        "secret_data": [e["definition"].get("data", {}) for e in secrets],
        "secret_keep": [e["keep_data"] for e in secrets],
        "absent": [e["definition"] for e in entries if not e["enabled"]],
        "files": [{"file": e["file"], "definition": e["definition"]} for e in enabled if not e["secret"]],
        "removed_files": [e["file"] for e in entries if not e["enabled"]],
    }


class FilterModule:
    def filters(self) -> dict:
        return {"kube_objects_from_templates": kube_objects_from_templates, "kube_objects_plan": kube_objects_plan}
