"""k3s STAND-IN for the edgeclu test lab. This is NOT k3s.

The real k3s binary cannot be downloaded where edgeclu's tests run, so the lab serves
this single Python file (stdlib + python3-yaml) under k3s's release file names, through
the same mirror / checksum path a user's air-gap setup uses. It models the parts of k3s
that provisioning and lifecycle code observes:

* ``k3s --version``; the version and arch are baked in by ``release.py``. A file built
  for another arch refuses to run (like an "exec format error").
* ``k3s server``: reads ``/etc/rancher/k3s/config.yaml`` (and flags), writes the token
  (``K10<ca-hash>::server:<secret>``, 0600) and ``/etc/rancher/k3s/k3s.yaml``, listens
  on 6443 and keeps its state (nodes, etcd members) in a store file under the data dir.
  ``cluster-init`` starts an "etcd" cluster; ``server:`` joins one with the token.
* ``k3s agent``: must present the right token to a reachable server or exit non-zero
  with a ``level=fatal`` line in the journal; then it heartbeats. A node is Ready while
  its heartbeat is younger than node-monitor-grace-period.
* ``k3s kubectl get/cordon/uncordon/drain/delete node``, ``get pods``/``get pdb`` (a minimal
  model of pods and PodDisruptionBudgets, enough for drains), ``k3s etcd-snapshot
  save/ls/delete``, ``k3s server --cluster-reset [--cluster-reset-restore-path]``.

What it does NOT do: TLS (the API on 6443 is plain HTTP; ``https://`` URLs are
dialled as ``http://``), containers, pods, networking, real etcd consensus (the first
server holds the state, the others forward to it and keep a replica).
"""
