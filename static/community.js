// The community's pages: like buttons, comments and replies, publishing with image uploads,
// follow, delete and report. Everything goes to the JSON API with the session cookie; texts
// come with the page (data-* attributes, in its language); what users wrote is only ever set
// as text. Errors show the API's code in the form's <output class="result">.
(function () {
  "use strict";

  function send(method, url, body) {
    var init = { method: method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      init.headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (r) {
      if (r.ok) return r.status === 204 ? null : r.json();
      return r.json().catch(function () { return null; }).then(function (answer) {
        var error = answer && answer.error;
        throw new Error(error ? error.code + ": " + error.message : "HTTP " + r.status);
      });
    });
  }

  function say(output, state, text) {
    if (!output) return;
    output.dataset.state = state;
    output.textContent = text;
  }

  function failed(output, e) {
    var holder = document.querySelector("[data-failed]");
    say(output, "error", (holder ? holder.dataset.failed : "") + " " + e.message);
  }

  // Like buttons: <button data-like="/api/…/like" aria-pressed data-liked-text data-like-text>.
  function toggleLike(button) {
    var on = button.getAttribute("aria-pressed") !== "true";
    button.disabled = true;
    send(on ? "PUT" : "DELETE", button.dataset.like).then(function (answer) {
      button.setAttribute("aria-pressed", String(answer.liked));
      var count = button.querySelector(".like-count");
      if (count) count.textContent = String(answer.likes);
      var label = button.querySelector(".like-label");
      if (label) label.textContent = answer.liked ? button.dataset.likedText : button.dataset.likeText;
      button.disabled = false;
    }, function () { button.disabled = false; });
  }

  // Uploads every file of `input` to /api/images; resolves to the ids.
  function upload(input, output) {
    var files = Array.prototype.slice.call(input && input.files ? input.files : []);
    if (files.length) say(output, "sending", input.dataset.uploading || "…");
    return files.reduce(function (done, file) {
      return done.then(function (ids) {
        return fetch("/api/images", {
          method: "POST",
          credentials: "same-origin",
          headers: { "content-type": file.type || "application/octet-stream" },
          body: file
        }).then(function (r) {
          return r.json().then(function (answer) {
            if (!r.ok) throw new Error(answer && answer.error ? answer.error.code + ": " + answer.error.message : "HTTP " + r.status);
            return ids.concat([answer.id]);
          });
        });
      });
    }, Promise.resolve([]));
  }

  function publish(form) {
    var output = form.querySelector("output.result");
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    upload(form.elements.images, output).then(function (images) {
      say(output, "sending", "…");
      return send("POST", "/api/community/posts", {
        board_id: Number(form.elements.board_id.value),
        title: form.elements.title.value,
        content: form.elements.content.value,
        images: images,
        anonymous: form.elements.anonymous.checked
      });
    }).then(function (post) {
      window.location.assign("/community/posts/" + Number(post.id));
    }, function (e) {
      button.disabled = false;
      failed(output, e);
    });
  }

  function comment(form) {
    var output = form.querySelector("output.result");
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    upload(form.elements.images, output).then(function (images) {
      var parent = form.elements.parent_id.value;
      return send("POST", form.dataset.comment, {
        content: form.elements.content.value,
        images: images,
        parent_id: parent ? Number(parent) : null
      });
    }).then(function (created) {
      // The server sends the browser to the page that shows the new comment.
      window.location.assign("/community/comments/" + Number(created.id));
    }, function (e) {
      button.disabled = false;
      failed(output, e);
    });
  }

  function replyTo(button) {
    var form = document.getElementById("comment-form");
    if (!form) return;
    form.elements.parent_id.value = button.dataset.reply;
    var note = document.getElementById("replying-to");
    note.hidden = false;
    note.querySelector(".replying-text").textContent = button.dataset.replyText;
    form.elements.content.focus();
  }

  function cancelReply() {
    var form = document.getElementById("comment-form");
    form.elements.parent_id.value = "";
    document.getElementById("replying-to").hidden = true;
  }

  function remove(button) {
    if (!window.confirm(button.dataset.confirm)) return;
    send("DELETE", button.dataset.delete).then(function () {
      window.location.assign(button.dataset.then || window.location.href);
    }, function (e) { failed(button.parentNode.querySelector("output.result"), e); });
  }

  function report(button) {
    var reason = window.prompt(button.dataset.prompt);
    if (!reason) return;
    var output = button.parentNode.querySelector("output.result");
    send("POST", "/api/community/reports", {
      target: button.dataset.target,
      id: Number(button.dataset.report),
      reason: reason
    }).then(function () { say(output, "ok", button.dataset.done); }, function (e) { failed(output, e); });
  }

  function follow(button) {
    var on = button.getAttribute("aria-pressed") !== "true";
    button.disabled = true;
    send(on ? "PUT" : "DELETE", button.dataset.follow).then(function () {
      window.location.reload();
    }, function () { button.disabled = false; });
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest ? event.target.closest("button") : null;
    if (!target) return;
    if (target.dataset.like) toggleLike(target);
    else if (target.dataset.reply) replyTo(target);
    else if (target.id === "cancel-reply") cancelReply();
    else if (target.dataset.delete) remove(target);
    else if (target.dataset.report) report(target);
    else if (target.dataset.follow) follow(target);
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.id === "compose-form") {
      event.preventDefault();
      publish(form);
    } else if (form.id === "comment-form") {
      event.preventDefault();
      comment(form);
    }
  });
})();
