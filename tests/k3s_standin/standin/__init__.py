"""k3s STAND-IN for the edgeclu test lab. This is NOT k3s, and it shares no code with edgeclu.

The real k3s binary cannot be downloaded where edgeclu's tests run, so the lab serves this package
(stdlib + python3-yaml + python3-cryptography), built by ``../release.py`` into one executable zipapp
per arch, under k3s's release file names, through the same mirror / checksum path a user's air-gap
setup uses. It models the parts of k3s that provisioning and lifecycle code observes:

* ``k3s --version`` (:mod:`.build`: version and arch baked in); a file built for another arch refuses
  to run, like an "exec format error".
* ``k3s server`` (:mod:`.api`): reads ``/etc/rancher/k3s/config.yaml`` and flags (:mod:`.config`),
  makes its CAs and certificates (:mod:`.tls`), writes the token (``K10<ca-hash>::server:<secret>``)
  and ``/etc/rancher/k3s/k3s.yaml``, serves TLS on 6443: k3s's supervisor paths for joining nodes
  and the Kubernetes REST subset real kubectl drives (:mod:`.kube`, over :mod:`.objects`), keeping
  its state in a store (:mod:`.store`): a file under the data dir for a single server (k3s: SQLite), or,
  with ``cluster-init``, a real etcd member per server (:mod:`.etcd`: Debian's etcd 3.4 as a child
  process); ``server:`` joins one with the token (:mod:`.join`: the CA hash check) and ``member add``.
* ``k3s agent`` (:mod:`.cli`): must present the right token to a reachable server or exit non-zero
  with a ``level=fatal`` line in the journal; then it heartbeats. A node is Ready while its heartbeat
  is younger than node-monitor-grace-period.
* ``k3s kubectl``: runs a real kubectl of the same minor (the lab binds one into each node).
* ``k3s certificate rotate`` (:mod:`.tls`): leaf certificates last ``$CATTLE_NEW_SIGNED_CERT_EXPIRATION_DAYS``
  days (365 by default), are renewed at start within 120 days of their end, and ``rotate`` backs them up and
  removes them so the next start issues new ones.
* ``k3s etcd-snapshot save/ls/delete``, ``k3s server --cluster-reset [--cluster-reset-restore-path]``
  (:mod:`.snapshot`: real etcd snapshots, ``etcdctl snapshot restore``, ``--force-new-cluster``).

What it does NOT do: containers, a kubelet (a heartbeat stands for it), networking, OpenAPI, watches,
the Kubernetes storage layout (the objects are one JSON document under one etcd key, written with a
compare-and-swap).
"""
