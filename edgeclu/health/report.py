"""From collected samples to the report: a status per node, table cells, JSON, exit code (all pure)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from edgeclu.health import kube
from edgeclu.health.collect import CertResult, KubeResult, NodeResult
from edgeclu.health.thresholds import LEVELS, Finding, Thresholds, cert_findings, evaluate, worst

COLUMNS = ("NODE", "STATUS", "ROLE", "VIA", "CPU", "LOAD", "MEM", "DISK", "TEMP", "MODEL", "PI", "UPTIME",
           "K3S", "K8S", "CERT", "NOTES")


@dataclass
class NodeReport:
    name: str
    role: str
    address: str
    status: str
    via: str | None
    sample: dict | None
    findings: list[Finding] = field(default_factory=list)
    kube: kube.KubeNode | None = None
    error: str | None = None
    cert: CertResult | None = None  # a server's serving certificate


def cert_dict(c: CertResult | None, now: dt.datetime) -> dict | None:
    if c is None:
        return None
    return {"source": c.source, "error": c.error, **(c.dates.as_dict(now) if c.dates else {})}


@dataclass
class Report:
    nodes: list[NodeReport]
    cluster: list[Finding]  # findings about the cluster as a whole (the Kubernetes API, the kubeconfig)
    kube_source: str | None
    thresholds: Thresholds
    kubeconfig: CertResult | None = None  # the kubeconfig's client certificate for this cluster
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def status(self) -> str:
        return worst([n.status for n in self.nodes] + [f.level for f in self.cluster])

    @property
    def exit_code(self) -> int:
        return LEVELS.index(self.status)

    def as_dict(self) -> dict:
        return {
            "status": self.status, "exit_code": self.exit_code,
            "kubernetes": {"source": self.kube_source, "findings": [f.as_dict() for f in self.cluster]},
            "kubeconfig_cert": cert_dict(self.kubeconfig, self.now),
            "thresholds": self.thresholds.as_dict(),
            "nodes": [{"name": n.name, "role": n.role, "address": n.address, "status": n.status, "via": n.via,
                       "findings": [f.as_dict() for f in n.findings],
                       "kubernetes": n.kube.as_dict() if n.kube else None, "error": n.error,
                       "serving_cert": cert_dict(n.cert, self.now), "sample": n.sample}
                      for n in self.nodes],
        }


def build(results: list[NodeResult], kube_result: KubeResult, thresholds: Thresholds,
          kubeconfig: CertResult | None = None, now: dt.datetime | None = None) -> Report:
    now = now or dt.datetime.now(dt.UTC)
    nodes = []
    for r in results:
        findings: list[Finding] = []
        if r.cert and r.cert.dates:
            findings += cert_findings("serving certificate", r.cert.dates.not_after, now, thresholds)
        if r.sample is not None:
            findings += evaluate(r.sample, thresholds)
            if r.via == "ssh":
                findings.append(Finding("warning", "agent", f"agent not answering ({r.agent_error}); "
                                                            "sampled over SSH"))
        elif r.reachable:
            findings.append(Finding("warning", "agent", r.error or "no sample"))
        kn = None
        if kube_result.nodes is not None:
            kn = kube.match(kube_result.nodes, r.host.name, r.host.address)
            k3s = (r.sample or {}).get("k3s") or {}
            findings += kube.findings(kn, expected=bool(k3s.get("active")))
        findings.sort(key=lambda f: -LEVELS.index(f.level))
        status = "down" if not r.reachable else worst(f.level for f in findings)
        nodes.append(NodeReport(r.host.name, r.host.role, r.host.address, status, r.via, r.sample, findings, kn,
                                r.error if not r.reachable or r.sample is None else None, r.cert))
    cluster = [Finding("warning", "kubernetes", f"cannot read node status: {kube_result.error}")] \
        if kube_result.error else []
    if kubeconfig and kubeconfig.dates:
        cluster += cert_findings(f"the client certificate in {kubeconfig.source}", kubeconfig.dates.not_after, now,
                                 thresholds)
    elif kubeconfig and kubeconfig.error:
        cluster.append(Finding("warning", "certificate", f"cannot read the kubeconfig's client certificate: "
                                                         f"{kubeconfig.error}"))
    return Report(nodes, cluster, kube_result.source, thresholds, kubeconfig, now)


# -- table cells ----------------------------------------------------------------------
def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    days, hours, minutes = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def pi_cell(throttled: dict | None) -> str:
    """``-`` not a Pi; ``ok``; else what happened: ``under-voltage now, throttled since boot``."""
    if not throttled:
        return "-"
    words = {"under_voltage": "under-voltage", "throttled": "throttled", "freq_capped": "freq capped",
             "soft_temp_limit": "soft temp limit"}
    now = [w for k, w in words.items() if (throttled.get("now") or {}).get(k)]
    boot = [w for k, w in words.items() if (throttled.get("since_boot") or {}).get(k) and w not in now]
    parts = [f"{w} now" for w in now] + [f"{w} since boot" for w in boot]
    return ", ".join(parts) or "ok"


def k3s_cell(k3s: dict | None) -> str:
    if not k3s or not k3s.get("installed"):
        return "-"
    return " ".join(x for x in (k3s.get("role"), k3s.get("active_state"), k3s.get("version")) if x)


def cert_cell(c: CertResult | None, now: dt.datetime) -> str:
    """Days the serving certificate has left (``19d``, ``expired``), ``?`` when it could not be read."""
    if c is None:
        return "-"
    if c.dates is None:
        return "?"
    left = c.dates.days_left(now)
    return f"{left:.0f}d" if left > 0 else "expired"


def row(n: NodeReport, now: dt.datetime | None = None) -> dict[str, str]:
    """The table cells for one node (keys: :data:`COLUMNS`)."""
    s = n.sample or {}
    cpu, mem, temp = s.get("cpu") or {}, s.get("memory") or {}, s.get("temperature") or {}
    disks = s.get("disks") or []
    fullest = max(disks, key=lambda d: d.get("used_percent") or 0, default=None)
    load = s.get("load") or []

    def pct(v) -> str:
        return "-" if v is None else f"{v:.0f}%"

    notes = "; ".join(f.message for f in n.findings) or (n.error or "")
    if n.error and n.status == "down":
        notes = n.error
    return {
        "NODE": n.name, "STATUS": n.status, "ROLE": n.role, "VIA": n.via or "-",
        "CPU": pct(cpu.get("percent")) if s else "-",
        "LOAD": f"{load[0]:.2f}" if load else "-",
        "MEM": pct(mem.get("used_percent")) if s else "-",
        "DISK": f"{fullest['used_percent']:.0f}% {fullest['mountpoint']}" if fullest else "-",
        "TEMP": f"{temp['max_celsius']:.0f}°C" if temp.get("max_celsius") is not None else "-",
        "MODEL": (s.get("host") or {}).get("model") or "-",
        "PI": pi_cell(s.get("throttled")),
        "UPTIME": duration((s.get("host") or {}).get("uptime_seconds")) if s else "-",
        "K3S": k3s_cell(s.get("k3s")),
        "K8S": n.kube.summary if n.kube else "-",
        "CERT": cert_cell(n.cert, now or dt.datetime.now(dt.UTC)),
        "NOTES": notes,
    }


# -- trends (health --watch) ----------------------------------------------------------------
TICKS = "▁▂▃▄▅▆▇█"
TRENDS = ("CPU", "MEM", "TEMP", "DISK")


def trend_values(n: NodeReport) -> dict[str, float | None]:
    """The figures a trend follows, from one round: CPU %, memory %, hottest sensor °C, fullest disk %."""
    s = n.sample or {}
    disks = [d.get("used_percent") for d in s.get("disks") or [] if d.get("used_percent") is not None]
    return {"CPU": (s.get("cpu") or {}).get("percent"), "MEM": (s.get("memory") or {}).get("used_percent"),
            "TEMP": (s.get("temperature") or {}).get("max_celsius"), "DISK": max(disks, default=None)}


def sparkline(values: list[float | None], lo: float, hi: float) -> str:
    """One tick per value on the scale lo..hi (``▁`` lowest, ``█`` highest); a gap where a round had none."""
    span = max(hi - lo, 1e-9)
    return "".join(" " if v is None else TICKS[min(max(int((v - lo) / span * len(TICKS)), 0), len(TICKS) - 1)]
                   for v in values)


@dataclass
class History:
    """The last ``size`` rounds of each node's trend figures (a node down in a round leaves a gap)."""
    size: int = 30
    rounds: dict[str, list[dict[str, float | None]]] = field(default_factory=dict)

    def add(self, rep: Report) -> None:
        for n in rep.nodes:
            self.rounds.setdefault(n.name, []).append(trend_values(n))
            del self.rounds[n.name][:-self.size]

    def scale(self, key: str, thresholds: Thresholds) -> tuple[float, float]:
        """Percentages on 0..100; temperature from 30 °C (or colder) to the critical threshold (or hotter),
        so a Pi heating up climbs the same scale on every node."""
        if key != "TEMP":
            return 0.0, 100.0
        seen = [r["TEMP"] for rs in self.rounds.values() for r in rs if r["TEMP"] is not None]
        return min([30.0, *seen]), max([thresholds.temp_crit, *seen])

    def cells(self, name: str, thresholds: Thresholds) -> dict[str, str]:
        """Per trend: the sparkline and the latest figure, e.g. ``▁▂▄▆█ 71°C``."""
        rounds = self.rounds.get(name, [])
        out = {}
        for key in TRENDS:
            values = [r[key] for r in rounds]
            last = next((v for v in reversed(values) if v is not None), None)
            unit = "°C" if key == "TEMP" else "%"
            out[key] = sparkline(values, *self.scale(key, thresholds)) + ("" if last is None else f" {last:.0f}{unit}")
        return out
