// The home page: per-category totals, the ranking tabs and the recent donations, refreshed by
// polling the JSON endpoints. Names and messages are only ever set as text, never as HTML.
(function () {
  "use strict";
  var REFRESH_MS = 10000;
  var range = "all";
  var busy = {};

  function get(url, apply) {
    if (busy[url]) return;
    busy[url] = true;
    fetch(url, { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (json) { busy[url] = false; apply(json); })
      .catch(function () { busy[url] = false; });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Texts come with the page, in its language (data-empty, data-anonymous).
  function fill(list, items, render) {
    while (list.firstChild) list.removeChild(list.firstChild);
    if (!items.length) { list.appendChild(el("li", "empty", list.dataset.empty || "")); return; }
    items.forEach(function (item) { list.appendChild(render(item)); });
  }

  // The API names an anonymous donor 匿名; the page says it in its own language.
  var rankingList = document.getElementById("ranking");
  var anonymous = rankingList ? rankingList.dataset.anonymous : "";
  function donor(name) {
    return name === "匿名" && anonymous ? anonymous : name;
  }

  function stats() {
    get("/api/stats", function (json) {
      (json.items || []).forEach(function (c) {
        var card = document.querySelector('.category[data-category-id="' + Number(c.category_id) + '"]');
        if (!card) return;
        card.querySelector('[data-total="amount"]').textContent = c.amount;
        card.querySelector('[data-total="count"]').textContent = String(c.count);
        card.querySelector('[data-total="donors"]').textContent = String(c.donors);
      });
    });
  }

  function ranking() {
    var list = document.getElementById("ranking");
    if (!list) return;
    get("/api/rankings?range=" + range + "&size=10", function (json) {
      if (json.range !== range) return;
      list.dataset.range = json.range;
      fill(list, json.items || [], function (item) {
        var li = el("li", "rank-item");
        li.appendChild(el("span", "rank", String(item.rank)));
        li.appendChild(el("span", "donor", donor(item.donor)));
        li.appendChild(el("span", "amount", "¥" + item.amount));
        return li;
      });
    });
  }

  function recent() {
    var list = document.getElementById("recent");
    if (!list) return;
    get("/api/donations/recent?limit=10", function (json) {
      fill(list, json.items || [], function (item) {
        var li = el("li", "recent-item");
        li.appendChild(el("span", "donor", donor(item.donor)));
        li.appendChild(el("span", "amount", "¥" + item.amount));
        if (item.message) li.appendChild(el("p", "message", item.message));
        return li;
      });
    });
  }

  var tabs = document.getElementById("ranking-tabs");
  if (tabs) {
    tabs.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-range]");
      if (!button) return;
      range = button.dataset.range;
      Array.prototype.forEach.call(tabs.querySelectorAll("button"), function (b) {
        b.setAttribute("aria-selected", b === button ? "true" : "false");
      });
      ranking();
    });
  }

  function refresh() {
    if (document.hidden) return;
    stats(); ranking(); recent();
  }
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
