// The /api/docs page: fetches /api/openapi.json (same origin) and lists its operations by
// tag — method, path, who may call it, parameters, the request body's schema and every
// answer — built with DOM calls only (no HTML strings, no inline script, nothing from
// another host).
(function () {
  "use strict";
  var root = document.getElementById("api-operations");
  var loading = document.getElementById("api-loading");
  if (!root) return;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  // Text with `code` spans (the document's descriptions are CommonMark) as text and <code>.
  function rich(tag, className, text) {
    var node = el(tag, className);
    String(text || "").split("`").forEach(function (part, i) {
      if (part) node.appendChild(i % 2 ? el("code", null, part) : document.createTextNode(part));
    });
    return node;
  }

  // "#/components/schemas/Name" → "Name"; a schema in place → a short summary of its type.
  function schemaName(schema) {
    if (!schema) return "";
    if (schema.$ref) return schema.$ref.split("/").pop();
    if (schema.enum) return schema.enum.map(JSON.stringify).join(" | ");
    if (schema.type) return [].concat(schema.type).join(" | ");
    return "any";
  }

  function schemaBlock(doc, schema) {
    var name = schemaName(schema);
    var resolved = schema && schema.$ref ? doc.components.schemas[name] : schema;
    var details = el("details", "api-schema");
    details.appendChild(el("summary", null, name));
    var shown = {};
    for (var key in resolved || {}) {
      if (key !== "examples") shown[key] = resolved[key];
    }
    details.appendChild(el("pre", "mono", JSON.stringify(shown, null, 2)));
    if (resolved && resolved.examples && resolved.examples.length) {
      details.appendChild(el("p", "hint", "example"));
      details.appendChild(el("pre", "mono", JSON.stringify(resolved.examples[0], null, 2)));
    }
    return details;
  }

  function access(op) {
    var security = op.security || [];
    if (security.length === 0) return "provider";
    var open = security.some(function (s) { return Object.keys(s).length === 0; });
    return open ? "public" : "session";
  }

  function operation(doc, method, path, op) {
    var item = el("li", "api-op card");
    item.id = op.operationId;
    item.dataset.route = op["x-route"] || "";
    var head = el("div", "api-op-head");
    head.appendChild(el("span", "api-method api-" + method, method.toUpperCase()));
    head.appendChild(el("code", "api-path", path));
    item.appendChild(head);
    var summary = rich("p", "api-summary", op.summary);
    summary.appendChild(el("span", "badge api-access", access(op)));
    item.appendChild(summary);

    var params = op.parameters || [];
    if (params.length) {
      var list = el("ul", "api-params");
      params.forEach(function (p) {
        var row = el("li");
        row.appendChild(el("code", null, p.name));
        row.appendChild(el("span", "hint", " " + p.in + (p.required ? ", required" : "") + ": " + schemaName(p.schema)));
        list.appendChild(row);
      });
      item.appendChild(list);
    }
    if (op.requestBody) {
      Object.keys(op.requestBody.content).forEach(function (type) {
        var body = el("div", "api-body");
        body.appendChild(el("span", "hint", "body " + type));
        body.appendChild(schemaBlock(doc, op.requestBody.content[type].schema));
        item.appendChild(body);
      });
    }
    // Answers: successes in full, errors folded under one line of their statuses.
    var answers = el("ul", "api-answers");
    var errors = el("ul", "api-answers");
    var errorStatuses = [];
    Object.keys(op.responses).forEach(function (status) {
      var answer = op.responses[status];
      var failed = status.charAt(0) === "4" || status.charAt(0) === "5";
      var row = el("li");
      row.appendChild(el("span", "api-status api-status-" + status.charAt(0), status));
      row.appendChild(rich("span", null, " " + answer.description));
      var json = answer.content && answer.content["application/json"];
      if (json && !failed) row.appendChild(schemaBlock(doc, json.schema));
      (failed ? errors : answers).appendChild(row);
      if (failed) errorStatuses.push(status);
    });
    item.appendChild(answers);
    if (errorStatuses.length) {
      var folded = el("details", "api-errors");
      folded.appendChild(el("summary", null, "errors " + errorStatuses.join(" ")));
      folded.appendChild(errors);
      item.appendChild(folded);
    }
    return item;
  }

  fetch("/api/openapi.json", { credentials: "same-origin" })
    .then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    })
    .then(function (doc) {
      var byTag = {};
      var count = 0;
      Object.keys(doc.paths).forEach(function (path) {
        Object.keys(doc.paths[path]).forEach(function (method) {
          var op = doc.paths[path][method];
          var tag = (op.tags && op.tags[0]) || "other";
          (byTag[tag] = byTag[tag] || []).push(operation(doc, method, path, op));
          count += 1;
        });
      });
      var nav = el("nav", "api-tags");
      (doc.tags || []).forEach(function (t) {
        if (!byTag[t.name]) return;
        var link = el("a", null, t.name + " (" + byTag[t.name].length + ")");
        link.href = "#tag-" + t.name;
        nav.appendChild(link);
      });
      root.appendChild(nav);
      (doc.tags || []).forEach(function (t) {
        if (!byTag[t.name]) return;
        var section = el("section", "api-tag");
        section.id = "tag-" + t.name;
        section.appendChild(el("h2", null, t.name));
        var list = el("ul", "api-ops");
        byTag[t.name].forEach(function (item) { list.appendChild(item); });
        section.appendChild(list);
        root.appendChild(section);
      });
      document.getElementById("api-title").textContent = doc.info.title + " API " + doc.info.version;
      loading.textContent = count + " operations · OpenAPI " + doc.openapi;
      root.dataset.state = "ready";
      root.dataset.operations = String(count);
    })
    .catch(function (e) {
      loading.textContent = "The API description could not be loaded (" + e.message + ").";
      root.dataset.state = "failed";
    });
})();
