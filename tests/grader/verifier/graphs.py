"""Where the verifier tests find the hostile graphs and networks (tests/fixtures/hostile/graphs)."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
for folder in (ROOT / "tests" / "fixtures" / "hostile" / "graphs", ROOT / "tests" / "fixtures" / "networks"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import make_graphs  # noqa: E402
import networks  # noqa: E402
import unet_variants  # noqa: E402

__all__ = ["make_graphs", "networks", "unet_variants", "ROOT"]
