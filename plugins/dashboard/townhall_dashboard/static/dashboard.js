// The dashboard's only script. Panels arrive rendered (and escaped) by the server; this swaps them in,
// reads the live event stream and sends the actions. It never turns data into markup itself: event lines
// and error messages are written with textContent.
"use strict";
(function () {
  const body = document.body;
  const mode = body.dataset.authMode;
  const panelsUrl = body.dataset.panelsUrl;
  const api = body.dataset.api;
  const STORE_KEY = "townhall.credential";
  const ALL = ["town", "agents", "tasks", "backlog"];
  const MIN_REFRESH_GAP_MS = 1000; // at most one panel request a second: rate limits count them
  const FEED_MAX = 200;
  const $ = (id) => document.getElementById(id);

  const state = {
    wanted: new Set(),
    timer: null,
    lastRefresh: 0,
    inFlight: false,
    lastEventId: null,
    stream: null,
    retryMs: 1000,
    canWrite: false,
  };

  // --- credentials -------------------------------------------------------------------------------
  function credential() {
    return mode === "none" ? null : sessionStorage.getItem(STORE_KEY);
  }

  function authHeaders(extra) {
    const headers = Object.assign({}, extra || {});
    const key = credential();
    if (key) headers["Authorization"] = "Bearer " + key;
    return headers;
  }

  function askForCredential(message) {
    sessionStorage.removeItem(STORE_KEY);
    stopStream();
    $("board").hidden = true;
    $("sign-out").hidden = true;
    $("auth").hidden = false;
    const error = $("auth-error");
    error.textContent = message || "";
    error.hidden = !message;
    $("auth-credential").focus();
  }

  $("auth").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("auth-credential").value.trim();
    if (!value) return;
    sessionStorage.setItem(STORE_KEY, value);
    $("auth-credential").value = "";
    $("auth").hidden = true;
    start();
  });

  $("sign-out").addEventListener("click", () => askForCredential(""));

  // --- notices -------------------------------------------------------------------------------------
  function notice(text) {
    const el = $("notice");
    el.textContent = text || "";
    el.hidden = !text;
  }

  async function problemText(response) {
    try {
      const problem = await response.json();
      const fields = (problem.errors || []).map((e) => e.field + ": " + e.message);
      return [problem.detail || problem.title || String(response.status)].concat(fields).join("; ");
    } catch (_) {
      return response.status + " " + response.statusText;
    }
  }

  // --- panels --------------------------------------------------------------------------------------
  function want(names) {
    names.forEach((n) => state.wanted.add(n));
    if (state.timer !== null || state.inFlight) return;
    const wait = Math.max(50, state.lastRefresh + MIN_REFRESH_GAP_MS - Date.now());
    state.timer = setTimeout(refresh, wait);
  }

  async function refresh() {
    state.timer = null;
    if (state.wanted.size === 0) return;
    const names = ALL.filter((n) => state.wanted.has(n));
    state.wanted.clear();
    state.inFlight = true;
    state.lastRefresh = Date.now();
    try {
      await loadPanels(names);
    } finally {
      state.inFlight = false;
      if (state.wanted.size) want([]);
    }
  }

  async function loadPanels(names) {
    const query = new URLSearchParams();
    names.forEach((n) => query.append("show", n));
    const filter = $("task-state").value;
    if (filter) query.set("state", filter);
    let response;
    try {
      response = await fetch(panelsUrl + "?" + query, { headers: authHeaders(), cache: "no-store" });
    } catch (_) {
      notice("townhall is unreachable; retrying");
      setTimeout(() => want(names), 3000);
      return;
    }
    if (response.status === 401) return askForCredential("The key or token was refused: " + (await problemText(response)));
    if (!response.ok) {
      notice(await problemText(response));
      const retry = Number(response.headers.get("Retry-After")) || 5;
      if (response.status === 429 || response.status >= 500) setTimeout(() => want(names), retry * 1000);
      return;
    }
    notice("");
    const holder = document.createElement("template");
    holder.innerHTML = await response.text(); // server-rendered, every value escaped by Jinja
    const viewer = holder.content.querySelector("section[data-viewer]");
    if (viewer) showViewer(viewer.dataset);
    holder.content.querySelectorAll("section[data-panel]").forEach((section) => {
      const target = document.querySelector(".panel-body[data-panel='" + section.dataset.panel + "']");
      if (target) target.replaceChildren(...section.childNodes);
    });
  }

  function showViewer(data) {
    state.canWrite = data.canWrite === "true";
    $("viewer").textContent = mode === "none" ? "" : data.id + " · " + data.scopes;
    $("backlog-add").hidden = !state.canWrite;
  }

  $("task-state").addEventListener("change", () => loadPanels(["tasks"]));

  // --- actions -------------------------------------------------------------------------------------
  async function post(path, payload) {
    const init = { method: "POST", headers: authHeaders() };
    if (payload !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    const response = await fetch(api + path, init);
    if (response.status === 401) askForCredential("The key or token was refused");
    return response;
  }

  $("board").addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const error = $("task-error");
    button.disabled = true;
    const response = await post("/tasks/" + encodeURIComponent(button.dataset.task) + "/" + button.dataset.action);
    if (response.ok) {
      error.hidden = true;
      want(["tasks", "backlog", "town"]);
    } else {
      error.textContent = button.dataset.action + " failed: " + (await problemText(response));
      error.hidden = false;
      button.disabled = false;
    }
  });

  $("backlog-add").addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = $("backlog-error");
    const payload = { description: $("backlog-description").value };
    const tags = $("backlog-tags").value.split(",").map((t) => t.trim()).filter(Boolean);
    if (tags.length) payload.tags = tags;
    const response = await post("/backlog", payload);
    if (response.ok) {
      error.hidden = true;
      event.target.reset();
      want(["backlog", "tasks", "town"]);
    } else {
      error.textContent = await problemText(response);
      error.hidden = false;
    }
  });

  // --- live events ---------------------------------------------------------------------------------
  function live(on, text) {
    const el = $("live");
    el.dataset.state = on ? "on" : "off";
    el.textContent = text;
  }

  function stopStream() {
    if (state.stream) state.stream.abort();
    state.stream = null;
  }

  function panelsFor(type) {
    if (type.startsWith("task")) return ["tasks", "backlog", "town"];
    if (type.startsWith("agent")) return ["agents", "town"];
    if (type.startsWith("scaling")) return ["town"];
    if (type.startsWith("message")) return ["agents"];
    return ALL;
  }

  function describe(data) {
    // Events carry a line for people (`message`); entries written by other tools may not.
    let text = data.message || "";
    if (!text) {
      const parts = [];
      for (const key of ["agent_id", "task_id", "mission_id"]) if (data[key]) parts.push(key + "=" + String(data[key]).slice(0, 8));
      text = parts.join(" ");
    }
    if (data.old_state || data.new_state) text += " (" + (data.old_state || "∅") + " → " + (data.new_state || "∅") + ")";
    return text.length > 300 ? text.slice(0, 299) + "…" : text;
  }

  function addToFeed(type, data) {
    const item = document.createElement("li");
    const time = document.createElement("time");
    const when = data.timestamp || new Date().toISOString();
    time.dateTime = when;
    time.textContent = String(when).slice(11, 19);
    const kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = type;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = describe(data);
    item.append(time, " ", kind, " ", text);
    const feed = $("feed");
    feed.prepend(item);
    while (feed.childElementCount > FEED_MAX) feed.lastElementChild.remove();
  }

  function dispatch(block) {
    let id = null, type = "message", data = "";
    for (const line of block.split(/\r?\n/)) {
      if (!line || line.startsWith(":")) continue; // comment: a heartbeat
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") type = value;
      else if (field === "data") data += (data ? "\n" : "") + value;
      else if (field === "retry" && /^\d+$/.test(value)) state.retryMs = Number(value);
    }
    if (id !== null) state.lastEventId = id;
    if (!data) return;
    let parsed;
    try { parsed = JSON.parse(data); } catch (_) { parsed = { summary: data }; }
    if (parsed && typeof parsed === "object") {
      const kind = parsed.event_type || type;
      addToFeed(kind, parsed);
      want(panelsFor(kind));
    }
  }

  async function openStream() {
    stopStream();
    const controller = new AbortController();
    state.stream = controller;
    const headers = authHeaders({ Accept: "text/event-stream" });
    if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
    let response;
    try {
      response = await fetch(api + "/events", { headers, signal: controller.signal, cache: "no-store" });
    } catch (_) {
      return reconnect(controller);
    }
    if (response.status === 401) return askForCredential("The key or token was refused");
    if (response.status === 404) return live(false, "no live feed on this townhall");
    if (!response.ok || !response.body) return reconnect(controller);
    live(true, "live");
    if (state.lastEventId) want(ALL); // what happened while the stream was down
    state.retryMs = 1000;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
          dispatch(block);
        }
      }
    } catch (_) {
      // aborted or cut: reconnect below unless we stopped it
    }
    reconnect(controller);
  }

  function reconnect(controller) {
    if (state.stream !== controller) return; // stopped on purpose (sign out)
    live(false, "reconnecting");
    const wait = state.retryMs;
    state.retryMs = Math.min(state.retryMs * 2, 15000);
    setTimeout(() => { if (state.stream === controller) openStream(); }, wait);
  }

  // --- start ---------------------------------------------------------------------------------------
  function start() {
    $("board").hidden = false;
    $("sign-out").hidden = mode === "none";
    want(ALL);
    openStream();
  }

  if (mode !== "none" && !credential()) askForCredential("");
  else start();
})();
