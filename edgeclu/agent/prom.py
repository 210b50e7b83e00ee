"""A health sample as Prometheus text exposition format 0.0.4 (pure).

Names follow node_exporter where it has one (``node_load1``, ``node_memory_*_bytes``,
``node_filesystem_*``, ``node_network_*_total``, ``node_hwmon_temp_celsius``,
``node_thermal_zone_temp``); the rest are ``edgeclu_*``.
"""

from __future__ import annotations

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: object) -> str:
    return str(value).replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _num(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str, samples: list[tuple[dict, object]]) -> None:
        samples = [(labels, v) for labels, v in samples if v is not None]
        if not samples:
            return
        self.lines.append(f"# HELP {name} {help_}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lbl = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{lbl}}} {_num(value)}" if lbl else f"{name} {_num(value)}")

    def gauge(self, name: str, help_: str, value: object, **labels: object) -> None:
        self.family(name, "gauge", help_, [(labels, value)])


def render(sample: dict) -> str:
    w = _Writer()
    host = sample["host"]
    w.gauge("edgeclu_agent_info", "edgeclu agent version and health schema.", 1,
            version=sample["agent_version"], schema=sample["schema"])
    w.gauge("edgeclu_node_info", "Node facts: hostname, architecture, kernel, board model.", 1,
            hostname=host["hostname"], arch=host["arch"], kernel=host["kernel"], model=host["model"] or "")
    w.gauge("node_boot_time_seconds", "Node boot time, in unixtime.", host["boot_time"])
    w.gauge("node_time_seconds", "System time in seconds since epoch (1970).", sample["time"])
    w.family("node_cpu_seconds_total", "counter", "Seconds the CPUs spent in each mode.",
             [({"cpu": str(i), "mode": mode}, secs)
              for i, cpu in enumerate(sample["cpu"]["seconds"]) for mode, secs in cpu.items()])
    w.gauge("edgeclu_cpu_usage_percent", "CPU busy percent since the previous sample.",
            sample["cpu"]["percent"])
    for i, n in enumerate((1, 5, 15)):
        w.gauge(f"node_load{n}", f"{n}m load average.", sample["load"][i])
    mem, swap = sample["memory"], sample["swap"]
    w.gauge("node_memory_MemTotal_bytes", "Memory information field MemTotal_bytes.", mem["total_bytes"])
    w.gauge("node_memory_MemAvailable_bytes", "Memory information field MemAvailable_bytes.",
            mem["available_bytes"])
    w.gauge("node_memory_MemFree_bytes", "Memory information field MemFree_bytes.", mem["free_bytes"])
    w.gauge("node_memory_SwapTotal_bytes", "Memory information field SwapTotal_bytes.", swap["total_bytes"])
    w.gauge("node_memory_SwapFree_bytes", "Memory information field SwapFree_bytes.", swap["free_bytes"])
    fs = [({"device": d["device"], "fstype": d["fstype"], "mountpoint": d["mountpoint"]}, d)
          for d in sample["disks"]]
    w.family("node_filesystem_size_bytes", "gauge", "Filesystem size in bytes.",
             [(lbl, d["total_bytes"]) for lbl, d in fs])
    w.family("node_filesystem_free_bytes", "gauge", "Filesystem free space in bytes.",
             [(lbl, d["free_bytes"]) for lbl, d in fs])
    w.family("node_filesystem_avail_bytes", "gauge", "Filesystem space available to non-root users in bytes.",
             [(lbl, d["avail_bytes"]) for lbl, d in fs])
    w.family("node_filesystem_readonly", "gauge", "Filesystem read-only status.",
             [(lbl, d["readonly"]) for lbl, d in fs])
    w.gauge("edgeclu_root_readonly", "1 if the root filesystem is mounted read-only.", sample["root_readonly"])
    net = sample["network"]
    w.family("node_network_receive_bytes_total", "counter", "Network device statistic receive_bytes.",
             [({"device": n["device"]}, n["rx_bytes"]) for n in net])
    w.family("node_network_transmit_bytes_total", "counter", "Network device statistic transmit_bytes.",
             [({"device": n["device"]}, n["tx_bytes"]) for n in net])
    sensors = sample["temperature"]["sensors"]
    w.family("node_hwmon_temp_celsius", "gauge", "Hardware monitor for temperature (input).",
             [({"chip": t["name"], "sensor": t["sensor"]}, t["celsius"])
              for t in sensors if t["source"] == "hwmon"])
    w.family("node_thermal_zone_temp", "gauge", "Zone temperature in Celsius.",
             [({"type": t["name"], "zone": t["zone"]}, t["celsius"])
              for t in sensors if t["source"] == "thermal"])
    thr = sample.get("throttled")
    if thr:
        w.gauge("edgeclu_rpi_throttled_bits", "Raspberry Pi firmware get_throttled value.", int(thr["raw"], 16))
        w.family("edgeclu_rpi_throttled", "gauge",
                 "Raspberry Pi firmware condition (under_voltage, freq_capped, throttled, soft_temp_limit), "
                 "now or since boot.",
                 [({"condition": c, "when": when}, thr[when][c])
                  for when in ("now", "since_boot") for c in thr[when]])
    k = sample.get("k3s")
    if k and k["role"]:
        w.gauge("edgeclu_k3s_up", "1 if the k3s service unit is active.", k["active"],
                role=k["role"], unit=k["unit"], state=k["active_state"] or "")
        if k.get("version"):
            w.gauge("edgeclu_k3s_info", "Installed k3s version.", 1, version=k["version"])
    w.gauge("edgeclu_sample_errors", "Parts of the sample that could not be read.", len(sample["errors"]))
    return "\n".join(w.lines) + "\n"
