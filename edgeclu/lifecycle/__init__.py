"""Cluster lifecycle after ``edgeclu up``: add, remove, upgrade, backup/restore, reset.

One module per job; the pure parts are separate from the parts that talk to nodes:

* :mod:`.plan` (pure): upgrade order and batches, etcd quorum checks.
* :mod:`.kubectl`: ``k3s kubectl`` on a server (commands are pure builders) and drain reports.
* :mod:`.invfile`: edit the inventory file atomically, with a backup.
* :mod:`.nodes`: ``add`` and ``remove``.  :mod:`.upgrade`: ``upgrade``.
* :mod:`.backup`: take, store and list backups.  :mod:`.restore`, :mod:`.reset`.

Every operation that changes the cluster holds the cluster lock (:mod:`edgeclu.lock`).
"""
