"""The summaries in words of upgrade, remove, reset and restore (edgeclu.lifecycle.words)."""

from edgeclu.lifecycle import words

V1, V2 = "v1.31.4+k3s1", "v1.31.5+k3s1"
ORDER = [("server", ("s1",)), ("agent", ("a1", "a2")), ("agent", ("a3",))]


def test_upgrade_stopped_at_a_node_names_it_and_what_is_left():
    lines, nxt = words.upgrade_words(
        target=V2, before={"s1": V1, "a1": V1, "a2": V1, "a3": V1, "s0": V2}, order=ORDER, upgraded=["s1", "a2"],
        failed={"a1": "k3s-agent on a1 did not start"}, not_started=["a3"], inventory="inv.yml", cluster="lab")
    assert lines == [
        f"✓ s1  upgraded {V1} → {V2} (step 1/3, server: drained, upgraded, uncordoned, Ready)",
        "✗ a1  FAILED (step 2/3, agents): k3s-agent on a1 did not start",
        f"✓ a2  upgraded {V1} → {V2} (step 2/3, agents: drained, upgraded, uncordoned, Ready)",
        "· a3  left: not upgraded yet (step 3/3, agents)",
        f"= s0  already on {V2}",
    ]
    assert nxt == [f"fix a1, then run `edgeclu upgrade --k3s-version {V2} -i inv.yml` again: it resumes, the "
                   f"nodes already on {V2} are skipped"]


def test_upgrade_done():
    lines, nxt = words.upgrade_words(target=V2, before={"s1": V1}, order=[("server", ("s1",))], upgraded=["s1"],
                                     failed={}, not_started=[], inventory="my inv.yml", cluster="lab")
    assert len(lines) == 1 and nxt == ["kubectl --context lab get nodes", "edgeclu health -i 'my inv.yml'"]


def test_remove_words():
    lines, _ = words.remove_words(name="s2", role="server", reachable=True, quorum="etcd keeps quorum: 2 of 2",
                                  drained=True, stuck=[], node_deleted=True, uninstalled=True,
                                  inventory_backup="inv.yml.bak", inventory="inv.yml")
    assert lines == ["etcd: etcd keeps quorum: 2 of 2", "drained", "Node object deleted (k3s removes its etcd member)",
                     "k3s and the edgeclu agent uninstalled", "dropped from inv.yml (previous version: inv.yml.bak)"]
    lines, _ = words.remove_words(name="a1", role="agent", reachable=False, quorum=None, drained=None, stuck=[],
                                  node_deleted=True, uninstalled=False, inventory_backup=None, inventory="inv.yml")
    assert lines[0].startswith("a1 was unreachable: not drained, k3s is still installed on it")
    assert lines[1:] == ["Node object deleted"]
    lines, _ = words.remove_words(name="a1", role="agent", reachable=True, quorum=None, drained=False,
                                  stuck=["default/web: pdb"], node_deleted=True, uninstalled=False,
                                  inventory_backup=None, inventory="inv.yml")
    # k3s's install script writes k3s-agent-uninstall.sh on an agent, k3s-uninstall.sh on a server
    # (docs.k3s.io, "Uninstalling K3s")
    assert lines == ["drained with --force: 1 pod(s) would not move and went with it", "Node object deleted",
                     "uninstall FAILED (see above); run /usr/local/bin/k3s-agent-uninstall.sh on it by hand"]
    lines, _ = words.remove_words(name="s2", role="server", reachable=True, quorum=None, drained=True, stuck=[],
                                  node_deleted=True, uninstalled=False, inventory_backup=None, inventory="inv.yml")
    assert lines[-1] == "uninstall FAILED (see above); run /usr/local/bin/k3s-uninstall.sh on it by hand"


def test_reset_words_point_at_the_backup():
    lines, nxt = words.reset_words(nodes={"s1": "k3s uninstalled; node agent removed", "a1": "nothing to change"},
                                   backup="edgeclu-20260101-120000", inventory="inv.yml")
    assert lines == ["s1: k3s uninstalled; node agent removed", "a1: nothing to change",
                     "backup: edgeclu-20260101-120000"]
    assert nxt[0].startswith("edgeclu restore edgeclu-20260101-120000 -i inv.yml")
    assert words.reset_words(nodes={}, backup=None, inventory="inv.yml")[1] == [
        "edgeclu up -i inv.yml   (a new, empty cluster)"]


def test_restore_words():
    assert words.restore_words(backup="b1", token_replaced=True, passwords=["a1", "a2"], installed_first="s1") == [
        "datastore restored from b1", "k3s installed on s1 first (it had none)",
        "the token file now holds the backup's token (the old one is kept beside it)",
        "node passwords put back on: a1, a2"]
    assert words.restore_words(backup="b1", token_replaced=False, passwords=[], installed_first=None) == [
        "datastore restored from b1"]
