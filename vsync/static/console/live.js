// Live figures in the console: the org's floor (#floor), the platform's floor (#platform-floor) and
// running durations anywhere (an element with data-since and data-as-of, e.g. a call in progress).
// The floor asks its JSON endpoint every few seconds; durations tick every second in between, from
// the server's timestamps, corrected for the difference between the server's clock and this one.
(function () {
  "use strict";
  var LABELS = { available: "Available", ringing: "Ringing", on_call: "On a call", offline: "Offline", unknown: "Unknown" };
  var skew = 0; // this clock minus the server's, from the last answer's `as_of`

  function elapsed(seconds) {
    if (seconds === null || seconds === undefined) { return "—"; }
    var s = Math.max(0, Math.floor(seconds)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    var ss = String(s % 60).padStart(2, "0");
    if (h) { return h + ":" + String(m).padStart(2, "0") + ":" + ss; }
    return m ? m + ":" + ss : s + " s";
  }

  function secondsSince(iso) { return (Date.now() - skew - Date.parse(iso)) / 1000; }

  function tick() {
    document.querySelectorAll("[data-since]").forEach(function (el) {
      el.textContent = elapsed(secondsSince(el.dataset.since));
    });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function running(iso, className) {
    var span = el("span", className);
    if (iso) { span.dataset.since = iso; span.textContent = elapsed(secondsSince(iso)); } else { span.textContent = ""; }
    return span;
  }

  function renderFloor(root, data) {
    Object.keys(data.counts).forEach(function (state) {
      var node = root.querySelector("[data-count='" + state + "']");
      if (node) { node.textContent = data.counts[state]; }
    });
    root.querySelector("#calls-waiting").textContent = data.calls_waiting;
    var longest = root.querySelector("#longest-wait");
    delete longest.dataset.since;
    if (data.longest_wait_seconds === null) {
      longest.textContent = "—";
    } else {
      longest.dataset.since = new Date(Date.parse(data.as_of) - data.longest_wait_seconds * 1000).toISOString();
    }
    var roster = root.querySelector("#floor-roster");
    roster.replaceChildren();
    data.agents.forEach(function (agent) {
      var card = el("div", "agent-card state-" + agent.state);
      card.dataset.extension = agent.extension;
      card.dataset.state = agent.state;
      card.appendChild(el("div", "agent-name", agent.name || "Extension " + agent.extension));
      card.appendChild(el("div", "agent-extension", "ext. " + agent.extension));
      var state = el("div", "agent-state");
      state.appendChild(el("span", "agent-state-label", LABELS[agent.state] || agent.state));
      if (agent.state !== "offline" && agent.state !== "unknown") { state.appendChild(running(agent.since, "agent-duration")); }
      card.appendChild(state);
      if (agent.number) { card.appendChild(el("div", "agent-number", (agent.state === "ringing" ? "from " : "with ") + agent.number)); }
      roster.appendChild(card);
    });
    root.querySelector("#floor-empty").hidden = data.agents.length > 0;
    var waiting = root.querySelector("#floor-waiting");
    if (waiting) {
      waiting.replaceChildren();
      data.waiting.forEach(function (call) {
        var item = el("div", "waiting-call", (call.from_number || "Unknown caller") + " · ");
        item.appendChild(running(call.started_at, "waiting-duration"));
        waiting.appendChild(item);
      });
      if (!data.waiting.length) { waiting.appendChild(el("span", "floor-empty", "Nobody is waiting.")); }
    }
  }

  function renderPlatform(root, data) {
    var body = root.querySelector("tbody");
    body.replaceChildren();
    data.orgs.forEach(function (org) {
      var row = body.insertRow();
      row.dataset.org = org.slug;
      var link = el("a", null, org.name);
      link.href = org.url;
      row.insertCell().appendChild(link);
      ["available", "ringing", "on_call", "offline", "unknown"].forEach(function (state) {
        var cell = row.insertCell();
        cell.className = "num";
        cell.dataset.count = state;
        cell.textContent = org.counts[state];
      });
      var waiting = row.insertCell();
      waiting.className = "num";
      waiting.textContent = org.calls_waiting;
      var longest = row.insertCell();
      longest.className = "num";
      if (org.longest_wait_seconds === null) { longest.textContent = "—"; } else {
        longest.appendChild(running(new Date(Date.parse(org.as_of) - org.longest_wait_seconds * 1000).toISOString()));
      }
    });
  }

  function poll(root, render, initial) {
    var status = document.getElementById("floor-status");
    var every = Number(root.dataset.pollSeconds || 3) * 1000;
    var lastOk = Date.now();
    function settle(data) {
      if (data.as_of) { skew = Date.now() - Date.parse(data.as_of); }
      render(root, data);
      tick();
      lastOk = Date.now();
      if (status) { status.textContent = "Live"; status.classList.remove("is-stale"); }
    }
    function refresh() {
      fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) { if (data) { settle(data); } })
        .catch(function () { /* a moment offline, or signed out: the status below says so */ })
        .then(function () {
          if (status && Date.now() - lastOk > 3 * every) {
            status.textContent = "Not updated for " + elapsed((Date.now() - lastOk) / 1000);
            status.classList.add("is-stale");
          }
        });
    }
    settle(initial);
    window.setInterval(refresh, every);
  }

  var floor = document.getElementById("floor");
  if (floor) { poll(floor, renderFloor, JSON.parse(document.getElementById("floor-data").textContent)); }
  var platform = document.getElementById("platform-floor");
  if (platform) {
    var initial = JSON.parse(document.getElementById("platform-floor-data").textContent);
    poll(platform, renderPlatform, initial);
  }
  var asOf = document.querySelector("[data-as-of]");
  if (asOf) { skew = Date.now() - Date.parse(asOf.dataset.asOf); }
  tick();
  window.setInterval(tick, 1000);
})();
