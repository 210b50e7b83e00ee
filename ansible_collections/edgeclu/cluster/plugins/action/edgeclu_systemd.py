"""Action plugin for ``edgeclu_systemd``: run the module's file as a plain script on the node
(module_utils/node_script.py); in check mode it acts on nothing and says what it would do."""

from __future__ import annotations

from ansible_collections.edgeclu.cluster.plugins.module_utils.node_script import NodeScriptAction
from ansible_collections.edgeclu.cluster.plugins.modules import edgeclu_systemd


class ActionModule(NodeScriptAction):
    MODULE = edgeclu_systemd
    WHAT = "starting the service"
