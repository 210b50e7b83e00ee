"""Ansible filters over module_utils/agent.py: the address the agent binds, where it lives on the node,
what to ask the node, and what to write and (re)start from its answer (the role's tasks only read the plan).

``ansible_host | edgeclu_agent_listen(node_ip)``; ``agent_prefix | edgeclu_agent_paths``;
``agent_prefix | edgeclu_agent_probe(agent_python)``; ``_agent_node | edgeclu_agent_plan(agent_prefix,
zip_sha1, agent_json, unit, sysusers)``; ``_agent_plan | edgeclu_agent_write(zip_b64)``.
"""

from __future__ import annotations

from ansible_collections.edgeclu.cluster.plugins.filter.edgeclu_k3s import _plain
from ansible_collections.edgeclu.cluster.plugins.module_utils import agent


def edgeclu_agent_plan(state, prefix, zip_sha1, config, unit, sysusers):
    return agent.plan(_plain(state), prefix=str(prefix), zip_sha1=str(zip_sha1), config=str(config),
                      unit=str(unit), sysusers=str(sysusers))


class FilterModule:
    def filters(self):
        return {
            "edgeclu_agent_listen": agent.default_listen,
            "edgeclu_agent_paths": lambda prefix: agent.paths(str(prefix)),
            "edgeclu_agent_probe": lambda prefix, python: agent.probe(str(prefix), str(python)),
            "edgeclu_agent_plan": edgeclu_agent_plan,
            "edgeclu_agent_write": lambda plan, b64: agent.with_zip(_plain(plan), str(b64)),
        }
