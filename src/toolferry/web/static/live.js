// Follows a task page live: state changes and executor log tails from the server-sent events
// stream; the page reloads when the task ends (to show its timeline and outputs). Without
// JavaScript the page still shows the task as it was when loaded.
(function () {
  "use strict";
  var script = document.currentScript;
  var url = script && script.getAttribute("data-events");
  if (!url || !window.EventSource) { return; }
  var source = new EventSource(url);
  var state = document.getElementById("task-state");
  source.addEventListener("state", function (e) {
    var data = JSON.parse(e.data);
    if (state) {
      state.textContent = data.state;
      state.className = "state state-" + data.state.toLowerCase();
    }
  });
  source.addEventListener("log", function (e) {
    var data = JSON.parse(e.data);
    var pre = document.getElementById("log-" + data.executor + "-" + data.stream);
    if (pre) { pre.textContent = data.text; }
  });
  source.addEventListener("end", function () {
    source.close();
    window.location.reload();
  });
})();
