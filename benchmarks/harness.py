"""What the benchmarks share: the machine they ran on, one-core pinning, percentiles, subprocess
environments that import this checkout's rxgate, and reading a process's memory and CPU.

Importing this module puts this checkout's `services/` first on sys.path, so a benchmark run
as `python benchmarks/<file>.py` measures the code beside it, whatever rxgate is installed.
"""
from __future__ import annotations

import os
import platform
import resource
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / "services"
if str(SERVICES) not in sys.path:
    sys.path.insert(0, str(SERVICES))


def child_env(**extra: str) -> dict[str, str]:
    """os.environ with this checkout's services/ first on PYTHONPATH, plus `extra`."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(SERVICES), path) if p),
            **extra}


STAND_IN = Path(__file__).resolve().parent / "standin"


def use_stand_in() -> str:
    """Every child started after this decides with a cheap stand-in for the rules
    (benchmarks/standin/sitecustomize.py): what is left is the shell's own cost. Returns the
    line to print with the figures."""
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(STAND_IN), path) if p)
    return ("STAND-IN CORE: every subject decides with no rule checks (parse, history, "
            "decision, publishing only): the shell's ceiling, not rxgate's speed")


def machine() -> str:
    """One line: cores, RAM, CPU model, Python, and the load when the run started."""
    try:
        mem = next(int(line.split()[1]) for line in open("/proc/meminfo")
                   if line.startswith("MemTotal:")) / 1024 / 1024
        ram = f"{mem:.0f} GiB RAM"
    except (OSError, StopIteration):
        ram = "RAM unknown"
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        load = "load %.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        load = ""
    return (f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable){', ' + model if model else ''}; "
            f"{ram}; Python {platform.python_version()}; {load}")


def pin_one_core() -> str:
    """Pin this process to one core (the last usable one); returns a note for the report."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1:
        os.sched_setaffinity(0, {cpus[-1]})
        return f"pinned to core {cpus[-1]}"
    return "one usable core"


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def self_peak_rss_mb() -> float:
    """This process's peak resident set (ru_maxrss), MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def proc_status_mb(pid: int, field: str) -> float | None:
    """VmRSS / VmHWM (peak) of a live process from /proc/<pid>/status, MiB."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a live process (with its threads) has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


SHARED_NOTE = ("the machine may be shared and noisy: read ratios measured in the same run, "
               "not the absolute figures")
