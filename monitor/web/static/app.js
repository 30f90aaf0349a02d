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

  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function fmt(ms) {
    var d = new Date(ms + 8 * 3600 * 1000);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) +
      " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  }
  function hm(ms) {
    var d = new Date(ms + 8 * 3600 * 1000);
    return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  }
  function num(v) {
    if (v === null || v === undefined) { return "-"; }
    return String(Math.round(v * 1000) / 1000);
  }
  var RANK = { red: 4, orange: 3, yellow: 2, blue: 1 };

  // The server's clock, for the deadline countdown (the page and every
  // pushed warning carry it; the browser's own clock may be off).
  var offset = 0;
  if (table && table.getAttribute("data-server-now")) {
    offset = Number(table.getAttribute("data-server-now")) - Date.now();
  }
  function tickCountdowns() {
    var now = Date.now() + offset;
    var els = document.querySelectorAll(".countdown[data-due]");
    for (var i = 0; i < els.length; i++) {
      var left = Number(els[i].getAttribute("data-due")) - now;
      var s = Math.floor(Math.abs(left) / 1000);
      var text = pad(Math.floor(s / 60)) + ":" + pad(s % 60);
      els[i].textContent = left >= 0 ? text : t("overdue") + " " + text;
      els[i].classList.toggle("overdue", left < 0);
      els[i].setAttribute("data-left-s", String(Math.round(left / 1000)));
    }
  }

  // A new red warning: the row flashes and a sound plays. The hook the
  // browser test observes: window.anquanAlerts and body[data-alerts].
  window.anquanAlerts = [];
  function alertRed(w) {
    window.anquanAlerts.push({ id: w.id, level: w.level, at: Date.now() });
    document.body.setAttribute("data-alerts", String(window.anquanAlerts.length));
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) { return; }
      var ctx = new Ctx();
      [0, 0.35, 0.7].forEach(function (start) {
        var o = ctx.createOscillator();
        var g = ctx.createGain();
        o.frequency.value = 880;
        g.gain.value = 0.2;
        o.connect(g);
        g.connect(ctx.destination);
        o.start(ctx.currentTime + start);
        o.stop(ctx.currentTime + start + 0.2);
      });
    } catch (e) { /* no audio: the flash still shows */ }
  }

  function cell(cls) { var td = document.createElement("td"); if (cls) { td.className = cls; } return td; }

  function row(w) {
    var tr = document.createElement("tr");
    tr.id = "w-" + w.id;
    tr.className = "lv-" + w.level;
    tr.setAttribute("data-state", w.state);
    tr.setAttribute("data-level", w.level);
    tr.setAttribute("data-raised", String(w.raised_ms));
    var lv = document.createElement("span");
    lv.className = "tag c-" + w.level;
    lv.textContent = t("lv_" + w.level);
    var c1 = cell("lvl"); c1.appendChild(lv); tr.appendChild(c1);
    var c2 = cell("where");
    var venue = document.createElement("strong");
    venue.textContent = w.venue_name || w.site;
    c2.appendChild(venue); c2.appendChild(document.createElement("br"));
    if (w.kind === "group") {
      // A storm: one line, its alarms behind a drill-down.
      var md = document.createElement("details");
      md.className = "members";
      var ms = document.createElement("summary");
      ms.textContent = t("storm_members") + " (" + num(w.value) + ")";
      md.appendChild(ms);
      var ul = document.createElement("ul");
      (w.members || []).forEach(function (m) {
        var li = document.createElement("li");
        li.textContent = m.device + " · " + t("lv_" + m.level);
        ul.appendChild(li);
      });
      md.appendChild(ul);
      c2.appendChild(md);
    } else {
      var link = document.createElement("a");
      link.href = "/web/devices/" + encodeURIComponent(w.device);
      link.textContent = w.device_name || w.device;
      c2.appendChild(link);
      if (w.location) { c2.appendChild(document.createTextNode(" · " + w.location)); }
    }
    tr.appendChild(c2);
    var c3 = cell("reading");
    c3.appendChild(document.createTextNode(w.reading + " "));
    var v = document.createElement("strong");
    v.className = "value";
    v.textContent = num(w.value) + w.unit;
    c3.appendChild(v);
    var th = document.createElement("span");
    th.className = "muted";
    th.textContent = " / " + t("threshold") + " " + num(w.threshold) + w.unit;
    c3.appendChild(th);
    if (w.stale) {
      var st = document.createElement("span");
      st.className = "tag stale";
      st.title = t("stale_hint");
      st.textContent = t("stale");
      c3.appendChild(document.createTextNode(" "));
      c3.appendChild(st);
    }
    tr.appendChild(c3);
    var c4 = cell("raised"); c4.textContent = fmt(w.raised_ms); tr.appendChild(c4);
    var c5 = cell("due");
    var waiting = (w.state === "RAISED" || w.state === "NOTIFIED");
    if (waiting && w.ack_due_ms && w.clearable !== 1) {
      var cd = document.createElement("span");
      cd.className = "countdown";
      cd.setAttribute("data-due", String(w.ack_due_ms));
      c5.appendChild(cd);
    } else if (w.clearable === 1) {
      var cl = document.createElement("span");
      cl.className = "muted";
      cl.textContent = t("cleared_at_source");
      c5.appendChild(cl);
    }
    tr.appendChild(c5);
    var c6 = cell("calling");
    c6.appendChild(document.createTextNode((w.calling || []).join("、")));
    if (w.ladder && w.ladder.length) {
      var det = document.createElement("details");
      det.className = "ladder";
      var sum = document.createElement("summary");
      sum.textContent = t("ladder") + " (" + w.ladder.length + ")";
      det.appendChild(sum);
      var ol = document.createElement("ol");
      w.ladder.forEach(function (r) {
        var li = document.createElement("li");
        li.setAttribute("data-purpose", r.purpose);
        var step = (r.purpose === "call" || r.purpose === "no_response") ? " (" + t("step") + " " + r.step + ")" : "";
        li.textContent = hm(r.at_ms) + " " + t("p_" + r.purpose) + " " + (r.name || r.person_id) + step + " ";
        var chs = document.createElement("span");
        chs.className = "muted";
        chs.textContent = (r.channels || []).join(" ");
        li.appendChild(chs);
        ol.appendChild(li);
      });
      det.appendChild(ol);
      c6.appendChild(det);
    }
    tr.appendChild(c6);
    var c7 = cell("state");
    c7.textContent = t("w_" + w.state);
    if (w.held) {
      var hb = document.createElement("span");
      hb.className = "tag held";
      hb.setAttribute("data-held", w.held);
      hb.textContent = t("held_" + w.held);
      c7.appendChild(document.createElement("br"));
      c7.appendChild(hb);
    }
    if (w.acked_by_name) {
      c7.appendChild(document.createElement("br"));
      var by = document.createElement("span");
      by.className = "muted";
      by.textContent = w.acked_by_name;
      c7.appendChild(by);
    }
    tr.appendChild(c7);
    var acts = cell("acts");
    if (mayAck && waiting) {
      var b = button("ack big", w.id, t("ack"));
      acts.appendChild(b);
    } else if (mayAck && w.state === "ACKED") {
      acts.appendChild(button("confirm", w.id, t("false_alarm"), "1"));
      acts.appendChild(document.createTextNode(" "));
      acts.appendChild(button("confirm", w.id, t("dispose"), "0"));
    }
    tr.appendChild(acts);
    return tr;
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

  // Red first: by level, then newest first.
  function placeOf(w) {
    var rows = tbody.children;
    for (var i = 0; i < rows.length; i++) {
      var r = rows[i];
      var lv = RANK[r.getAttribute("data-level")] || 0;
      var raised = Number(r.getAttribute("data-raised"));
      if (lv < RANK[w.level] || (lv === RANK[w.level] && raised < w.raised_ms)) { return r; }
    }
    return null;
  }

  function upsert(w) {
    if (w.now_ms) { offset = Number(w.now_ms) - Date.now(); }
    var old = document.getElementById("w-" + w.id);
    if (w.state === "RESOLVED") {
      if (old) { old.remove(); }
      recount();
      return;
    }
    var fresh = !old;
    // A red keeps flashing until someone answers.
    var red = w.level === "red" && (fresh || old.classList.contains("flash-red")) &&
      (w.state === "RAISED" || w.state === "NOTIFIED");
    var tr = row(w);
    if (old) { old.remove(); }
    tbody.insertBefore(tr, placeOf(w));
    void tr.offsetWidth;
    tr.classList.add(red ? "flash-red" : "flash");
    if (fresh && w.level === "red") { alertRed(w); }
    tickCountdowns();
    recount();
  }

  var HEX = { red: "#d32f2f", orange: "#f57c00", yellow: "#fbc02d", blue: "#1976d2", green: "#388e3c", grey: "#757575" };
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
    tickCountdowns();
    setInterval(tickCountdowns, 1000);
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
      // map_lat/map_lon: the venue in the tiles' datum (web.map_datum).
      if (v.map_lat === null || v.map_lon === null) { return; }
      pts.push([v.map_lat, v.map_lon]);
      markers[v.id] = window.L.circleMarker([v.map_lat, v.map_lon], {
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
