"""Rules the test suite keeps: no test reads the wall clock or sleeps (a budget or a timeout is tested
with a fake clock, see test_callbacks_families.FakeClock), so a loaded machine cannot fail a test."""

from __future__ import annotations

import re
from pathlib import Path

CLOCK = re.compile(r"\btime\.(sleep|time|perf_counter|monotonic|process_time)(_ns)?\(|\b(perf_counter|monotonic)\(")


def test_no_test_reads_the_wall_clock():
    here = Path(__file__).resolve()
    found = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(here.parent.rglob("*.py"))
        if path != here
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if CLOCK.search(line)
    ]
    assert not found, "tests must not read the clock or sleep (use a fake clock):\n" + "\n".join(found)
