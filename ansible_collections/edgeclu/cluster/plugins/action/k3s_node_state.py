"""Action plugin for ``k3s_node_state``: run the module's file as a plain script on the node
(module_utils/node_script.py). Read-only, so it also runs in check mode: its answer says changed=False.
"""

from __future__ import annotations

from ansible_collections.edgeclu.cluster.plugins.module_utils.node_script import NodeScriptAction
from ansible_collections.edgeclu.cluster.plugins.modules import k3s_node_state


class ActionModule(NodeScriptAction):
    MODULE = k3s_node_state
