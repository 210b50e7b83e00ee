"""Action plugin for ``k3s_fetch``: run the module's file as a plain script on the node.

The same way as ``k3s_node_state`` (module_utils/node_script.py); see plugins/modules/k3s_fetch.py.
"""

from __future__ import annotations

from ansible_collections.edgeclu.cluster.plugins.module_utils.node_script import NodeScriptAction
from ansible_collections.edgeclu.cluster.plugins.modules import k3s_fetch


class ActionModule(NodeScriptAction):
    MODULE = k3s_fetch
    WHAT = "installing k3s"
