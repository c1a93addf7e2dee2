// agentmesh web page: submit goals, follow a run's events live, approve calls, browse runs and audits.
// Plain modern JS, no build step. Events come from GET /v1/goals/{id}/events (Server-Sent Events), read
// with fetch so that the API token can be sent as a header and a dropped stream resumes with Last-Event-ID.
"use strict";

const $ = (sel) => document.querySelector(sel);
const TERMINAL = new Set(["done", "failed", "budget_exceeded", "cancelled"]);
const state = { runs: [], current: null, run: null, lastSeq: 0, stream: null, events: 0, finished: false };

// -- helpers ---------------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const short = (id) => (id || "").slice(0, 8);
const args = (value, limit = 160) => {
  const text = JSON.stringify(value ?? {});
  return text.length > limit ? text.slice(0, limit - 1) + "…" : text;
};
const pill = (status, small) => el("span", { class: `pill s-${status}${small ? " small" : ""}` }, (status || "").replace("_", " "));
const role = (name) => el("span", { class: `role r-${name || "none"}` }, name || "router");
function clock(seconds) {
  const d = seconds ? new Date(seconds * 1000) : new Date();
  return d.toLocaleTimeString([], { hour12: false });
}
function ago(iso) {
  if (!iso) return "";
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

// -- API -------------------------------------------------------------------------------------------------

function authHeaders() {
  const token = localStorage.getItem("agentmesh.token");
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function api(path, { method = "GET", body } = {}) {
  const headers = { ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await res.json(); } catch { /* empty body */ }
  if (res.status === 401) askToken();
  if (!res.ok) throw new Error((data && data.error && data.error.message) || `${res.status} ${res.statusText}`);
  return data;
}

function askToken() {
  const dialog = $("#token-dialog");
  if (!dialog.open) dialog.showModal();
}

// -- runs list -------------------------------------------------------------------------------------------

async function loadRuns() {
  try {
    const data = await api("/v1/runs?limit=100");
    state.runs = data.data;
    renderRuns();
  } catch { /* the health indicator says why */ }
}

function renderRuns() {
  const filter = $("#runs-filter").value.trim().toLowerCase();
  const list = $("#runs");
  const rows = state.runs.filter((r) => !filter || r.goal.toLowerCase().includes(filter) || r.status.includes(filter) || r.run_id.startsWith(filter));
  list.replaceChildren(...rows.map((r) => el("li", {
    class: r.run_id === state.current ? "active" : "", "data-run": r.run_id, title: r.goal,
    onclick: () => selectRun(r.run_id),
  }, el("div", { class: "goal" }, r.goal), el("div", { class: "meta" }, pill(r.status, true), el("span", {}, r.graph), el("span", {}, ago(r.created))))));
  if (!rows.length) list.append(el("li", { class: "empty-note" }, filter ? "no runs match" : "no runs yet"));
}

// -- one run ---------------------------------------------------------------------------------------------

async function selectRun(id) {
  if (state.stream) state.stream.abort();
  Object.assign(state, { current: id, run: null, lastSeq: 0, events: 0, finished: false });
  history.replaceState(null, "", `#run=${id}`);
  $("#empty").classList.add("hidden");
  $("#run").classList.remove("hidden");
  $("#timeline").replaceChildren();
  $("#plan").classList.add("hidden");
  $("#event-count").textContent = "0";
  renderRuns();
  await refreshRun();
  follow(id);
}

async function refreshRun() {
  const id = state.current;
  if (!id) return;
  let run;
  try { run = await api(`/v1/goals/${id}`); } catch (err) { showRunError(err.message); return; }
  if (id !== state.current) return;
  state.run = run;
  renderRun(run);
  loadAudit();
}

function showRunError(message) {
  const node = $("#run-error");
  node.textContent = message || "";
  node.classList.toggle("hidden", !message);
}

function renderRun(run) {
  $("#run-goal").textContent = run.goal;
  const status = $("#run-status");
  status.className = `pill s-${run.status}`;
  status.textContent = run.status.replace("_", " ");
  $("#run-id").textContent = run.run_id;
  $("#run-graph").textContent = `graph ${run.graph}`;
  $("#run-model").textContent = `model ${run.model.name}${run.model.offline ? " (offline stand-in)" : ""}`;
  const u = run.usage || {};
  $("#run-usage").textContent = u.model_calls != null
    ? `${u.model_calls} model calls · ${(u.input_tokens || 0) + (u.output_tokens || 0)} tokens · $${(u.cost_usd || 0).toFixed(4)}` : "";
  const prefect = $("#run-prefect");
  prefect.classList.toggle("hidden", !run.flow_run_url);
  if (run.flow_run_url) prefect.href = run.flow_run_url;
  $("#cancel-run").classList.toggle("hidden", TERMINAL.has(run.status));
  showRunError(run.error && run.status !== "done" ? run.error : "");
  if (run.plan) renderPlan(run.plan);
  renderApprovals(run);
  renderDecision(run);
  $("#run-json").textContent = JSON.stringify(run, null, 2);
}

function renderPlan(plan) {
  const box = $("#plan");
  box.replaceChildren(el("h3", {}, "Plan"), plan.objective ? el("div", { class: "detail" }, plan.objective) : "",
    el("ol", {}, (plan.steps || []).map((s) => el("li", {},
      el("span", { class: "sid" }, s.id), role(s.role),
      el("span", {}, s.instruction, s.depends_on && s.depends_on.length ? el("span", { class: "deps" }, `  after ${s.depends_on.join(", ")}`) : null)))));
  box.classList.remove("hidden");
}

function renderApprovals(run) {
  const box = $("#approvals");
  const pending = run.status === "waiting_approval" ? run.pending_approvals || [] : [];
  // Rebuilt only when the pending calls change: a refresh must not wipe a reason being typed.
  const key = `${run.run_id}:${pending.map((c) => c.id).join(",")}`;
  if (box.dataset.key === key) return;
  box.dataset.key = key;
  box.replaceChildren(...pending.map((call) => {
    const reason = el("input", { type: "text", placeholder: "reason (optional, recorded in the audit)", maxlength: "2000" });
    // The arguments are editable: approving changed arguments approves the call with them ("yes, but 5 replicas");
    // the server checks them again and the audit keeps both.
    const asked = JSON.stringify(call.args, null, 2);
    const edit = el("textarea", { class: "approval-args mono", spellcheck: "false", rows: String(Math.min(12, asked.split("\n").length)),
      "aria-label": "the call's arguments: edit them to approve a changed call" });
    edit.value = asked;
    const decide = async (approved, buttons) => {
      const body = { call_id: call.id, approved, reason: reason.value || null };
      if (approved && edit.value.trim() !== asked) {
        try { body.args = JSON.parse(edit.value); } catch (err) { showRunError(`the edited arguments are not JSON: ${err.message}`); return; }
      }
      buttons.forEach((b) => { b.disabled = true; });
      try {
        await api(`/v1/goals/${run.run_id}/approvals`, { method: "POST", body });
        await refreshRun();
      } catch (err) {
        showRunError(err.message);
        buttons.forEach((b) => { b.disabled = false; });
      }
    };
    const approve = el("button", { class: "approve", type: "button" }, "Approve");
    const reject = el("button", { class: "reject", type: "button" }, "Reject");
    approve.addEventListener("click", () => decide(true, [approve, reject]));
    edit.addEventListener("input", () => { approve.textContent = edit.value.trim() === asked ? "Approve" : "Approve edited"; });
    reject.addEventListener("click", () => decide(false, [approve, reject]));
    return el("div", { class: "approval", "data-call": call.id },
      el("div", { class: "approval-head" }, pill("pending_approval"), el("strong", {}, call.tool), role(call.agent),
        el("span", { class: "chip mono" }, call.id)),
      edit,
      el("div", { class: "approval-actions" }, approve, reject, reason));
  }));
  box.classList.toggle("hidden", !pending.length);
}

function renderDecision(run) {
  const box = $("#decision");
  const d = run.decision;
  if (!d) { box.classList.add("hidden"); return; }
  const actions = d.actions || [];
  box.replaceChildren(...[
    el("h2", {}, "Decision"),
    el("p", { class: "summary" }, d.summary),
    el("p", { class: "rationale" }, d.rationale),
    el("h3", {}, actions.length ? "Actions taken" : "Actions taken: none"),
    actions.length ? el("ul", {}, actions.map((a) => el("li", {}, el("code", {}, a.tool), " ", el("span", { class: "mono" }, args(a.args)), a.agent ? ` · ${a.agent}` : ""))) : null,
    (d.open_risks || []).length ? [el("h3", {}, "Open risks"), el("ul", {}, d.open_risks.map((r) => el("li", {}, r)))] : null,
    el("div", { class: "foot" }, el("span", {}, `outcome ${d.outcome || "—"}`),
      el("span", { class: "confidence" }, "confidence", el("span", { class: "bar" }, el("i", { style: `width:${Math.round((d.confidence || 0) * 100)}%` })), (d.confidence || 0).toFixed(2))),
  ].flat().filter(Boolean));
  box.classList.toggle("s-border-failed", run.status === "failed");
  box.classList.remove("hidden");
}

async function loadAudit() {
  const id = state.current;
  let data;
  try { data = await api(`/v1/runs/${id}/audit`); } catch { return; }
  if (id !== state.current) return;
  const body = $("#audit-body");
  $("#audit-count").textContent = String(data.data.length);
  body.replaceChildren(...data.data.map((c) => el("tr", {},
    el("td", { class: "mono" }, c.started ? new Date(c.started).toLocaleTimeString([], { hour12: false }) : ""),
    el("td", {}, role(c.agent)),
    el("td", {}, el("code", {}, c.tool)),
    el("td", { class: "args" }, args(c.args, 400), c.edited_args != null ? el("div", { class: "edited" }, `edited by ${c.approver}: `, args(c.edited_args, 400)) : ""),
    el("td", {}, pill(c.approval === "pending" ? "pending_approval" : c.status, true)),
    el("td", { class: "reason" }, c.reason || (c.result != null ? args(c.result, 240) : "")),
    el("td", {}, c.approval ? [pill(c.approval, true), c.approver ? ` ${c.approver}` : ""] : "—"))));
  if (!data.data.length) body.append(el("tr", { class: "empty-row" }, el("td", { colspan: "7" }, "no tool calls yet")));
}

// -- the live timeline -----------------------------------------------------------------------------------

function describe(e) {
  switch (e.type) {
    case "run_started":
      return { k: "run_started", icon: "▶", text: [e.resumed ? "Resumed" : "Started", ` on graph ${e.graph} with model ${e.model}`, e.offline ? " (offline stand-in)" : ""] };
    case "plan":
      renderPlan(e.plan);
      return { k: "ok", icon: "✎", text: [role("strategist"), ` planned ${(e.plan.steps || []).length} steps`] };
    case "step_started":
      return e.agent ? { k: "step", icon: "·", text: [role(e.agent), ` ${e.node} started`] } : null;
    case "step_finished":
      return e.agent && e.status !== "done" ? { k: "bad", icon: "!", text: [role(e.agent), ` ${e.node} ${e.status}`] } : null;
    case "tool_call":
      return { k: "tool_call", icon: "→", text: [role(e.agent), " ", el("code", {}, e.tool), " ", el("span", { class: "mono" }, args(e.args))] };
    case "tool_result":
      if (markCall(e)) return null;
      if (e.status === "ok") return { k: "ok", icon: "✓", text: [el("code", {}, e.tool), " ok"] };
      return { k: e.status === "failed" || e.status === "rejected" ? "bad" : "warn", icon: "!", text: [el("code", {}, e.tool), " ", pill(e.status, true)], detail: e.reason };
    case "approval_requested":
      return { k: "approval_requested", icon: "?", text: ["Approval needed: ", el("code", {}, e.tool), " ", el("span", { class: "mono" }, args(e.args))], detail: `call ${e.tool_call_id} · ${e.agent}` };
    case "finding":
      return { k: "finding", icon: "✓", text: [role(e.agent), ` ${e.step_id}: `, (e.finding && e.finding.summary) || ""] };
    case "decision":
      return { k: "ok", icon: "★", text: ["Decision: ", (e.decision && e.decision.summary) || ""] };
    case "warning":
      return { k: "warn", icon: "!", text: [e.message || "warning"] };
    case "run_finished":
      return { k: "run_finished", icon: TERMINAL.has(e.status) ? "■" : "‖", text: ["Run ", pill(e.status, true)], detail: e.error };
    default:
      return null;
  }
}

// A call's result marks its own row (✓, or the refusal and its reason) instead of adding one.
function markCall(e) {
  const row = [...document.querySelectorAll("#timeline .event.k-tool_call")].find((r) => r.dataset.call === e.tool_call_id);
  if (!row) return false;
  const icon = row.querySelector(".icon");
  if (e.status === "ok") {
    row.classList.add("done");
    icon.textContent = "✓";
  } else {
    row.classList.add(e.status === "failed" || e.status === "rejected" ? "k-bad" : "k-warn");
    icon.textContent = "!";
    row.querySelector(".body").append(el("span", { class: "result" }, pill(e.status, true)),
      e.reason ? el("div", { class: "detail" }, e.reason) : "");
  }
  if (e.edited) row.querySelector(".body").append(el("div", { class: "detail edited" }, `edited by ${e.edited.by}: `, args(e.edited.args)));
  return true;
}

function addEvent(e) {
  if (e.seq == null) return; // a token: live model output without a sequence number; the timeline shows stored events
  if (e.seq <= state.lastSeq) return;
  state.lastSeq = e.seq;
  state.events += 1;
  $("#event-count").textContent = String(state.events);
  const view = describe(e);
  if (view) {
    const item = el("li", { class: `event k-${view.k}`, "data-type": e.type, "data-seq": e.seq, "data-call": e.tool_call_id },
      el("span", { class: "t" }, clock(e.time)), el("span", { class: "icon" }, view.icon),
      el("div", { class: "body" }, view.text, view.detail ? el("div", { class: "detail" }, view.detail) : null));
    const box = $("#timeline-box");
    const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    $("#timeline").append(item);
    if (atEnd) box.scrollTop = box.scrollHeight;
  }
  if (e.type === "run_finished" || e.type === "approval_requested" || e.type === "run_started") {
    refreshRun();
    loadRuns();
  } else if (e.type === "tool_result" || e.type === "finding") {
    loadAudit();
  }
}

async function follow(id) {
  const controller = new AbortController();
  state.stream = controller;
  let delay = 500;
  while (!controller.signal.aborted && id === state.current) {
    try {
      const res = await fetch(`/v1/goals/${id}/events`, {
        headers: { ...authHeaders(), "Last-Event-ID": String(state.lastSeq), Accept: "text/event-stream" },
        signal: controller.signal,
      });
      if (res.status === 401) { askToken(); return; }
      if (!res.ok) throw new Error(`events: ${res.status}`);
      delay = 500;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trimStart()).join("\n");
          if (data && id === state.current) addEvent(JSON.parse(data));
        }
      }
      // The server ends the stream once the run is over.
      await refreshRun();
      return;
    } catch (err) {
      if (controller.signal.aborted) return;
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 8000);
    }
  }
}

// -- composer and page -----------------------------------------------------------------------------------

async function submitGoal(event) {
  event.preventDefault();
  const input = $("#goal-input");
  const goal = input.value.trim();
  const error = $("#composer-error");
  error.textContent = "";
  if (!goal) { error.textContent = "Describe what you want done."; input.focus(); return; }
  const body = { goal, graph: $("#graph-select").value || null, approvals: $("#approvals-select").value };
  if ($("#follow-up").checked && state.run) {
    body.context = [`Earlier goal in this conversation: ${state.run.goal}`];
    if (state.run.decision) body.context.push(`Decision on it (${state.run.status}): ${state.run.decision.summary}`);
  }
  const button = $("#submit-goal");
  button.disabled = true;
  try {
    const accepted = await api("/v1/goals", { method: "POST", body });
    input.value = "";
    await selectRun(accepted.id);
    loadRuns();
  } catch (err) {
    error.textContent = err.message;
  } finally {
    button.disabled = false;
  }
}

async function health() {
  const node = $("#health");
  try {
    const res = await fetch("/healthz");
    const data = await res.json();
    node.className = "health ok";
    $("#health-text").textContent = "connected";
    $("#server-model").textContent = `model ${data.model}${data.offline ? " · offline" : ""}`;
    $("#token-button").classList.toggle("hidden", !data.auth);
    state.defaultGraph = data.graph;
    if (data.auth) whoami();
    return data;
  } catch {
    node.className = "health down";
    $("#health-text").textContent = "offline";
    return null;
  }
}

// The signed-in identity (its token's name and roles): shown next to the token button; the server records it as the
// starter of each goal and the approver of each verdict given here.
async function whoami() {
  try {
    const me = await api("/v1/me");
    $("#token-button").textContent = `${me.name} (${me.roles.join(", ")})`;
  } catch { /* the token dialog asks */ }
}

async function loadGraphs() {
  try {
    const data = await api("/v1/models");
    const select = $("#graph-select");
    select.replaceChildren(...data.data.map((m) => el("option", { value: m.id, title: m.description || "" }, m.id)));
    if (state.defaultGraph && data.data.some((m) => m.id === state.defaultGraph)) select.value = state.defaultGraph;
  } catch { /* shown by the health indicator or the token dialog */ }
}

function setupTabs() {
  document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => {
    document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t === tab));
    document.querySelectorAll(".tab-panel").forEach((p) => p.classList.toggle("hidden", p.id !== `tab-${tab.dataset.tab}`));
    if (tab.dataset.tab === "audit") loadAudit();
  }));
}

function init() {
  setupTabs();
  $("#composer").addEventListener("submit", submitGoal);
  $("#goal-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("#composer").requestSubmit();
  });
  $("#runs-filter").addEventListener("input", renderRuns);
  $("#new-goal").addEventListener("click", () => {
    if (state.stream) state.stream.abort();
    Object.assign(state, { current: null, run: null });
    history.replaceState(null, "", location.pathname);
    $("#run").classList.add("hidden");
    $("#empty").classList.remove("hidden");
    $("#follow-up").checked = false;
    renderRuns();
    $("#goal-input").focus();
  });
  $("#cancel-run").addEventListener("click", async () => {
    try { await api(`/v1/goals/${state.current}/cancel`, { method: "POST" }); } catch (err) { showRunError(err.message); }
    refreshRun();
  });
  $("#token-button").addEventListener("click", askToken);
  $("#token-dialog").addEventListener("close", () => {
    if ($("#token-dialog").returnValue === "save") {
      localStorage.setItem("agentmesh.token", $("#token-input").value.trim());
      loadGraphs(); loadRuns(); whoami();
      if (state.current) selectRun(state.current);
    }
  });
  health().then(() => { loadGraphs(); loadRuns(); });
  setInterval(health, 15000);
  setInterval(loadRuns, 10000);
  const match = location.hash.match(/run=([\w-]+)/);
  if (match) selectRun(match[1]);
}

document.addEventListener("DOMContentLoaded", init);
