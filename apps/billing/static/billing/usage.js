// The cost page's chart: cost per day, stacked by metric, from the page's own JSON (no inline script: CSP).
(function () {
  "use strict";
  var node = document.getElementById("usage-chart");
  var target = document.getElementById("chart-usage-cost");
  if (!node || !target || typeof echarts === "undefined") { return; }
  var data = JSON.parse(node.textContent);
  var money = new Intl.NumberFormat("tr-TR", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var fmt = function (v) { return money.format(v) + " " + data.currency; };
  var chart = echarts.init(target, null, { locale: "TR", renderer: "canvas" });
  chart.setOption({
    tooltip: { trigger: "axis", valueFormatter: fmt },
    legend: { type: "plain", top: 0, left: "center" },
    grid: { top: 40, left: 12, right: 16, bottom: 8, containLabel: true },
    xAxis: { type: "category", data: data.days.map(function (d) { return d.slice(8, 10) + "." + d.slice(5, 7); }) },
    yAxis: { type: "value", axisLabel: { formatter: function (v) { return money.format(v); } } },
    series: data.series.map(function (s) { return { name: s.name, type: "bar", stack: "cost", data: s.data }; })
  });
  target.dataset.rendered = "true";
  window.addEventListener("resize", function () { chart.resize(); });
}());
