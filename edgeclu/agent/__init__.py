"""The edgeclu node agent: samples the node, serves ``/health`` and ``/metrics``, announces itself.

It runs ON NODES with only Python 3.11's standard library and psutil (>= 5.9.4, Debian
bookworm's python3-psutil): modules in this package import nothing else from edgeclu
except ``edgeclu.__version__``. It answers mDNS itself (:mod:`.mdns`); python-zeroconf
would pull in asyncio and ssl, more memory than the agent's whole budget.

Installed by the ``edgeclu_agent`` Ansible role into ``/opt/edgeclu`` and run as
``python3 -m edgeclu.agent --config /etc/edgeclu/agent.json``; ``--once`` prints one
JSON sample and exits (the SSH fallback of ``edgeclu health``).
"""

#: ``/health`` documents carry this; bump it on incompatible changes.
SCHEMA_VERSION = 1
