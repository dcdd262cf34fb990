"""Every result the book and the claims report, dumped to compare before and after a change
that must not change any (a refactoring): every glued value of every executed page, as the
build recorded it, and every claim's value on every shipped model that is held to claims.

    python scripts/results_snapshot.py dump before.json      # after `make book`
    python scripts/results_snapshot.py compare before.json after.json

Glued values are compared by their plain-text form (a figure by its data, not its random
element ids); claims by their float value, exactly.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "jupyter_execute"


def _figure_data(bundle: dict) -> str | None:
    figure = bundle.get("application/vnd.plotly.v1+json")
    if figure is None:
        return None
    text = json.dumps(figure.get("data"), sort_keys=True)
    return "plotly data sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def glued_values() -> dict[str, str]:
    """``page/key`` → the glued value's plain text (or its figure's data digest)."""
    found = {}
    for notebook in sorted(EXECUTED.rglob("*.ipynb")):
        page = notebook.relative_to(EXECUTED).with_suffix("").as_posix()
        for cell in json.loads(notebook.read_text())["cells"]:
            for output in cell.get("outputs", []):
                name = output.get("metadata", {}).get("scrapbook", {}).get("name")
                if name is None:
                    continue
                bundle = output.get("data", {})
                text = _figure_data(bundle) or "".join(bundle.get("text/plain", ""))
                found[f"{page}/{name}"] = re.sub(r" at 0x[0-9a-f]+", "", text)
    return found


def claim_values() -> dict[str, dict[str, float]]:
    """Shipped model → claim → value, for every shipped model held to claims."""
    from toybook.claims import check_claims, has_claims
    from toybook.zoo import load_model, shipped_names

    values = {}
    for name in shipped_names():
        if has_claims(name):
            print(name, flush=True)
            values[name] = {result.claim.name: result.value
                            for result in check_claims(name, load_model(name))}
    return values


def main(argv: list[str]) -> int:
    if argv[:1] == ["dump"] and len(argv) == 2:
        Path(argv[1]).write_text(json.dumps(
            {"glue": glued_values(), "claims": claim_values()}, indent=1, sort_keys=True))
        return 0
    if argv[:1] == ["compare"] and len(argv) == 3:
        before, after = (json.loads(Path(path).read_text()) for path in argv[1:])
        changed = 0
        for part in ("glue", "claims"):
            keys = sorted(set(before[part]) | set(after[part]))
            for key in keys:
                old, new = before[part].get(key), after[part].get(key)
                if old != new:
                    changed += 1
                    print(f"{part} {key}:\n  before {old}\n  after  {new}")
            print(f"{part}: {len(keys)} compared")
        print(f"{changed} changed")
        return 1 if changed else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
