"""Raspberry Pi get_throttled bits and device-tree model strings."""

import pytest

from edgeclu.agent import pi


@pytest.mark.parametrize(("text", "raw"), [
    ("50005\n", 0x50005),           # sysfs: hex without 0x
    ("0\n", 0),
    ("throttled=0x50005\n", 0x50005),  # vcgencmd get_throttled
    ("throttled=0x0", 0),
    ("", None),
    ("garbage", None),
])
def test_parse_throttled(text, raw):
    assert pi.parse_throttled(text) == raw


@pytest.mark.parametrize(("raw", "now", "since_boot"), [
    (0x0, [], []),
    (0x1, ["under_voltage"], []),
    (0x50000, [], ["under_voltage", "throttled"]),
    (0x50005, ["under_voltage", "throttled"], ["under_voltage", "throttled"]),
    (0x8000A, ["freq_capped", "soft_temp_limit"], ["soft_temp_limit"]),
    (0xF000F, ["under_voltage", "freq_capped", "throttled", "soft_temp_limit"],
     ["under_voltage", "freq_capped", "throttled", "soft_temp_limit"]),
])
def test_decode_throttled(raw, now, since_boot):
    d = pi.decode_throttled(raw)
    assert d["raw"] == f"0x{raw:x}"
    assert [k for k, v in d["now"].items() if v] == now
    assert [k for k, v in d["since_boot"].items() if v] == since_boot


def test_model_is_read_from_the_first_existing_path(tmp_path):
    second = tmp_path / "model"
    second.write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\x00")
    assert pi.read_model([str(tmp_path / "missing"), str(second)]) == "Raspberry Pi 4 Model B Rev 1.4"
    assert pi.read_model([str(tmp_path / "missing")]) is None


def test_throttled_prefers_sysfs_and_skips_vcgencmd_off_a_pi(tmp_path):
    f = tmp_path / "get_throttled"
    f.write_text("50000\n")
    assert pi.read_throttled(str(f), "vcgencmd", is_pi=True) == (0x50000, str(f))
    # not a Pi and no sysfs file: vcgencmd is never run (here `true` would "succeed" with no output)
    assert pi.read_throttled(str(tmp_path / "none"), "true", is_pi=False) == (None, None)


def test_throttled_falls_back_to_vcgencmd_on_a_pi(tmp_path):
    exe = tmp_path / "vcgencmd"
    exe.write_text("#!/bin/sh\n[ \"$1\" = get_throttled ] && echo throttled=0x50005\n")
    exe.chmod(0o755)
    assert pi.read_throttled(str(tmp_path / "none"), str(exe), is_pi=True) == (0x50005, "vcgencmd")
