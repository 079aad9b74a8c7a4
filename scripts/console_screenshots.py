"""Copy the console's screenshots from a browser test run into docs/console/, shrunk to a
palette so the repository stays small. Run `pytest tests/browser/test_console_flow.py` first.

    .venv/bin/python scripts/console_screenshots.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# test artefact name → docs name
PAGES = {
    "01-sign-in": "sign-in",
    "10-deployments": "deployments",
    "11-deployments-390": "deployments-390",
    "03-new-deployment": "new-deployment",
    "04-deployment-ready": "deployment",
    "13-failed": "failed",
    "08-delete-confirm": "delete",
    "09-deleted": "deleted",
    "06-playground-result": "playground",
    "07-models": "models",
    "07-gpus": "gpus",
}


def main() -> int:
    source = Path(os.environ.get("VISGATE_TEST_ARTEFACTS") or REPO / "test-artefacts") / "browser"
    target = REPO / "docs" / "console"
    target.mkdir(parents=True, exist_ok=True)
    missing = [name for name in PAGES if not (source / f"{name}.png").exists()]
    if missing:
        print(f"missing in {source}: {', '.join(missing)}; run the browser tests first")
        return 1
    for name, docs_name in PAGES.items():
        image = Image.open(source / f"{name}.png").convert("RGB")
        small = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
        out = target / f"{docs_name}.png"
        small.save(out, optimize=True)
        print(f"{out.relative_to(REPO)}: {out.stat().st_size // 1024} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
