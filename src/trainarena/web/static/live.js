// Live updates without page reloads: every element with data-live (a URL) and data-live-state="running"
// asks that URL for a fresh copy of its content every data-poll seconds and swaps it in when it
// changed. The server answers X-Live: running while there is more to come, idle once it is over.
"use strict";
(function () {
  function follow(element) {
    var seconds = parseFloat(element.dataset.poll) || 3;
    var busy = false;
    function poll() {
      if (busy || element.dataset.liveState !== "running") { return; }
      busy = true;
      fetch(element.dataset.live, { headers: { "Accept": "text/html" }, cache: "no-store" })
        .then(function (response) {
          if (!response.ok) { throw new Error(response.status); }
          var state = response.headers.get("X-Live") || "idle";
          return response.text().then(function (html) { return { html: html, state: state }; });
        })
        .then(function (answer) {
          if (answer.html.trim() !== element.innerHTML.trim()) {
            element.innerHTML = answer.html;
            element.dataset.updated = String(Date.now());
          }
          element.dataset.liveState = answer.state;
        })
        .catch(function () { /* the service restarting: try again at the next tick */ })
        .then(function () {
          busy = false;
          if (element.dataset.liveState === "running") { window.setTimeout(poll, seconds * 1000); }
        });
    }
    window.setTimeout(poll, seconds * 1000);
  }
  document.querySelectorAll("[data-live]").forEach(follow);
})();
