/* The dashboard's charts (cdrapi.web.dashboard), drawn with uPlot from the figures the
   page embeds in #dashboard-data: calls per hour or day, by direction and by status.
   The same numbers are in the tables under each chart, which stay on the page (folded
   once the chart is drawn): without JavaScript, or for a screen reader, they are the
   figures. Times are the PBX's clock: x values are its wall time read as UTC. */
(function () {
  "use strict";
  var COLOURS = {
    IN: "#0b5cad", OUT: "#d9822b", INTERNAL: "#6b7785",
    ANSWERED: "#1a7f37", "NO ANSWER": "#b3261e", BUSY: "#8250df", FAILED: "#57606a",
    CONGESTION: "#bf8700"
  };
  var LABELS = {
    IN: "In", OUT: "Out", INTERNAL: "Internal", ANSWERED: "Answered",
    "NO ANSWER": "Missed", BUSY: "Busy", FAILED: "Failed", CONGESTION: "Congestion"
  };
  // Where the x axis may put its ticks: whole hours, or whole days (never in between).
  var HOURS = [3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400];
  var DAYS = [86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400, 91 * 86400];
  var charts = [];
  window.cdrapiCharts = charts;

  function utc(ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); }

  /* Axis labels in ISO order (the wall time, as the tables write it). */
  function labels(unit) {
    return function (u, splits) {
      return splits.map(function (ts) {
        var iso = new Date(ts * 1000).toISOString();
        if (unit !== "hour" || iso.slice(11, 16) === "00:00") return iso.slice(5, 10);
        return iso.slice(11, 16);
      });
    };
  }

  function width(element) { return Math.max(240, element.clientWidth || 600); }

  function draw() {
    var source = document.getElementById("dashboard-data");
    charts.splice(0).forEach(function (chart) { chart.destroy(); });
    if (!source || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.textContent);
    var bars = uPlot.paths.bars({ size: [0.8, 40], gap: 1 });
    // The page's own colours (light or dark scheme) for the axes' text and lines.
    var ink = getComputedStyle(document.body).color;
    var line = getComputedStyle(document.documentElement).getPropertyValue("--line").trim() || "#c9d1d9";
    document.querySelectorAll(".chart[data-series]").forEach(function (element) {
      var key = element.getAttribute("data-series");
      var names = data[key].map(function (pair) { return pair[0]; });
      var options = {
        width: width(element),
        height: 220,
        tzDate: utc,
        legend: { show: true, live: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
        axes: [
          { values: labels(data.unit), incrs: data.unit === "hour" ? HOURS : DAYS,
            stroke: ink, grid: { stroke: line }, ticks: { stroke: line } },
          { size: 50, stroke: ink, grid: { stroke: line }, ticks: { stroke: line } }
        ],
        series: [{ label: data.unit === "hour" ? "Hour" : "Day" }].concat(names.map(function (name) {
          return {
            label: LABELS[name] || name,
            stroke: COLOURS[name] || "#333",
            width: 2,
            paths: data.x.length > 1 ? undefined : bars,
            points: { show: width(element) / Math.max(1, data.x.length) > 24 }
          };
        }))
      };
      var values = [data.x].concat(data[key].map(function (pair) { return pair[1]; }));
      element.textContent = "";
      var chart = new uPlot(options, values, element);
      chart.cdrapiKey = key;
      charts.push(chart);
      var table = element.parentNode.querySelector("details.data");
      if (table && !table.hasAttribute("data-kept")) table.removeAttribute("open");
    });
  }

  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      charts.forEach(function (chart) {
        var element = chart.root.parentNode;
        chart.setSize({ width: width(element), height: 220 });
      });
    }, 150);
  });
  document.addEventListener("htmx:after:settle", draw);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
