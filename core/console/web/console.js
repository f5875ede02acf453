// edgepipe console: live values over Server-Sent Events and the buttons
// that post to the API. No framework, no build step, nothing from outside.
"use strict";
(function () {
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function fmtAge(ts) {
    if (!ts) return "";
    var s = Math.max(0, (Date.now() - ts) / 1000);
    return s < 60 ? s.toFixed(1) + " s" : Math.round(s / 60) + " min";
  }

  // Buttons with data-post send a POST to the API, with the CSRF token.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-post]");
    if (!b) return;
    b.disabled = true;
    fetch(b.dataset.post, {method: "POST", headers: {"X-CSRF-Token": csrf, "Content-Type": "application/json"}, body: "{}"})
      .then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); })
      .then(function (res) {
        var out = document.getElementById("result");
        if (out) out.textContent = res[0] ? "done" : (res[1].error || "refused");
        if (res[0]) location.reload();
        b.disabled = false;
      });
  });

  var table = document.getElementById("points");
  if (!table) return;
  var rows = {};
  table.querySelectorAll("tr[data-point]").forEach(function (tr) { rows[tr.dataset.point] = tr; });

  function update(p) {
    var tr = rows[p.name];
    if (!tr) return;
    tr.querySelector(".v").textContent = p.value === null ? "" : String(p.value);
    var q = tr.querySelector(".q");
    if (p.q) { q.textContent = p.q; q.className = "q " + p.q; }
    var age = tr.querySelector(".age");
    age.dataset.ts = p.ts || "";
  }

  function ages() {
    table.querySelectorAll(".age").forEach(function (td) { td.textContent = fmtAge(Number(td.dataset.ts)); });
  }
  ages();
  setInterval(ages, 1000);

  var live = document.getElementById("live");
  var es = new EventSource("/api/v1/points/stream");
  es.addEventListener("open", function () { live.textContent = "live"; live.className = "badge ok"; });
  es.addEventListener("error", function () { live.textContent = "reconnecting"; live.className = "badge warn"; });
  function onPoints(ev) { JSON.parse(ev.data).points.forEach(update); }
  es.addEventListener("snapshot", onPoints);
  es.addEventListener("points", onPoints);
})();
