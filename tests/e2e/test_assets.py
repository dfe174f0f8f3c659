"""The console's files are complete and local: no CDN, every module import resolves inside the package."""

from __future__ import annotations

import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "central" / "web"
IMPORT = re.compile(r"""(?:import|from)\s*\(?\s*["'](\.{1,2}/[^"']+)["']""")


def test_no_outside_addresses_in_any_console_file():
    files = [p for p in WEB.rglob("*") if p.suffix in {".html", ".js", ".css"}]
    assert len(files) >= 10
    for path in files:
        # An XML namespace is a name, never fetched.
        text = path.read_text().replace("http://www.w3.org/2000/svg", "")
        for needle in ("http://", "https://", "//cdn", "@import url("):
            assert needle not in text, f"{path.relative_to(WEB)} refers to {needle}: the console must work offline"


def test_every_relative_import_exists():
    for path in WEB.rglob("*.js"):
        for target in IMPORT.findall(path.read_text()):
            assert (path.parent / target).resolve().is_file(), f"{path.relative_to(WEB)} imports missing {target}"
