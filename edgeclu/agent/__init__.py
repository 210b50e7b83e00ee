"""The edgeclu node agent: samples the node, serves ``/health`` and ``/metrics``, announces itself.

It runs ON NODES with only Python 3.11's standard library, psutil (>= 5.9.4) and
zeroconf (>= 0.47.3), as Debian bookworm ships them: modules in this package
import nothing else from edgeclu except ``edgeclu.__version__``.

Installed by the ``edgeclu_agent`` Ansible role into ``/opt/edgeclu`` and run as
``python3 -m edgeclu.agent --config /etc/edgeclu/agent.json``; ``--once`` prints one
JSON sample and exits (the SSH fallback of ``edgeclu health``).
"""

#: ``/health`` documents carry this; bump it on incompatible changes.
SCHEMA_VERSION = 1
