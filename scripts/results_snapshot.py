"""Every result the book and the claims report, dumped to compare before and after a change
that must not change any (a refactoring): every glued value of every executed page, as the
build recorded it, and every claim's value on every shipped model that is held to claims.

    python scripts/results_snapshot.py dump before.json      # after `make book`
    python scripts/results_snapshot.py compare before.json after.json

Glued values are compared by their plain-text form (HTML without its random element ids);
claims by their float value, exactly.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "jupyter_execute"


def _plain(bundle: dict[str, str]) -> str:
    """A glued value's text: its plain text, or its HTML without the random element ids
    plotly and myst-nb write (a figure's data and layout are compared, not its ids)."""
    if "text/plain" in bundle:
        return "".join(bundle["text/plain"])
    text = "".join(bundle.get("text/html", bundle.get("text/markdown", "")))
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", text)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16] if len(text) > 500 else text


def glued_values(executed: Path = EXECUTED) -> dict[str, str]:
    """``page/key`` → the glued value's text, from the ``*.glue.json`` files myst-nb writes
    beside each executed page."""
    found = {}
    for path in sorted(executed.rglob("*.glue.json")):
        page = path.relative_to(executed).as_posix().removesuffix(".glue.json")
        for key, output in json.loads(path.read_text()).items():
            prefix = output.get("metadata", {}).get("scrapbook", {}).get("mime_prefix", "")
            bundle = {mime.removeprefix(prefix): value for mime, value in output.get("data", {}).items()}
            found[f"{page}/{key}"] = re.sub(r" at 0x[0-9a-f]+", "", _plain(bundle))
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
            if part == "claims":  # one line per claim of each model
                before[part], after[part] = ({f"{model}/{claim}": value for model, values in dump[part].items()
                                              for claim, value in values.items()} for dump in (before, after))
            keys = sorted(set(before[part]) | set(after[part]))
            for key in keys:
                old, new = before[part].get(key), after[part].get(key)
                if old != new:
                    changed += 1
                    print(f"{part} {key}: {old!r} -> {new!r}")
            print(f"{part}: {len(keys)} compared")
        print(f"{changed} changed")
        return 1 if changed else 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
