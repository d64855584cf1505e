"""Released feature services never change: ``feature_repo/released_services.json`` pins each
service's exact fields (view, feature and type), and every service in the definitions is released.

A model pins the service it was trained on; a service that changed after release would feed it
other inputs than it learnt from. To add inputs, add a new service version (``churn_v2``) and its
entry here; to release a new use case's service, add its entry.
"""

from __future__ import annotations

import json

from nightshift import features
from nightshift.features import FEATURE_REPO

LOCK = FEATURE_REPO / "released_services.json"


def current_services() -> dict[str, list[str]]:
    repo = features.parse_definitions(FEATURE_REPO)
    views = {fv.name: fv for fv in repo.feature_views}
    out = {}
    for service in repo.feature_services:
        fields = []
        for projection in service.feature_view_projections:
            view = views[projection.name]
            declared = {f.name: f.dtype for f in view.features}
            fields += [f"{projection.name}:{f.name}:{declared[f.name]}" for f in projection.features]
        out[service.name] = fields
    return out


def test_released_feature_services_are_unchanged_and_every_service_is_released() -> None:
    locked = json.loads(LOCK.read_text())
    current = current_services()
    changed = {name: {"released": fields, "now": current.get(name)} for name, fields in locked.items()
               if current.get(name) != fields}
    assert not changed, (
        f"released feature services changed or disappeared: {changed}. A released service never changes: restore it "
        "in feature_repo/ and add a new version (e.g. churn_v2) instead"
    )
    unreleased = sorted(set(current) - set(locked))
    assert not unreleased, (
        f"feature services {unreleased} are not in {LOCK.name}: add each with its fields as printed here to release "
        f"it: {json.dumps({n: current[n] for n in unreleased}, indent=2)}"
    )
