"""agent.json: defaults, unknown keys and wrong types rejected with one line each."""

import json

import pytest

from ansible_collections.edgeclu.cluster.plugins.module_utils import agent
from edgeclu.agent.config import AgentConfig, config_from_dict, load_config


def test_defaults_are_the_real_pi_paths():
    cfg = config_from_dict({})
    assert cfg.model_paths == ["/proc/device-tree/model", "/sys/firmware/devicetree/base/model"]
    assert cfg.throttled_path == "/sys/devices/platform/soc/soc:firmware/get_throttled"
    assert (cfg.listen, cfg.port, cfg.token, cfg.announce) == ("0.0.0.0", 9101, "", True)


def test_values_are_taken():
    cfg = config_from_dict({"port": 9200, "token": "s3cret", "model_paths": ["/run/pi/model"],
                            "k3s_role": "server", "cache_seconds": 0})
    assert (cfg.port, cfg.token, cfg.model_paths, cfg.k3s_role, cfg.cache_seconds) == (
        9200, "s3cret", ["/run/pi/model"], "server", 0)


def test_every_problem_is_reported():
    with pytest.raises(ValueError) as e:
        config_from_dict({"prot": 1, "port": "9101", "announce": "yes", "model_paths": [1],
                          "k3s_role": "master"}, "agent.json")
    assert str(e.value).splitlines() == [
        "agent.json: unknown key 'prot'",
        "agent.json: 'port' must be int, got str",
        "agent.json: 'announce' must be bool, got str",
        "agent.json: 'model_paths' must be a list of strings",
        "agent.json: 'k3s_role' must be server, agent or empty",
    ]


def test_bool_is_not_a_port_and_port_range_is_checked():
    with pytest.raises(ValueError, match="'port' must be int, got bool"):
        config_from_dict({"port": True})
    with pytest.raises(ValueError, match="'port' must be 1-65535"):
        config_from_dict({"port": 70000})


def test_load_config(tmp_path):
    p = tmp_path / "agent.json"
    p.write_text(json.dumps({"port": 9300}))
    assert load_config(str(p)).port == 9300
    assert load_config(str(tmp_path / "missing.json")) == AgentConfig()
    with pytest.raises(ValueError, match="no such file"):
        load_config(str(tmp_path / "missing.json"), must_exist=True)
    p.write_text("{nope")
    with pytest.raises(ValueError, match="invalid JSON"):
        load_config(str(p))


@pytest.mark.parametrize(("address", "node_ip", "listen"), [
    ("192.168.1.10", "", "192.168.1.10"),      # the inventory's address: what edgeclu health connects to
    ("192.168.1.10", "10.0.0.5", "192.168.1.10"),
    ("pi-1.local", "10.0.0.5", "10.0.0.5"),    # a name: node_ip instead
    ("pi-1.local", "", "0.0.0.0"),             # nothing to go by: every address
    ("pi-1", None, "0.0.0.0"),
    ("fd00::10", "", "fd00::10"),
    ("[fd00::10]", "", "fd00::10"),
])
def test_default_listen(address, node_ip, listen):
    assert agent.default_listen(address, node_ip) == listen


def test_the_roles_filter_is_default_listen():
    from ansible_collections.edgeclu.cluster.plugins.filter.edgeclu_agent import FilterModule

    assert FilterModule().filters()["edgeclu_agent_listen"]("10.1.2.3", "") == "10.1.2.3"
