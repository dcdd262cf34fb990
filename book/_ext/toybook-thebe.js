/*
 * Live cells with Thebe 0.9 behind sphinx-thebe 0.3 (which was written for Thebe 0.8).
 *
 * The theme's "Live Code" button calls window.initThebe(); this file replaces that
 * function once the page has loaded. It
 *  - loads Thebe from the site itself (THEBE_JS_URL, rewritten at build time);
 *  - gives every code cell an output slot: Thebe 0.9 pairs the i-th cell with the i-th
 *    output, so a cell without output would shift all later outputs;
 *  - connects to a local Jupyter server when the page defines window.TOYBOOK_LIVE
 *    ({baseUrl, wsUrl, token}, injected by toybook.live / `make live`), and to Binder otherwise;
 *  - runs the cells tagged thebe-init once the kernel is ready, then reports status on
 *    the launch button; window.toybookThebe.ready resolves when that is done.
 */
(function () {
  "use strict";

  function launchButton() {
    return document.querySelector(".thebe-launch-button");
  }

  function say(text) {
    var button = launchButton();
    if (button) button.textContent = text;
  }

  function giveEveryCellAnOutput() {
    document.querySelectorAll(thebe_selector).forEach(function (cell) {
      if (!cell.querySelector(thebe_selector_output)) {
        var output = document.createElement("div");
        output.className = "cell_output docutils container";
        cell.appendChild(output);
      }
    });
  }

  function serverOptions() {
    var live = window.TOYBOOK_LIVE;
    var options = { mathjaxUrl: "", requestKernel: true };
    if (live) {
      options.useBinder = false;
      options.serverSettings = { baseUrl: live.baseUrl, wsUrl: live.wsUrl, token: live.token };
      options.kernelOptions = { kernelName: kernelName, path: live.kernelPath || "" };
    } else {
      options.useBinder = true;
    }
    return options;
  }

  function runInitCells() {
    var buttons = [];
    document.querySelectorAll(".tag_thebe-init").forEach(function (cell) {
      var button = cell.querySelector(".thebe-run-button");
      if (button) buttons.push(button);
    });
    buttons.forEach(function (button) { button.click(); });
    return buttons.length;
  }

  function start() {
    giveEveryCellAnOutput();
    modifyDOMForThebe();
    var live = window.TOYBOOK_LIVE;
    say(live ? "Connecting to the local Jupyter server…" : "Launching from mybinder.org…");
    window.thebe.on("status", function (name, data) {
      if (data && data.status) say((live ? "local server: " : "mybinder.org: ") + data.status);
    });
    return window.thebelab.bootstrap(serverOptions()).then(function (started) {
      if (!started || !started.session) throw new Error("Thebe started no kernel session");
      var n = runInitCells();
      say("Live: kernel ready" + (n ? ", " + n + " setup cell(s) run" : ""));
      return started;
    });
  }

  function load() {
    return new Promise(function (resolve, reject) {
      if (typeof window.thebelab !== "undefined") return resolve();
      var script = document.createElement("script");
      script.src = THEBE_JS_URL;
      script.addEventListener("load", function () { resolve(); });
      script.addEventListener("error", function () { reject(new Error("could not load " + THEBE_JS_URL)); });
      document.head.appendChild(script);
      var css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = THEBE_JS_URL.replace(/index\.js$/, "thebe.css");
      document.head.appendChild(css);
    });
  }

  function initThebe() {
    if (window.toybookThebe.ready) return window.toybookThebe.ready;
    say("Loading Thebe…");
    window.toybookThebe.ready = load().then(start).catch(function (error) {
      say("Live code failed: " + error.message);
      console.warn("[toybook-thebe]", error);
      throw error;
    });
    return window.toybookThebe.ready;
  }

  window.toybookThebe = { ready: null, init: initThebe };
  window.addEventListener("load", function () { window.initThebe = initThebe; });
})();
