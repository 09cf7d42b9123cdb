// Polls unfinished exports on the exports page and shows the download link once the file is ready.
(function () {
  "use strict";
  var label = document.getElementById("download-label");
  function poll(row) {
    fetch(row.dataset.statusUrl, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        row.querySelector("progress").value = s.progress;
        row.dataset.status = s.status;
        if (s.download_url) {
          var cell = row.querySelector(".link");
          cell.textContent = "";
          var a = document.createElement("a");
          a.href = s.download_url; a.className = "download"; a.textContent = label.content.textContent;
          cell.appendChild(a);
        }
        if (s.status === "queued" || s.status === "running") { setTimeout(function () { poll(row); }, 2000); }
        else if (s.status === "done") { window.location.reload(); }
      });
  }
  document.querySelectorAll("tr[data-export]").forEach(function (row) {
    if (row.dataset.status === "queued" || row.dataset.status === "running") { poll(row); }
  });
})();
