"""Filter that turns a role's rendered per-object templates into the list the
kube_objects role applies or writes: one entry per template, in order."""

from __future__ import annotations

from typing import Any

import yaml
from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: kube_objects_from_templates
short_description: Pair rendered templates with their entries of a role's object table
description:
  - The input is what C(query('ansible.builtin.template', *templates)) returned for the
    C(template) of each entry of O(objects), in the same order.
  - Each result keeps the entry's flags (C(enabled), C(secret), C(server_side)), adds the parsed
    object as C(definition) and its file name under O(directory) as C(file).
options:
  _input:
    description: The rendered templates, one string each.
    type: list
    elements: str
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
  {{ query('ansible.builtin.template', *(__table | map(attribute='template') | list))
     | kube_objects_from_templates(objects=__table, directory='invoice-app') }}
"""

RETURN = r"""
_value:
  description: One C({file, definition, ...flags}) per template.
  type: list
  elements: dict
"""


def kube_objects_from_templates(texts: list[str], objects: list[dict[str, Any]], directory: str) -> list[dict]:
    if len(texts) != len(objects):
        raise AnsibleFilterError(f"kube_objects_from_templates: {len(texts)} rendered templates for {len(objects)} objects")
    result = []
    for text, entry in zip(texts, objects):
        template = entry["template"]
        documents = [doc for doc in yaml.safe_load_all(str(text)) if doc is not None]
        if len(documents) != 1 or not isinstance(documents[0], dict) or "kind" not in documents[0]:
            raise AnsibleFilterError(f"{template}: a template must render exactly one Kubernetes object")
        flags = {key: value for key, value in entry.items() if key != "template"}
        result.append({**flags, "file": f"{directory}/{template.removesuffix('.j2')}", "definition": documents[0]})
    return result


class FilterModule:
    def filters(self) -> dict:
        return {"kube_objects_from_templates": kube_objects_from_templates}
