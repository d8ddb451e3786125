(function () {
  "use strict";
  // No modeBarButtonsToRemove: Plotly then shows the mode bar only on hover.
  var config = {displaylogo: false, responsive: true};
  function draw() {
    var node = document.getElementById("chart-specs");
    if (!node) { return; }
    if (typeof Plotly === "undefined") {
      document.body.classList.add("no-charts");
      return;
    }
    JSON.parse(node.textContent).forEach(function (spec) {
      var target = document.getElementById(spec.id);
      if (target) { Plotly.newPlot(target, spec.data, spec.layout, config); }
    });
    document.body.classList.add("charts-drawn");
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
