// Popup's pages get better with this file, and work without it: live updates by Server-Sent
// Events, answers sent without leaving the page. Everything it inserts is HTML the server rendered
// (autoescaped) or text set with textContent.
(function () {
  "use strict";
  function meta(name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute("content") : null;
  }
  function fragment(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    return t.content;
  }
  var csrf = meta("popup-csrf");
  function fillCsrf(root) {
    if (!csrf) return;
    root.querySelectorAll('input[name="csrf"]').forEach(function (input) { if (!input.value) input.value = csrf; });
  }
  function rememberName(root) {
    var saved = null;
    try { saved = window.localStorage.getItem("popup-name"); } catch (e) { saved = null; }
    root.querySelectorAll('form.answer input[name="name"]').forEach(function (input) {
      if (saved && !input.value) input.value = saved;
    });
  }
  function addReply(thread, id, html) {
    if (document.getElementById(id)) return;
    var list = document.querySelector('#p-' + thread + ' .replies');
    if (list) list.appendChild(fragment(html));
  }
  function enhance(form) {
    if (form.dataset.enhanced) return;
    form.dataset.enhanced = "1";
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var status = form.querySelector(".status");
      var button = form.querySelector('button[type="submit"]');
      if (button) button.disabled = true;
      if (status) { status.textContent = "Sending…"; status.classList.remove("error"); }
      var name = form.querySelector('input[name="name"]');
      if (name) { try { window.localStorage.setItem("popup-name", name.value); } catch (e) { /* private mode */ } }
      fetch(form.action, { method: "POST", body: new FormData(form), headers: { "Accept": "application/json" },
                           credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (answer) {
          if (answer.ok) {
            if (answer.html) {
              var old = document.getElementById(answer.id);
              if (old) old.remove();
              addReply(answer.thread, answer.id, answer.html);
            }
            form.querySelector("textarea").value = "";
            if (status) status.textContent = "Sent.";
          } else if (status) {
            status.textContent = answer.error || "Not sent.";
            status.classList.add("error");
          }
        })
        .catch(function () {
          if (status) { status.textContent = "Not sent: the connection failed. Try again."; status.classList.add("error"); }
        })
        .then(function () { if (button) button.disabled = false; });
    });
  }
  function prepare(root) {
    fillCsrf(root);
    rememberName(root);
    root.querySelectorAll("form.answer").forEach(enhance);
  }
  prepare(document);

  var live = meta("popup-live");
  if (live && window.EventSource) {
    var source = new EventSource(live);
    var stream = document.getElementById("stream");
    source.addEventListener("prompt", function (e) {
      var data = JSON.parse(e.data);
      if (document.getElementById("p-" + data.thread)) return;
      var part = fragment(data.html);
      prepare(part);
      stream.appendChild(part);
    });
    source.addEventListener("post", function (e) {
      stream.appendChild(fragment(JSON.parse(e.data).html));
    });
    source.addEventListener("reply", function (e) {
      var data = JSON.parse(e.data);
      addReply(data.thread, data.id, data.html);
    });
    source.addEventListener("edited", function (e) {
      var data = JSON.parse(e.data);
      var el = document.getElementById(data.id);
      var text = el && el.querySelector(".text");
      if (text) text.textContent = data.text;
    });
    source.addEventListener("gone", function (e) {
      var el = document.getElementById(JSON.parse(e.data).id);
      if (el) el.remove();
    });
  }

  var dash = meta("popup-dash-live");
  if (dash && window.EventSource) {
    var board = new EventSource(dash);
    board.addEventListener("live", function (e) {
      var region = document.getElementById("live");
      if (!region) return;
      region.replaceChildren(fragment(JSON.parse(e.data).html));
    });
  }
})();
