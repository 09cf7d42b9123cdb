// The overview fills itself: each block (the key figures, every chart) names the JSON fragment it is drawn
// from in data-src, shows "loading" until it arrives and "error" (with a retry button) when it does not.
// One fetch per fragment URL, shared by the blocks drawn from it. Numbers in the page's locale (tr-TR).
(function () {
  "use strict";
  var labelsNode = document.getElementById("chart-labels");
  if (!labelsNode) { return; }
  var labels = JSON.parse(labelsNode.textContent);
  var locale = document.body.dataset.locale || "tr-TR";
  var number = new Intl.NumberFormat(locale);
  var percent = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 });
  var fmt = function (v) { return number.format(v); };
  var STATUS_COLORS = { queued: "#9fb3c8", running: "#2186eb", paused: "#f0b429", succeeded: "#27ab83", failed: "#e12d39", cancelled: "#7b8794" };
  var charts = [];
  var requests = {};

  function load(url) {
    if (!requests[url]) {
      requests[url] = fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (!r.ok) { throw new Error("HTTP " + r.status); }
          return r.json();
        });
      // A failed request is not remembered, so "try again" asks anew.
      requests[url].catch(function () { delete requests[url]; });
    }
    return requests[url];
  }

  function chartIn(block, option) {
    var node = block.querySelector(".chart");
    var chart = echarts.getInstanceByDom(node) || echarts.init(node, null, { locale: "TR", renderer: "canvas" });
    chart.setOption(option, true);
    node.dataset.rendered = "true";
    if (charts.indexOf(chart) < 0) { charts.push(chart); }
  }

  var valueAxis = { type: "value", axisLabel: { formatter: fmt } };
  var axisTooltip = { trigger: "axis", valueFormatter: fmt };
  // Plain legends wrap onto a second line instead of paging ("1/2"); the grid leaves room for two lines.
  var legend = { type: "plain", top: 0, left: "center", itemGap: 14 };

  function stacked(block) {
    return {
      tooltip: axisTooltip, legend: legend,
      grid: { top: 56, left: 12, right: 16, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: block.categories, axisLabel: { rotate: block.categories.length > 8 ? 45 : 0, interval: 0 } },
      yAxis: valueAxis,
      series: Object.keys(block.series).filter(function (status) {
        return block.series[status].some(function (n) { return n > 0; });
      }).map(function (status) {
        return { name: labels.statuses[status], type: "bar", stack: "jobs", data: block.series[status], color: STATUS_COLORS[status] };
      })
    };
  }

  var draw = {
    kpis: function (block, data) {
      block.querySelectorAll("[data-key]").forEach(function (node) {
        node.textContent = data.text[node.dataset.key];
      });
    },
    trend: function (block, data) {
      chartIn(block, {
        tooltip: axisTooltip, legend: legend,
        grid: { top: 40, left: 12, right: 24, bottom: 8, containLabel: true },
        xAxis: { type: "category", data: data.trend.map(function (r) { return r.day.split("-").reverse().join("."); }) },
        yAxis: valueAxis,
        series: [
          { name: labels.jobs, type: "line", data: data.trend.map(function (r) { return r.count; }) },
          { name: labels.succeeded, type: "line", data: data.trend.map(function (r) { return r.success; }), color: STATUS_COLORS.succeeded },
          { name: labels.failed, type: "line", data: data.trend.map(function (r) { return r.failed; }), color: STATUS_COLORS.failed }
        ]
      });
    },
    status: function (block, data) {
      var total = data.by_status.reduce(function (n, r) { return n + r.count; }, 0);
      var byName = {};
      var rows = data.by_status.map(function (r) {
        var name = labels.statuses[r.code] || r.code;
        byName[name] = r.count;
        return { name: name, value: r.count, itemStyle: { color: STATUS_COLORS[r.code] } };
      });
      // Small slices sit side by side (paused, cancelled) and their outside labels collided; the legend
      // beside the donut names every slice with its count and share instead.
      chartIn(block, {
        tooltip: { trigger: "item", valueFormatter: fmt },
        legend: {
          type: "plain", orient: "vertical", right: 8, top: "middle", itemGap: 10,
          formatter: function (name) {
            return name + "  " + fmt(byName[name]) + " (" + percent.format(total ? byName[name] / total : 0) + ")";
          }
        },
        series: [{
          type: "pie", radius: ["38%", "70%"], center: ["32%", "52%"],
          label: { show: false }, labelLine: { show: false },
          data: rows
        }]
      });
    },
    machine: function (block, data) { chartIn(block, stacked(data.by_machine)); },
    post: function (block, data) { chartIn(block, stacked(data.by_post)); },
    latency: function (block, data) {
      chartIn(block, {
        tooltip: axisTooltip,
        grid: { top: 16, left: 12, right: 16, bottom: 8, containLabel: true },
        xAxis: { type: "category", data: labels.buckets, axisLabel: { interval: 0 } }, yAxis: valueAxis,
        series: [{ name: labels.jobs, type: "bar", data: data.latency.map(function (r) { return r.count; }), color: "#486581" }]
      });
    }
  };

  function fill(block) {
    block.dataset.state = "loading";
    block.setAttribute("aria-busy", "true");
    load(block.dataset.src).then(function (data) {
      draw[block.dataset.draw](block, data);
      block.dataset.state = "ready";
      block.removeAttribute("aria-busy");
    }).catch(function (err) {
      block.dataset.state = "error";
      block.dataset.error = String(err && err.message || err);
      block.removeAttribute("aria-busy");
    });
  }

  document.querySelectorAll(".block[data-src]").forEach(function (block) {
    var retry = block.querySelector(".retry");
    if (retry) { retry.addEventListener("click", function () { fill(block); }); }
    fill(block);
  });
  window.addEventListener("resize", function () { charts.forEach(function (c) { c.resize(); }); });
})();
