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

  // post sends a body to the API with the session's CSRF token and hands
  // the decoded answer to done(ok, json).
  function post(path, type, body, done) {
    fetch(path, {method: "POST", headers: {"X-CSRF-Token": csrf, "Content-Type": type}, body: body})
      .then(function (r) { return r.json().then(function (j) { done(r.ok, j); }); })
      .catch(function (e) { done(false, {error: String(e)}); });
  }
  function say(text) {
    var out = document.getElementById("result");
    if (out) out.textContent = text;
  }

  // Buttons with data-post send a POST to the API.
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button[data-post]");
    if (!b) return;
    b.disabled = true;
    post(b.dataset.post, "application/json", "{}", function (ok, j) {
      b.disabled = false;
      if (!ok) { say(j.error || "refused"); return; }
      if (b.dataset.then) location.href = b.dataset.then; else location.reload();
    });
  });

  // Times of the alarm history.
  document.querySelectorAll(".time[data-ts]").forEach(function (td) {
    td.textContent = new Date(Number(td.dataset.ts)).toLocaleString();
  });

  // The write form: the value is sent as JSON text, exactly as typed (a
  // number is not rounded on the way); what is not JSON is sent as a string.
  var wf = document.getElementById("write");
  if (wf) wf.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var v = wf.elements.value.value.trim();
    try { JSON.parse(v); } catch (e) { v = JSON.stringify(v); }
    var body = '{"points":{' + JSON.stringify(wf.elements.point.value) + ":" + v + "}}";
    post("/api/v1/write", "application/json", body, function (ok, j) {
      if (j.results) {
        var r = j.results[wf.elements.point.value] || {};
        say(r.ok ? "written" : "refused: " + (r.error || "?"));
      } else say("refused: " + (j.error || "?"));
    });
  });

  // The configuration form: check, or check and apply; every error is
  // listed with its line.
  var cf = document.getElementById("config");
  if (cf) cf.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var apply = ev.submitter && ev.submitter.value === "apply";
    var list = document.getElementById("errors");
    list.textContent = "";
    post(apply ? "/api/v1/config/apply" : "/api/v1/config/check", "text/plain", cf.elements.text.value, function (ok, j) {
      (j.errors || []).forEach(function (e) {
        var li = document.createElement("li");
        li.textContent = (e.line ? "line " + e.line + ": " : "") + (e.path ? e.path + ": " : "") + e.message + (e.warning ? " (warning)" : "");
        list.appendChild(li);
      });
      if (j.error) say(j.error);
      else if (j.ok) say(apply ? "applied" : "the configuration checks");
      else say((j.errors || []).length + " error(s); " + (apply ? "not applied" : "fix them before applying"));
    });
  });

  var table = document.getElementById("points");
  if (!table) {
    document.querySelectorAll(".age").forEach(function (td) { td.textContent = fmtAge(Number(td.dataset.ts)); });
    return;
  }
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
    document.querySelectorAll(".age").forEach(function (td) { td.textContent = fmtAge(Number(td.dataset.ts)); });
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
