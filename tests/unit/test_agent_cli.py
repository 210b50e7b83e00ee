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


def test_once_with_an_unreadable_default_config_uses_defaults(tmp_path, monkeypatch):
    """On a node the SSH user may not read the root-only agent.json; a one-shot sample still works.
    (Tests run as root, so "unreadable" is a directory where the file should be: EISDIR, not ENOENT.)"""
    from edgeclu.agent import config

    monkeypatch.setattr(config, "DEFAULT_PATH", str(tmp_path))
    r = CliRunner().invoke(app, ["agent", "--once"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["schema"] == 1
    assert f"{tmp_path}: cannot read: Is a directory; using defaults" in r.stderr
    # serving (not --once) with an unreadable config is an error, not silently different settings
    r = CliRunner().invoke(app, ["agent", "--no-announce", "--port", "1"])
    assert r.exit_code == 2 and "cannot read" in r.stderr
