// Draws the overview's charts from the page's embedded JSON with ECharts (Turkish locale, tr-TR numbers).
(function () {
  "use strict";
  var dataNode = document.getElementById("chart-data");
  if (!dataNode || !window.echarts) { return; }
  var data = JSON.parse(dataNode.textContent);
  var labels = JSON.parse(document.getElementById("chart-labels").textContent);
  var number = new Intl.NumberFormat("tr-TR");
  var fmt = function (v) { return number.format(v); };
  var STATUS_COLORS = { queued: "#9fb3c8", running: "#2186eb", paused: "#f0b429", succeeded: "#27ab83", failed: "#e12d39", cancelled: "#7b8794" };
  var charts = [];

  function draw(id, option) {
    var node = document.getElementById(id);
    if (!node) { return; }
    var chart = echarts.init(node, null, { locale: "TR", renderer: "canvas" });
    chart.setOption(option);
    node.dataset.rendered = "true";
    charts.push(chart);
  }
  var valueAxis = { type: "value", axisLabel: { formatter: fmt } };
  var tooltip = { trigger: "axis", valueFormatter: fmt };

  draw("chart-trend", {
    tooltip: tooltip, legend: {}, grid: { left: 60, right: 20 },
    xAxis: { type: "category", data: data.trend.map(function (r) { return r.day.split("-").reverse().join("."); }) },
    yAxis: valueAxis,
    series: [
      { name: labels.jobs, type: "line", data: data.trend.map(function (r) { return r.count; }) },
      { name: labels.succeeded, type: "line", data: data.trend.map(function (r) { return r.success; }), color: STATUS_COLORS.succeeded },
      { name: labels.failed, type: "line", data: data.trend.map(function (r) { return r.failed; }), color: STATUS_COLORS.failed }
    ]
  });
  draw("chart-status", {
    tooltip: { trigger: "item", valueFormatter: fmt },
    series: [{
      type: "pie", radius: ["35%", "70%"],
      data: data.by_status.map(function (r) { return { name: labels.statuses[r.code] || r.code, value: r.count, itemStyle: { color: STATUS_COLORS[r.code] } }; })
    }]
  });
  function stacked(id, block) {
    draw(id, {
      tooltip: tooltip, legend: { type: "scroll" }, grid: { left: 60, right: 20, bottom: 60 },
      xAxis: { type: "category", data: block.categories, axisLabel: { rotate: 45 } }, yAxis: valueAxis,
      series: Object.keys(block.series).map(function (status) {
        return { name: labels.statuses[status], type: "bar", stack: "jobs", data: block.series[status], color: STATUS_COLORS[status] };
      })
    });
  }
  stacked("chart-machine", data.by_machine);
  stacked("chart-post", data.by_post);
  draw("chart-latency", {
    tooltip: tooltip, grid: { left: 60, right: 20 },
    xAxis: { type: "category", data: labels.buckets }, yAxis: valueAxis,
    series: [{ name: labels.jobs, type: "bar", data: data.latency.map(function (r) { return r.count; }) }]
  });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();
