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
 *    the launch button; window.toybookThebe.ready resolves when that is done;
 *  - fails well: where the server cannot be reached (checked first, within PROBE_MS) or
 *    Thebe reports an error, the page says what happened and what to do instead (`make
 *    live`, or the page's notebook in Colab), the cells go back to their static, executed
 *    form, and ready resolves to null (no uncaught error).
 */
(function () {
  "use strict";

  var PROBE_MS = 8000;

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

  function binderUrl() {
    var config = document.querySelector('script[type="text/x-thebe-config"]');
    var match = config && config.textContent.match(/binderUrl["']?\s*:\s*["']([^"']+)/);
    return match ? match[1] : "https://mybinder.org";
  }

  /* Reject, with what happened in words, where the server does not answer at all (no
     network, a blocked host, a local server that is not running); an answer of any kind,
     even one the page may not read, resolves. */
  function probe(url, what) {
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, PROBE_MS);
    return fetch(url, { mode: "no-cors", cache: "no-store", signal: controller.signal })
      .then(function () { clearTimeout(timer); }, function (error) {
        clearTimeout(timer);
        throw new Error(what + (error && error.name === "AbortError"
          ? " did not answer within " + PROBE_MS / 1000 + " s"
          : " cannot be reached (no network, or the address is blocked)"));
      });
  }

  /* Each code cell as the page was built (executed, with its output), to put back if the
     kernel cannot start: Thebe turns the cells into editors before it connects. */
  function keepStaticCells() {
    return Array.prototype.map.call(document.querySelectorAll(thebe_selector), function (cell) {
      return { cell: cell, copy: cell.cloneNode(true) };
    });
  }

  function start(kept) {
    var live = window.TOYBOOK_LIVE;
    var server = live ? "The local Jupyter server (" + live.baseUrl + ")" : "mybinder.org (" + binderUrl() + ")";
    say(live ? "Connecting to the local Jupyter server…" : "Launching from mybinder.org…");
    var address = live ? live.baseUrl.replace(/\/?$/, "/") + "api/status?token=" + encodeURIComponent(live.token || "")
      : binderUrl();
    return probe(address, server).then(function () {
      kept.push.apply(kept, keepStaticCells());
      giveEveryCellAnOutput();
      modifyDOMForThebe();
      var failed = new Promise(function (resolve, reject) {
        window.thebe.on("error", function (name, data) {  // not a warning, nor a cell's own error
          if (data && (data.status === "warning" || data.status === "execute-error")) return;
          reject(new Error(server + " reported: " + ((data && data.message) || "an error")));
        });
      });
      window.thebe.on("status", function (name, data) {
        if (data && data.status) say((live ? "local server: " : "mybinder.org: ") + data.status);
      });
      return Promise.race([window.thebelab.bootstrap(serverOptions()), failed]);
    }).catch(function (error) {
      var message = (error && error.message) || String(error);
      throw new Error(message.indexOf(server) === 0 ? message : server + " could not start a kernel: " + message);
    }).then(function (started) {
      if (!started || !started.session) throw new Error(server + " started no kernel");
      var n = runInitCells();
      say("Live: kernel ready" + (n ? ", " + n + " setup cell(s) run" : ""));
      return started;
    });
  }

  function colabUrl() {
    var link = document.querySelector('a[href*="colab.research.google.com"]');
    return link ? link.href : null;
  }

  /* The page as it was built, and a note at the top of the article: what happened, and
     what to do instead. */
  function fail(error, kept) {
    kept.forEach(function (pair) { if (pair.cell.isConnected) pair.cell.replaceWith(pair.copy); });
    var reason = error && error.message ? error.message : String(error);
    var note = document.getElementById("toybook-live-failed") || document.createElement("div");
    note.id = "toybook-live-failed";
    note.className = "admonition warning";
    note.setAttribute("role", "alert");
    note.innerHTML = "";
    var title = document.createElement("p");
    title.className = "admonition-title";
    title.textContent = "Live code could not start";
    var what = document.createElement("p");
    what.textContent = reason + ". The cells below are back as the book was built: their " +
      "outputs are real, computed when the page was made.";
    var instead = document.createElement("p");
    instead.append("To run them, clone the repository and run ");
    var command = document.createElement("code");
    command.textContent = "make live";
    instead.append(command, " (the book on a local Jupyter server)");
    var colab = colabUrl();
    if (colab) {
      var link = document.createElement("a");
      link.href = colab;
      link.textContent = "this page's notebook in Colab";
      instead.append(", or open ", link);
    }
    instead.append(".");
    note.append(title, what, instead);
    if (!note.isConnected) {  // under the title, and the launch button where the theme put one there
      var title = document.querySelector("article h1") || document.querySelector("h1");
      var after = title && title.nextElementSibling && title.nextElementSibling.matches(".thebe-launch-button")
        ? title.nextElementSibling : title;
      if (after) after.after(note); else document.body.prepend(note);
    }
    say("Live code unavailable");
    console.info("[toybook-thebe] live code could not start: " + reason);
    return null;
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
    var kept = [];
    window.toybookThebe.ready = load().then(function () { return start(kept); })
      .catch(function (error) { return fail(error, kept); });
    return window.toybookThebe.ready;
  }

  window.toybookThebe = { ready: null, init: initThebe };
  window.addEventListener("load", function () { window.initThebe = initThebe; });
})();
