"""``ansible_host | edgeclu_agent_listen(node_ip)``: the address the agent binds (module_utils/agent.py)."""

from __future__ import annotations

from ansible_collections.edgeclu.cluster.plugins.module_utils.agent import default_listen


class FilterModule:
    def filters(self):
        return {"edgeclu_agent_listen": default_listen}
