// anquan-monitor web: the live dashboard (SSE) and the public report form.
// No framework, no build step. Rows are built with textContent only.
"use strict";
(function () {
  var strings = {};
  var el = document.getElementById("i18n");
  if (el) { try { strings = JSON.parse(el.textContent); } catch (e) { strings = {}; } }
  function t(k) { return strings[k] || k; }
  // A node with plain text (Leaflet puts string tooltips in innerHTML).
  function text(s) { var e = document.createElement("span"); e.textContent = s; return e; }
  var csrfMeta = document.querySelector('meta[name="csrf"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function post(url, params) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(params || {}).toString()
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) { throw new Error(j.detail || r.statusText); }
        return j;
      });
    });
  }

  // ----- dashboard -----
  var table = document.getElementById("alarms-table");
  var tbody = document.getElementById("alarms");
  var mayAck = table && table.getAttribute("data-may-ack") === "true";

  function button(cls, id, label, isFalse) {
    var b = document.createElement("button");
    b.className = cls;
    b.setAttribute("data-id", id);
    if (isFalse !== undefined) { b.setAttribute("data-false", isFalse); }
    b.textContent = label;
    return b;
  }

  function fmt(ms) {
    var d = new Date(ms + 8 * 3600 * 1000);
    function p(n) { return (n < 10 ? "0" : "") + n; }
    return d.getUTCFullYear() + "-" + p(d.getUTCMonth() + 1) + "-" + p(d.getUTCDate()) +
      " " + p(d.getUTCHours()) + ":" + p(d.getUTCMinutes());
  }

  function recount() {
    ["red", "orange", "yellow", "blue"].forEach(function (lv) {
      var n = tbody.querySelectorAll('tr[data-level="' + lv + '"]').length;
      var c = document.getElementById("count-" + lv);
      if (c) { c.textContent = n; }
    });
    var none = document.getElementById("no-alarms");
    if (none) { none.hidden = tbody.children.length > 0; }
  }

  function upsert(w) {
    var id = "w-" + w.id;
    var row = document.getElementById(id);
    if (w.state === "RESOLVED") {
      if (row) { row.remove(); }
      recount();
      return;
    }
    var fresh = !row;
    if (fresh) { row = document.createElement("tr"); row.id = id; }
    row.setAttribute("data-state", w.state);
    row.setAttribute("data-level", w.level);
    while (row.firstChild) { row.removeChild(row.firstChild); }
    var lv = document.createElement("span");
    lv.className = "tag c-" + w.level;
    lv.textContent = t("lv_" + w.level);
    var link = document.createElement("a");
    link.href = "/web/devices/" + encodeURIComponent(w.device);
    link.textContent = w.device;
    var cells = [lv, document.createTextNode(w.venue_name || w.site), link,
      document.createTextNode(w.rule), document.createTextNode(fmt(w.raised_ms)),
      document.createTextNode(t("w_" + w.state))];
    cells.forEach(function (c, i) {
      var td = document.createElement("td");
      if (i === 5) { td.className = "state"; }
      td.appendChild(c);
      row.appendChild(td);
    });
    var acts = document.createElement("td");
    acts.className = "acts";
    if (mayAck && (w.state === "RAISED" || w.state === "NOTIFIED")) {
      acts.appendChild(button("ack", w.id, t("ack")));
    } else if (mayAck && w.state === "ACKED") {
      acts.appendChild(button("confirm", w.id, t("false_alarm"), "1"));
      acts.appendChild(document.createTextNode(" "));
      acts.appendChild(button("confirm", w.id, t("dispose"), "0"));
    }
    row.appendChild(acts);
    if (fresh) { tbody.insertBefore(row, tbody.firstChild); }
    row.classList.remove("flash");
    void row.offsetWidth;
    row.classList.add("flash");
    recount();
  }

  var HEX = { red: "#d32f2f", orange: "#f57c00", yellow: "#fbc02d", blue: "#1976d2", green: "#388e3c" };
  // Leaflet markers by venue id (filled in below when the map is on).
  var markers = {};

  // Venue colors (map pins, venue tags) follow changes: after a pushed
  // event, one fetch of /web/api/dashboard (coalesced), never a timer.
  var refreshing = null;
  function recolor() {
    if (refreshing) { return; }
    refreshing = setTimeout(function () {
      fetch("/web/api/dashboard", { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          refreshing = null;
          if (!d) { return; }
          d.venues.forEach(function (v) {
            var mk = markers[v.id];
            if (mk) { mk.setStyle({ fillColor: HEX[v.color] || "#888" }); mk.setTooltipContent(text(v.name + ": " + t("code_" + v.color))); }
            var pin = document.getElementById("pin-" + v.id);
            if (pin) {
              pin.setAttribute("data-color", v.color);
              var c = pin.querySelector("circle");
              if (c) { c.setAttribute("class", "c-" + v.color); }
            }
            var tag = document.querySelector("#venue-" + CSS.escape(v.id) + " .tag");
            if (tag) { tag.className = "tag c-" + v.color; tag.textContent = t("code_" + v.color); }
          });
        })
        .catch(function () { refreshing = null; });
    }, 250);
  }

  if (tbody) {
    tbody.addEventListener("click", function (ev) {
      var b = ev.target;
      if (!(b instanceof HTMLButtonElement)) { return; }
      var id = b.getAttribute("data-id");
      b.disabled = true;
      var req;
      if (b.classList.contains("ack")) {
        req = post("/web/warnings/" + encodeURIComponent(id) + "/ack", {});
      } else if (b.classList.contains("confirm")) {
        req = post("/web/warnings/" + encodeURIComponent(id) + "/confirm", { false_alarm: b.getAttribute("data-false") });
      } else { return; }
      req.catch(function (e) { b.disabled = false; alert(e.message); });
    });
  }
  if (tbody || document.getElementById("risk-map")) {
    var status = document.getElementById("live-status");
    var es = new EventSource("/web/events");
    es.addEventListener("open", function () {
      if (status) { status.textContent = t("live_on"); status.classList.add("on"); }
    });
    es.addEventListener("error", function () {
      if (status) { status.textContent = t("live_off"); status.classList.remove("on"); }
    });
    es.addEventListener("warning", function (ev) {
      if (tbody) {
        try { upsert(JSON.parse(ev.data)); } catch (e) { /* ignore a bad event */ }
      }
      recolor();
    });
    es.addEventListener("hazard", recolor);
    es.addEventListener("resync", function () { location.reload(); });
  }

  // ----- Leaflet risk map (only with web.map_tile_url) -----
  var lm = document.getElementById("leaflet-map");
  var geo = document.getElementById("venues-geo");
  if (lm && geo && window.L) {
    var map = window.L.map(lm);
    window.L.tileLayer(lm.getAttribute("data-tiles"), {
      attribution: lm.getAttribute("data-attribution") || "", maxZoom: 19
    }).addTo(map);
    var pts = [];
    JSON.parse(geo.textContent).forEach(function (v) {
      if (v.lat === null || v.lon === null) { return; }
      pts.push([v.lat, v.lon]);
      markers[v.id] = window.L.circleMarker([v.lat, v.lon], {
        radius: 10, color: "#fff", weight: 2, fillColor: HEX[v.color] || "#888", fillOpacity: 0.9,
        className: "venue-" + v.id
      }).bindTooltip(text(v.name + ": " + t("code_" + v.color))).addTo(map);
    });
    if (pts.length) { map.fitBounds(pts, { padding: [30, 30], maxZoom: 15 }); } else { map.setView([30, 120], 5); }
  }

  // ----- poster -----
  var printBtn = document.getElementById("print");
  if (printBtn) { printBtn.addEventListener("click", function () { window.print(); }); }

  // ----- public report form -----
  var form = document.getElementById("report-form");
  if (form) {
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      var out = document.getElementById("report-result");
      var body = {
        venue_id: form.getAttribute("data-venue"),
        category: form.elements.category.value,
        description: form.elements.description.value
      };
      fetch("/public/reports", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body)
      }).then(function (r) {
        out.textContent = out.getAttribute(r.ok ? "data-ok" : "data-fail");
        if (r.ok) { form.reset(); }
      }).catch(function () { out.textContent = out.getAttribute("data-fail"); });
    });
  }
})();
