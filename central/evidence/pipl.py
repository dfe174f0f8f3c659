"""The PIPL register: per camera, why it watches, on what legal basis, whether a sign tells people
so (art. 26), and how long what it sees is kept. Built from the site file and the retention policy,
shown in operations and exported as CSV for the review."""

from __future__ import annotations

import csv
import io

from broker.siteconfig import SiteConfig
from central.workflow.config import RetentionConfig

COLUMNS = ("site", "edge", "camera", "grid_cell", "hazards", "purpose", "legal_basis", "signage", "assessed",
           "retention", "gaps")


def _days(seconds: float) -> str:
    return f"{seconds / 86400:g} d"


def register(site: SiteConfig, retention: RetentionConfig) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for edge in site.edges:
        for camera in edge.cameras:
            hazards = sorted({z.hazard.value for z in camera.zones})
            kept = "; ".join(f"{h}: dismissed {_days(retention.for_hazard(h).dismissed)}, closed "
                             f"{_days(retention.for_hazard(h).closed)}" for h in hazards) or "no zones: nothing kept"
            p = camera.privacy
            gaps = []
            if p is None:
                gaps.append("no privacy record (add privacy: purpose, legal_basis, signage)")
            else:
                if not p.signage:
                    gaps.append("no notice sign (PIPL art. 26)")
                if p.assessed is None:
                    gaps.append("no impact assessment on record (art. 55)")
            rows.append({"site": site.site, "edge": edge.id, "camera": camera.id, "grid_cell": camera.grid_cell,
                         "hazards": ", ".join(hazards), "purpose": p.purpose if p else None,
                         "legal_basis": p.legal_basis if p else None, "signage": p.signage if p else None,
                         "assessed": p.assessed if p else None, "retention": kept, "gaps": "; ".join(gaps)})
    return rows


def as_csv(rows: list[dict[str, object]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
