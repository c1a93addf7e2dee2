"""A mesh of agents: the strategist plans, workers run the plan's steps (independent ones in parallel), the
strategist reviews — deciding or replanning in bounded rounds — and ends with a ``Decision``.

    from agentmesh import Agent, Mesh

    graph = Mesh(
        strategist=Agent(role="strategist"),
        workers=[Agent(role="analyst"), Agent(role="optimizer"), Agent(role="innovator")],
    ).build()                      # a plain LangGraph StateGraph; agentmesh.compile makes it durable

The graph:  plan → dispatch ⇉ workers (Send, one per ready step) → dispatch … → review → decide → END
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from agentmesh.agents.agent import Agent
from agentmesh.agents.context import current_run
from agentmesh.agents.nodes import actions_taken
from agentmesh.core.exceptions import ConfigError, ModelError
from agentmesh.core.schemas import Decision, Finding, Plan, Review

__all__ = ["Mesh", "MeshState"]


class MeshState(TypedDict, total=False):
    """The state of a mesh run (also what `agentmesh run --json` reads the plan and decision from)."""

    goal: str
    plan: dict[str, Any]
    round: int
    findings: Annotated[list[dict[str, Any]], operator.add]
    review: dict[str, Any]
    decision: dict[str, Any]
    memory: list[str]


class StepInput(TypedDict):
    goal: str
    step: dict[str, Any]
    findings: list[dict[str, Any]]


@dataclass(kw_only=True)
class Mesh:
    """Builds the plan → work → review → decide graph for a strategist and its workers."""

    strategist: Agent
    """Plans, reviews and decides (outputs Plan, Review, Decision)."""
    workers: list[Agent]
    """The roles plan steps may be assigned to."""
    max_rounds: int | None = None
    """Plan rounds (first plan + replans); None uses the strategist prompt's ``plan_rounds``, else
    settings.max_plan_rounds."""
    memory: Any = None
    """Optional callable (goal) -> list[str] of similar past decisions, shown to the strategist."""
    _by_role: dict[str, Agent] = field(default_factory=dict, repr=False)

    def build(self) -> StateGraph:
        self._by_role = {w.role: w for w in self.workers}
        if len(self._by_role) != len(self.workers):
            raise ConfigError("two workers of a mesh share a role")
        graph = StateGraph(MeshState)
        role = {"agent": self.strategist.role}
        graph.add_node("plan", self._plan, metadata=role)
        graph.add_node("dispatch", _dispatch_node)
        for worker in self.workers:
            graph.add_node(worker.role, self._worker(worker), metadata={"agent": worker.role})
            graph.add_edge(worker.role, "dispatch")
        graph.add_node("review", self._review, metadata=role)
        graph.add_node("decide", self._decide, metadata=role)
        graph.add_edge(START, "plan")
        graph.add_edge("plan", "dispatch")
        graph.add_conditional_edges("dispatch", self._route, [*self._by_role, "review"])
        graph.add_conditional_edges("review", _after_review, ["dispatch", "decide"])
        graph.add_edge("decide", END)
        return graph

    # -- nodes ------------------------------------------------------------------------------------------

    async def _plan(self, state: MeshState) -> dict[str, Any]:
        memory = list(self.memory(state["goal"])) if self.memory else state.get("memory") or None
        plan = self._assignable(await _ask(self.strategist, Plan, goal=state["goal"], memory=memory, stage="plan"))
        current_run().emit({"type": "plan", "plan": plan.model_dump()})
        return {"plan": plan.model_dump(), "round": 1}

    def _worker(self, agent: Agent):  # type: ignore[no-untyped-def]
        async def work(state: StepInput) -> dict[str, Any]:
            step = state["step"]
            try:
                found = await agent.run(goal=state["goal"], step=step, findings=state["findings"] or None)
                assert isinstance(found, Finding)
                finding = found.model_dump()
            except ModelError as exc:
                # One worker's unusable answer is a failed step the strategist sees, not a failed goal.
                finding = Finding(summary=f"step failed: {exc}", confidence=0).model_dump()
            finding.update(step_id=step["id"], agent=agent.role)
            current_run().emit({"type": "finding", "agent": agent.role, "step_id": step["id"], "finding": finding})
            return {"findings": [finding]}

        work.__name__ = agent.role
        return work

    async def _review(self, state: MeshState) -> dict[str, Any]:
        run = current_run()
        rounds = self.max_rounds or self.strategist.template(run).plan_rounds or run.settings.max_plan_rounds
        if state.get("round", 1) >= rounds:
            return {"review": {"verdict": "decide", "reason": "plan rounds used up", "new_steps": []}}
        review = await _ask(
            self.strategist, Review, goal=state["goal"], plan=state["plan"], findings=state.get("findings"),
            actions=actions_taken(), round_info=(state.get("round", 1), rounds), stage="review",
        )
        assert isinstance(review, Review)
        if review.verdict == "decide" or not review.new_steps:
            return {"review": review.model_dump()}
        plan = Plan.model_validate(state["plan"])
        prefix = f"r{state.get('round', 1) + 1}"
        known = {s.id for s in plan.steps}
        renamed = {s.id: f"{prefix}{s.id}"[:16] for s in review.new_steps}
        added = [
            step.model_copy(update={
                "id": renamed[step.id],
                "depends_on": [renamed.get(d, d) for d in step.depends_on if d in renamed or d in known],
            })
            for step in review.new_steps
        ]
        merged = self._assignable(Plan(objective=plan.objective, steps=[*plan.steps, *added][:16]))
        return {"review": review.model_dump(), "plan": merged.model_dump(), "round": state.get("round", 1) + 1}

    async def _decide(self, state: MeshState) -> dict[str, Any]:
        run = current_run()
        decision = await _ask(
            self.strategist, Decision, goal=state["goal"], findings=state.get("findings"), actions=actions_taken(),
            stage="decide",
        )
        run.emit({"type": "decision", "decision": decision.model_dump()})
        return {"decision": decision.model_dump()}

    # -- routing --------------------------------------------------------------------------------------------

    def _route(self, state: MeshState) -> list[Send] | str:
        plan = Plan.model_validate(state["plan"])
        done = {f["step_id"] for f in state.get("findings", [])}
        ready = [s for s in plan.steps if s.id not in done and all(d in done for d in s.depends_on)]
        if not ready:
            return "review"
        findings = state.get("findings", [])
        return [
            Send(s.role, StepInput(goal=state["goal"], step=s.model_dump(), findings=findings)) for s in ready
        ]

    def _assignable(self, plan: Plan) -> Plan:
        # The model is untrusted: a step for a role this mesh lacks goes to the analyst (or the first worker).
        fallback = "analyst" if "analyst" in self._by_role else self.workers[0].role
        steps = [s if s.role in self._by_role else s.model_copy(update={"role": fallback}) for s in plan.steps]
        return plan.model_copy(update={"steps": steps})


def _dispatch_node(state: MeshState) -> dict[str, Any]:
    return {}


def _after_review(state: MeshState) -> str:
    return "dispatch" if state.get("review", {}).get("verdict") == "replan" else "decide"


async def _ask(agent: Agent, output: type, *, goal: str, stage: str, **sections: Any) -> Any:
    """Run the strategist for one stage with the output schema of that stage."""
    staged = Agent(role=agent.role, prompt=agent.template(current_run()), tools=[], output=output, model=agent.model)
    return await staged.run(goal=goal, variables={"stage": stage}, **sections)

