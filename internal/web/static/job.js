// The job page's live parts: collapsible sections, earlier parts of a long
// log (read by range from the raw log), and following a running job's log
// over server-sent events. The rendering rules match internal/web/logview.go.
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log) return;
  var MAX_LINES = 20000, WINDOW = 128 * 1024;
  var marker = /section_(start|end):(\d+):([A-Za-z0-9_.\-]+)(\[[^\]\r\n]*\])?\r(?:\x1b\[0K)?/g;

  function Renderer() { this.style = {}; this.sections = []; this.starts = {}; this.collapsed = {}; }
  Renderer.prototype.cls = function () {
    var s = this.style, c = [];
    if (s.fg) c.push("f" + s.fg); if (s.bg) c.push("b" + s.bg);
    if (s.bo) c.push("bo"); if (s.it) c.push("it"); if (s.un) c.push("un");
    return c.join(" ");
  };
  Renderer.prototype.sgr = function (params) {
    var s = this.style;
    if (params === "") { this.style = {}; return; }
    var ps = params.split(";");
    for (var i = 0; i < ps.length; i++) {
      var n = parseInt(ps[i], 10);
      if (isNaN(n)) continue;
      if (n === 0) { s = this.style = {}; }
      else if (n === 1) s.bo = true; else if (n === 3) s.it = true; else if (n === 4) s.un = true;
      else if (n === 22) s.bo = false; else if (n === 23) s.it = false; else if (n === 24) s.un = false;
      else if (n >= 30 && n <= 37) s.fg = String(n - 30); else if (n >= 90 && n <= 97) s.fg = String(n - 82);
      else if (n === 39) s.fg = ""; else if (n >= 40 && n <= 47) s.bg = String(n - 40);
      else if (n >= 100 && n <= 107) s.bg = String(n - 92); else if (n === 49) s.bg = "";
      else if ((n === 38 || n === 48) && ps[i + 1] === "5") {
        var c = parseInt(ps[i + 2], 10), v = c >= 0 && c < 16 ? String(c) : "";
        if (n === 38) s.fg = v; else s.bg = v;
        i += 2;
      } else if ((n === 38 || n === 48) && ps[i + 1] === "2") i += 4;
    }
  };
  // line renders one line of text (no newline) starting at byte offset off.
  Renderer.prototype.line = function (text, off) {
    text = text.replace(/\r$/, "");
    var self = this, header = "", collapsed = false, ended = [], m;
    marker.lastIndex = 0;
    while ((m = marker.exec(text)) !== null) {
      if (m[1] === "start") {
        self.sections.push(m[3]); header = m[3];
        collapsed = (m[4] || "").indexOf("collapsed=true") >= 0;
        if (collapsed) self.collapsed[m[3]] = true;
        self.starts[m[3]] = { at: parseInt(m[2], 10) };
      } else {
        var st = self.starts[m[3]];
        if (st && st.el) {
          var d = Math.max(0, parseInt(m[2], 10) - st.at), sd = document.createElement("span");
          sd.className = "sd"; sd.textContent = Math.floor(d / 60) + "m " + (d % 60) + "s"; st.el.appendChild(sd);
        }
        delete self.starts[m[3]];
        ended.push(m[3]);
      }
    }
    text = text.replace(marker, "");
    var path = self.sections.join("/"), hidden = false;
    self.sections.forEach(function (n) { if (self.collapsed[n] && n !== header) hidden = true; });
    ended.forEach(function (name) {
      var i = self.sections.lastIndexOf(name);
      if (i >= 0) { self.sections.length = i; delete self.collapsed[name]; }
    });
    var cr = text.lastIndexOf("\r");
    if (cr >= 0) text = text.slice(cr + 1);
    var t = document.createElement("span"); t.className = "t";
    var cur = "", flush = function () {
      if (!cur) return;
      var c = self.cls();
      if (c) { var sp = document.createElement("span"); sp.className = c; sp.textContent = cur; t.appendChild(sp); }
      else t.appendChild(document.createTextNode(cur));
      cur = "";
    };
    for (var i = 0; i < text.length; i++) {
      var ch = text.charCodeAt(i);
      if (ch === 27) {
        if (text[i + 1] === "[") {
          var j = i + 2;
          while (j < text.length && /[0-9;?]/.test(text[j])) j++;
          if (j < text.length) {
            if (text[j] === "m") { flush(); self.sgr(text.slice(i + 2, j)); }
            i = j;
          }
        }
        continue;
      }
      if (ch < 32 && ch !== 9) continue;
      cur += text[i];
    }
    flush();
    if (!header && ended.length && !t.firstChild) return null;
    var el = document.createElement("div");
    el.className = header ? "ln sh" : "ln";
    el.dataset.o = String(off);
    if (path) el.dataset.s = path;
    if (hidden) el.hidden = true;
    var a = document.createElement("a"); a.className = "n"; el.appendChild(a);
    if (header) {
      var b = document.createElement("button");
      b.type = "button"; b.className = "tog"; b.setAttribute("aria-expanded", collapsed ? "false" : "true");
      b.setAttribute("aria-label", "Toggle section " + header);
      el.appendChild(b);
      self.starts[header].el = el;
    }
    el.appendChild(t);
    return el;
  };

  function anchor(el, n) {
    var a = el.querySelector(".n"), id = n ? "L" + n : "O" + el.dataset.o;
    el.id = id; a.href = "#" + id; a.textContent = n ? String(n) : "";
  }
  function renumber() {
    if (!log.hasAttribute("data-numbered")) return;
    var lines = log.querySelectorAll(".ln"), n = 0;
    for (var i = 0; i < lines.length; i++) anchor(lines[i], ++n);
  }
  function nextNumber() {
    if (!log.hasAttribute("data-numbered")) return 0;
    return log.querySelectorAll(".ln:not(.partial)").length + 1;
  }

  // Sections: a line is hidden while any section around it is collapsed.
  function applySections() {
    var closed = {};
    log.querySelectorAll(".sh").forEach(function (h) {
      if (h.querySelector(".tog").getAttribute("aria-expanded") === "false") closed[h.dataset.s] = true;
    });
    log.querySelectorAll(".ln[data-s]").forEach(function (el) {
      var parts = el.dataset.s.split("/"), hide = false;
      var upto = el.classList.contains("sh") ? parts.length - 1 : parts.length;
      for (var i = 1; i <= upto; i++) if (closed[parts.slice(0, i).join("/")]) hide = true;
      el.hidden = hide;
    });
  }
  log.addEventListener("click", function (e) {
    var b = e.target.closest(".tog");
    if (!b) return;
    b.setAttribute("aria-expanded", b.getAttribute("aria-expanded") === "true" ? "false" : "true");
    applySections();
  });

  // Splits bytes into lines with their byte offsets.
  function splitLines(bytes, base) {
    var out = [], start = 0, dec = new TextDecoder();
    for (var i = 0; i < bytes.length; i++) {
      if (bytes[i] === 10) { out.push([dec.decode(bytes.subarray(start, i)), base + start]); start = i + 1; }
    }
    if (start < bytes.length) out.push([dec.decode(bytes.subarray(start)), base + start]);
    return out;
  }

  var earlier = document.getElementById("log-earlier");
  if (earlier) earlier.addEventListener("click", function () {
    var start = parseInt(log.dataset.start, 10);
    if (!(start > 0)) return;
    var from = Math.max(0, start - WINDOW);
    earlier.disabled = true;
    fetch(log.dataset.raw, { headers: { Range: "bytes=" + from + "-" + (start - 1) }, credentials: "same-origin" })
      .then(function (res) { if (!res.ok) throw new Error(res.status); return res.arrayBuffer(); })
      .then(function (buf) {
        var bytes = new Uint8Array(buf), skip = 0;
        if (from > 0) { skip = bytes.indexOf(10) + 1; if (skip === 0) skip = bytes.length; }
        var r = new Renderer(), frag = document.createDocumentFragment();
        splitLines(bytes.subarray(skip), from + skip).forEach(function (l) {
          var el = r.line(l[0], l[1]); if (el) { anchor(el, 0); frag.appendChild(el); }
        });
        var keep = log.scrollHeight - log.scrollTop;
        log.insertBefore(frag, log.firstChild);
        log.scrollTop = log.scrollHeight - keep;
        log.dataset.start = String(from + skip);
        if (from + skip === 0) { log.setAttribute("data-numbered", ""); renumber(); earlier.hidden = true; }
        earlier.disabled = false;
        applySections();
      })
      .catch(function () { earlier.disabled = false; });
  });

  // Live follow: complete lines are rendered as they arrive; the line still
  // being written shows as a partial line that is replaced.
  var follow = log.dataset.follow;
  if (!follow || !window.EventSource) return;
  var live = new Renderer(), pending = "", partial = null, offset = parseInt(log.dataset.end, 10) || 0;
  var enc = new TextEncoder();
  function atBottom() { return log.scrollHeight - log.scrollTop - log.clientHeight < 40; }
  function addLine(text, isPartial) {
    var stick = atBottom();
    if (partial) { partial.remove(); partial = null; }
    var r = isPartial ? Object.create(live) : live; // a partial line must not move the style on
    if (isPartial) { r.style = Object.assign({}, live.style); r.sections = live.sections.slice(); r.starts = Object.assign({}, live.starts); r.collapsed = Object.assign({}, live.collapsed); }
    var el = r.line(text, offset);
    if (el) {
      anchor(el, nextNumber());
      if (isPartial) { el.classList.add("partial"); partial = el; }
      log.appendChild(el);
    }
    if (!isPartial) offset += enc.encode(text).length + 1;
    var lines = log.querySelectorAll(".ln");
    if (lines.length > MAX_LINES) {
      for (var i = 0; i < lines.length - MAX_LINES; i++) lines[i].remove();
      log.removeAttribute("data-numbered");
      log.dataset.start = log.querySelector(".ln").dataset.o;
      if (earlier) earlier.hidden = false;
    }
    if (stick) log.scrollTop = log.scrollHeight;
  }
  function consume(final) {
    // The stream turns a marker's carriage return into a line break.
    pending = pending.replace(/(section_(?:start|end):\d+:[A-Za-z0-9_.\-]+(?:\[[^\]\n]*\])?)\n/g, "$1\r");
    var i;
    while ((i = pending.indexOf("\n")) >= 0) { addLine(pending.slice(0, i), false); pending = pending.slice(i + 1); }
    if (pending) {
      if (final) { addLine(pending, false); pending = ""; } else addLine(pending, true);
    }
  }
  var es = new EventSource(follow + "?offset=" + offset);
  var empty = document.getElementById("log-empty"); if (empty) empty.remove();
  log.scrollTop = log.scrollHeight;
  es.onmessage = function (e) { pending += e.data; consume(false); };
  es.addEventListener("end", function () {
    es.close(); consume(true);
    var note = document.getElementById("log-live");
    if (note) note.textContent = "The job has finished.";
    // The status, buttons and artifacts changed: show them.
    setTimeout(function () { window.location.reload(); }, 500);
  });
})();
