"""Where the tests find the repository's own files, wherever a test module sits in the tree."""

from __future__ import annotations

from pathlib import Path

#: the repository root (the directory holding pyproject.toml)
REPO = Path(__file__).resolve().parents[1]
#: the four-arm example intersection shipped with the signal core
EXAMPLE_INTERSECTION = REPO / "signals" / "examples" / "k101_four_arm.json"
