// Draws the simulation result's charts from the JSON the server embedded (on load, and when htmx swaps the result
// in after polling); without Chart.js the tables still say it all.
(function () {
  var drawn = [];
  function draw() {
    var source = document.getElementById("simulation-data");
    if (!source || typeof Chart === "undefined") return;
    drawn.forEach(function (c) { c.destroy(); });
    drawn = [];
    var data = JSON.parse(source.textContent), chart = data.chart, labels = data.labels;
    var queue = Object.keys(chart.queue).map(function (name) {
      return {label: labels[name] || name, data: chart.queue[name]};
    });
    drawn.push(new Chart(document.getElementById("simulation-queue"), {
      type: "bar", data: {labels: chart.quotas, datasets: queue},
      options: {responsive: true, scales: {y: {beginAtZero: true}}}
    }));
    var lines = [], steps = 0;
    Object.keys(chart.utilisation).forEach(function (pool) {
      Object.keys(chart.utilisation[pool]).forEach(function (name) {
        var values = chart.utilisation[pool][name];
        steps = Math.max(steps, values.length);
        lines.push({label: pool + " (" + (labels[name] || name) + ")", data: values, tension: 0.2});
      });
    });
    var step = steps ? (chart.end - chart.start) / steps : 0, ticks = [];
    for (var i = 0; i < steps; i++) ticks.push(new Date((chart.start + i * step) * 1000).toISOString().slice(0, 16).replace("T", " "));
    drawn.push(new Chart(document.getElementById("simulation-utilisation"), {
      type: "line", data: {labels: ticks, datasets: lines},
      options: {responsive: true, scales: {y: {beginAtZero: true, max: 100}}}
    }));
  }
  window.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSwap", draw);
})();
