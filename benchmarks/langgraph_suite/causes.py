"""Why a test that passes plainly fails through ``agentmesh.compile``: rules written from reading the failures.

A rule matches a failure by its text (pytest's report: the test's source as printed, the assertion, the
traceback), the test's own source (read from the extracted suite) and its node id; the first rule that matches
wins, so the specific symptoms come before the broad ones. Each rule names the agentmesh code responsible.
Written against LangGraph 1.2.24's suite; a failure no rule matches lands in "unclassified" for someone to read.
The rules of causes since fixed in ``agentmesh/runtime/compile.py`` (subgraphs hidden by the node wrapper, node
data, a RetryPolicy read as a list, retries outside a goal, the sync-node timeout check) are kept, so that a
regression is named; their texts describe the code as it was.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import re
from pathlib import Path
from typing import Any

_WRAPPER = ("`agentmesh/runtime/compile.py` `_durable_node`: the node's runnable is replaced by "
            "`RunnableCallable(func, afunc)` whose closures hold Prefect tasks")


@dataclasses.dataclass(frozen=True)
class Cause:
    key: str
    title: str
    explanation: str
    agentmesh: str
    text: str = ""  # regex on the failure text and crash line
    context: str = ""  # regex on the node id and the test function's source
    example: str = ""  # regex picking the representative line from the failure text

    def matches(self, nodeid: str, result: dict[str, Any], source: str) -> bool:
        failure = result.get("text", "") + "\n" + result.get("crash", "")
        return ((not self.text or re.search(self.text, failure, re.MULTILINE) is not None)
                and (not self.context or re.search(self.context, nodeid + "\n" + source) is not None))

    def line(self, result: dict[str, Any]) -> str:
        text = result.get("text", "")
        if self.example:
            found = re.search(self.example, text, re.MULTILINE)
            if found:
                return shorten(found.group(0).strip())
        return shorten(result.get("crash", ""))


def shorten(line: str, limit: int = 400) -> str:
    """One line, without this machine's folders: `tests/...` for the suite, `langgraph/...` for the package."""
    line = re.sub(r"/\S*/(site-packages|langgraph-[\d.]+)/", "", line)
    line = re.sub(r"/\S*/lib/python3\.\d+/", "", line)  # the standard library's files
    return " ".join(line.split())[:limit]


_TIMING = (r"TimeoutError|Timeout \(>|Cancelled before checkpoint put started|FloatBetween|"
           r"At index \d+ diff: \(\d\.\d,")

CAUSES: list[Cause] = [
    Cause(
        "retry-policy-read-as-list", "RetryPolicy read as a list of policies: compile crashes",
        "`RetryPolicy` is a NamedTuple, so `isinstance(spec.retry_policy, (list, tuple))` is true for a single "
        "policy and `spec.retry_policy[0]` is its first field, `initial_interval` (a float, or an int); "
        "`_delays(policy)` then fails on `policy.max_interval`/`max_attempts` while the node is wrapped, so "
        "every graph with a node-level RetryPolicy fails to compile (or to run).",
        "`agentmesh/runtime/compile.py` `_durable_node`: `policy = spec.retry_policy[0] if "
        "isinstance(spec.retry_policy, (list, tuple)) else spec.retry_policy`; `_delays`",
        text=r"object has no attribute '(max_attempts|max_interval|backoff_factor|retry_on)'",
        example=r"^E\s+AttributeError: .*object has no attribute .*$",
    ),
    Cause(
        "timeout-compile-check", "Compile-time timeout check bypassed",
        "`add_node(..., timeout=TimeoutPolicy(...))` on a sync node must fail `compile()` with \"only supported "
        "for async nodes\". agentmesh's wrapper has both a sync and an async function, so every node looks "
        "async to LangGraph's check and the graph compiles.",
        _WRAPPER + " (`afunc` present for every node, whatever the user's function is)",
        text=r"DID NOT RAISE", context=r"only supported for async nodes",
        example=r"^E\s+Failed: DID NOT RAISE.*$",
    ),
    Cause(
        "run-kept-alive", "A finished run is kept alive (PregelLoop not freed)",
        "After `invoke()` returns, LangGraph leaves no `SyncPregelLoop`/`AsyncPregelLoop`/`PregelRunner` behind "
        "(the test checks with the garbage collector off, counting every loop in the process). Prefect starts its "
        "process-wide services (events, API logs, a concurrency-lease worker per set of tags) lazily and each "
        "keeps the context it was started from for the life of the process; started from inside a failing "
        "node's task run, that context held the task run's Failed state, its exception and, through the "
        "traceback, the loop (found after `test_pending_writes_resume`, the first test whose node fails). "
        "agentmesh now starts them from an empty context before each task run (`_upstream."
        "start_prefect_services`); a loop still counted here is held by Prefect work still pending right after "
        "`invoke()` returns.",
        "`agentmesh/runtime/compile.py` `_durable_node` (a Prefect task run per node execution)",
        text=r"(Sync|Async)PregelLoop object|PregelRunner object",
        example=r"^E\s+assert \d+ == 0.*$|^E\s+\+\s+where \d+ = len\(.*$",
    ),
    Cause(
        "graph-node-data", "get_graph(): node data is agentmesh's wrapper, not the node",
        "`get_graph().to_json()` / drawings put each node's runnable in its `data`; through agentmesh it is "
        "`langgraph._internal._runnable.RunnableCallable` (the wrapper) instead of the user's function, "
        "`ToolNode`, or compiled subgraph, so the ids (`['langgraph', '_internal', '_runnable', ...]`) differ.",
        _WRAPPER + " (`get_graph()` reads `node.bound`)",
        text=r"^E?\s*\+\s+['\"](_internal|_runnable)['\"]",
        example=r"^E?\s*\+\s+['\"]_internal['\"].*$",
    ),
    Cause(
        "subgraph-xray", "Subgraphs not drawn: get_graph(xray=...) does not expand them",
        "`get_graph(xray=True|n)` draws a subgraph's own nodes (`parent:child`); through agentmesh a compiled "
        "subgraph added as a node is hidden in the wrapper, so it is drawn as one plain node.",
        _WRAPPER + " (`get_graph` finds subgraphs through `node.subgraphs` / `find_subgraph_pregel(node.bound)`)",
        context=r"xray", text=r"\[- snapshot\]|draw_mermaid|==\s*'''",
        example=r"^E?\s*[-+]\s+.*(\w+:\w+|\w+\(\w+\)).*$",
    ),
    Cause(
        "subgraph-discovery", "Subgraphs not discovered: nodes[...].subgraphs / get_subgraphs() are empty",
        "LangGraph finds a node's subgraphs by looking at the node's runnable and the function's closure and "
        "globals (`langgraph/pregel/_utils.py` `get_function_nonlocals`, `find_subgraph_pregel`); the wrapper's "
        "closure holds Prefect tasks, so nothing is found and `get_subgraphs()` returns nothing.",
        _WRAPPER,
        text=r"_detect\(|Right contains one more item: \(.*CompiledStateGraph",
        example=r"^E\s+(assert None == .*|Right contains one more item: .*)$",
    ),
    Cause(
        "timeout-around-retries", "A node's timeout is around its whole task run, retries included",
        "LangGraph times each attempt of a node and can retry a `NodeTimeoutError` (`RetryPolicy(retry_on="
        "NodeTimeoutError)`). Through agentmesh the retries happen inside the node's Prefect task, and LangGraph's "
        "timeout is around the task: when it fires, the task is cancelled and nothing retries it.",
        "`agentmesh/runtime/compile.py` `_durable_node` (the node keeps its `timeout` for LangGraph; the task retries)",
        context=r"retry_policy|RetryPolicy", text=r"NodeTimeoutError",
        example=r"^E?\s*langgraph.errors.NodeTimeoutError: .*$",
    ),
    Cause(
        "retry-policy-dropped", "RetryPolicy not followed: the node is not retried as the policy says",
        "`add_node(..., retry_policy=...)` (one policy or a list, and `set_node_defaults(retry_policy=...)`) "
        "retries the node on matching errors, `max_attempts` times, with backoff and jitter, before the error "
        "handler runs. agentmesh sets `retry_policy=None` on the node and maps a policy onto Prefect task "
        "retries: of a list only the first policy is used (an error the second one accepts is not retried), "
        "jitter is dropped, and retries wait through Prefect, not LangGraph's `asyncio.sleep`/`time.sleep`.",
        "`agentmesh/runtime/compile.py` `_durable_node`: `dataclasses.replace(spec, ..., retry_policy=None)`, "
        "`policy = spec.retry_policy[0] ...`, `count()`, `should_retry`, `_delays`",
        context=r"retry_policy|RetryPolicy",
        text=r"assert 1 == 2|During task with name|expected call not found|NodeTimeoutError",
        example=(r"^E\s+(assert 1 == 2|ValueError: .*|ConnectionError: .*|AssertionError: expected call not "
                 r"found.*|langgraph.errors.NodeTimeoutError: .*)$"),
    ),
    Cause(
        "fanout-concurrency", "Wide fan-outs: 100 parallel Send()s no longer overlap, or exceed 60 s",
        "100 `Send`s to an async node whose 0–0.1 s sleeps must all overlap (`max_currently == 100`). Plainly "
        "every node body starts in the same pass of the event loop, before any sleep ends. Through agentmesh each "
        "`Send` is a Prefect task run, and Prefect's per-run work (task run and state records, a concurrency "
        "lease for its tags, events) runs on the same event loop first: measured (100 Sends to a node sleeping "
        "50 ms, 2 loaded cores), the first to the last node start 1.1–1.6 s "
        "apart (≈11–16 ms a task run), at most 16–21 of 100 overlapping; plainly 0 ms apart, 100 overlapping. "
        "A limit of one Prefect task run per node execution, not of agentmesh's code (the runs already share "
        "one API client per event loop).",
        "Prefect's per-task-run cost (`agentmesh/runtime/compile.py` `_durable_node`: a Prefect task run per node "
        "execution, by design)",
        context=r"max_concurrency",
        example=r"^E\s+(assert \d+ == \d+|Failed: Timeout.*)$",
    ),
    Cause(
        "latency-budget", "Per-node Prefect latency exceeds a test's time budget",
        "The test gives a node a wall-clock budget: `asyncio.wait_for(..., 0.5)`, `step_timeout = 1`, "
        "`sleep(0.2)` then cancel, streamed chunks expected within 0.1 s (`FloatBetween`). Each node through "
        "agentmesh first starts a Prefect task run: tens of ms in a warm process, ~0.3–1 s for a process's "
        "first one, more with two busy pytest workers and the Prefect server on 2 cores; so the node has not "
        "started, or not finished, when the budget ends. The 'alone' column: those that pass when rerun alone "
        "(warmed up, nothing else running) failed from load; those that still fail are over budget even then "
        "(a subgraph node is a task whose nodes are tasks too).",
        "`agentmesh/runtime/compile.py` `_durable_node` (a Prefect task run per node execution)",
        text=_TIMING,
        example=r"^E\s+(TimeoutError|AssertionError: Cancelled.*|At index \d+ diff: .*|assert False|Failed: Timeout.*)$",
    ),
    Cause(
        "subgraph-state", "Subgraph state invisible: snapshots, update_state, history and time travel",
        "With a subgraph hidden in the wrapper, LangGraph cannot resolve a subgraph's checkpoint namespace: "
        "`get_state(subgraphs=True)` leaves `task.state` None, `StateSnapshot.tasks` lack the subgraph's "
        "state, `get_state`/`get_state_history`/`update_state` with a subgraph task's config "
        "(`checkpoint_ns`) answer for the wrong graph (KeyError 'thread_id', None snapshots), and replay/"
        "time travel into a subgraph finds nothing.",
        _WRAPPER + " (`Pregel.get_subgraphs` and `_prepare_state_snapshot` only recurse into nodes whose "
        "runnable is a Pregel)",
        context=r"subgraph|sub_graph|checkpoint_ns|nested|namespace",
        text=(r"has no attribute '(values|config|tasks|next)'|assert None is not None|KeyError: 'thread_id'|"
              r"'NoneType' object is not subscriptable|no `child` subgraph task|Drill down into differing attribute tasks|"
              r"assert \['\w+'\] == \[\]|Right contains 1 more item"),
        example=(r"^E\s+(AttributeError: 'NoneType' object has no attribute .*|assert None is not None|"
                 r"KeyError: 'thread_id'|TypeError: 'NoneType' object is not subscriptable|"
                 r"AssertionError: no `child` subgraph task.*|Drill down into differing attribute tasks|"
                 r"AssertionError: assert \[.*\] == \[\].*|Right contains 1 more item:.*)$"),
    ),
    Cause(
        "uuid4-sequence", "uuid4() values consumed by Prefect (deterministic ids shift)",
        "The test patches `uuid.uuid4` to a fixed sequence (`deterministic_uuids`) and expects message ids "
        "from it. Prefect's task engine draws from the same patched function: measured, 3 `uuid.uuid4()` calls a "
        "node execution through agentmesh (0 plainly) — a transaction holder id (`prefect/transactions.py`), a "
        "result record key (`prefect/results.py`, even with `persist_result=False`) and the CSRF id of the sync "
        "API client (`prefect/client/base.py`) — so the ids the graph's nodes get are further along the sequence. "
        "Only not drawing them (no Prefect task run) or patching Prefect would keep the sequence.",
        "Prefect's task engine (`agentmesh/runtime/compile.py` `_durable_node`: a Prefect task run per node "
        "execution, by design)",
        text=r"00000000-0000-4000-8000-", context=r"deterministic_uuids",
        example=r"^E\s+At index \d+ diff: .*$",
    ),
    Cause(
        "default-node-retries", "Nodes without a RetryPolicy are retried (once) outside a goal",
        "LangGraph runs a node once and surfaces its error (or runs its error handler). Through agentmesh, "
        "outside a goal a node without a RetryPolicy gets `settings.node_retries` Prefect retries (default 1, "
        "1 s apart): a node that fails once then succeeds raises nothing (`DID NOT RAISE`), a failing node "
        "runs twice (its side effects and stream events doubled: `assert 2 == 1`, `['b', 'b', 'b', 'b']`), "
        "an invalid `Command(resume=...)` answer is retried instead of rejected.",
        "`agentmesh/runtime/compile.py` `_durable_node` `count()`: `(run.settings if run is not None else "
        "settings).node_retries`, with `settings` the environment's (`get_settings()`) in `compile`",
        text=r"DID NOT RAISE|^E\s+assert (2 == 1|4 == 2)$|Left contains \d+ more items?",
        example=r"^E\s+(Failed: DID NOT RAISE.*|assert \d+ == \d+|AssertionError: assert \[.*\] == \[.*\])$",
    ),
    Cause(
        "completion-order", "Parallel nodes finish in another order (test orders them with short sleeps)",
        "Nodes of one superstep stream their updates in completion order; the test orders them by sleeps of "
        "10–100 ms. Each node's Prefect task start-up varies by more than that, so the streamed order changes. "
        "Not a semantic difference unless it also fails when rerun alone.",
        "`agentmesh/runtime/compile.py` `_durable_node` (a Prefect task run per node execution)",
        text=r"At index \d+ diff:", context=r"sleep\(",
        example=r"^E\s+At index \d+ diff: .*$",
    ),
]

# Failures that depend on time and load: run.py reruns these alone (one at a time, no xdist) to tell a loaded
# machine from a real difference. The others fail the same way every time (checked: rerun alone, 0 of them passed).
LOAD_SENSITIVE = {"latency-budget", "completion-order", "unclassified"}

UNCLASSIFIED = Cause("unclassified", "Not classified yet", "No rule in causes.py matches these failures.",
                     "to be read")


def classify(nodeid: str, result: dict[str, Any], tests_dir: Path | None = None) -> Cause:
    source = test_source(str(tests_dir), nodeid) if tests_dir else ""
    for cause in CAUSES:
        if cause.matches(nodeid, result, source):
            return cause
    return UNCLASSIFIED


@functools.lru_cache(maxsize=4096)
def test_source(tests_dir: str, nodeid: str) -> str:
    """The source of the test function a node id names ('' if it cannot be found)."""
    path, _, rest = nodeid.partition("::")
    names = re.sub(r"\[.*$", "", rest).split("::")
    file = Path(tests_dir).parent / path
    try:
        tree = _parse(str(file))
    except (OSError, SyntaxError):
        return ""
    body: list[ast.stmt] = tree.body
    node: ast.AST | None = None
    for name in names:
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == name), None)
        if node is None:
            return ""
        body = getattr(node, "body", [])
    if node is None:
        return ""
    text = _read(str(file))
    source = ast.get_source_segment(text, node) or ""
    # the module-level helpers the test calls (a graph is often built by one: `_ask_then_fail_once(...)`)
    helpers = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    called = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} & helpers.keys() - set(names)
    return "\n".join([source, *(ast.get_source_segment(text, helpers[name]) or "" for name in sorted(called))])


@functools.lru_cache(maxsize=128)
def _read(file: str) -> str:
    return Path(file).read_text()


@functools.lru_cache(maxsize=128)
def _parse(file: str) -> ast.Module:
    return ast.parse(_read(file))
