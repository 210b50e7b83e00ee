"""``ansible_host | edgeclu_agent_listen(node_ip)``: the address the agent binds (edgeclu.agent.config).

Found from the source tree and from an installed wheel, like playbooks/filter_plugins/edgeclu_k3s.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from edgeclu.agent import config
except ImportError:  # plain ansible-playbook from a checkout or an unpacked wheel
    _here = Path(__file__).resolve()
    for _root in (_here.parents[4], _here.parents[6] if len(_here.parents) > 6 else None):
        if _root is not None and (_root / "edgeclu" / "agent" / "config.py").is_file():
            sys.path.insert(0, str(_root))
            break
    from edgeclu.agent import config


class FilterModule:
    def filters(self):
        return {"edgeclu_agent_listen": config.default_listen}
