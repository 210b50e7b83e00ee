"""edgeclu: turn a pile of Raspberry Pis and small x86 boxes into a k3s cluster.

This module stays import-light: the node agent (``edgeclu.agent``) is copied onto
nodes that have only the Python standard library, psutil and zeroconf.
"""

__version__ = "0.1.0"
