"""Decision memory: past goals, their decisions and outcomes, eval results and operator feedback, recalled for
similar goals.

Operators score a finished run (``agentmesh runs feedback RUN_ID --score 1 --note "…"``); a sample world may
carry lessons too; eval reports (``agentmesh eval run SUITE --out .agentmesh/eval-reports/NAME.json``) add each
scenario's goal, reward and why it failed. For a new goal, ``DecisionMemory`` ranks them all by a plain, explainable
similarity — IDF-weighted word overlap (a word shared by few past goals counts more than one shared by
all) — and returns the closest as lines the strategist sees under "# Similar past decisions":

    from agentmesh import DecisionMemory, Mesh
    graph = Mesh(strategist=..., workers=[...], memory=DecisionMemory()).build()

Each line says why it was recalled (its score and the shared words).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert, select

from agentmesh.core.exceptions import UserError
from agentmesh.persistence.database import utcnow
from agentmesh.persistence.runs import get_run
from agentmesh.persistence.tables import feedback, runs

__all__ = ["EVAL_REPORTS_DIR", "DecisionMemory", "Recollection", "add_feedback", "eval_outcomes", "list_feedback",
           "recall"]

MIN_SCORE, MAX_SCORE = 1, 5
EVAL_REPORTS_DIR = "eval-reports"
"""The folder under ``AGENTMESH_HOME`` whose eval reports ``DecisionMemory`` recalls by default."""
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_STOP = {
    "the", "a", "an", "and", "or", "of", "to", "in", "on", "for", "is", "are", "it", "its", "be", "by", "with",
    "at", "as", "that", "this", "was", "we", "our", "please", "can", "you", "get", "keep", "make", "so", "from",
}


def add_feedback(engine: Engine, *, run_id: str | None, score: int, note: str, source: str = "operator",
                 goal: str | None = None) -> dict[str, Any]:
    """Record feedback on a run (its goal is copied from the run) or, with no run, a standalone lesson."""
    if not MIN_SCORE <= score <= MAX_SCORE:
        raise UserError(f"--score must be between {MIN_SCORE} (bad) and {MAX_SCORE} (good), got {score}")
    note = (note or "").strip()
    if not note:
        raise UserError("--note is empty: say what happened, e.g. \"scaling payments-api above 6 exhausted DB connections\"")
    if run_id is not None:
        record = get_run(engine, run_id)
        run_id, goal = record["run_id"], record["goal"]
    row = {"run_id": run_id, "score": score, "note": note[:2000], "goal": goal, "source": source, "created": utcnow()}
    with engine.begin() as conn:
        key = conn.execute(insert(feedback).values(**row)).inserted_primary_key
        row["id"] = key[0] if key else None
    return row


def list_feedback(engine: Engine, run_id: str | None = None) -> list[dict[str, Any]]:
    query = select(feedback).order_by(feedback.c.id)
    if run_id is not None:
        query = query.where(feedback.c.run_id == run_id)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def replace_sample_lessons(engine: Engine, lessons: list[dict[str, Any]]) -> None:
    """A sample world's lessons replace the previous sample's (``agentmesh world reset`` stays idempotent)."""
    with engine.begin() as conn:
        conn.execute(delete(feedback).where(feedback.c.source == "sample"))
    for lesson in lessons:
        add_feedback(engine, run_id=None, score=int(lesson.get("score", MIN_SCORE)), note=str(lesson["note"]),
                     goal=lesson.get("goal"), source="sample")


@dataclass(kw_only=True, frozen=True)
class Recollection:
    """One past decision or lesson recalled for a goal."""

    similarity: float
    """IDF-weighted share of the new goal's words (those any past decision uses) found in it, 0..1."""
    shared: tuple[str, ...]
    """The words it shares with the new goal (why it was recalled)."""
    text: str
    """What the strategist is shown."""


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall((text or "").lower()) if w not in _STOP and len(w) > 1}


def _documents(engine: Engine, limit: int) -> list[str]:
    with engine.connect() as conn:
        notes = conn.execute(select(feedback).order_by(feedback.c.id.desc()).limit(limit)).mappings().all()
        past = conn.execute(select(runs.c.run_id, runs.c.goal, runs.c.decision).where(runs.c.status == "done")
                            .order_by(runs.c.created.desc()).limit(limit)).mappings().all()
    by_run: dict[str, list[Any]] = {}
    docs = []
    for n in notes:
        if n["run_id"]:
            by_run.setdefault(n["run_id"], []).append(n)
        else:
            docs.append(f"lesson (score {n['score']}/{MAX_SCORE}): {n['note']}"
                        + (f" — about: {n['goal']}" if n["goal"] else ""))
    seen = set()
    for r in past:
        seen.add(r["run_id"])
        decision = r["decision"] or {}
        text = f"goal: {r['goal']}"
        if decision:
            text += f" → decided: {str(decision.get('summary', ''))[:300]} (outcome: {decision.get('outcome')})"
        for n in by_run.get(r["run_id"], []):
            text += f"; operator feedback (score {n['score']}/{MAX_SCORE}): {n['note']}"
        docs.append(text)
    for run_id, ns in by_run.items():  # feedback on runs not (or no longer) listed as done
        if run_id not in seen:
            docs.append(f"goal: {ns[0]['goal']}; " + "; ".join(
                f"operator feedback (score {n['score']}/{MAX_SCORE}): {n['note']}" for n in ns))
    return docs


def _reports(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """The eval reports in ``paths`` (report files, or folders of them), newest first."""
    files = []
    for path in map(Path, paths):
        files += sorted(path.glob("*.json")) if path.is_dir() else [path] if path.is_file() else []
    reports = []
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # a stray file beside the reports must not stop a goal; it is simply not recalled
        if isinstance(data, dict) and isinstance(data.get("scenarios"), list):
            reports.append(data)
    return sorted(reports, key=lambda r: str(r.get("created", "")), reverse=True)


def eval_outcomes(paths: Iterable[Path], *, limit: int = 500) -> list[str]:
    """One line per eval scenario in the reports at ``paths``: its goal, reward and why trials failed.

    A scenario in several reports is taken from the newest. ``agentmesh eval run … --out FILE`` writes a report.
    """
    lines, seen = [], set()
    for report in _reports(paths):
        when = f"{report.get('model', '?')}, {str(report.get('created', ''))[:10]}"
        for s in report["scenarios"]:
            if not isinstance(s, dict) or not s.get("goal") or s.get("id") in seen:
                continue
            seen.add(s.get("id"))
            reasons: dict[str, str] = {}
            for f in s.get("failures") or []:
                reasons.setdefault(str(f.get("component")), str(f.get("reason", ""))[:300])
            text = (f"eval {s.get('id')} ({when}): goal: {s['goal']} → reward {float(s.get('reward', 0)):.2f} "
                    f"({s.get('successes', '?')}/{s.get('trials', '?')} trials passed)")
            text += f"; failed: {'; '.join(f'{c}: {r}' for c, r in list(reasons.items())[:3])}" if reasons else ""
            text += f"; expected: {s['purpose']}" if s.get("purpose") else ""
            lines.append(text)
    return lines[:limit]


def recall(engine: Engine, goal: str, *, k: int = 3, min_similarity: float = 0.25, limit: int = 500,
           eval_reports: Iterable[Path] = ()) -> list[Recollection]:
    """The ``k`` past decisions, lessons and eval outcomes most similar to ``goal`` (at least ``min_similarity``)."""
    docs = _documents(engine, limit) + eval_outcomes(eval_reports, limit=limit)
    query = _words(goal)
    if not docs or not query:
        return []
    bags = [_words(d) for d in docs]
    df = Counter(w for bag in bags for w in bag)
    # Only words some past decision uses can tell past decisions apart; the goal's other words are left out
    # of the denominator, so a small memory is not diluted by words it has never seen.
    idf = {w: math.log((1 + len(docs)) / (1 + df[w])) + 1 for w in query if df[w]}
    total = sum(idf.values())
    if not total:
        return []
    found = []
    for doc, bag in zip(docs, bags, strict=True):
        shared = sorted(query & bag, key=lambda w: -idf[w])
        similarity = sum(idf[w] for w in shared) / total
        if similarity >= min_similarity:
            found.append(Recollection(similarity=round(similarity, 3), shared=tuple(shared), text=doc))
    found.sort(key=lambda r: -r.similarity)
    return found[:k]


@dataclass(kw_only=True)
class DecisionMemory:
    """A ``Mesh`` memory: callable with a goal, returns the similar past decisions as lines for the planner.

    Reads the agentmesh database of the running goal (so it works in any graph run by ``run_goal``) and the
    eval reports in ``eval_reports``.
    """

    k: int = 3
    """How many past decisions and lessons to show at most."""
    min_similarity: float = 0.25
    """Below this, a past decision is not similar enough to shape the plan."""
    eval_reports: list[Path] | None = None
    """Eval report files or folders of them; None means ``$AGENTMESH_HOME/eval-reports``."""

    def __call__(self, goal: str) -> list[str]:
        from agentmesh.agents.context import current_run

        run = current_run()
        reports = self.eval_reports if self.eval_reports is not None else [run.settings.resolved_home / EVAL_REPORTS_DIR]
        found = recall(run.engine, goal, k=self.k, min_similarity=self.min_similarity, eval_reports=reports)
        lines = [f"[similarity {r.similarity:.2f}; shared words: {', '.join(r.shared[:6])}] {r.text}" for r in found]
        run.emit({"type": "memory_recalled", "count": len(lines),
                  "items": [{"similarity": r.similarity, "shared": list(r.shared[:6])} for r in found]})
        return lines
