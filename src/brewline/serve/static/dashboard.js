(function () {
  "use strict";
  // Plotly shows the toolbar on hover, or always where nothing can hover (touch
  // screens, headless browsers); the charts keep a band free for it at the top.
  var config = {
    displaylogo: false,
    responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d"]
  };
  function draw() {
    var node = document.getElementById("chart-specs");
    if (!node) { return; }
    if (typeof Plotly === "undefined") {
      document.body.classList.add("no-charts");
      return;
    }
    JSON.parse(node.textContent).forEach(function (spec) {
      var target = document.getElementById(spec.id);
      if (!target) { return; }
      // Responsive resizing fits a plot to its container's height: give the container
      // the figure's own height, or a window resize squashes every chart to the CSS minimum.
      if (spec.layout.height) { target.style.height = spec.layout.height + "px"; }
      Plotly.newPlot(target, spec.data, spec.layout, config);
    });
    document.body.classList.add("charts-drawn");
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
