// The org dashboard: draws the charts, the heatmap, the tiles' comparisons and the outbound tracker from
// the figures the page was rendered with, then asks the console's data endpoint for fresh ones every
// minute and redraws them all.
(function () {
  "use strict";
  var REFRESH_MS = 60 * 1000;
  var root = document.getElementById("dashboard");
  var charts = {};
  var agents = [];  // the agents chart's rows, for its tooltip (names with the extension)
  // One colour per status on every chart; missed_calls (missed and dropped) is drawn in missed's.
  var STATUS = { answered: "#16a34a", missed: "#dc2626", dropped: "#7f1d1d", voicemail: "#f59e0b", other: "#94a3b8" };
  var HANDLED = "#2563eb";
  var DIRECTION = { inbound: "#2563eb", outbound: "#7c3aed", callback: "#0891b2", other: "#94a3b8" };
  var WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
  var HEAT_LEVELS = 5;
  var ARROWS = { up: "\u25B2", down: "\u25BC", flat: "\u25B6" };

  function percent(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + " %"; }
  function seconds(v) {
    if (v === null || v === undefined) { return "—"; }
    var s = Math.round(v), m = Math.floor(s / 60);
    return m ? m + ":" + String(s % 60).padStart(2, "0") : s + " s";
  }

  function shown(kind, v) { return kind === "rate" ? percent(v) : kind === "seconds" ? seconds(v) : v; }

  function signed(text, v) { return (v > 0 ? "+" : v < 0 ? "\u2212" : "\u00B1") + text; }

  // A tile's change against the period before: arrow, difference (rates in percentage points),
  // the previous value, and a class saying whether the change is good news for that figure.
  function changeText(kind, change) {
    if (!change || change.delta === null) {
      return change && change.previous !== null && change.previous !== undefined
        ? "vs " + shown(kind, change.previous) : "no comparison";
    }
    var size = Math.abs(change.delta);
    var text = kind === "rate" ? (size * 100).toFixed(1) + " pts" : kind === "seconds" ? seconds(size) : String(size);
    return ARROWS[change.trend] + " " + signed(text, change.delta) + " vs " + shown(kind, change.previous);
  }

  function renderChanges(data) {
    document.querySelectorAll("[data-change]").forEach(function (el) {
      var changes = data.changes[el.dataset.scope] || {};
      var change = changes[el.dataset.change];
      el.textContent = changeText(el.dataset.kind, change);
      el.classList.remove("change-better", "change-worse", "change-neutral");
      el.classList.add("change-" + (change && change.judgement ? change.judgement : "neutral"));
      el.title = change && change.judgement ? change.judgement + " than " + data.previous.label : data.previous.label;
    });
  }

  function renderHeatmap(cells) {
    var table = document.getElementById("heatmap");
    var most = Math.max.apply(null, cells.map(function (c) { return c.inbound_calls; }).concat([0]));
    var head = table.tHead;
    head.replaceChildren();
    var top = head.insertRow();
    top.appendChild(document.createElement("th"));
    for (var h = 0; h < 24; h++) {
      var th = document.createElement("th");
      th.textContent = String(h);
      th.className = "heat-hour";
      top.appendChild(th);
    }
    var body = table.tBodies[0];
    body.replaceChildren();
    WEEKDAYS.forEach(function (name, day) {
      var row = body.insertRow();
      var label = document.createElement("th");
      label.textContent = name;
      row.appendChild(label);
      cells.filter(function (c) { return c.weekday === day; }).forEach(function (c) {
        var cell = row.insertCell();
        var level = c.inbound_calls ? Math.max(1, Math.ceil(HEAT_LEVELS * c.inbound_calls / most)) : 0;
        cell.className = "heat-cell heat-" + level;
        cell.dataset.weekday = c.weekday;
        cell.dataset.hour = c.hour;
        cell.textContent = c.inbound_calls || "";
        cell.title = name + " " + String(c.hour).padStart(2, "0") + ":00: " + c.inbound_calls + " inbound, " +
          c.answered_calls + " answered, " + c.missed_calls + " missed";
      });
    });
  }

  function renderTracker(agents) {
    var body = document.querySelector("#outbound-agents tbody");
    body.replaceChildren();
    agents.slice().sort(function (a, b) { return b.outbound_calls - a.outbound_calls || (a.extension < b.extension ? -1 : 1); })
      .forEach(function (a) {
        var row = body.insertRow();
        var who = row.insertCell();
        who.textContent = a.display_name || a.extension;
        who.title = "extension " + a.extension;
        [a.outbound_calls, a.connected_calls, percent(a.connect_rate), seconds(a.outbound_avg_talk_seconds),
         seconds(a.outbound_talk_seconds)].forEach(function (v) {
          var cell = row.insertCell();
          cell.textContent = v;
          cell.className = "text-right";
        });
      });
    if (!agents.length) {
      var cell = body.insertRow().insertCell();
      cell.colSpan = 6;
      cell.className = "text-muted";
      cell.textContent = "No outbound calls by an agent in this window.";
    }
  }

  function draw(id, type, labels, datasets, options) {
    var canvas = document.getElementById(id);
    if (charts[id]) {
      charts[id].data.labels = labels;
      charts[id].data.datasets = datasets;
      charts[id].update();
      return;
    }
    charts[id] = new Chart(canvas, {
      type: type, data: { labels: labels, datasets: datasets },
      options: Object.assign({ responsive: true, maintainAspectRatio: false, animation: false,
                               plugins: { legend: { position: "bottom" } } }, options || {})
    });
  }

  function counts(rows, key, color) {
    return { label: key.replace(/_/g, " "), data: rows.map(function (r) { return r[key]; }), backgroundColor: color,
             borderColor: color };
  }

  function render(data) {
    document.querySelectorAll("[data-kpi]").forEach(function (el) {
      var scope = data[el.dataset.scope];
      if (scope) { el.textContent = shown(el.dataset.kind, scope[el.dataset.kpi]); }
    });
    renderChanges(data);
    renderHeatmap(data.heatmap);
    renderTracker(data.outbound_agents);
    draw("chart-direction", "doughnut", data.by_direction.map(function (d) { return d.direction; }),
         [{ data: data.by_direction.map(function (d) { return d.total_calls; }),
            backgroundColor: data.by_direction.map(function (d) { return DIRECTION[d.direction] || DIRECTION.other; }) }]);
    var stacked = { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } };
    draw("chart-series", "bar", data.series.map(function (b) { return b.label; }),
         [counts(data.series, "answered_calls", STATUS.answered), counts(data.series, "missed_calls", STATUS.missed),
          counts(data.series, "voicemail_calls", STATUS.voicemail)], stacked);
    var statuses = Object.keys(data.by_status);
    draw("chart-status", "doughnut", statuses,
         [{ data: statuses.map(function (s) { return data.by_status[s]; }),
            backgroundColor: statuses.map(function (s) { return STATUS[s] || STATUS.other; }) }]);
    draw("chart-numbers", "bar", data.by_number.map(function (n) { return n.label || n.e164; }),
         [counts(data.by_number, "answered_calls", STATUS.answered), counts(data.by_number, "missed_calls", STATUS.missed),
          counts(data.by_number, "voicemail_calls", STATUS.voicemail)], stacked);
    agents = data.by_agent;
    draw("chart-agents", "bar", data.by_agent.map(function (a) { return a.display_name || a.extension; }),
         [counts(data.by_agent, "calls_handled", HANDLED), counts(data.by_agent, "missed_rings", STATUS.missed)],
         { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
           plugins: { legend: { position: "bottom" }, tooltip: { callbacks: { title: function (items) {
             var agent = agents[items[0].dataIndex];
             return (agent.display_name || agent.extension) + " · extension " + agent.extension;
           } } } } });
    var body = document.querySelector("#recent-calls tbody");
    body.replaceChildren();
    data.recent_calls.forEach(function (c) {
      var row = body.insertRow();
      var link = document.createElement("a");
      link.href = root.dataset.callsUrl.replace(/id=0/, "id=" + c.id);
      link.textContent = c.started;
      row.insertCell().appendChild(link);
      [c.direction, c.status, c.from || "", c.to || ""].forEach(function (v) {
        row.insertCell().textContent = v;
      });
      var agent = row.insertCell();
      if (c.agent) {
        var name = document.createElement("span");
        name.className = "agent";
        name.title = "Extension " + c.agent;
        name.textContent = c.agent_name || c.agent;
        agent.appendChild(name);
      }
      row.insertCell().textContent = seconds(c.duration_seconds);
    });
    if (!data.recent_calls.length) {
      var cell = body.insertRow().insertCell();
      cell.colSpan = 7;
      cell.className = "text-muted";
      cell.textContent = "No calls in this window.";
    }
  }

  function refresh() {
    fetch(root.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) { render(data); } })
      .catch(function () { /* offline for a moment: the next minute tries again */ });
  }

  render(JSON.parse(document.getElementById("dashboard-data").textContent));
  window.setInterval(refresh, REFRESH_MS);
  window.vsyncDashboardRefresh = refresh;
})();
