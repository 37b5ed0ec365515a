// The org dashboard: draws the charts from the figures the page was rendered with, then asks the
// console's data endpoint for fresh ones every minute and redraws tiles, charts and recent calls.
(function () {
  "use strict";
  var REFRESH_MS = 60 * 1000;
  var root = document.getElementById("dashboard");
  var charts = {};
  var agents = [];  // the agents chart's rows, for its tooltip (names with the extension)
  // One colour per status on every chart; missed_calls (missed and dropped) is drawn in missed's.
  var STATUS = { answered: "#16a34a", missed: "#dc2626", dropped: "#7f1d1d", voicemail: "#f59e0b", other: "#94a3b8" };
  var HANDLED = "#2563eb";

  function percent(v) { return v === null || v === undefined ? "—" : (v * 100).toFixed(1) + " %"; }
  function seconds(v) {
    if (v === null || v === undefined) { return "—"; }
    var s = Math.round(v), m = Math.floor(s / 60);
    return m ? m + ":" + String(s % 60).padStart(2, "0") : s + " s";
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
      var value = data[el.dataset.scope][el.dataset.kpi];
      el.textContent = el.dataset.kind === "rate" ? percent(value) : el.dataset.kind === "seconds" ? seconds(value) : value;
    });
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
