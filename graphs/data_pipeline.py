"""Data pipeline: ingest several datasets concurrently, score their quality, clean those below a threshold, transform, validate the result and publish a quality report.

    discover → ingest ⇉ (one per dataset, Send) → gate → clean ⇉ (below threshold, Send) → transform
             → validate → publish → decide

Scoring and validation are deterministic reads of ``profile_dataset``; cleaning is the optimizer's (it picks
the operations, the policy protects what it must); the report is a Prefect Markdown artifact.
"""

from __future__ import annotations

import operator
import re
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from agentmesh import Agent, Decision, Finding, actions_taken, record_event, use_tool

EXAMPLE_GOAL = ("Run the nightly pipeline over the customers, orders and sensor_readings datasets: score their quality, "
                "clean any below 95, and publish a quality report.")

DEFAULT_THRESHOLD = 90.0
"""The quality score (0-100) below which a dataset is cleaned, unless the goal says "below N"."""


def _merge(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    return {**left, **right}


class PipelineState(TypedDict, total=False):
    goal: str
    threshold: float
    sources: list[str]
    ingested: Annotated[dict[str, dict[str, Any]], _merge]
    """Dataset → its profile at ingestion (rows, version, quality score, issues)."""
    to_clean: list[str]
    gate_reasons: list[str]
    findings: Annotated[list[dict[str, Any]], operator.add]
    outputs: list[dict[str, Any]]
    """The transformed rows of the report: one per dataset, before and after."""
    validation: dict[str, Any]
    report: str
    decision: dict[str, Any]


class SourceInput(TypedDict):
    dataset: str


class CleanInput(TypedDict):
    goal: str
    profile: dict[str, Any]
    threshold: float


def _threshold(goal: str) -> float:
    found = re.search(r"(?:below|under|less than|<)\s*(\d+(?:\.\d+)?)", goal.lower())
    return float(found.group(1)) if found and float(found.group(1)) <= 100 else DEFAULT_THRESHOLD


async def discover(state: PipelineState) -> dict[str, Any]:
    listing = await use_tool("list_datasets", role="analyst")
    names = [d["name"] for d in (listing.get("result") or {}).get("datasets", [])]
    # Word boundaries: "orders" must not match inside "reorders".
    named = [n for n in names if re.search(rf"\b{re.escape(n)}\b", state["goal"])]
    return {"sources": named or names, "threshold": _threshold(state["goal"])}


def fan_out_ingest(state: PipelineState) -> list[Send]:
    return [Send("ingest", SourceInput(dataset=name)) for name in state["sources"]]


async def ingest(state: SourceInput) -> dict[str, Any]:
    profiled = await use_tool("profile_dataset", role="analyst", dataset=state["dataset"])
    if profiled["status"] != "ok":
        return {"ingested": {state["dataset"]: {"dataset": state["dataset"], "error": profiled.get("error")}}}
    p = profiled["result"]
    keep = ("dataset", "version", "rows", "quality_score", "protected", "issues")
    return {"ingested": {state["dataset"]: {k: p.get(k) for k in keep}}}


def gate(state: PipelineState) -> dict[str, Any]:
    threshold, to_clean, reasons = state["threshold"], [], []
    for name, p in sorted(state.get("ingested", {}).items()):
        score = p.get("quality_score")
        if score is None:
            reasons.append(f"{name}: not ingested ({p.get('error')}); skipped")
        elif score >= threshold:
            reasons.append(f"{name}: quality {score} meets the threshold {threshold:g}; no cleaning")
        else:
            to_clean.append(name)
            reasons.append(f"{name}: quality {score} is below the threshold {threshold:g}; cleaning")
    return {"to_clean": to_clean, "gate_reasons": reasons}


def fan_out_clean(state: PipelineState) -> list[Send] | str:
    if not state.get("to_clean"):
        return "transform"
    return [Send("clean", CleanInput(goal=state["goal"], profile=state["ingested"][n], threshold=state["threshold"]))
            for n in state["to_clean"]]


async def clean(state: CleanInput) -> dict[str, Any]:
    p = state["profile"]
    step = {"id": f"clean-{p['dataset']}"[:16], "role": "optimizer", "instruction": (
        f"Clean the {p['dataset']} dataset: its quality score is {p['quality_score']}, below the pipeline's "
        f"threshold of {state['threshold']:g}. Profile it and apply the suggested cleaning operations; the "
        f"original version is kept.")}
    found = await Agent(role="optimizer", output=Finding).run(goal=state["goal"], step=step)
    return {"findings": [{**found.model_dump(), "step_id": step["id"], "agent": "optimizer"}]}


async def transform(state: PipelineState) -> dict[str, Any]:
    """Shape every source into the report's rows: the version the pipeline publishes, with its lineage."""
    outputs = []
    for name, before in sorted(state.get("ingested", {}).items()):
        now = await use_tool("profile_dataset", role="analyst", dataset=name)
        after = now.get("result") or {}
        outputs.append({
            "dataset": name, "version_in": before.get("version"), "version_out": after.get("version"),
            "rows_in": before.get("rows"), "rows_out": after.get("rows"),
            "quality_in": before.get("quality_score"), "quality_out": after.get("quality_score"),
            "cleaned": after.get("version") != before.get("version"), "remaining_issues": len(after.get("issues") or []),
        })
    return {"outputs": outputs}


def validate(state: PipelineState) -> dict[str, Any]:
    threshold, passed, failed = state["threshold"], [], []
    for row in state.get("outputs", []):
        q = row.get("quality_out")
        if q is not None and q >= threshold:
            passed.append(row["dataset"])
        else:
            why = "protected or not cleaned" if not row.get("cleaned") else "still below the threshold after cleaning"
            failed.append(f"{row['dataset']} (quality {q}, {why})")
    validation = {"threshold": threshold, "passed": passed, "failed": failed}
    record_event("pipeline_validated", **validation)
    return {"validation": validation}


async def publish(state: PipelineState) -> dict[str, Any]:
    from prefect.artifacts import acreate_markdown_artifact

    v = state["validation"]
    lines = ["# Data quality report", "", f"Threshold: **{v['threshold']:g}**", "",
             "| dataset | version in → out | rows in → out | quality in → out | cleaned |", "|---|---|---|---|---|"]
    for r in state.get("outputs", []):
        lines.append(f"| {r['dataset']} | {r['version_in']} → {r['version_out']} | {r['rows_in']} → {r['rows_out']} | "
                     f"{r['quality_in']} → {r['quality_out']} | {'yes' if r['cleaned'] else 'no'} |")
    lines += ["", "## Gate", *[f"- {x}" for x in state.get("gate_reasons", [])], "", "## Validation",
              f"- passed: {', '.join(v['passed']) or 'none'}", f"- failed: {', '.join(v['failed']) or 'none'}"]
    report = "\n".join(lines)
    try:
        await acreate_markdown_artifact(key="data-quality-report", markdown=report,
                                        description=f"Data pipeline: {state['goal'][:120]}")
    except Exception as exc:  # the artifact is a view; the report is also in the run's state and events
        record_event("warning", message=f"could not publish the report artifact: {exc}")
    record_event("report_published", datasets=len(state.get("outputs", [])))
    return {"report": report}


async def decide(state: PipelineState) -> dict[str, Any]:
    v = state["validation"]
    findings = list(state.get("findings") or []) + [{
        "step_id": "validate", "agent": "analyst", "summary": (
            f"Validation against quality {v['threshold']:g}: passed {', '.join(v['passed']) or 'none'}; "
            f"failed {', '.join(v['failed']) or 'none'}. " + " ".join(state.get("gate_reasons", []))),
        "observations": [], "recommendations": []}]
    decision = await Agent(role="strategist", tools=[], output=Decision).run(
        goal=state["goal"], findings=findings, actions=actions_taken(), variables={"stage": "decide"})
    assert isinstance(decision, Decision)
    decision.open_risks = ([f"below the quality threshold: {f}" for f in v["failed"]] + decision.open_risks)[:10]
    return {"decision": decision.model_dump()}


graph = StateGraph(PipelineState)
graph.add_node("discover", discover, metadata={"agent": "analyst"})
graph.add_node("ingest", ingest, metadata={"agent": "analyst"})
graph.add_node("gate", gate)
graph.add_node("clean", clean, metadata={"agent": "optimizer"})
graph.add_node("transform", transform, metadata={"agent": "analyst"})
graph.add_node("validate", validate)
graph.add_node("publish", publish)
graph.add_node("decide", decide, metadata={"agent": "strategist"})
graph.add_edge(START, "discover")
graph.add_conditional_edges("discover", fan_out_ingest, ["ingest"])
graph.add_edge("ingest", "gate")
graph.add_conditional_edges("gate", fan_out_clean, ["clean", "transform"])
graph.add_edge("clean", "transform")
graph.add_edge("transform", "validate")
graph.add_edge("validate", "publish")
graph.add_edge("publish", "decide")
graph.add_edge("decide", END)
