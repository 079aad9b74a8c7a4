"""`deploy --wait`'s live table, rendered as a person's terminal shows it."""

from __future__ import annotations

import io

from rich.console import Console

from visgate.cli.follow import PhaseDisplay

T0 = 1_790_000_000.0
MODELS = ", ".join(f"demo/model-number-{n}" for n in range(8))


def _render(display: PhaseDisplay, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(display.render())
    return out.getvalue()


def test_a_long_note_wraps_between_words_at_any_width() -> None:
    display = PhaseDisplay("lumen/3d-pipeline", "dep_1", clock=lambda: T0 + 20)
    display.enter("loading_model", T0, "waiting for the worker to load the model")
    display.enter("ready", T0 + 9, f"worker ready: {MODELS} loaded")
    for width in (60, 80, 120):
        text = _render(display, width)
        assert max(len(line) for line in text.splitlines()) <= width
        words = " ".join(text.split())
        assert f"worker ready: {MODELS} loaded" in words, text


def test_each_row_keeps_the_note_it_entered_with() -> None:
    display = PhaseDisplay("lumen/3d-pipeline", "dep_1", clock=lambda: T0 + 5)
    display.enter("validating", T0, "deployment accepted")
    display.enter("selecting_gpu", T0 + 1, "needs about 23.5 GB of GPU memory")
    display.enter("selecting_gpu", T0 + 2, "a repeated event changes nothing")
    lines = _render(display, 100).splitlines()
    assert "validating" in lines[1] and lines[1].rstrip().endswith("deployment accepted")
    assert "selecting_gpu" in lines[2] and "needs about 23.5 GB" in lines[2]
    assert len(lines) == 3
