// Draws the usage page's charts from the JSON the server embedded; without Chart.js the tables still say it all.
window.addEventListener("DOMContentLoaded", function () {
  var source = document.getElementById("usage-data");
  if (!source || typeof Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  new Chart(document.getElementById("usage-by"), {
    type: "bar",
    data: {labels: data.labels, datasets: [
      {label: "GPU-hours", data: data.gpu},
      {label: "CPU-hours", data: data.cpu, hidden: true}]},
    options: {responsive: true, scales: {y: {beginAtZero: true}}}
  });
  new Chart(document.getElementById("usage-days"), {
    type: "line",
    data: {labels: data.days, datasets: [{label: "GPU-hours", data: data.day_gpu, fill: true, tension: 0.2}]},
    options: {responsive: true, scales: {y: {beginAtZero: true}}}
  });
  var pools = document.getElementById("usage-pools");
  if (pools && data.pool_share) {
    new Chart(pools, {
      type: "line",
      data: {labels: data.pool_days, datasets: data.pool_share.map(function (s) {
        return {label: s.label, data: s.data, tension: 0.2, spanGaps: false};
      })},
      options: {responsive: true, scales: {y: {beginAtZero: true, suggestedMax: 100,
        title: {display: true, text: "% of capacity allocated"}}}}
    });
  }
});
