// The account table of the healthscore dashboard: sort, filter, drill down.
// Every CRM string goes into the page through textContent, never innerHTML.
// #hs-data (reports/dashboard.py `_data`): group names, [group index, rule name] and run
// days once; per account its group and rule points in those orders (null: none) and its
// history as one flat list: day index, score, day index, score, ...
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("hs-data").textContent);
  var accounts = data.accounts;
  var rank = {};
  data.statuses.forEach(function (s, i) { rank[s.label] = i; });
  var MAX_ROWS = 1000;
  var SVG = "http://www.w3.org/2000/svg";
  var body = document.querySelector("#hs-accounts tbody");
  var filter = document.getElementById("hs-filter");
  var statusSelect = document.getElementById("hs-status");
  var ownerSelect = document.getElementById("hs-owner");
  var count = document.getElementById("hs-count");
  var sortKey = "score", sortDir = 1;

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function fmt(x) { return x === null || x === undefined ? "" : (Math.round(x * 100) / 100).toString(); }
  function signed(x) { return x === null || x === undefined ? "" : (x > 0 ? "+" : "") + fmt(x); }

  function sparkline(history) {
    var w = 90, h = 24, svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("width", w); svg.setAttribute("height", h);
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    if (!history.length) return svg;
    var scores = history.map(function (p) { return p[1]; });
    // Scaled to the account's own range (at least 20 points), so a real move is visible.
    var lo = Math.min.apply(null, scores), hi = Math.max.apply(null, scores), mid = (lo + hi) / 2;
    if (hi - lo < 20) { lo = mid - 10; hi = mid + 10; }
    var step = history.length > 1 ? (w - 4) / (history.length - 1) : 0;
    var points = scores.map(function (s, i) {
      var x = 2 + i * step, y = h - 2 - (s - lo) / (hi - lo || 1) * (h - 4);
      return x.toFixed(1) + "," + y.toFixed(1);
    });
    var line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points.join(" "));
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", "#4b6cb7");
    line.setAttribute("stroke-width", "1.5");
    svg.appendChild(line);
    var last = points[points.length - 1].split(",");
    var dot = document.createElementNS(SVG, "circle");
    dot.setAttribute("cx", last[0]); dot.setAttribute("cy", last[1]); dot.setAttribute("r", "2");
    dot.setAttribute("fill", "#4b6cb7");
    svg.appendChild(dot);
    var title = document.createElementNS(SVG, "title");
    title.textContent = history.map(function (p) { return p[0] + ": " + fmt(p[1]); }).join("\n");
    svg.appendChild(title);
    return svg;
  }

  function details(a) {
    var row = el("tr", null, "details"), cell = el("td");
    cell.colSpan = 7;
    var grid = el("div", null, "rules");
    data.groups.forEach(function (group, g) {
      var table = el("table"), any = false;
      data.rules.forEach(function (rule, r) {
        var points = a.rules[r];
        if (rule[0] !== g || points === null) return;
        any = true;
        var tr = el("tr");
        tr.appendChild(el("td", rule[1]));
        tr.appendChild(el("td", signed(points), "num " + (points < 0 ? "neg" : points > 0 ? "pos" : "")));
        table.appendChild(tr);
      });
      if (!any) return;
      var box = el("div");
      box.appendChild(el("h3", group + ": " + fmt(a.groups[g]) + " points"));
      box.appendChild(table);
      grid.appendChild(box);
    });
    var note = "id " + a.id;
    if (a.previous_status && a.previous_status !== a.status) note += " · was " + a.previous_status + " in the previous run";
    if (a.since !== null && a.since !== undefined) note += " · " + signed(a.since) + " since the previous run";
    cell.appendChild(el("p", note, "hint"));
    cell.appendChild(grid);
    row.appendChild(cell);
    return row;
  }

  function accountRow(a) {
    var tr = el("tr", null, "account");
    tr.dataset.id = a.id;
    var name = el("td");
    name.appendChild(el("div", a.name));
    tr.appendChild(name);
    tr.appendChild(el("td", a.owner));
    tr.appendChild(el("td", fmt(a.score), "num"));
    tr.appendChild(el("td", (data.chips[a.color] || "⬜") + " " + a.status, "status"));
    var trend = (data.arrows[a.trend] || "") + " " + (a.delta === null ? a.trend : signed(a.delta));
    tr.appendChild(el("td", trend, "trend"));
    var spark = el("td");
    var history = [];
    for (var i = 0; i + 1 < a.history.length; i += 2) history.push([data.days[a.history[i]], a.history[i + 1]]);
    spark.appendChild(sparkline(history));
    tr.appendChild(spark);
    var groups = [];
    data.groups.forEach(function (group, g) { if (a.groups[g] !== null) groups.push(group + " " + fmt(a.groups[g])); });
    tr.appendChild(el("td", groups.join(" · "), "groups"));
    tr.addEventListener("click", function () {
      var next = tr.nextSibling;
      if (next && next.className === "details") { next.remove(); return; }
      tr.parentNode.insertBefore(details(a), tr.nextSibling);
    });
    return tr;
  }

  function value(a, key) {
    if (key === "status") return rank.hasOwnProperty(a.status) ? rank[a.status] : 999;
    if (key === "delta") return a.delta === null ? -Infinity : a.delta;
    var v = a[key];
    return typeof v === "string" ? v.toLocaleLowerCase() : v;
  }

  function render() {
    var text = filter.value.trim().toLocaleLowerCase();
    var status = statusSelect.value, owner = ownerSelect.value;
    var rows = accounts.filter(function (a) {
      if (status && a.status !== status) return false;
      if (owner && a.owner !== owner) return false;
      if (!text) return true;
      return (a.name + "\u0000" + a.owner + "\u0000" + a.id + "\u0000" + a.status).toLocaleLowerCase().indexOf(text) >= 0;
    });
    rows.sort(function (x, y) {
      var a = value(x, sortKey), b = value(y, sortKey);
      if (a < b) return -sortDir;
      if (a > b) return sortDir;
      return x.id < y.id ? -1 : x.id > y.id ? 1 : 0;
    });
    var fragment = document.createDocumentFragment();
    rows.slice(0, MAX_ROWS).forEach(function (a) { fragment.appendChild(accountRow(a)); });
    body.replaceChildren(fragment);
    count.textContent = rows.length > MAX_ROWS
      ? "showing " + MAX_ROWS + " of " + rows.length + " matching accounts (" + accounts.length + " in all); filter to see the rest"
      : rows.length + " of " + accounts.length + " accounts";
    document.querySelectorAll("#hs-accounts th[data-sort]").forEach(function (th) {
      th.classList.toggle("sorted-asc", th.dataset.sort === sortKey && sortDir === 1);
      th.classList.toggle("sorted-desc", th.dataset.sort === sortKey && sortDir === -1);
    });
  }

  document.querySelectorAll("#hs-accounts th[data-sort]").forEach(function (th) {
    th.addEventListener("click", function () {
      if (sortKey === th.dataset.sort) { sortDir = -sortDir; } else { sortKey = th.dataset.sort; sortDir = 1; }
      render();
    });
  });
  filter.addEventListener("input", render);
  statusSelect.addEventListener("change", render);
  ownerSelect.addEventListener("change", render);
  render();
})();
