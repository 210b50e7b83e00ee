"""Health rules: a node sample (the agent's ``/health`` document) -> findings -> one status.

Statuses, least to most severe: ``ok`` < ``warning`` < ``critical`` < ``down``; the
``edgeclu health`` exit code is the index of the worst one (0, 1, 2, 3).

Default rules (each number configurable through :class:`Thresholds`):

====================================  ============  ==========
check                                 warning       critical
====================================  ============  ==========
hottest temperature sensor            >= 75 °C      >= 80 °C
any disk used                         >= 85 %       >= 95 %
memory used                           >= 90 %       (off)
Pi under-voltage                      since boot    now
Pi throttled / freq capped / soft     now           -
temperature limit
root filesystem read-only             -             always
k3s unit installed but not active     -             always
a server's serving certificate, the   ends within   has ended
kubeconfig's client certificate       30 days
====================================  ============  ==========
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

LEVELS = ("ok", "warning", "critical", "down")


@dataclass(frozen=True)
class Thresholds:
    temp_warn: float = 75.0
    temp_crit: float = 80.0
    disk_warn: float = 85.0
    disk_crit: float = 95.0
    mem_warn: float = 90.0
    mem_crit: float | None = None
    cert_warn_days: float = 30.0

    def problems(self) -> list[str]:
        """Inconsistent settings, one line each (warning must not be above critical)."""
        out = []
        for name, warn, crit in (("temp", self.temp_warn, self.temp_crit), ("disk", self.disk_warn, self.disk_crit),
                                 ("mem", self.mem_warn, self.mem_crit)):
            if crit is not None and warn > crit:
                out.append(f"--{name}-warn {warn:g} is above --{name}-crit {crit:g}")
        for name in ("disk_warn", "disk_crit", "mem_warn", "mem_crit"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= 100:
                out.append(f"--{name.replace('_', '-')} {value:g} is not a percentage (0-100]")
        if self.cert_warn_days < 0:
            out.append(f"--cert-warn {self.cert_warn_days:g} is not a number of days (0 or more)")
        return out

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Finding:
    level: str  # warning | critical
    check: str  # temperature, disk, memory, power, throttling, rootfs, k3s, agent, kubernetes
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


def worst(levels) -> str:
    """The most severe of ``levels`` ("ok" when empty)."""
    return max(levels, key=LEVELS.index, default="ok")


def _level(value: float | None, warn: float | None, crit: float | None) -> str | None:
    if value is None:
        return None
    if crit is not None and value >= crit:
        return "critical"
    if warn is not None and value >= warn:
        return "warning"
    return None


_CONDITION_WORDS = {"throttled": "throttled", "freq_capped": "CPU frequency capped",
                    "soft_temp_limit": "soft temperature limit"}


def evaluate(sample: dict, t: Thresholds = Thresholds()) -> list[Finding]:
    """Every rule that fires for one agent sample, most severe first."""
    found: list[Finding] = []
    temp = (sample.get("temperature") or {}).get("max_celsius")
    level = _level(temp, t.temp_warn, t.temp_crit)
    if level:
        limit = t.temp_crit if level == "critical" else t.temp_warn
        found.append(Finding(level, "temperature", f"{temp:.1f}°C (limit {limit:g}°C)"))
    for disk in sample.get("disks") or []:
        pct = disk.get("used_percent")
        level = _level(pct, t.disk_warn, t.disk_crit)
        if level:
            limit = t.disk_crit if level == "critical" else t.disk_warn
            found.append(Finding(level, "disk", f"{disk.get('mountpoint', '?')} {pct:.0f}% used (limit {limit:g}%)"))
    mem = (sample.get("memory") or {}).get("used_percent")
    level = _level(mem, t.mem_warn, t.mem_crit)
    if level:
        limit = t.mem_crit if level == "critical" else t.mem_warn
        found.append(Finding(level, "memory", f"memory {mem:.0f}% used (limit {limit:g}%)"))
    throttled = sample.get("throttled")
    if throttled:
        now, boot = throttled.get("now") or {}, throttled.get("since_boot") or {}
        if now.get("under_voltage"):
            found.append(Finding("critical", "power", "under-voltage now"))
        elif boot.get("under_voltage"):
            found.append(Finding("warning", "power", "under-voltage since boot"))
        for key, words in _CONDITION_WORDS.items():
            if now.get(key):
                found.append(Finding("warning", "throttling", f"{words} now"))
    if sample.get("root_readonly"):
        found.append(Finding("critical", "rootfs", "root filesystem is read-only"))
    k3s = sample.get("k3s") or {}
    if k3s.get("installed") and not k3s.get("active"):
        unit, state = k3s.get("unit") or "k3s", k3s.get("active_state") or "not active"
        found.append(Finding("critical", "k3s", f"{unit} is {state}"))
    return sorted(found, key=lambda f: -LEVELS.index(f.level))


def cert_findings(what: str, not_after: dt.datetime, now: dt.datetime, t: Thresholds = Thresholds()
                  ) -> list[Finding]:
    """A certificate that has ended is critical (TLS with it fails); one that ends within
    ``t.cert_warn_days`` is a warning, with the date and what to run."""
    left = (not_after - now).total_seconds() / 86400
    day = not_after.strftime("%Y-%m-%d")
    if left <= 0:
        return [Finding("critical", "certificate", f"{what} expired on {day}; run `edgeclu certs rotate`")]
    if left <= t.cert_warn_days:
        return [Finding("warning", "certificate", f"{what} expires in {left:.0f} day(s), on {day}; "
                                                  "run `edgeclu certs rotate`")]
    return []

