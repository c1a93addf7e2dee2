"""Rules for dataset steps: find the dataset, profile it, clean it with the profile's suggestions, verify."""

from __future__ import annotations

import re
from typing import Any

from agentmesh.models.offline.conversation import Call, Conversation, best_match, find_number, names_in
from agentmesh.plugins.operations.offline.goals import GoalReading

__all__ = ["data_finding", "data_next"]


def dataset_of(conv: Conversation, goal: GoalReading) -> str | Call | None:
    for obs in conv.calls("profile_dataset"):
        if obs.ok and isinstance(obs.args.get("dataset"), str):
            return obs.args["dataset"]
    listing = conv.last_ok("list_datasets")
    if listing is not None:
        names = names_in(listing.result)
        # The goal and the step name the dataset; earlier findings may mention every dataset listed.
        for text in (f"{conv.goal} {conv.instruction}", conv.sections.get("Findings so far", "")):
            if found := best_match(names, text):
                return found
        return names[0] if len(names) == 1 else None
    failed = {o.args.get("dataset") for o in conv.calls("profile_dataset")}
    # A file name in the goal ("orders.csv") names the dataset without its extension.
    candidates = [e.rsplit(".", 1)[0] if e.lower().endswith((".csv", ".parquet")) else e for e in goal.entities]
    # A step about one of several datasets names it ("Clean the orders dataset"): that one comes first.
    in_step = re.findall(r"\bthe ([a-z][a-z0-9_-]*) (?:dataset|data ?set|csv|table)\b", conv.instruction.lower())
    candidates = list(dict.fromkeys([*in_step, *sorted(candidates, key=lambda c: c not in conv.instruction)]))
    candidates = [c for c in candidates if c not in failed]
    if conv.offered("list_datasets") and not conv.calls("list_datasets"):
        if candidates and conv.offered("profile_dataset"):
            return candidates[0]
        return conv.call("list_datasets")
    return candidates[0] if candidates and conv.offered("profile_dataset") else None


def _profile(conv: Conversation, dataset: str) -> Any:
    obs = next((o for o in reversed(conv.calls("profile_dataset")) if o.ok and o.args.get("dataset") == dataset), None)
    return None if obs is None else (obs.result if obs.result is not None else {})


def suggested(profile: Any) -> list[Any]:
    if isinstance(profile, dict):
        for key in ("suggested_operations", "suggestions", "recommended_operations"):
            if isinstance(profile.get(key), list):
                return profile[key]
        nested = profile.get("profile")
        if isinstance(nested, dict):
            return suggested(nested)
    return []


def _operations(conv: Conversation, profile: Any) -> list[Any]:
    ops = suggested(profile)
    if ops:
        return ops
    items = conv.properties("clean_dataset").get("operations", {}).get("items", {})
    allowed = items.get("enum") if isinstance(items, dict) else None
    wanted = []
    if (find_number(profile, "duplicate_rows", "duplicates", contains="duplicate") or 0) > 0:
        wanted.append("drop_duplicates")
    if (find_number(profile, "null_cells", "missing_cells", "nulls", contains="null") or 0) > 0:
        wanted.append("drop_null_rows")
    return [w for w in wanted if not allowed or w in allowed] or ([allowed[0]] if allowed else [])


def data_next(conv: Conversation, goal: GoalReading, role: str, verify: bool) -> Call | None:
    dataset = dataset_of(conv, goal)
    if not isinstance(dataset, str):
        return dataset
    profile = _profile(conv, dataset)
    if profile is None:
        return conv.call("profile_dataset", dataset=dataset) if conv.offered("profile_dataset") else None
    if role != "optimizer" or verify or not conv.offered("clean_dataset") or conv.calls("clean_dataset"):
        return None
    operations = _operations(conv, profile)
    return conv.call("clean_dataset", dataset=dataset, operations=operations) if operations else None


def _nulls(profile: Any) -> float | None:
    found = find_number(profile, "null_cells", "missing_cells", "nulls")
    columns = profile.get("columns") if isinstance(profile, dict) else None
    if found is None and isinstance(columns, list):
        counts = [find_number(c, "null_count") for c in columns if isinstance(c, dict)]
        found = sum(c for c in counts if c is not None) if any(c is not None for c in counts) else None
    return found


def _remaining(goal: GoalReading, profile: Any) -> list[str]:
    """What still stands between the dataset and the goal, judged from a fresh profile."""
    wanted = goal.text.lower()
    left = []
    if "duplicate" in wanted or "dedup" in wanted:
        dupes = max(find_number(profile, "duplicate_rows") or 0, find_number(profile, "duplicate_keys") or 0)
        if dupes:
            left.append(f"{dupes:g} duplicate rows")
    if re.search(r"\b(null|nulls|missing|blank|empty)\b", wanted) and (_nulls(profile) or 0) > 0:
        left.append(f"{_nulls(profile):g} missing cells")
    if not left and not re.search(r"duplicate|dedup|null|missing|blank|empty", wanted):
        score = find_number(profile, "quality_score")
        if score is not None and score < 95 and suggested(profile):
            left.append(f"quality score {score:g} with {len(suggested(profile))} suggested operations")
    return left


def _op_names(ops: Any) -> str:
    names = [f"{o.get('op')}({o.get('column') or ', '.join(o.get('columns') or []) or 'all'})"
             if isinstance(o, dict) and o.get("op") else str(o) for o in (ops if isinstance(ops, list) else [])]
    return ", ".join(names[:8]) or "none"


def _describe(profile: Any) -> str:
    parts = []
    for label, value in (
        ("rows", find_number(profile, "rows", "row_count", contains="rows", exclude=("duplicate", "null", "bad"))),
        ("duplicate rows", find_number(profile, "duplicate_rows", "duplicates", contains="duplicate")),
        ("missing cells", _nulls(profile)),
        ("quality score", find_number(profile, "quality_score", "quality_after", contains="quality")),
        ("issues", float(len(profile["issues"])) if isinstance(profile, dict) and isinstance(profile.get("issues"), list)
         else None),
    ):
        if value is not None:
            parts.append(f"{label} {value:g}")
    ops = suggested(profile)
    if ops:
        parts.append(f"suggested operations: {_op_names(ops)}")
    return "; ".join(parts) or "profile read"


def data_finding(conv: Conversation, goal: GoalReading, role: str, verify: bool) -> tuple[str, list[str], float]:
    dataset = dataset_of(conv, goal)
    if not isinstance(dataset, str):
        listing = conv.last_ok("list_datasets")
        known = ", ".join(names_in(listing.result)) if listing else "unknown"
        return f"No dataset in the goal matches a known dataset (known: {known}); nothing was changed.", [
            "Name the dataset to work on."], 0.3
    profile = _profile(conv, dataset)
    if profile is None:
        return f"Could not profile {dataset}; nothing was changed.", ["Check that the dataset exists."], 0.3
    state = _describe(profile)
    if verify:
        remaining = _remaining(goal, profile)
        verdict = f"Target missed: {', '.join(remaining)} remain." if remaining else "Target met."
        return f"Verification of {dataset}: {state}. {verdict}", [], 0.75
    cleaned = conv.calls("clean_dataset")
    if role == "optimizer" and cleaned:
        last = cleaned[-1]
        if last.ok:
            version = find_number(last.result, "version", "number", contains="version")
            report = _describe(last.result) if isinstance(last.result, dict) else ""
            return (f"Cleaned {dataset} with {_op_names(last.args.get('operations'))}"
                    + (f" into version {version:g}" if version is not None else "")
                    + f"; before: {state}" + (f"; after: {report}" if report else "") + ".",
                    ["Verify the new version's profile."], 0.75)
        return (f"Did not clean {dataset}: {last.status}: {last.error or 'no reason given'}. Before: {state}.",
                ["Ask an owner to clean it or to lift the protection."], 0.5)
    recs = [f"Clean {dataset}: {_op_names(suggested(profile))}."] if suggested(profile) else []
    if role == "innovator":
        recs.append("Add a validation check at ingestion so these problems do not recur.")
    return f"{dataset}: {state}.", recs, 0.75


# -- a part of a request about one dataset ----------------------------------------------------------------------

def operations_for(conv: Conversation, profile: Any, *, dedupe_only: bool) -> list[Any]:
    """The cleaning operations for a part: the profile's suggestions, only their dedupe when duplicates were all
    that was asked."""
    ops = _operations(conv, profile)
    if dedupe_only:
        dedupes = [o for o in ops if isinstance(o, dict) and str(o.get("op", "")).startswith("dedup")]
        return dedupes or [{"op": "dedupe"}]
    return ops


def remaining_for(text: str, profile: Any) -> list[str]:
    """What still stands between a dataset and what a part asked, from a fresh profile."""
    return _remaining(GoalReading(text=text, domain="data", act=True), profile)


describe = _describe
op_names = _op_names
