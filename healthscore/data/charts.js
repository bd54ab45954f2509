// Draws the charts of a healthscore page with plotly.js (inlined above this script).
// The figures are plain plotly.js JSON built in Python: {"figures": {div id: {data, layout}}, "config": {...}}.
(function () {
  "use strict";
  var spec = JSON.parse(document.getElementById("hs-figures").textContent);
  Object.keys(spec.figures).forEach(function (id) {
    var figure = spec.figures[id];
    Plotly.newPlot(id, figure.data, figure.layout, spec.config);
  });
})();
