# -*- coding: utf-8 -*-
# The options every module built on module_utils/verify_kube.py takes
# (KUBE_ARGUMENT_SPEC), documented once.
from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path of the kubeconfig file whose credentials are used.
      - A play sets it once for every module of the action group C(invoice_platform.platform.kube)
        with C(module_defaults).
    type: path
    required: true
  context:
    description: Context in O(kubeconfig); its current context when omitted.
    type: str
"""
