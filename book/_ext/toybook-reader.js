// A visible cue above every table and printed output that is wider than the page. The theme
// (pydata-sphinx-theme 0.16, .pst-scrollable-table-container) lets such a table scroll
// sideways, but browsers with overlay scrollbars show the scrollbar only on hover, at the
// bottom of a table that may be taller than the screen: a reader never learns that columns
// are hidden. Checked by tests/test_browser.py (test_no_wide_block_hides_without_a_cue).
(function () {
  const WIDE = ".pst-scrollable-table-container, div.cell_output pre, figure.toybook-circuit";

  function cueText(box) {
    const row = box.querySelector("tr");
    if (row) {
      const edge = box.getBoundingClientRect().right + 1;
      const whole = [...row.cells].filter((cell) => cell.getBoundingClientRect().right <= edge);
      return `↔ This table is wider than the page: ${whole.length} of its ${row.cells.length} ` +
        "columns fit; scroll it sideways for the rest.";
    }
    if (box.matches("figure")) return "↔ This diagram is wider than the page: scroll it sideways to see it whole.";
    return "↔ These lines are wider than the page: scroll sideways to read them whole.";
  }

  function mark() {
    document.querySelectorAll(WIDE).forEach((box) => {
      const wide = box.scrollWidth > box.clientWidth + 1;
      const before = box.previousElementSibling;
      const cue = before && before.classList.contains("toybook-scroll-cue") ? before : null;
      box.classList.toggle("toybook-wide", wide);
      if (wide) {
        box.tabIndex = 0;  // scrollable by keyboard too: a named region, as a focusable box must be
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", box.querySelector("tr") ? "wide table, scrolls sideways"
          : box.matches("figure") ? "wide diagram, scrolls sideways" : "wide output, scrolls sideways");
        const shown = cue || document.createElement("p");
        shown.className = "toybook-scroll-cue";
        shown.textContent = cueText(box);
        if (!cue) box.before(shown);
      } else {
        if (cue) cue.remove();
        if (box.getAttribute("role") === "region") {
          box.removeAttribute("tabindex");
          box.removeAttribute("role");
          box.removeAttribute("aria-label");
        }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", mark);
  window.addEventListener("load", mark);
  window.addEventListener("resize", mark);
})();
