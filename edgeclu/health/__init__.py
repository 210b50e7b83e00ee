"""``edgeclu health``: one row per node from its agent (or SSH), thresholds, and Kubernetes status.

- :mod:`.thresholds`: the rules (pure) that turn a sample into findings and a status.
- :mod:`.kube`: parse ``k3s kubectl get nodes -o json`` (pure).
- :mod:`.collect`: the I/O: HTTP to every agent in parallel, SSH fallback, kubectl over SSH.
- :mod:`.report`: rows, JSON and the exit code (pure).
"""
