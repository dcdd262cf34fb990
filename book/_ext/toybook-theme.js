// Plotly figures follow the page's theme. pydata-sphinx-theme sets <html data-theme="light"
// or "dark"> (from the reader's toggle, or the system's setting in "auto"), but plotly draws
// every figure with its light template: white boxes on a dark page. Here each figure's
// backgrounds, text, grid and axis lines, legend and animation controls are redrawn dark in
// dark mode, black marks light, and its own light layout is put back when the reader switches
// to light; the other colours of the data stay. Figures drawn later (by
// a live cell) are themed when they appear. Checked by tests/test_browser.py.
(function () {
  const DARK = {
    paper_bgcolor: "rgba(0,0,0,0)",  // the page itself (toybook-reader.css clears the output box)
    plot_bgcolor: "#1f252d",
    "font.color": "#e4e7eb",
    "legend.bgcolor": "rgba(0,0,0,0)",
    "hoverlabel.bordercolor": "#e4e7eb",
  };
  const AXIS = {gridcolor: "#3a424d", linecolor: "#69727f", zerolinecolor: "#69727f"};
  const CONTROL = {bgcolor: "#2d343e", bordercolor: "#69727f", "font.color": "#e4e7eb"};
  const SLIDER = {...CONTROL, activebgcolor: "#4a5360", tickcolor: "#9aa3ae", "currentvalue.font.color": "#e4e7eb"};

  function isDark() {
    return document.documentElement.dataset.theme === "dark";
  }

  function dig(object, path) {
    return path.split(".").reduce((value, key) => (value == null ? undefined : value[key]), object);
  }

  // the dark values of every setting this figure has (its axes, menus and sliders)
  function darkUpdate(figure) {
    const full = figure._fullLayout, update = {...DARK};
    Object.keys(full).filter((key) => /^[xy]axis\d*$/.test(key)).forEach((axis) => {
      Object.entries(AXIS).forEach(([key, value]) => { update[`${axis}.${key}`] = value; });
    });
    (figure.layout.updatemenus || []).forEach((_, i) => {
      Object.entries(CONTROL).forEach(([key, value]) => { update[`updatemenus[${i}].${key}`] = value; });
    });
    (figure.layout.sliders || []).forEach((_, i) => {
      Object.entries(SLIDER).forEach(([key, value]) => { update[`sliders[${i}].${key}`] = value; });
    });
    return update;
  }

  // black marks (a "now" marker, a reference line) vanish on a dark plot: drawn light there
  const BLACK = /^(black|#000|#000000|rgb\(0, ?0, ?0\))$/i;
  const LIGHT_INK = "#e4e7eb";

  function blackMarks(figure) {
    const traces = [];
    figure.data.forEach((trace, index) => ["marker.color", "line.color"].forEach((path) => {
      if (BLACK.test(String(dig(trace, path)))) traces.push([index, path, dig(trace, path)]);
    }));
    const shapes = (figure.layout.shapes || []).flatMap((shape, index) =>
      BLACK.test(String(dig(shape, "line.color"))) ? [[`shapes[${index}].line.color`, shape.line.color]] : []);
    return {traces, shapes};
  }

  function theme(figure) {
    if (!window.Plotly || !figure._fullLayout) return;
    const wanted = isDark() ? "dark" : "light";
    if ((figure.dataset.toybookTheme || "light") === wanted) return;
    let update, marks;
    if (wanted === "dark") {
      update = darkUpdate(figure);
      // what the figure itself set (null: the template's default), to put back in light mode
      figure.toybookLight = Object.fromEntries(Object.keys(update).map((path) => {
        const value = dig(figure.layout, path.replace(/\[(\d+)\]/g, ".$1"));
        return [path, value === undefined ? null : value];
      }));
      marks = figure.toybookBlack = blackMarks(figure);
      marks.shapes.forEach(([path, colour]) => { figure.toybookLight[path] = colour; update[path] = LIGHT_INK; });
    } else {
      update = figure.toybookLight || {};
      marks = figure.toybookBlack || {traces: []};
    }
    figure.dataset.toybookTheme = wanted;
    marks.traces.forEach(([index, path, colour]) => Plotly.restyle(figure, {[path]: wanted === "dark" ? LIGHT_INK : colour}, [index]));
    Plotly.relayout(figure, update);
  }

  function themeAll() {
    document.querySelectorAll(".plotly-graph-div").forEach(theme);
  }

  function watch() {
    themeAll();
    new MutationObserver(themeAll).observe(document.documentElement, {attributes: true, attributeFilter: ["data-theme"]});
    // a figure drawn after the page loaded: themed once plotly has laid it out
    new MutationObserver((changes) => {
      if (changes.some((change) => [...change.addedNodes].some((node) => node.nodeType === 1 &&
          (node.matches(".plotly-graph-div, .main-svg") || node.querySelector(".plotly-graph-div, .main-svg"))))) {
        themeAll();
      }
    }).observe(document.body, {childList: true, subtree: true});
  }

  if (document.readyState === "complete") watch();
  else window.addEventListener("load", watch);
})();
