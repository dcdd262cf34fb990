// Plotly figures laid out for the width they are shown at. The chapters lay out each figure
// for a desktop column (about 800 px); on a phone (390 px) plotly shrinks the same layout,
// and titles run off the edge, subplot titles print over each other, legends squeeze the plot
// to a sliver and heatmap cell text shrinks to a few pixels. Here each figure is measured as
// drawn and, only where something does not fit:
// - a grid of subplots whose columns are narrower than MIN_COLUMN px is re-flowed into fewer
//   columns and more rows (subplot titles move with their subplots, the figure grows taller);
// - a legend beside a plot that it squeezes goes below the figure, in rows;
// - the title and subplot titles wrap at words onto as many lines as they need;
// - heatmap cell text smaller than MIN_TEXT px is dropped (its value stays in the hover);
// - tick labels that collide are turned upright (a dozen categories or fewer) or thinned;
// - legend entries wider than the figure wrap; texts stacked over each other (a row's tick
//   labels over the next row's title) get room between them; text past the figure's left or
//   right edge widens the margin on that side.
// What the chapter set is kept, and put back before the figure is fitted again at another
// width (a window resized or turned). Figures drawn later (a live cell) are fitted when they
// appear. Checked by tests/test_browser.py (test_figures_fit_the_page).
(function () {
  const MIN_COLUMN = 110;   // px of plot per subplot column
  const MIN_TEXT = 10;      // px
  const LEGEND_SHARE = 0.3; // a legend beside the plot may take this share of the figure's width
  // the texts a figure's layout places (not the data's): titles, annotations, ticks, colour bars
  const TEXTS = '.g-gtitle text, g.annotation-text-g text, g[class^="x"][class$="tick"] text, g[class^="y"][class$="tick"] text, ' +
    '[class^="g-x"][class$="title"] text, [class^="g-y"][class$="title"] text, .cbtitle text, .cbaxis text';

  function dig(object, path) {
    return path.replace(/\[(\d+)\]/g, ".$1").split(".")
      .reduce((value, key) => (value == null ? undefined : value[key]), object);
  }

  function measure(text, font) {
    const context = (measure.canvas ||= document.createElement("canvas")).getContext("2d");
    context.font = `${font.size || 12}px ${font.family || "sans-serif"}`;
    return context.measureText(text.replace(/<[^>]+>/g, "")).width;
  }

  // a title's words on lines no wider than `width` px (its own <br> kept)
  function wrap(text, font, width) {
    return String(text).split(/<br\s*\/?>/i).map((line) => {
      const lines = [];
      line.split(" ").forEach((word) => {
        const last = lines.length ? `${lines[lines.length - 1]} ${word}` : null;
        if (last !== null && measure(last, font) <= width) lines[lines.length - 1] = last;
        else lines.push(word);
      });
      return lines.join("<br>");
    }).join("<br>");
  }

  const lineCount = (text) => String(text).split(/<br\s*\/?>/i).length;

  // relayout with `update`, remembering what the chapter had set at each path (null: unset)
  function change(figure, update) {
    const wide = figure.toybookWide;
    Object.keys(update).forEach((path) => {
      if (!(path in wide)) {
        const value = dig(figure.layout, path);
        wide[path] = value === undefined ? null : JSON.parse(JSON.stringify(value));
      }
    });
    const box = figure.parentElement;
    if ("height" in update && (figure.toybookBoxHeight !== undefined || /px$/.test(box.style.height))) {
      figure.toybookBoxHeight ??= box.style.height;  // the box plotly's HTML gave the figure grows with it
      box.style.height = `${update.height}px`;
    }
    return Object.keys(update).length ? Plotly.relayout(figure, update) : Promise.resolve();
  }

  function restyle(figure, index, path, value) {
    const key = `${index}:${path}`, wide = figure.toybookWideTraces;
    if (!(key in wide)) {
      const old = dig(figure.data[index], path);
      wide[key] = old === undefined ? null : old;
    }
    return Plotly.restyle(figure, {[path]: [value]}, [index]);
  }

  const round = (value) => Math.round(value * 1000) / 1000;

  // cartesian subplots as {x, y, xd, yd} (axis names and domains), in reading order
  function subplots(figure) {
    const full = figure._fullLayout;
    return ((full._subplots && full._subplots.cartesian) || []).map((id) => {
      const [, x, y] = id.match(/^(x\d*)(y\d*)$/);
      const xname = x.replace("x", "xaxis"), yname = y.replace("y", "yaxis");
      return {x: xname, y: yname, xd: full[xname].domain, yd: full[yname].domain};
    }).sort((a, b) => round(b.yd[1]) - round(a.yd[1]) || a.xd[0] - b.xd[0]);
  }

  // a subplot's title: a paper-anchored annotation centred over it, at its top
  function titleOf(figure, plot) {
    return (figure._fullLayout.annotations || []).map((a, i) => [a, i]).find(([a]) =>
      a.xref === "paper" && a.yref === "paper" && !a.showarrow &&
      Math.abs(a.x - (plot.xd[0] + plot.xd[1]) / 2) < 0.02 && Math.abs(a.y - plot.yd[1]) < 0.05);
  }

  // columns narrower than MIN_COLUMN: the subplots re-flowed into as many columns as fit, with
  // room between the rows for tick labels, axis titles and the next row's (wrapped) titles;
  // what sits outside the plot area in paper units (controls, a legend) keeps its distance
  function reflow(figure) {
    const full = figure._fullLayout, plots = subplots(figure), size = full._size;
    const columns = [...new Set(plots.map((p) => round(p.xd[0])))].length;
    const narrowest = Math.min(...plots.map((p) => (p.xd[1] - p.xd[0]) * size.w));
    if (columns < 2 || narrowest >= MIN_COLUMN) return {};
    const gapX = 0.08, fit = Math.max(1, Math.floor((size.w * (1 + gapX)) / (MIN_COLUMN * 1.4 + gapX * size.w)));
    const k = Math.min(fit, columns - 1), r = Math.ceil(plots.length / k);
    const width = (1 - gapX * (k - 1)) / k;
    const rowHeight = Math.max(150, ...plots.map((p) => (p.yd[1] - p.yd[0]) * size.h));
    const update = {};
    const titled = plots.map((p) => {
      const found = titleOf(figure, p);
      if (!found) return {lines: 0};
      const [a, i] = found, text = wrap(a.text, a.font, width * size.w + 8);
      if (text !== a.text) update[`annotations[${i}].text`] = text;
      return {a, i, lines: lineCount(text), lift: (a.y - p.yd[1]) * size.h, size: (a.font && a.font.size) || 16};
    });
    const below = (p) => 28 + (full[p.x].title && full[p.x].title.text ? 30 : 0);
    const gaps = [...Array(r - 1).keys()].map((row) => 12 + Math.max(...plots.slice(row * k, row * k + k).map(below)) +
      Math.max(0, ...titled.slice((row + 1) * k, (row + 2) * k).map((t) => t.lines * t.size * 1.3)));
    const height = r * rowHeight + gaps.reduce((sum, gap) => sum + gap, 0);
    const grow = Math.max(0, ...titled.slice(0, k).map((t) => (t.a ? (t.lines - lineCount(t.a.text)) * t.size * 1.3 : 0)));
    const first = Math.min(...plots.map((p) => round(p.xd[0])));
    const labelled = plots.some((p) => full[p.x].showticklabels);
    update.height = full.height - size.h + height + grow;
    if (grow) update["margin.t"] = full.margin.t + grow;
    let top = 1;
    plots.forEach((p, n) => {
      const col = n % k, row = Math.floor(n / k);
      if (col === 0 && row > 0) top -= (rowHeight + gaps[row - 1]) / height;
      const xd = [col * (width + gapX), col * (width + gapX) + width];
      update[`${p.x}.domain`] = xd.map(round);
      update[`${p.y}.domain`] = [top - rowHeight / height, top].map(round);
      if (col === 0 && round(p.xd[0]) !== first) update[`${p.y}.showticklabels`] = true;  // it starts a row now
      if (labelled && !full[p.x].showticklabels) update[`${p.x}.showticklabels`] = true;  // no row below it to name them
      const t = titled[n];
      if (t.a) {
        update[`annotations[${t.i}].x`] = round((xd[0] + xd[1]) / 2);
        update[`annotations[${t.i}].y`] = round(top + t.lift / height);
      }
    });
    const keep = (y) => (y < 0 ? (y * size.h) / height : y > 1 ? 1 + ((y - 1) * size.h) / height : y);
    (full.updatemenus || []).forEach((menu, i) => { update[`updatemenus[${i}].y`] = round(keep(menu.y)); });
    (full.sliders || []).forEach((slider, i) => { update[`sliders[${i}].y`] = round(keep(slider.y)); });
    if (full.showlegend && (full.legend.yref || "paper") === "paper" && (full.legend.y < 0 || full.legend.y > 1)) {
      update["legend.y"] = round(keep(full.legend.y));
    }
    return update;
  }

  // a legend beside a plot it squeezes, or over a title or tick labels: below the figure, in
  // rows, the figure taller by the legend's height
  function legend(figure) {
    const box = figure.querySelector("g.legend"), full = figure._fullLayout;
    if (!box || full.legend.yref === "container") return null;
    const area = box.getBoundingClientRect();
    const squeezes = full.legend.orientation !== "h" && area.width > LEGEND_SHARE * full.width;
    const covers = [...figure.querySelectorAll(TEXTS)].some((t) => !box.contains(t) && collide(area, t.getBoundingClientRect()));
    if (!squeezes && !covers) return null;
    return async () => {
      await change(figure, {"legend.orientation": "h", "legend.xref": "container", "legend.x": 0.02,
                            "legend.xanchor": "left", "legend.yref": "container", "legend.y": 0,
                            "legend.yanchor": "bottom"});
      const tall = figure.querySelector("g.legend").getBoundingClientRect().height;
      await change(figure, {height: full.height + tall, "margin.b": full.margin.b + tall});
    };
  }

  // the title and every subplot title on lines that fit; the top margin grows by the lines added
  function titles(figure) {
    const full = figure._fullLayout, update = {};
    let grow = 0;
    subplots(figure).forEach((p) => {
      const found = titleOf(figure, p);
      if (!found) return;
      const [a, i] = found, wrapped = wrap(a.text, a.font, (p.xd[1] - p.xd[0]) * full._size.w + 8);
      if (wrapped === a.text) return;
      update[`annotations[${i}].text`] = wrapped;
      if (p.yd[1] > 0.99) grow = Math.max(grow, (lineCount(wrapped) - lineCount(a.text)) * ((a.font && a.font.size) || 16) * 1.3);
    });
    const title = full.title && full.title.text;
    if (title) {
      const font = full.title.font, wrapped = wrap(title, font, full.width - 40);
      if (wrapped !== title) {
        update["title.text"] = wrapped;
        grow += (lineCount(wrapped) - lineCount(title)) * (font.size || 17) * 1.3;
      }
    }
    if (grow) update["margin.t"] = full.margin.t + grow;
    return update;
  }

  // heatmap cell text under MIN_TEXT px: dropped, the hover keeps the value
  function cellText(figure) {
    const small = [...figure.querySelectorAll(".heatmaplayer text")]
      .some((t) => t.textContent.trim() && parseFloat(getComputedStyle(t).fontSize) < MIN_TEXT);
    if (!small) return [];
    return (figure._fullData || []).filter((trace) => trace.type === "heatmap" && trace.texttemplate)
      .map((trace) => () => restyle(figure, trace.index, "texttemplate", ""));
  }

  function collide(a, b) {
    return a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  }

  // tick labels of one axis that print over each other: a dozen categories or fewer turned
  // upright, more thinned to every other tick, until none collide
  function ticks(figure) {
    const full = figure._fullLayout, update = {};
    Object.keys(full).filter((key) => /^[xy]axis\d*$/.test(key)).forEach((name) => {
      const axis = full[name], id = axis._id;
      const labels = [...figure.querySelectorAll(`g.${id}tick text, .${id}tick text`)]
        .map((t) => t.getBoundingClientRect()).filter((r) => r.width > 0)
        .sort((a, b) => a.left - b.left || a.top - b.top);
      if (!labels.some((r, i) => i > 0 && collide(labels[i - 1], r))) return;
      if (axis.type === "category" && axis.tickangle !== -90 && axis._categories.length <= 12) {
        update[`${name}.tickangle`] = -90;  // few categories: every label kept, upright
      } else if (Array.isArray(axis.tickvals) && axis.tickvals.length > 2) {
        update[`${name}.tickvals`] = axis.tickvals.filter((_, i) => i % 2 === 0);
        if (Array.isArray(axis.ticktext)) update[`${name}.ticktext`] = axis.ticktext.filter((_, i) => i % 2 === 0);
      } else if (axis.type === "category" || axis.type === "multicategory") {
        update[`${name}.dtick`] = 2 * (axis.dtick || 1);
      } else {
        update[`${name}.nticks`] = Math.max(2, Math.floor(labels.length / 2));
      }
    });
    return update;
  }

  // legend entries wider than the figure: their names wrap
  function legendNames(figure) {
    const full = figure._fullLayout, font = (full.legend && full.legend.font) || full.font, room = full.width - 70;
    return (figure.data || []).map((trace, index) => [trace, index])
      .filter(([trace]) => trace.name && trace.showlegend !== false && measure(String(trace.name), font) > room)
      .map(([trace, index]) => () => restyle(figure, index, "name", wrap(trace.name, font, room)));
  }

  // text past the figure's edge (a last tick label, a colour bar's): the margin on that side grows
  function edges(figure) {
    const frame = figure.getBoundingClientRect(), full = figure._fullLayout, update = {};
    const boxes = [...figure.querySelectorAll("svg.main-svg text")].filter((t) => t.textContent.trim() &&
      !t.closest(".hoverlayer")).map((t) => t.getBoundingClientRect()).filter((r) => r.width > 0);
    const right = Math.max(0, ...boxes.map((r) => r.right - frame.right));
    const left = Math.max(0, ...boxes.map((r) => frame.left - r.left));
    if (right > 0.5) update["margin.r"] = full.margin.r + Math.ceil(right) + 4;
    if (left > 0.5) update["margin.l"] = full.margin.l + Math.ceil(left) + 4;
    return update;
  }

  // a subplot's title under text above it (the tick labels or axis title of the row above):
  // room made between them, all below moving down, the figure taller
  function stacked(figure) {
    const top = figure.getBoundingClientRect().top, boxes = (selector) => [...figure.querySelectorAll(selector)]
      .filter((t) => t.textContent.trim()).map((t) => t.getBoundingClientRect()).filter((r) => r.width > 0);
    const titles = boxes("g.annotation-text-g text"), texts = boxes(TEXTS);
    let found = null;
    titles.forEach((lower) => texts.forEach((upper) => {
      if (upper.top > lower.top - 4 || upper.bottom - lower.top < 3 || !collide(upper, lower)) return;
      const at = lower.top - top - 1;
      if (!found || at < found.at) found = {at, push: upper.bottom - lower.top + 6};
    }));
    return found;
  }

  function makeRoom(figure, at, push) {
    const full = figure._fullLayout, size = full._size, high = size.h + push, update = {height: full.height + push};
    const move = (y) => {
      const px = size.t + (1 - y) * size.h;
      return round(1 - ((px >= at ? px + push : px) - size.t) / high);
    };
    Object.keys(full).filter((key) => /^yaxis\d*$/.test(key)).forEach((name) => {
      update[`${name}.domain`] = full[name].domain.map(move);
    });
    (full.annotations || []).forEach((a, i) => {
      if (a.yref === "paper") update[`annotations[${i}].y`] = move(a.y);
    });
    (full.updatemenus || []).forEach((menu, i) => { update[`updatemenus[${i}].y`] = move(menu.y); });
    (full.sliders || []).forEach((slider, i) => { update[`sliders[${i}].y`] = move(slider.y); });
    if (full.showlegend && (full.legend.yref || "paper") === "paper") update["legend.y"] = move(full.legend.y);
    return update;
  }

  async function fit(figure) {
    if (!window.Plotly || !figure._fullLayout || figure.toybookFitting) return;
    const width = figure.getBoundingClientRect().width;
    if (Number(figure.dataset.toybookFit) === Math.round(width)) return;
    if (width === 0) {  // not shown (a folded block): fitted when the window next changes
      figure.dataset.toybookFit = 0;
      return;
    }
    figure.toybookFitting = true;
    try {
      if (figure.toybookBoxHeight !== undefined) figure.parentElement.style.height = figure.toybookBoxHeight;
      if (figure.toybookWide && Object.keys(figure.toybookWide).length) await Plotly.relayout(figure, figure.toybookWide);
      for (const [key, value] of Object.entries(figure.toybookWideTraces || {})) {
        const [index, path] = key.split(":");
        await Plotly.restyle(figure, {[path]: [value]}, [Number(index)]);
      }
      figure.toybookWide = {};
      figure.toybookWideTraces = {};
      await Plotly.Plots.resize(figure);  // plotly's own resize may not have run yet
      await change(figure, reflow(figure));
      await change(figure, titles(figure));
      for (const job of cellText(figure)) await job();
      for (const job of legendNames(figure)) await job();
      for (let pass = 0; pass < 4; pass++) {
        const update = ticks(figure);
        if (!Object.keys(update).length) break;
        await change(figure, update);
      }
      for (let pass = 0, last = null; pass < 8; pass++) {
        const room = stacked(figure);
        if (!room || (last && Math.abs(room.at - last.at) < 1 && room.push >= last.push)) break;  // no headway
        await change(figure, makeRoom(figure, room.at, room.push));
        last = room;
      }
      const moveLegend = legend(figure);  // last: the steps above move what it may cover
      if (moveLegend) await moveLegend();
      await change(figure, edges(figure));
      figure.dataset.toybookFit = Math.round(figure.getBoundingClientRect().width);
    } finally {
      figure.toybookFitting = false;
    }
  }

  function fitAll() {
    return Promise.all([...document.querySelectorAll(".plotly-graph-div")].map(fit));
  }

  function watch() {
    fitAll();
    let timer = null;
    window.addEventListener("resize", () => {
      clearTimeout(timer);
      timer = setTimeout(fitAll, 250);  // after plotly's own resize
    });
    new MutationObserver((changes) => {
      if (changes.some((change) => [...change.addedNodes].some((node) => node.nodeType === 1 &&
          (node.matches(".plotly-graph-div, .main-svg") || node.querySelector(".plotly-graph-div, .main-svg"))))) {
        fitAll();
      }
    }).observe(document.body, {childList: true, subtree: true});
  }

  if (document.readyState === "complete") watch();
  else window.addEventListener("load", watch);
})();
