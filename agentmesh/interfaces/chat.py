"""The terminal chat (``agentmesh chat``): type a goal, watch the agents live, approve inline, follow up.

Each goal is one run through ``agentmesh.runtime``; its events print as they are recorded. A follow-up
message is a new run whose context is the thread so far (earlier goals and their decisions); ``/new``
starts a fresh thread. Ctrl-C during a run cancels that run (it is recorded ``cancelled``) and returns
to the prompt; Ctrl-C or Ctrl-D at the prompt leaves. Input history is kept in
``$AGENTMESH_HOME/chat_history``.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import signal
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from agentmesh.core.exceptions import AgentmeshError, UserError
from agentmesh.core.settings import Settings, get_settings
from agentmesh.interfaces.cli._render import EventPrinter, _args, audit_table, print_result, runs_table

__all__ = ["ChatSession"]

HELP = """[bold]Type a goal[/] and press Enter; follow-ups continue the same thread.
  [cyan]/runs[/]             the latest runs
  [cyan]/show ID[/]          one run: steps, decision, pending approvals
  [cyan]/audit ID[/]         a run's tool calls
  [cyan]/approve [ID][/]     answer a run's pending approvals (default: the last run)
  [cyan]/model NAME[/]       use another model (offline, or an OpenAI-compatible name)
  [cyan]/graph NAME[/]       use another graph
  [cyan]/new[/]              start a new thread (forget the context)
  [cyan]/clear[/]            clear the screen and start a new thread
  [cyan]/help[/]  [cyan]/exit[/]
help, clear, exit, quit and bye work without the slash too (a goal is more than one of those words).
Ctrl-C during a run cancels it; Ctrl-D or /exit leaves."""

BARE_COMMANDS = ("help", "clear", "exit", "quit", "bye")

PROMPT = "agentmesh> "
HISTORY_FILE = "chat_history"
MAX_THREAD_ITEMS = 20


@dataclass(kw_only=True)
class ChatSession:
    """One chat session: its settings, graph, thread context and last run."""

    settings: Settings
    """The settings runs use (``/model`` replaces them)."""
    graph: str
    """The graph goals run on (``/graph`` changes it)."""
    console: Console = field(default_factory=Console)
    """Where everything is printed."""
    approver: str = field(default_factory=getpass.getuser)
    """Who is chatting: recorded as the runs' starter and as the approver of inline approvals."""
    context: list[str] = field(default_factory=list)
    """The thread so far: earlier goals and decisions, passed to the planner."""
    last_run: str | None = None
    """The latest run of this session (the default for ``/approve``)."""
    read_line: Callable[[str], str] = input
    """Reads one line (tests and other front ends may replace it)."""
    _runner: asyncio.Runner | None = None

    # -- the loop ------------------------------------------------------------------------------------

    def run(self) -> None:
        """Read and answer lines until /exit, Ctrl-D or Ctrl-C at the prompt."""
        if threading.current_thread() is threading.main_thread():
            # Ctrl-C must reach the session even when the parent started it with SIGINT ignored (an ignored
            # signal is inherited; asyncio.Runner then leaves it ignored and Ctrl-C would cancel nothing).
            signal.signal(signal.SIGINT, signal.default_int_handler)
        history = _History(self.settings.resolved_home / HISTORY_FILE)
        with asyncio.Runner() as runner, history, _quiet_prefect_console(self.settings):
            self._runner = runner
            model = self.settings.model_name + (" (offline: a deterministic stand-in, not an LLM)" if self.settings.offline else "")
            self.console.print(f"[bold]agentmesh chat[/] · graph [cyan]{self.graph}[/] · model [cyan]{escape(model)}[/]"
                               " · /help for commands")
            while True:
                try:
                    line = self.read_line(PROMPT)
                except EOFError:
                    self.console.print()
                    break
                except KeyboardInterrupt:
                    self.console.print()
                    break
                if not self.handle(line):
                    break
        self.console.print("bye")

    def handle(self, line: str) -> bool:
        """Answer one line; False when the session should end. Never raises (but for the session's end)."""
        line = line.strip()
        if not line:
            return True
        try:
            word = line.lower().lstrip("/").rstrip(".!?").strip()
            if word in BARE_COMMANDS:  # `quit`, `exit`, `bye`, `clear`, `help`: a command, with or without the slash
                return self._command("/" + word)
            if line.startswith("/"):
                return self._command(line)
            self._goal(line)
        except KeyboardInterrupt:
            self.console.print("[yellow]interrupted[/]")
        except (UserError, AgentmeshError) as exc:
            self.console.print(f"[red]error:[/] {escape(_one_line(exc))}")
        except Exception as exc:  # the session survives a bug; the user gets one line, not a traceback
            logging.getLogger("agentmesh.chat").debug("chat error", exc_info=True)
            self.console.print(f"[red]internal error:[/] {type(exc).__name__}: {escape(_one_line(exc))}")
        return True

    # -- goals ---------------------------------------------------------------------------------------

    def _goal(self, goal: str) -> None:
        from agentmesh.runtime.run import arun_goal

        printer = EventPrinter(self.console)
        ids: dict[str, str] = {}

        def on_event(event: dict[str, Any]) -> None:
            ids.setdefault("run_id", event.get("run_id", ""))
            printer(event)

        result = self._cancellable(
            arun_goal(goal, graph=self.graph, settings=self.settings, on_event=on_event,
                      context=list(self.context) or None, started_by=self.approver,
                      stream_tokens=printer.wants_tokens),
            ids,
        )
        if result is None:
            return
        self.last_run = result["run_id"]
        result = self._settle(result)
        self._remember(goal, result)

    def _cancellable(self, coro: Coroutine[Any, Any, dict[str, Any]], ids: dict[str, str]) -> dict[str, Any] | None:
        """Run ``coro``; Ctrl-C cancels it (the runtime records the run ``cancelled``) and returns None."""
        assert self._runner is not None
        try:
            return self._runner.run(coro)
        except (KeyboardInterrupt, asyncio.CancelledError):
            run_id = ids.get("run_id")
            if run_id:
                self.last_run = run_id
            self.console.print(f"[yellow]cancelled[/] run {run_id or '(not started)'} — recorded as cancelled; "
                               "the session goes on")
            return None

    def _settle(self, result: dict[str, Any]) -> dict[str, Any]:
        """Print the result; while the run waits for approval, ask, record the verdicts and resume."""
        from agentmesh.runtime.run import aresume_run

        while True:
            print_result(self.console, result)
            if result["status"] != "waiting_approval" or not result.get("pending_approvals"):
                return result
            if not self._ask_verdicts(result["run_id"], result["pending_approvals"]):
                self.console.print(f"left waiting: [cyan]/approve {result['run_id'][:8]}[/] when you decide")
                return result
            ids = {"run_id": result["run_id"]}
            resumed = self._cancellable(aresume_run(result["run_id"], settings=self.settings,
                                                    on_event=EventPrinter(self.console)), ids)
            if resumed is None:
                return result
            result = resumed

    def _ask_verdicts(self, run_id: str, pending: list[dict[str, Any]]) -> bool:
        """Ask about each pending call; True when every one got a verdict (recorded in the audit)."""
        from agentmesh.runtime.approvals import aapprove

        assert self._runner is not None
        for call in pending:
            question = f"approve {call['tool']} {_args(call['args'])} (agent {call.get('agent')})? [y/n/e] "
            while True:
                try:
                    answer = self.read_line(question).strip().lower()
                    if answer in ("y", "yes", "n", "no"):
                        args = None
                        break
                    if answer in ("e", "edit"):
                        args = self._edit(run_id, call)
                        if args is not None:
                            break
                        continue
                except (EOFError, KeyboardInterrupt):
                    self.console.print()
                    return False
                self.console.print("answer y (approve), n (reject) or e (approve with arguments you change)")
            approved = not answer.startswith("n")
            reason = None
            if not approved:
                with contextlib.suppress(EOFError, KeyboardInterrupt):
                    reason = self.read_line("reason (optional): ").strip() or None
            if args is None:
                self._runner.run(aapprove(run_id, call["id"], approved=approved, approver=self.approver,
                                          reason=reason, settings=self.settings, resume=False))
            verdict = "approved with your edit" if args is not None else "approved" if approved else "rejected"
            self.console.print(f"[{'green' if approved else 'red'}]{verdict}[/] {call['tool']}")
        return True

    def _edit(self, run_id: str, call: dict[str, Any]) -> dict[str, Any] | None:
        """Ask for the arguments to change and approve the call with them; None (said why) when they are not
        valid — the call keeps waiting and the question is asked again."""
        from agentmesh.runtime.approvals import aapprove

        assert self._runner is not None
        text = self.read_line('arguments to change, as JSON (e.g. {"replicas": 5}): ').strip()
        try:
            args = json.loads(text)
            self._runner.run(aapprove(run_id, call["id"], approved=True, approver=self.approver, args=args,
                                      settings=self.settings, resume=False))
        except ValueError as exc:
            self.console.print(f"[red]not JSON[/] ({escape(str(exc))}): nothing was recorded", soft_wrap=True)
            return None
        except UserError as exc:  # one line however long: the terminal wraps it, Rich does not break it
            self.console.print(f"[red]{escape(str(exc))}[/]: nothing was recorded", soft_wrap=True)
            return None
        return dict(args)

    def _remember(self, goal: str, result: dict[str, Any]) -> None:
        self.context.append(f"Earlier goal in this conversation: {goal}")
        decision = result.get("decision")
        if decision:
            self.context.append(f"Decision on it ({result['status']}): {decision['summary']}")
        else:
            self.context.append(f"That run ended {result['status']} without a decision.")
        del self.context[:-MAX_THREAD_ITEMS]

    # -- commands ------------------------------------------------------------------------------------

    def _command(self, line: str) -> bool:
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        name = name.lower()
        if name in ("/exit", "/quit", "/q", "/bye"):
            return False
        handler = {
            "/help": self._help, "/clear": self._clear, "/runs": self._runs, "/show": self._show, "/audit": self._audit,
            "/approve": self._approve, "/model": self._model, "/graph": self._graph, "/new": self._new,
        }.get(name)
        if handler is None:
            self.console.print(f"unknown command {escape(name)}; /help lists them")
        else:
            handler(arg)
        return True

    def _help(self, arg: str) -> None:
        self.console.print(HELP)

    def _engine(self) -> Any:
        from agentmesh.persistence.database import get_engine

        return get_engine(self.settings.resolved_database_url)

    def _runs(self, arg: str) -> None:
        from agentmesh.persistence.runs import runs_listing

        rows = runs_listing(self._engine(), limit=20)
        self.console.print(runs_table(rows, self.console.width) if rows else "no runs yet: type a goal")

    def _run_id(self, arg: str) -> str:
        run_id = arg or self.last_run
        if not run_id:
            raise UserError("which run? give an id (see /runs)")
        return run_id

    def _show(self, arg: str) -> None:
        from agentmesh.persistence.runs import run_result

        result = run_result(self._engine(), self._run_id(arg))
        self.console.print(f"[bold]{escape(result['goal'])}[/]  [dim]graph {result['graph']} · run {result['run_id']}[/]")
        for step in result["steps"]:
            self.console.print(f"  {step['node']} ({step['agent'] or '-'}) {step['status']} "
                               f"[dim]{len(step['tool_calls'])} tool calls[/]")
        print_result(self.console, result)

    def _audit(self, arg: str) -> None:
        from agentmesh.persistence.audit import list_calls
        from agentmesh.persistence.runs import get_run

        engine = self._engine()
        calls = [c.model_dump(mode="json") for c in list_calls(engine, get_run(engine, self._run_id(arg))["run_id"])]
        self.console.print(audit_table(calls, self.console.width) if calls else "no tool calls")

    def _approve(self, arg: str) -> None:
        from agentmesh.persistence.runs import run_result

        result = run_result(self._engine(), self._run_id(arg))
        if not result.get("pending_approvals"):
            self.console.print(f"run {result['run_id']} has nothing waiting for approval (status {result['status']})")
            return
        self.last_run = result["run_id"]
        self._settle(result)

    def _model(self, arg: str) -> None:
        if not arg:
            self.console.print(f"model: {self.settings.model_name}")
            return
        self.settings = get_settings(model=arg, home=self.settings.home)
        self.console.print(f"model: [cyan]{escape(self.settings.model_name)}[/]")

    def _graph(self, arg: str) -> None:
        from agentmesh.runtime.graphs import get_graph, list_graphs

        if not arg:
            names = ", ".join(sorted(list_graphs(self.settings.graphs_paths)))
            self.console.print(f"graph: {self.graph} (known: {names})")
            return
        self.graph = get_graph(arg, self.settings.graphs_paths).name
        self.console.print(f"graph: [cyan]{self.graph}[/]")

    def _clear(self, arg: str) -> None:
        self.console.clear()
        self._new(arg)

    def _new(self, arg: str) -> None:
        self.context.clear()
        self.last_run = None
        self.console.print("new thread: earlier goals are forgotten")


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class _History:
    """readline line editing and history, kept in a file across sessions (where readline exists)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.readline: Any = None

    def __enter__(self) -> _History:
        try:
            import readline
        except ImportError:  # Windows without pyreadline: plain input
            return self
        self.readline = readline
        readline.set_history_length(1000)
        with contextlib.suppress(OSError):
            readline.read_history_file(str(self.path))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.readline is None:
            return
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.readline.write_history_file(str(self.path))


@contextlib.contextmanager
def _quiet_prefect_console(settings: Settings) -> Iterator[None]:
    """Prefect's console log lines would tear through the chat, which shows each run's outcome itself; Prefect's
    API still receives every log. A filter, not a level: Prefect's later logging set-ups reset handler levels."""
    from agentmesh.runtime.prefect import configure_prefect, console_handlers

    configure_prefect(settings)  # also warms the local Prefect server before the first goal
    quiet = _OnlyCritical()
    handlers = console_handlers()
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


class _OnlyCritical(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.CRITICAL
