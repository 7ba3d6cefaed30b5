"""Popup's benchmark suite (``make bench`` = ``python -m bench``).

Every benchmark measures its own baseline in the same run where one makes sense, and prints
ratios: this machine is small and noisy, so absolute figures only mean something side by side.
Each module has ``run(...) -> dict`` (used by ``bench.__main__`` and the smoke test) and a
``python -m bench.NAME`` entry point that prints its figures.
"""
