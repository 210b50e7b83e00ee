"""`edgeclu agent --once` runs the node agent's code on this machine and prints one JSON sample."""

import json

from typer.testing import CliRunner

from edgeclu.cli import app


def test_once_prints_a_sample_with_the_configured_pi_files(tmp_path):
    (tmp_path / "model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    (tmp_path / "throttled").write_text("20000\n")
    cfg = tmp_path / "agent.json"
    cfg.write_text(json.dumps({"model_paths": [str(tmp_path / "model")],
                               "throttled_path": str(tmp_path / "throttled")}))
    r = CliRunner().invoke(app, ["agent", "--once", "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["schema"] == 1
    assert doc["host"]["model"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert doc["throttled"]["since_boot"] == {"under_voltage": False, "freq_capped": True,
                                              "throttled": False, "soft_temp_limit": False}


def test_a_bad_config_is_exit_2_with_one_line_per_problem(tmp_path):
    cfg = tmp_path / "agent.json"
    cfg.write_text(json.dumps({"port": "x", "colour": "red"}))
    r = CliRunner().invoke(app, ["agent", "--once", "--config", str(cfg)])
    assert r.exit_code == 2
    assert r.stdout == ""
    assert "'port' must be int, got str" in r.stderr and "unknown key 'colour'" in r.stderr


def test_a_missing_explicit_config_is_an_error(tmp_path):
    r = CliRunner().invoke(app, ["agent", "--once", "--config", str(tmp_path / "nope.json")])
    assert r.exit_code == 2 and "no such file" in r.stderr
