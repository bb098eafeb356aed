/* Style, filter and tooltip functions for the map layers (dash-leaflet calls them with
 * the layer's props as `context`; `context.hideout` is set by dashboard/callbacks/map.py).
 * Text from users' files is escaped before it goes into a tooltip. */
window.minewatch = (function () {
  function escapeHtml(value) {
    return String(value == null ? "" : value).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function number(value, digits) {
    return value == null ? "" : Number(value).toLocaleString("en", {maximumFractionDigits: digits});
  }
  var LABELS = {
    unlicensed_activity: "Activity outside every licence",
    activity_in_inactive_licence: "Activity in a licence not in force",
    activity_without_production: "Activity but no production reported",
    production_without_activity: "Production reported without activity",
    production_activity_mismatch: "Production out of line with activity",
    licence_overlap: "Overlapping licences",
    national_total_mismatch: "Concession reports differ from national total"
  };
  /* The freshest hideout of a layer. dash-leaflet builds a layer that loads its data
   * from a URL with the props of the moment it was created: if a hideout arrives before
   * the data, the layer would filter and style with the empty initial one. A clientside
   * callback (dashboard/callbacks/map.py) records each new hideout here. */
  var latest = {};
  function hideoutOf(name, context) {
    var own = context.hideout || {};
    return Object.keys(own).length ? own : (latest[name] || {});
  }
  return {
    escapeHtml: escapeHtml,
    latest: latest,
    concessionStyle: function (feature, context) {
      var h = hideoutOf("concessions", context);
      var p = feature.properties;
      var worst = (h.worst || {})[p.concession_id];
      var shown = !h.shown || h.shown[p.concession_id];
      var selected = h.selected === p.concession_id;
      return {
        fillColor: (h.status_colours || {})[p.status] || "#cccccc",
        fillOpacity: shown ? 0.45 : 0.08,
        color: selected ? "#000000" : worst ? h.flag_colours[worst] : "#6b7b8c",
        weight: selected ? 4 : worst ? 3 : 1,
        opacity: shown ? 1 : 0.3,
        dashArray: p.status === "application" ? "6 4" : null
      };
    },
    concessionTooltip: function (feature, layer) {
      var p = feature.properties;
      var name = p.name ? " · " + escapeHtml(p.name) : "";
      layer.bindTooltip(
        "<b>" + escapeHtml(p.concession_id) + "</b>" + name + "<br>" + escapeHtml(p.holder) +
        "<br>" + escapeHtml(p.status) + " · " + number(p.licence_ha, 0) + " ha", {sticky: true}
      );
    },
    flagFilter: function (feature, context) {
      var visible = hideoutOf("flags", context).visible;
      return !!(visible && visible[feature.properties.flag_id]);
    },
    flagStyle: function (feature, context) {
      var h = hideoutOf("flags", context);
      var p = feature.properties;
      var selected = h.selected === p.flag_id;
      var colour = (h.colours || {})[p.flag_type] || "#000000";
      var review = (h.review || {})[p.flag_id];
      return {
        color: selected ? "#000000" : colour, fillColor: colour, weight: selected ? 4 : review === "confirmed" ? 3 : 2,
        fillOpacity: review === "dismissed" ? 0.08 : 0.35, dashArray: review === "dismissed" ? "3 4" : null
      };
    },
    flagTooltip: function (feature, layer) {
      var p = feature.properties;
      var headline = p.carats != null && p.flag_type.indexOf("production") === 0
        ? number(p.carats, 0) + " ct" : number(p.area_ha, 1) + " ha";
      var where = p.concession_id ? " · " + escapeHtml(p.concession_id) : "";
      layer.bindTooltip(
        "<b>" + escapeHtml(LABELS[p.flag_type] || p.flag_type) + "</b><br>" + escapeHtml(p.period) + where +
        " · " + headline + "<br>" + escapeHtml(p.severity) + " (score " + number(p.score, 2) + ")", {sticky: true}
      );
    },
    footprintFilter: function (feature, context) {
      return feature.properties.period === hideoutOf("footprints", context).period;
    },
    contextStyle: function () {
      return {color: "#555555", weight: 1.5, dashArray: "4 3", fill: false};
    },
    placeMarker: function (feature, latlng) {
      return window.L.circleMarker(latlng, {radius: 5, color: "#222222", weight: 1.5, fillColor: "#ffffff", fillOpacity: 1});
    },
    contextTooltip: function (feature, layer) {
      var point = feature.geometry && feature.geometry.type === "Point";
      layer.bindTooltip(escapeHtml(feature.properties.name), {permanent: point, direction: "right", className: "place-label"});
    },
    footprintStyle: function () {
      return {color: "#7f2704", weight: 1, fillColor: "#7f2704", fillOpacity: 0.15};
    },
    /* What the map shows now, counted from Leaflet's own layers (used by the browser
     * tests and handy in the console): {concessions: n, flags: n, footprints: n}. */
    drawn: function () {
      var counts = {concessions: 0, flags: 0, footprints: 0};
      if (!window.minewatch.map) { return counts; }
      window.minewatch.map.eachLayer(function (layer) {
        var p = layer.feature && layer.feature.properties;
        if (!p) { return; }
        if (p.flag_id) { counts.flags += 1; }
        else if (p.footprint_id) { counts.footprints += 1; }
        else if (p.concession_id) { counts.concessions += 1; }
      });
      return counts;
    }
  };
})();
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  minewatch: {
    rememberHideouts: function (flags, concessions, footprints) {
      window.minewatch.latest.flags = flags;
      window.minewatch.latest.concessions = concessions;
      window.minewatch.latest.footprints = footprints;
      return window.dash_clientside.no_update;
    }
  }
});
if (window.L && window.L.Map) {
  window.L.Map.addInitHook(function () { window.minewatch.map = this; });
}
