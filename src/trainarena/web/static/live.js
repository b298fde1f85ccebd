// Live updates without page reloads: every element with data-live (a URL) and data-live-state="running"
// asks that URL for a fresh copy of its content every data-poll seconds and swaps it in when it
// changed. The server answers X-Live: running while there is more to come, idle once it is over.
// A link that had the keyboard focus keeps it across a swap; a hidden tab does not poll.
"use strict";
(function () {
  function focusedLink(element) {
    var active = document.activeElement;
    return active && element.contains(active) && active.getAttribute("href");
  }

  function swap(element, html) {
    var href = focusedLink(element);
    element.innerHTML = html;
    element.dataset.updated = String(Date.now());
    if (href) {
      var again = element.querySelector('a[href="' + CSS.escape(href) + '"]');
      if (again) { again.focus(); }
    }
  }

  function follow(element) {
    var seconds = parseFloat(element.dataset.poll) || 3;
    function later() { window.setTimeout(poll, seconds * 1000); }
    function poll() {
      if (element.dataset.liveState !== "running") { return; }
      if (document.hidden) { later(); return; }
      fetch(element.dataset.live, { headers: { "Accept": "text/html" }, cache: "no-store" })
        .then(function (response) {
          // Sent elsewhere (signed out meanwhile: a job's fragment redirects to the sign-in page): load
          // the page again so the browser follows it there, rather than swapping a whole page in here.
          if (response.redirected) { window.location.reload(); throw new Error("redirected"); }
          if (!response.ok) { throw new Error(String(response.status)); }
          var state = response.headers.get("X-Live") || "idle";
          return response.text().then(function (html) { return { html: html, state: state }; });
        })
        .then(function (answer) {
          if (answer.html.trim() !== element.innerHTML.trim()) { swap(element, answer.html); }
          element.dataset.liveState = answer.state;
        })
        .catch(function () { /* the service restarting: try again at the next tick */ })
        .then(function () { if (element.dataset.liveState === "running") { later(); } });
    }
    later();
  }

  document.querySelectorAll("[data-live]").forEach(follow);
})();
