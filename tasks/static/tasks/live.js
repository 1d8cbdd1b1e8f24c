// The console's live updates (design §12, §19): the supervisor stream, with this admin
// session, shown in the page's #live-status. consoleLive(onChange) calls onChange(event)
// for every kind the page lists in #stream-kinds. EventSource reconnects by itself and
// replays what was missed (Last-Event-ID).
(function () {
  // The service ends a stream with its reason. Expiry, a reader that fell behind and a
  // database outage are mended by reconnecting; anything else (signed out, the role
  // taken away, too many windows open) is not.
  var RECONNECT = ["token_expired", "too_slow", "database_unavailable"];
  window.consoleLive = function (onChange) {
    var status = document.getElementById("live-status");
    var source = new EventSource("/api/v1/events");
    source.onopen = function () { status.dataset.live = "open"; status.textContent = "Live updates: on"; };
    source.onerror = function () { status.dataset.live = "reconnecting"; status.textContent = "Live updates: reconnecting…"; };
    JSON.parse(document.getElementById("stream-kinds").textContent)
      .forEach(function (kind) { source.addEventListener(kind, onChange); });
    source.addEventListener("stream.closed", function (event) {
      var reason = JSON.parse(event.data).reason;
      if (RECONNECT.indexOf(reason) !== -1) { return; }
      source.close();
      status.dataset.live = "closed";
      status.dataset.reason = reason;
      status.textContent = reason === "too_many_streams"
        ? "Live updates: off (open in too many windows); reload to resume"
        : "Live updates: off (signed out or no longer a supervisor); reload";
    });
    return source;
  };
})();
