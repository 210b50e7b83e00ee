"""Bad input: one clear line, always (issues 10.5 and 9.4), through the real CLI.

Each malformed inventory goes through ``edgeclu inventory check`` and ``edgeclu up``: exit 2, the exact
lines on stderr (file, host or group, field), nothing on stdout, no traceback. The hosts are TEST-NET-1
addresses that never answer: a command that got past the inventory would fail differently (unreachable).
"""

import textwrap

import pytest
from typer.testing import CliRunner

from bench.inventory_check import BOMB, inventory, measure
from edgeclu.cli import app

TEMPLATE = """\
k3s_cluster:
  children:
    server:
      hosts:
        pi-1: {{ansible_host: 192.0.2.1}}
    agent:
      hosts:
        pi-2:
{address}
{host}
      vars:
        ansible_user: pi
{agent}
  vars:
    k3s_version: v1.31.4+k3s1
{cluster}
{top}
"""
SSH_VARS = ("would replace edgeclu's ssh options and host-key checks, which an inventory may not change "
            "(ansible_ssh_common_args takes other options, e.g. ProxyJump)")
RESERVED = "is set by edgeclu (the tokens, the join URL and cluster-init are edgeclu's)"
NOT_SCALAR = "a value must be a string, number, true/false, or a list of them"


def _bomb(levels: int, width: int = 10) -> str:
    lines = ["          k3s_extra_config:", f"            l0: &l0 [{', '.join(['x'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"            l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines)


def _host(*lines: str) -> dict:
    return {"host": "\n".join(" " * 10 + ln for ln in lines)}


# (id, template slots and extra files, expected stderr lines without "error: "; {inv} and {dir} filled in)
CASES = [
    ("non-utf8-inventory", {"host": b'          ansible_user: "p\xffi"'},
     ["{inv}:10: host 'pi-2': field 'ansible_user': not UTF-8 text (byte 0xff)"]),
    ("list-for-ansible_host-in-group-vars", {"agent": "        ansible_host: [192.0.2.7, 192.0.2.8]", "address": ""},
     ["{inv}: group 'agent' vars: field 'ansible_host': must be an IP address or DNS name (a string)"]),
    ("list-for-ansible_host-in-cluster-vars", {"cluster": "    ansible_host: [192.0.2.7]", "address": ""},
     ["{inv}: cluster vars: field 'ansible_host': must be an IP address or DNS name (a string)"]),
    ("deeply-nested", _host("k3s_extra_config: {kubelet-arg: " + "[" * 40 + "]" * 40 + "}"),
     ["{inv}:10: host 'pi-2': field 'k3s_extra_config': nested deeper than 32 levels"]),
    ("nested-past-libyaml", _host("k3s_extra_config: {kubelet-arg: " + "[" * 100_000 + "]" * 100_000 + "}"),
     ["{inv}:10: host 'pi-2': field 'k3s_extra_config': invalid YAML: exceeded maximum nesting depth"]),
    ("alias-bomb-in-k3s_extra_config", {"host": _bomb(6)},
     ["{inv}:15: host 'pi-2': field 'k3s_extra_config': alias *l3 stands for 11111 values (more than 10000): "
      "an alias bomb? write the values out"]),
    ("alias-bomb-small", {"host": _bomb(2)},
     [f"{{inv}}: host 'pi-2': field 'k3s_extra_config': key 'l1': {NOT_SCALAR}"]),
    ("alias-undefined", _host("node_labels: [*nope]"),
     ["{inv}:10: host 'pi-2': field 'node_labels': alias *nope is not defined"]),
    ("label-kubernetes.io", _host('node_labels: ["node-role.kubernetes.io/worker=true"]'),
     ["{inv}: host 'pi-2': field 'node_labels': 'node-role.kubernetes.io/worker=true' is not a valid node label: "
      "key 'node-role.kubernetes.io/worker' is in the kubernetes.io namespace, which a node may not set on "
      "itself (kubelet --node-labels); set it with kubectl label"]),
    ("label-value-space", _host('node_labels: ["zone=garage pi"]'),
     ["{inv}: host 'pi-2': field 'node_labels': 'zone=garage pi' is not a valid node label: value 'garage pi': "
      "at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends"]),
    ("label-no-value", _host("node_labels: [gpu]"),
     ["{inv}: host 'pi-2': field 'node_labels': 'gpu' is not a valid node label: needs key=value"]),
    ("taint-effect", _host('node_taints: ["dedicated=gpu:NoScheduel"]'),
     ["{inv}: host 'pi-2': field 'node_taints': 'dedicated=gpu:NoScheduel' is not a valid node taint: the effect "
      "must be one of NoSchedule, PreferNoSchedule, NoExecute (key=value:Effect)"]),
    ("taint-key", _host('node_taints: ["-bad=x:NoSchedule"]'),
     ["{inv}: host 'pi-2': field 'node_taints': '-bad=x:NoSchedule' is not a valid node taint: key '-bad': the "
      "name must be at most 63 letters, digits, '-', '_', '.', alphanumeric at both ends"]),
    ("node_iface", _host('node_iface: "eth0; reboot"'),
     ["{inv}: host 'pi-2': field 'node_iface': 'eth0; reboot' is not a network interface name (up to 15 "
      "letters, digits, '_', '.', '-')"]),
    ("k3s_airgap_dir-dotdot", {"cluster": "    k3s_airgap_dir: /srv/k3s/../../etc"},
     ["{inv}: cluster vars: field 'k3s_airgap_dir': '/srv/k3s/../../etc' has a '..' component; give the "
      "directory's own path"]),
    *[(f"extra-config-{key}", _host(f"k3s_extra_config: {{{key}: x}}"),
       [f"{{inv}}: host 'pi-2': field 'k3s_extra_config': key '{key}' {RESERVED}"])
      for key in ("token-file", "agent-token-file", "t", "s", "server-url", "token+", "server")],
    ("extra-config-kubeconfig-mode", {"cluster": '    k3s_extra_config: {write-kubeconfig-mode: "0644"}'},
     ["{inv}: cluster vars: field 'k3s_extra_config': key 'write-kubeconfig-mode': the admin kubeconfig stays "
      "0600 (it holds the cluster-admin key)"]),
    ("extra-config-key-shape", _host("k3s_extra_config: {Node_Name: x}"),
     ["{inv}: host 'pi-2': field 'k3s_extra_config': key 'Node_Name' is not a k3s flag name (lowercase letters, "
      "digits, '-')"]),
    ("ansible_user-shell", _host('ansible_user: "pi; rm -rf /"'),
     ["{inv}: host 'pi-2': field 'ansible_user': 'pi; rm -rf /' is not a user name (up to 32 letters, digits, "
      "'_', '.', '-')"]),
    ("ansible_user-subst", {"agent": '        ansible_user: "$(reboot)"'},
     ["{inv}:13: group 'agent' vars: duplicate key 'ansible_user' (first on line 12)"]),
    ("ansible_user-subst-cluster", {"cluster": '    ansible_user: "$(reboot)"'},
     ["{inv}: cluster vars: field 'ansible_user': '$(reboot)' is not a user name (up to 32 letters, digits, "
      "'_', '.', '-')"]),
    # issue 9.4: the inventory cannot switch off host-key checks
    ("all-vars-weaken-ssh", {"top": "all:\n  vars:\n    ansible_ssh_args: -o StrictHostKeyChecking=no\n"
                                    "    ansible_host_key_checking: false"},
     [f"{{inv}}: group 'all' vars: field 'ansible_ssh_args': {SSH_VARS}",
      f"{{inv}}: group 'all' vars: field 'ansible_host_key_checking': {SSH_VARS}"]),
    ("host-ssh_extra_args", _host("ansible_ssh_extra_args: -o StrictHostKeyChecking=no"),
     [f"{{inv}}: host 'pi-2': field 'ansible_ssh_extra_args': {SSH_VARS}"]),
    ("common-args-known-hosts", _host("ansible_ssh_common_args: -o UserKnownHostsFile=/dev/null"),
     ["{inv}: host 'pi-2': field 'ansible_ssh_common_args': may not set UserKnownHostsFile: edgeclu checks host "
      "keys against edgeclu_known_hosts itself (see --accept-new)"]),
    ("common-args-strict", {"cluster": "    ansible_ssh_common_args: -oStrictHostKeyChecking=accept-new"},
     ["{inv}: cluster vars: field 'ansible_ssh_common_args': may not set StrictHostKeyChecking: edgeclu checks "
      "host keys against edgeclu_known_hosts itself (see --accept-new)"]),
    ("other-group", {"top": "ungrouped:\n  hosts:\n    evil: {ansible_host: 192.0.2.9}"},
     ["{inv}: group 'ungrouped': unknown group (an edgeclu inventory has k3s_cluster with children server and "
      "agent, and optionally all: vars)"]),
    ("all-hosts", {"top": "all:\n  hosts:\n    evil: {ansible_host: 192.0.2.9}"},
     ["{inv}: group 'all': field 'hosts': only vars: here (hosts go under k3s_cluster: children: server/agent)"]),
    ("group_vars-file", {"group_vars/agent.yml": "ansible_ssh_extra_args: -o StrictHostKeyChecking=no\n"},
     [f"{{dir}}/group_vars/agent.yml: group 'agent' vars: field 'ansible_ssh_extra_args': {SSH_VARS}"]),
    ("group_vars-dir", {"group_vars/all/ssh.yaml": "ansible_ssh_host_key_checking: false\n"},
     [f"{{dir}}/group_vars/all/ssh.yaml: group 'all' vars: field 'ansible_ssh_host_key_checking': {SSH_VARS}"]),
    ("group_vars-cluster-only-in-role", {"group_vars/server": "k3s_version: v1.31.4+k3s1\n"},
     ["{dir}/group_vars/server: group 'server' vars: field 'k3s_version': unknown key"]),
    ("host_vars-file", {"host_vars/pi-2.yml": 'ansible_user: "a b"\n'},
     ["{dir}/host_vars/pi-2.yml: host 'pi-2': field 'ansible_user': 'a b' is not a user name (up to 32 letters, "
      "digits, '_', '.', '-')"]),
    ("host_vars-non-utf8", {"host_vars/pi-2.yml": b"node_iface: \xe9th0\n"},
     ["{dir}/host_vars/pi-2.yml:1: host 'pi-2': field 'node_iface': not UTF-8 text (byte 0xe9)"]),
    ("host_vars-bomb", {"host_vars/pi-1.json": '{"k3s_extra_config": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]'
                                               ']]]]]]]]]]]]]]]]]]]]]]]]}'},
     ["{dir}/host_vars/pi-1.json:1: host 'pi-1': field 'k3s_extra_config': nested deeper than 32 levels"]),
]


def _write(tmp_path, spec: dict):
    slots = {k: spec.get(k, "") for k in ("host", "agent", "cluster", "top")}
    slots["address"] = spec.get("address", "          ansible_host: 192.0.2.2")
    raw = {k: v for k, v in slots.items() if isinstance(v, bytes)}
    text = TEMPLATE.format(**{k: ("\0" + k if k in raw else v) for k, v in slots.items()}).encode()
    for k, v in raw.items():
        text = text.replace(("\0" + k).encode(), v)
    inv = tmp_path / "inventory.yml"
    inv.write_bytes(text)
    for name, content in spec.items():
        if "/" in name:
            f = tmp_path / name
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_bytes(content if isinstance(content, bytes) else content.encode())
    return inv


def _cli(args):
    r = CliRunner().invoke(app, args)
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r


@pytest.mark.parametrize(("spec", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("command", ["inventory check", "up"])
def test_bad_input_is_exit_2_and_one_line_each(tmp_path, command, spec, expected):
    inv = _write(tmp_path, spec)
    args = ["inventory", "check", str(inv)] if command == "inventory check" else ["up", "-i", str(inv)]
    r = _cli(args)
    want = [f"error: {line.format(inv=inv, dir=tmp_path)}" for line in expected]
    assert (r.exit_code, r.stderr.splitlines(), r.stdout) == (2, want, "")


def test_the_template_itself_is_valid(tmp_path):
    r = _cli(["inventory", "check", str(_write(tmp_path, {}))])
    assert r.exit_code == 0, r.stderr


def test_anchors_and_merge_keys_are_fine(tmp_path):
    inv = tmp_path / "inventory.yml"
    inv.write_text(textwrap.dedent("""\
        k3s_cluster:
          children:
            server: {hosts: {pi-1: &pi {ansible_host: 192.0.2.1, node_labels: &zone [edgeclu.io/zone=garage]}}}
            agent:
              hosts: {pi-2: {<<: *pi, ansible_host: 192.0.2.2}, pi-3: {ansible_host: 192.0.2.3, node_labels: *zone}}
          vars: {k3s_version: v1.31.4+k3s1}
        """))
    r = _cli(["inventory", "check", str(inv)])
    assert r.exit_code == 0 and "1 server(s), 2 agent(s)" in r.stderr, r.stderr


def test_non_utf8_kubeconfig_stops_up_before_any_change(tmp_path):
    kube = tmp_path / "kube" / "config"
    kube.parent.mkdir()
    kube.write_bytes(b"apiVersion: v1\nkind: Config\nusers: [{name: caf\xe9}]\n")
    inv = _write(tmp_path, {"cluster": f"    kubeconfig: {kube}"})
    (tmp_path / "plain").mkdir()
    plain = _write(tmp_path / "plain", {})
    for args in (["up", "-i", str(inv)], ["up", "-i", str(plain), "--kubeconfig", str(kube)]):
        r = _cli(args)
        assert (r.exit_code, r.stderr.splitlines(), r.stdout) == (
            2, [f"error: {kube}: not a valid kubeconfig: not UTF-8 text (byte 0xe9) (line 3)"], "")
    kube.write_text("apiVersion: v1\nkind: Config\nusers: &u [*u]\n")
    r = _cli(["up", "-i", str(inv)])
    assert (r.exit_code, r.stderr.splitlines()) == (
        2, [f"error: {kube}: not a valid kubeconfig: invalid YAML (line 3)"])


@pytest.mark.parametrize(("last", "line"), [
    ('{ansible_host: 10.254.0.1, ansible_user: "pi; reboot"}',
     "host 'bad': field 'ansible_user': 'pi; reboot' is not a user name (up to 32 letters, digits, '_', '.', '-')"),
    (BOMB, "host 'bad': field 'k3s_extra_config': alias *e stands for 66430 values (more than 10000)"),
])
def test_20000_hosts_bad_input_is_quick_and_small(tmp_path, last, line):
    # The goal is 2 s and 200 MB (bench/inventory_check.py measures it); the CPU bound here leaves room for
    # a loaded 2-CPU machine, the memory bound is the goal itself.
    path = tmp_path / "inventory.yml"
    path.write_text(inventory(20_000, last))
    m = measure(path)
    assert (m["code"], m["stdout"], len(m["stderr"].splitlines())) == (2, "", 1), m["stderr"][-2000:]
    assert line in m["stderr"] and "Traceback" not in m["stderr"]
    assert m["cpu"] < 6 and m["rss_mb"] < 200, m
