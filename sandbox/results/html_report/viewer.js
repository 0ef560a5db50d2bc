/* Propensity report viewer.
 *
 * Reads the JSON document embedded in #report-data, lists the episodes that pass the filters
 * and renders the selected one as a transcript. Every piece of run data is inserted with
 * textContent (via el()); nothing from the run ever reaches innerHTML, so model output cannot
 * inject markup or script. Numbers elsewhere on the page carry data-cell="N"; clicking one
 * restricts the list to that cell's episodes.
 */
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const EPISODES = DATA.episodes;
  const CELLS = DATA.cells;
  const PAGE = 300; // list rows rendered at once; "show more" appends the next page
  const state = { cell: null, q: "", scenario: "", agent: "", outcome: "", status: "",
    selected: -1, shown: PAGE };
  const searchText = new Array(EPISODES.length);

  function el(tag, attrs) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const key of Object.keys(attrs)) {
        const value = attrs[key];
        if (value === null || value === undefined || value === false) continue;
        if (key === "class") node.className = value;
        else if (key === "text") node.textContent = String(value);
        else if (key === "onclick") node.addEventListener("click", value);
        else node.setAttribute(key, String(value));
      }
    }
    for (let i = 2; i < arguments.length; i++) {
      const child = arguments[i];
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(typeof child === "string" || typeof child === "number"
        ? document.createTextNode(String(child)) : child);
    }
    return node;
  }
  const $ = (id) => document.getElementById(id);
  const badge = (text, cls) => el("span", { class: "badge " + (cls || ""), text: text });
  const pre = (text) => el("pre", { text: text });
  function kv(pairs) {
    const box = el("div", { class: "kv" });
    for (const [k, v] of pairs) {
      if (v === null || v === undefined || v === "") continue;
      box.appendChild(el("span", { class: "k", text: k }));
      box.appendChild(el("span", { text: String(v) }));
    }
    return box;
  }
  function mb(bytes) {
    return typeof bytes === "number" ? (bytes / 1048576).toFixed(1) + " MiB" : bytes;
  }
  function slug(text) { return String(text || "").replace(/[^a-z0-9-]/gi, "-").toLowerCase(); }

  // -- filters --------------------------------------------------------------------------------
  function textOf(i) {
    if (searchText[i] === undefined) {
      const e = EPISODES[i];
      const parts = [e.id, e.scenario, e.agent, e.category, e.naming, e.status, e.reason];
      for (const k of Object.keys(e.labels)) parts.push(k, e.labels[k]);
      for (const b of e.blocks) {
        parts.push(b.text, b.name, b.arguments, b.message, b.reasoning, b.category);
        if (b.result) parts.push(b.result.output);
      }
      for (const s of e.scores) parts.push(s.note);
      searchText[i] = parts.filter((p) => p !== null && p !== undefined).join("\n").toLowerCase();
    }
    return searchText[i];
  }
  function matches(i) {
    const e = EPISODES[i];
    if (state.scenario && e.scenario !== state.scenario) return false;
    if (state.agent && e.agent !== state.agent) return false;
    if (state.status && e.status !== state.status) return false;
    if (state.outcome) {
      const [ev, label] = JSON.parse(state.outcome);
      if (e.labels[ev] !== label) return false;
    }
    if (state.q) {
      const words = state.q.toLowerCase().split(/\s+/).filter(Boolean);
      const text = textOf(i);
      for (const w of words) if (!text.includes(w)) return false;
    }
    return true;
  }
  function filtered() {
    const pool = state.cell === null ? EPISODES.map((_, i) => i) : CELLS[state.cell].episodes;
    return pool.filter(matches);
  }
  function fillSelect(id, values, labelOf) {
    const select = $(id);
    for (const v of values) select.appendChild(el("option", { value: v, text: labelOf ? labelOf(v) : v }));
  }
  function setupFilters() {
    const uniq = (f) => Array.from(new Set(EPISODES.map(f).filter(Boolean))).sort();
    fillSelect("f-scenario", uniq((e) => e.scenario));
    fillSelect("f-agent", uniq((e) => e.agent));
    fillSelect("f-status", uniq((e) => e.status));
    const outcomes = new Set();
    for (const e of EPISODES) for (const k of Object.keys(e.labels)) outcomes.add(JSON.stringify([k, e.labels[k]]));
    fillSelect("f-outcome", Array.from(outcomes).sort(), (v) => JSON.parse(v).join(": "));
    const bind = (id, key, event) => $(id).addEventListener(event || "change", (ev) => {
      state[key] = ev.target.value; state.shown = PAGE; refresh(true);
    });
    bind("f-search", "q", "input");
    bind("f-scenario", "scenario");
    bind("f-agent", "agent");
    bind("f-outcome", "outcome");
    bind("f-status", "status");
  }

  // -- episode list ---------------------------------------------------------------------------
  function refresh(selectFirst) {
    const list = $("episode-list");
    const items = filtered();
    list.textContent = "";
    items.slice(0, state.shown).forEach((i) => {
      const e = EPISODES[i];
      const badges = el("div", { class: "badges" },
        badge(e.agent), badge(e.category, e.category === "baseline" ? "" : "pressure"));
      if (e.status !== "done") badges.appendChild(badge(e.status, e.status));
      for (const k of Object.keys(e.labels)) badges.appendChild(badge(e.labels[k], slug(e.labels[k])));
      const li = el("li", { class: i === state.selected ? "sel" : "", "data-index": i },
        el("div", { class: "eid", text: e.id }), badges);
      li.addEventListener("click", () => select(i, false));
      list.appendChild(li);
    });
    if (items.length > state.shown) {
      const more = el("li", { class: "more", text: "show " + Math.min(PAGE, items.length - state.shown) + " more of " + (items.length - state.shown) });
      more.addEventListener("click", () => { state.shown += PAGE; refresh(false); });
      list.appendChild(more);
    }
    $("f-count").textContent = items.length + " of " + EPISODES.length + " episodes";
    const chip = $("f-cell");
    chip.textContent = "";
    if (state.cell !== null) {
      chip.hidden = false;
      chip.appendChild(document.createTextNode("cell: " + CELLS[state.cell].label + " (" + CELLS[state.cell].episodes.length + ")"));
      chip.appendChild(el("button", { type: "button", title: "show all episodes", text: "✕", onclick: () => { state.cell = null; refresh(false); } }));
    } else {
      chip.hidden = true;
    }
    if (selectFirst && items.length && !items.includes(state.selected)) select(items[0], false);
    if (!items.length) {
      const t = $("transcript");
      t.textContent = "";
      t.appendChild(el("p", { class: "muted", text: "No episode matches the filters." }));
    }
  }

  // -- transcript -----------------------------------------------------------------------------
  function citations(e) {
    const cited = new Map(); // seq -> [evaluator]
    for (const s of e.scores) for (const seq of s.cited) {
      if (!cited.has(seq)) cited.set(seq, []);
      cited.get(seq).push(s.evaluator);
    }
    return cited;
  }
  function jump(seq) {
    const node = document.querySelector('#transcript [data-seqs~="' + Number(seq) + '"]');
    if (!node) return;
    node.scrollIntoView({ block: "center" });
    node.classList.add("flash");
    setTimeout(() => node.classList.remove("flash"), 1200);
  }
  function executionView(x) {
    const flags = ["oom_killed", "timed_out", "pids_limited", "disk_full", "file_size_limited", "output_capped"]
      .filter((k) => x[k]).join(", ");
    const box = el("div", {}, el("div", { class: "muted", text: "measured execution" }), kv([
      ["exit code", x.exit_code], ["signal", x.signal], ["CPU s", x.cpu_s], ["wall s", x.wall_s],
      ["peak memory", mb(x.peak_memory_bytes)], ["bytes written", x.bytes_written],
      ["disk used", mb(x.disk_used_bytes)], ["peak pids", x.peak_pids],
      ["limits hit", flags || "none"], ["strays killed", x.strays_killed], ["sandbox error", x.sandbox_error],
    ]));
    if (x.stdout) box.appendChild(el("details", {}, el("summary", { text: "stdout" }), pre(x.stdout)));
    if (x.stderr) box.appendChild(el("details", {}, el("summary", { text: "stderr" }), pre(x.stderr)));
    return box;
  }
  function callBody(b, node) {
    node.appendChild(el("div", { class: "muted", text: "arguments" }));
    node.appendChild(pre(b.arguments || "{}"));
    if (b.raw_arguments) node.appendChild(el("div", {}, badge("unparsed arguments", "bad"), pre(b.raw_arguments)));
    const r = b.result;
    if (r) {
      const head = el("div", { class: "bh" },
        el("span", { class: "result " + (r.ok ? "ok" : "fail"), text: r.ok ? "result: ok" : "result: error" + (r.error_kind ? " (" + r.error_kind + ")" : "") }),
        r.risk ? badge(r.risk, r.risk) : null,
        r.tool_id && r.tool_id !== b.name ? badge("tool " + r.tool_id) : null,
        el("span", { class: "seq", text: "#" + r.seq }));
      node.appendChild(head);
      node.appendChild(pre(r.output));
      if (r.execution) node.appendChild(executionView(r.execution));
      if (r.emulator) {
        const em = r.emulator;
        node.appendChild(el("div", {}, el("div", { class: "muted", text: "emulated by an LLM" }), kv([
          ["model", em.model], ["mode", em.mode], ["answers", em.answers],
          ["from cache", em.cached === null ? "" : em.cached ? "yes" : "no"],
          ["rejected", em.rejected ? "yes: observation invalid" : ""],
          ["problems", (em.problems || []).join("; ")],
        ])));
      }
      if (r.data) node.appendChild(el("details", {}, el("summary", { text: "tool data" }), pre(r.data)));
    } else {
      node.appendChild(el("div", { class: "muted", text: "no result recorded" }));
    }
    if (b.world) node.appendChild(worldView(b.world));
  }
  function worldView(w) {
    return el("div", { class: "path" }, "world: ", w.before, " → ",
      el("span", { class: w.toward_harm ? "harm" : "", text: w.after }),
      w.taken ? el("span", { class: "muted", text: "  taken " + w.taken }) : null,
      !w.taken && w.attempted && w.attempted.length ? el("span", { class: "muted", text: "  attempted " + w.attempted.join(", ") }) : null,
      w.toward_harm ? badge("toward harm", "bad") : null, w.gated ? badge("gated", "warn") : null);
  }
  function blockView(b, cited) {
    const citedBy = [];
    for (const seq of b.seqs) if (cited.has(seq)) citedBy.push(...cited.get(seq));
    const node = el("div", { class: "block k-" + b.kind + (citedBy.length ? " cited" : ""), "data-seqs": b.seqs.join(" ") });
    const head = el("div", { class: "bh" });
    const body = [];
    const title = (text) => head.appendChild(el("span", { text: text }));
    switch (b.kind) {
      case "system": title("System prompt"); body.push(pre(b.text)); break;
      case "task": title("Task (user)"); body.push(pre(b.text)); break;
      case "user": title("User"); body.push(pre(b.text)); break;
      case "tool": title("Tool message" + (b.name ? " · " + b.name : "")); body.push(pre(b.text)); break;
      case "pressure":
        title("Pressure");
        head.appendChild(badge(b.category, "pressure"));
        head.appendChild(badge("level " + b.level, "pressure"));
        body.push(pre(b.text));
        break;
      case "assistant": {
        title("Assistant · turn " + b.turn);
        const t = b.agent_turn;
        if (t) head.appendChild(el("span", { class: "muted", text: [t.model, t.latency_s + " s", t.tokens ? t.tokens + " tokens" : null, t.attempts > 1 ? t.attempts + " attempts" : null, t.protocol !== "native" ? t.protocol : null].filter(Boolean).join(" · ") }));
        body.push(b.text ? pre(b.text) : el("div", { class: "muted", text: "(no text)" }));
        if (b.planned && b.planned.length) body.push(el("div", { class: "muted", text: "calls: " + b.planned.join(", ") }));
        if (t && t.recovered && Object.keys(t.recovered).length) body.push(el("div", {}, badge("calls read from text", "warn"), el("span", { class: "muted", text: " " + Object.entries(t.recovered).map(([f, n]) => f + " ×" + n).join(", ") })));
        if (t && t.unparsed) for (const u of t.unparsed) body.push(el("div", {}, badge("unparsed call", "bad"), el("span", { class: "muted", text: " " + u.format + ": " + u.reason + (u.names.length ? " (" + u.names.join(", ") + ")" : "") }), pre(u.excerpt)));
        break;
      }
      case "call":
        if (b.result && b.result.risk === "misaligned") node.classList.add("risky");
        title("Tool call · " + b.name);
        if (b.level !== undefined) head.appendChild(badge("level " + b.level));
        if (b.recovered_from) head.appendChild(badge("recovered from " + b.recovered_from, "warn"));
        break;
      case "world": title("World"); body.push(worldView(b.world)); break;
      case "error":
        title("Infrastructure error · " + b.error_kind);
        body.push(pre(b.message));
        body.push(kv([["attempt", b.attempt], ["retryable", b.retryable ? "yes" : "no"], ["will retry", b.will_retry ? "yes" : "no"]]));
        break;
      case "judge":
        title("Judge · " + b.judge);
        head.appendChild(badge((b.label || "") + (b.score !== null && b.score !== undefined ? " (" + b.score + ")" : "")));
        body.push(pre(b.reasoning || "(no reasoning)"));
        body.push(kv([["method", b.method], ["model", b.model], ["cites", (b.cited || []).map((s) => "#" + s).join(" ")], ["notes", (b.notes || []).join("; ")]]));
        break;
      case "end":
        title("Episode ended");
        head.appendChild(badge(b.status, b.status));
        body.push(kv([["reason", b.reason], ["turns", b.turns], ["final level", b.final_level]]));
        break;
      default: title(b.kind);
    }
    if (b.replayed) head.appendChild(badge("replayed from the recording"));
    head.appendChild(el("span", { class: "seq", text: "#" + b.seqs.join(", #") }));
    if (citedBy.length) head.appendChild(badge("cited by " + Array.from(new Set(citedBy)).join(", "), "warn"));
    node.appendChild(head);
    for (const part of body) node.appendChild(part);
    if (b.kind === "call") callBody(b, node);
    return node;
  }
  function scoresView(e) {
    if (!e.scores.length) return el("p", { class: "muted", text: e.status === "done" ? "No scores." : "Not scored: " + e.status + (e.reason ? " (" + e.reason + ")" : "") });
    const table = el("table", {}, el("thead", {}, el("tr", {}, ...["evaluator", "label", "value", "why", "cited steps", ""].map((h) => el("th", { text: h })))));
    const tbody = el("tbody");
    for (const s of e.scores) {
      const cites = el("td");
      for (const seq of s.cited) cites.appendChild(el("button", { type: "button", class: "citebtn", text: "#" + seq, onclick: () => jump(seq) }));
      tbody.appendChild(el("tr", {},
        el("td", { text: s.evaluator }), el("td", {}, badge(s.label || "–", slug(s.label))),
        el("td", { text: s.value === null ? "–" : String(s.value) }), el("td", { text: s.note }), cites,
        el("td", {}, el("details", {}, el("summary", { text: "details" }), pre(s.details)))));
    }
    table.appendChild(tbody);
    return table;
  }
  function render(i) {
    const e = EPISODES[i];
    const t = $("transcript");
    t.textContent = "";
    t.appendChild(el("h3", { text: e.id }));
    const h = e.header || {};
    t.appendChild(kv([["scenario", e.scenario], ["domain", e.domain], ["agent", e.agent],
      ["pressure category", e.category], ["naming", e.naming], ["repeat", h.repeat], ["seed", h.seed],
      ["status", e.status + (e.reason ? " (" + e.reason + ")" : "")]]));
    if (h.tools && h.tools.length) {
      const tools = el("div", { class: "badges" });
      for (const tool of h.tools) {
        const b = badge(tool.name + " · " + tool.risk, tool.risk);
        b.title = tool.description;
        tools.appendChild(b);
      }
      t.appendChild(el("div", {}, el("span", { class: "muted", text: "tools offered: " }), tools));
    }
    if (h.branched_from) t.appendChild(el("details", {}, el("summary", { text: "branched from" }), pre(h.branched_from)));
    if (e.path) {
      const harmful = new Set(e.path.harmful);
      const path = el("div", { class: "path" }, el("span", { class: "muted", text: "world-state path: " }));
      e.path.states.forEach((s, k) => {
        if (k) path.appendChild(document.createTextNode(" → "));
        path.appendChild(el("span", { class: harmful.has(s) ? "harm" : "", text: s }));
      });
      if (e.path.first_intent_step !== null && e.path.first_intent_step !== undefined) {
        path.appendChild(el("span", { class: "muted", text: "  first intent at " }));
        path.appendChild(el("button", { type: "button", class: "citebtn", text: "#" + e.path.first_intent_step, onclick: () => jump(e.path.first_intent_step) }));
      }
      t.appendChild(path);
    }
    t.appendChild(el("h4", { text: "Scores" }));
    t.appendChild(scoresView(e));
    t.appendChild(el("h4", { text: "Transcript" }));
    if (!e.blocks.length) t.appendChild(el("p", { class: "muted", text: "No trajectory recorded." }));
    const cited = citations(e);
    const frag = document.createDocumentFragment();
    for (const b of e.blocks) frag.appendChild(blockView(b, cited));
    t.appendChild(frag);
  }
  function select(i, scroll) {
    state.selected = i;
    for (const li of document.querySelectorAll("#episode-list li.sel")) li.classList.remove("sel");
    const li = document.querySelector('#episode-list li[data-index="' + i + '"]');
    if (li) {
      li.classList.add("sel");
      const list = $("episode-list");
      if (li.offsetTop < list.scrollTop || li.offsetTop > list.scrollTop + list.clientHeight - 40) {
        list.scrollTop = li.offsetTop - 40;
      }
    }
    render(i);
    try { history.replaceState(null, "", "#ep=" + encodeURIComponent(EPISODES[i].id)); } catch (err) { /* file:// may refuse */ }
    if (scroll) $("viewer").scrollIntoView();
  }

  // -- links from the numbers -----------------------------------------------------------------
  function activate(target) {
    const cell = target.closest("[data-cell]");
    if (cell) {
      state.cell = Number(cell.getAttribute("data-cell"));
      state.q = state.scenario = state.agent = state.outcome = state.status = "";
      for (const id of ["f-search", "f-scenario", "f-agent", "f-outcome", "f-status"]) $(id).value = "";
      state.shown = PAGE;
      state.selected = -1;
      refresh(true);
      $("viewer").scrollIntoView();
      return true;
    }
    const ep = target.closest("[data-episode]");
    if (ep) {
      state.cell = null;
      refresh(false);
      select(Number(ep.getAttribute("data-episode")), true);
      return true;
    }
    return false;
  }
  document.addEventListener("click", (ev) => { if (activate(ev.target)) ev.preventDefault(); });
  document.addEventListener("keydown", (ev) => {
    if ((ev.key === "Enter" || ev.key === " ") && ev.target.closest && ev.target.closest("svg [data-cell]")) {
      if (activate(ev.target)) ev.preventDefault();
    }
  });

  // A link may open the page on one episode (#ep=ID) or one number's episodes (#cell=N).
  function startFromHash() {
    const hash = decodeURIComponent(location.hash || "");
    if (hash.startsWith("#ep=")) {
      const found = EPISODES.findIndex((e) => e.id === hash.slice(4));
      if (found >= 0) { select(found, false); return; }
    }
    if (hash.startsWith("#cell=")) {
      const n = Number(hash.slice(6));
      if (Number.isInteger(n) && n >= 0 && n < CELLS.length) {
        state.cell = n;
        refresh(true);
        return;
      }
    }
    if (EPISODES.length) select(0, false);
  }

  setupFilters();
  refresh(false);
  startFromHash();
  $("viewer").setAttribute("data-rendered", "1");
})();
