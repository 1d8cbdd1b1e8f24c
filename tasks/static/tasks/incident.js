// The incident page (design §19): its map, and live updates from /api/v1/events.
// An event about this task fetches the page again and swaps in the parts that
// changed (header, timeline, history; the actions only when the status moved, so a
// reason being typed is not lost).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("incident-markers").textContent);
  var attribution = JSON.parse(document.getElementById("map-attribution").textContent);
  var element = document.getElementById("incident-map");
  var map = L.map(element);
  if (element.dataset.tileUrl) {
    L.tileLayer(element.dataset.tileUrl, { attribution: attribution, maxZoom: 19 }).addTo(map);
  }
  var layer = L.layerGroup().addTo(map);
  function label(text) {
    return { permanent: true, direction: "right", className: "map-label", offset: [8, 0] };
  }
  function draw(d) {
    layer.clearLayers();
    var points = [[d.task.lat, d.task.lon]];
    L.circleMarker(points[0], { radius: 8, weight: 3, color: "#b71c1c", fillColor: "#fff", fillOpacity: 1, className: "marker-task" })
      .addTo(layer).bindTooltip(d.task.request_id, label());
    if (d.trail.length > 1) {
      L.polyline(d.trail, { color: "#0d47a1", weight: 3, opacity: 0.7, className: "marker-trail" }).addTo(layer);
      d.trail.forEach(function (p) { points.push(p); });
    }
    if (d.assignee) {
      L.circleMarker([d.assignee.lat, d.assignee.lon], { radius: 8, weight: 2, color: "#fff", fillColor: "#0d47a1", fillOpacity: 1, className: "marker-assignee" })
        .addTo(layer).bindTooltip(d.assignee.badge, label());
      points.push([d.assignee.lat, d.assignee.lon]);
    }
    d.candidates.forEach(function (c) {
      L.circleMarker([c.lat, c.lon], { radius: 7, weight: 2, color: "#fff", fillColor: "#2e7d32", fillOpacity: 1, className: "marker-candidate" })
        .addTo(layer).bindTooltip(c.rank + ". " + c.badge + " · " + c.eta_minutes + " min", label());
      points.push([c.lat, c.lon]);
    });
    map.fitBounds(points, { padding: [30, 30], maxZoom: 15 });
  }
  draw(data);
  window.addEventListener("load", function () { map.invalidateSize(); draw(data); element.dataset.ready = "true"; });

  var incident = document.getElementById("incident");
  var taskPath = window.location.pathname;
  var pending = null;
  function swap(fresh, id) {
    var now = document.getElementById(id), next = fresh.getElementById(id);
    if (now && next) { now.innerHTML = next.innerHTML; now.className = next.className; }
  }
  function refresh() {
    pending = null;
    fetch(taskPath, { credentials: "same-origin" })
      .then(function (r) { return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var next = fresh.getElementById("incident");
        if (!next) { return; }
        if (next.dataset.status !== incident.dataset.status) {
          incident.innerHTML = next.innerHTML;  // the actions change with the status
          incident.dataset.status = next.dataset.status;
          element = document.getElementById("incident-map");
          map.remove();
          map = L.map(element);
          if (element.dataset.tileUrl) { L.tileLayer(element.dataset.tileUrl, { attribution: attribution, maxZoom: 19 }).addTo(map); }
          layer = L.layerGroup().addTo(map);
        } else {
          ["incident-header", "timeline", "history"].forEach(function (id) { swap(fresh, id); });
        }
        data = JSON.parse(fresh.getElementById("incident-markers").textContent);
        draw(data);
        incident.dataset.updated = String(Date.now());
      });
  }
  var taskId = incident.dataset.taskId;
  function changed(event) {
    try {
      var subject = JSON.parse(event.data);
      if (subject && subject.id && subject.id !== taskId) { return; }
    } catch (e) { /* not JSON: refresh anyway */ }
    if (!pending) { pending = setTimeout(refresh, 250); }
  }
  consoleLive(changed);
})();
