"""The process log line of every command (``townhall.cli.common.setup_logging``): written out by hand
for speed, it must read exactly as the standard formatter writes the same format."""

from __future__ import annotations

import logging
import sys

from townhall.cli.common import _LineFormatter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def record(created: float, msg: str = "task %s: %s", args: tuple = ("t1", "done"), exc_info=None) -> logging.LogRecord:
    made = logging.LogRecord("townhall.audit", logging.WARNING, __file__, 1, msg, args, exc_info)
    made.created, made.msecs = created, (created - int(created)) * 1000 // 1 + 0.0
    return made


def test_a_line_reads_as_the_standard_formatter_writes_it():
    ours, standard = _LineFormatter(), logging.Formatter(FORMAT)
    # The same second twice (its text is kept), then the next second and an earlier one (made again).
    for created in (1_796_130_431.051, 1_796_130_431.999, 1_796_130_432.0, 1_700_000_000.5):
        assert ours.format(record(created)) == standard.format(record(created))
    assert ours.format(record(1_796_130_431.051, '{"a": 1}', ())).endswith(' WARNING townhall.audit: {"a": 1}')


def test_a_line_with_a_traceback_reads_as_the_standard_formatter_writes_it():
    try:
        raise ValueError("boom")
    except ValueError:
        exc = sys.exc_info()
    line = _LineFormatter().format(record(1_796_130_431.5, exc_info=exc))
    assert line == logging.Formatter(FORMAT).format(record(1_796_130_431.5, exc_info=exc))
    assert "ValueError: boom" in line
