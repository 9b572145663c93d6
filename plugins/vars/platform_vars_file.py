"""Vars plugin: group `all` variables from the file named by PLATFORM_VARS_FILE."""

from __future__ import annotations

import os

from ansible.errors import AnsibleError
from ansible.inventory.group import Group
from ansible.plugins.vars import BaseVarsPlugin

DOCUMENTATION = r"""
name: platform_vars_file
short_description: Load group `all` variables from the file named by PLATFORM_VARS_FILE
description:
  - When the environment variable C(PLATFORM_VARS_FILE) names a YAML file, its
    top-level keys become variables of the group C(all), for every playbook of
    the project, whichever way it is started (make, deploy.sh, test.sh,
    molecule's create, converge and destroy alike).
  - The air-gapped bundle writes such a file (C(airgap-vars.yml)); C(make ... AIRGAP=1)
    exports its path.
  - Unset or empty means no variables. A path that does not exist, or a file
    that is not a mapping, is an error.
"""

ENV = "PLATFORM_VARS_FILE"


class VarsModule(BaseVarsPlugin):
    REQUIRES_ENABLED = False

    def get_vars(self, loader, path, entities, cache=True):
        if not isinstance(entities, list):
            entities = [entities]
        super().get_vars(loader, path, entities)
        if not any(isinstance(entity, Group) and entity.name == "all" for entity in entities):
            return {}
        source = os.environ.get(ENV, "").strip()
        if not source:
            return {}
        if not os.path.isfile(source):
            raise AnsibleError(f"{ENV}={source} does not exist; build the air-gapped bundle first (make airgap-bundle)")
        data = loader.load_from_file(source, cache="all" if cache else "none", unsafe=False)
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise AnsibleError(f"{ENV}={source} must hold a mapping of variables, not {type(data).__name__}")
        return data
