"""Ansible filters over module_utils/prereq.py and raspberrypi.py: what the prereq and raspberrypi roles
ask the node, and what they do from its answer (the roles' tasks only read the plan)."""

from __future__ import annotations

from ansible_collections.edgeclu.cluster.plugins.filter.edgeclu_k3s import _plain
from ansible_collections.edgeclu.cluster.plugins.module_utils import prereq, raspberrypi


def prereq_probe(modules, sysctls, sysctl_path):
    """``k3s_kernel_modules | prereq_probe(k3s_sysctls, prereq_sysctl_path)``: k3s_node_state's arguments."""
    return prereq.probe(_plain(modules), _plain(sysctls), str(sysctl_path))


def prereq_plan(state, modules, sysctls, sysctl_path, disable_swap):
    """``prereq_state | prereq_plan(k3s_kernel_modules, k3s_sysctls, prereq_sysctl_path, disable_swap)``."""
    return prereq.plan(_plain(state), modules=_plain(modules), sysctls=_plain(sysctls),
                       sysctl_path=str(sysctl_path), disable_swap=bool(disable_swap))


def rpi_probe(_=None):
    """``none | rpi_probe``: k3s_node_state's arguments for a node the prereq role has not looked at."""
    return raspberrypi.probe()


def rpi_plan(state, disable_swap):
    """``rpi_node | rpi_plan(disable_swap)``."""
    return raspberrypi.plan(_plain(state), disable_swap=bool(disable_swap))


class FilterModule:
    def filters(self):
        return {"prereq_probe": prereq_probe, "prereq_plan": prereq_plan, "rpi_probe": rpi_probe,
                "rpi_plan": rpi_plan}
