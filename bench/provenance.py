"""Where a benchmark ran, so every figure can say it (issue #21, item 4).

Every benchmark prints one ``where:`` line before it measures anything: the machine (cores,
CPU model, RAM, Python, kernel), the load average read from ``/proc/loadavg`` just before the
run (the machine is shared: other people's work moves every figure), where the Visma/Brincr
stand-in ran (in the benchmark's own process, sharing its CPU and often its event loop, or
in a separate process as a real upstream is) and the date. ``bench/run_all.py`` and the
scripts that write their own block in docs/benchmarks.md put it beside their figures::

    from bench import provenance
    where = provenance.announce(provenance.SEPARATE)        # prints "where: ..."
    ...
    lines.append(where.sentence())                          # "Ran on 2 cores (...); ..."
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime

# Where the Visma/Brincr stand-in (``bot.simulator``) ran.
SEPARATE = "separate process"
IN_PROCESS = "in-process"
NONE = "none"

_PHRASES = {
    SEPARATE: "the Visma/Brincr stand-in ran in a separate process (as a real upstream is)",
    IN_PROCESS: "the Visma/Brincr stand-in ran in-process (inside the benchmark's own process, "
    "sharing its CPU)",
    NONE: "no stand-in (nothing calls Visma or Brincr)",
}
_MARK = "where: "


def machine() -> str:
    """Cores, CPU model, RAM, Python and kernel of this machine."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(
                (ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), cpu
            )
    except OSError:
        cpu = platform.processor() or platform.machine() or cpu
    ram = ""
    try:
        with open("/proc/meminfo") as info:
            kib = int(next(ln for ln in info if ln.startswith("MemTotal")).split()[1])
        ram = f", {kib / 1024**2:.1f} GiB RAM"
    except (OSError, StopIteration):
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}){ram}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def load_before() -> str:
    """The 1, 5 and 15 minute load averages now, as ``/proc/loadavg`` has them."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())


def stand_in_phrase(placement: str, detail: str = "") -> str:
    """``placement`` is SEPARATE, IN_PROCESS or NONE; ``detail`` adds what else ran where."""
    phrase = _PHRASES[placement]
    return f"{phrase}; {detail}" if detail else phrase


@dataclass(frozen=True)
class Where:
    machine: str
    load: str
    stand_in: str
    when: str

    def line(self) -> str:
        """The line a benchmark prints; ``parse`` reads it back."""
        return f"{_MARK}{self.machine} | {self.load} | {self.stand_in} | {self.when}"

    def sentence(self) -> str:
        """For the document: machine, load average before the run, stand-in, date."""
        return (
            f"Ran on {self.machine}; load average before the run {self.load} (1, 5, 15 min; "
            f"the machine is shared); {self.stand_in}. {self.when}."
        )

    @property
    def load_1m(self) -> str:
        return self.load.split()[0]


def here(placement: str, detail: str = "") -> Where:
    """Where a run starting now runs: read the load average now, before measuring."""
    return Where(
        machine=machine(),
        load=load_before(),
        stand_in=stand_in_phrase(placement, detail),
        when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


def announce(placement: str, detail: str = "") -> Where:
    """``here`` and print its ``where:`` line (call it first thing, before measuring)."""
    where = here(placement, detail)
    print(where.line(), flush=True)
    return where


def parse(output: str) -> Where | None:
    """The first ``where:`` line of a benchmark's output."""
    for line in output.splitlines():
        if line.startswith(_MARK):
            parts = line.removeprefix(_MARK).split(" | ")
            if len(parts) == 4:
                return Where(*parts)
    return None
