"""Action plugin for ``edgeclu_files``: run the module's file as a plain script on the node.

The same way as ``k3s_node_state`` (module_utils/node_script.py): the files' contents, secrets
included, travel on stdin, never on a command line; the result carries only the paths written.
"""

from __future__ import annotations

from ansible_collections.edgeclu.cluster.plugins.module_utils.node_script import NodeScriptAction
from ansible_collections.edgeclu.cluster.plugins.modules import edgeclu_files


class ActionModule(NodeScriptAction):
    MODULE = edgeclu_files
    WHAT = "writing files"
