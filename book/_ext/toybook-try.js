// "Try the model": each chapter's trained models run in the reader's browser with
// onnxruntime-web (WebAssembly), with no kernel and no server. A widget is a
// <div class="toybook-try" data-spec="..."> written by toybook.browser.try_it; its spec
// names the task, the models (ONNX graphs exported at build time by toybook.export) and,
// for an exercise, the goal the page checks. The task's own form (fields, how they become
// tokens, the right answers) is registered by src/toybook/tasks/NAME/widget.js, appended
// to this file at build time. The runtime is fetched only when a reader opens a widget.
// tests/test_try_it.py holds run() to the package's torch models.
(function () {
  "use strict";
  const here = new URL(".", document.currentScript.src);
  const tasks = {};
  const sessions = {};
  let runtime = null;

  function loadRuntime() {
    if (!runtime) {
      runtime = new Promise((resolve, reject) => {
        const tag = document.createElement("script");
        tag.src = new URL("ort/ort.wasm.min.js", here).href;
        tag.onload = () => {
          window.ort.env.wasm.wasmPaths = new URL("ort/", here).href;
          window.ort.env.wasm.numThreads = 1;  // no cross-origin isolation on a static site
          resolve(window.ort);
        };
        tag.onerror = () => { runtime = null; reject(new Error("the model runtime (ort/ort.wasm.min.js) could not be loaded")); };
        document.head.appendChild(tag);
      });
    }
    return runtime;
  }

  // The model's bytes are fetched while the runtime loads.
  async function session(model) {
    if (!sessions[model.file]) {
      const bytes = fetch(new URL(`../toybook-models/${model.file}`, here)).then((response) => {
        if (!response.ok) throw new Error(`the model ${model.file} could not be loaded (${response.status})`);
        return response.arrayBuffer();
      });
      sessions[model.file] = Promise.all([loadRuntime(), bytes]).then(([ort, buffer]) =>
        ort.InferenceSession.create(new Uint8Array(buffer), {executionProviders: ["wasm"], graphOptimizationLevel: "basic"}));
      sessions[model.file].catch(() => { delete sessions[model.file]; });
    }
    return sessions[model.file];
  }

  // rows: equal-length token lists (n_ctx each); off: names such as "L1H0", "MLP0".
  // Returns logits [B, T, V] and pattern [B, L, H, T, T] as flat Float32Arrays with dims.
  async function run(model, rows, off = []) {
    const live = await session(model);  // the runtime and the model's bytes, fetched together
    const ort = await loadRuntime();
    const T = rows[0].length;
    const tokens = new BigInt64Array(rows.length * T);
    rows.forEach((row, b) => row.forEach((token, t) => { tokens[b * T + t] = BigInt(token); }));
    const head = new Float32Array(model.n_layers * model.n_heads).fill(1);
    const mlp = new Float32Array(model.n_layers).fill(1);
    for (const name of off) {
      const h = /^L(\d+)H(\d+)$/.exec(name), m = /^MLP(\d+)$/.exec(name);
      if (h && +h[1] < model.n_layers && +h[2] < model.n_heads) head[+h[1] * model.n_heads + +h[2]] = 0;
      else if (m && model.mlp && +m[1] < model.n_layers) mlp[+m[1]] = 0;
      else throw new Error(`model ${model.name} has no component ${name}`);
    }
    const feeds = {
      tokens: new ort.Tensor("int64", tokens, [rows.length, T]),
      head_scale: new ort.Tensor("float32", head, [model.n_layers, model.n_heads]),
    };
    if (model.mlp) feeds.mlp_scale = new ort.Tensor("float32", mlp, [model.n_layers]);
    const out = await live.run(feeds);
    return {logits: out.logits.data, logitsDims: out.logits.dims, pattern: out.pattern.data, patternDims: out.pattern.dims};
  }

  // ---- what a task's input means -------------------------------------------------------
  function parseField(field, text) {
    const range = `a whole number from ${field.min} to ${field.max}`;
    if (field.kind === "int") {
      const t = text.trim();
      if (!/^\d+$/.test(t) || +t < field.min || +t > field.max) throw new Error(`${field.label} must be ${range}; got “${t || "nothing"}”`);
      return +t;
    }
    const t = text.trim();
    let parts = t.split(/[\s,;\[\]]+/).filter((s) => s.length);
    if (field.max < 10 && parts.length === 1 && /^\d+$/.test(parts[0])) parts = parts[0].split("");
    const [low, high] = field.length;
    const count = low === high ? `exactly ${low}` : `${low} to ${high}`;
    if (parts.length < low || parts.length > high) throw new Error(`${field.label} must have ${count} values, each ${range}; got ${parts.length}`);
    return parts.map((part, i) => {
      if (!/^\d+$/.test(part) || +part < field.min || +part > field.max) throw new Error(`value ${i + 1} of ${field.label} must be ${range}; got “${part}”`);
      return +part;
    });
  }
  const showField = (field, value) => (field.kind === "int" ? String(value) : value.join(field.max < 10 ? " " : ", "));

  function softmax(values) {
    const top = Math.max(...values), exps = values.map((v) => Math.exp(v - top));
    const total = exps.reduce((a, b) => a + b, 0);
    return exps.map((e) => e / total);
  }

  // The model's own answer: answer tokens the format feeds back are the model's own, each
  // written from the question and the model's answers before it (greedy). The right answers
  // go in first; a run confirms every answer up to the first the model would write
  // differently, which is put in for the next run, so a right answer takes one run.
  async function answer(spec, model, encoded, off) {
    const T = spec.n_ctx, length = encoded.tokens.length;
    const row = encoded.tokens.concat(new Array(T - length).fill(0));
    const [start, stop] = spec.answers;
    const count = Math.min(stop, length) - start, V = model.d_vocab_out;
    let result = null;
    const argmax = (position) => {
      const logits = Array.from(result.logits.subarray(position * V, (position + 1) * V));
      return logits.indexOf(Math.max(...logits));
    };
    for (let first = 0; ;) {
      result = await run(model, [row], off);
      if (!spec.fed_back) break;
      while (first < count && argmax(start + first) === row[start + first + 1]) first++;
      if (first === count) break;
      row[start + first + 1] = argmax(start + first);
    }
    const positions = Array.from({length: count}, (_, i) => start + i);
    const probs = positions.map((p) => softmax(Array.from(result.logits.subarray(p * V, (p + 1) * V))));
    const predicted = positions.map(argmax);
    const shown = spec.shown === "last" ? [count - 1] : positions.map((_, i) => i);
    return {row, length, positions, probs, predicted, pattern: result.pattern,
            right: shown.every((i) => predicted[i] === encoded.targets[i])};
  }

  // ---- drawing -------------------------------------------------------------------------
  const dark = () => document.documentElement.dataset.theme === "dark";
  function colour(value) {
    const [from, to] = dark() ? [[31, 37, 45], [138, 180, 248]] : [[255, 255, 255], [23, 64, 140]];
    return `rgb(${from.map((c, i) => Math.round(c + (to[i] - c) * value)).join(",")})`;
  }

  // room: the canvas's width in CSS pixels; token labels only where a cell can hold them
  function drawHead(canvas, pattern, offset, T, length, labels, room) {
    let margin = length <= 24 ? 44 : 4;
    let cell = Math.floor((room - margin) / length);
    if (cell < 9) {
      margin = 4;
      cell = Math.floor((room - margin) / length);
    }
    cell = Math.max(1, Math.min(36, cell));
    const size = margin + cell * length;
    const ratio = window.devicePixelRatio || 1;
    canvas.width = size * ratio;
    canvas.height = size * ratio;
    canvas.style.width = `${size}px`;
    canvas.style.height = `${size}px`;
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, size, size);
    for (let q = 0; q < length; q++) {
      for (let k = 0; k < length; k++) {
        g.fillStyle = k > q ? (dark() ? "#14181d" : "#f3f4f6") : colour(pattern[offset + q * T + k]);
        g.fillRect(margin + k * cell, margin + q * cell, cell, cell);
      }
    }
    if (margin > 4) {
      g.fillStyle = dark() ? "#e4e7eb" : "#1f2328";
      g.font = "10px sans-serif";
      g.textAlign = "right";
      g.textBaseline = "middle";
      labels.slice(0, length).forEach((label, i) => g.fillText(label, margin - 3, margin + (i + 0.5) * cell));
      labels.slice(0, length).forEach((label, i) => {
        g.save();
        g.translate(margin + (i + 0.5) * cell, margin - 3);
        g.rotate(-Math.PI / 2);
        g.textAlign = "left";
        g.fillText(label, 0, 0);
        g.restore();
      });
    }
  }

  function element(tag, attributes = {}, text) {
    const node = document.createElement(tag);
    Object.entries(attributes).forEach(([key, value]) => node.setAttribute(key, value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- one widget ----------------------------------------------------------------------
  let counter = 0;
  function build(root) {
    const spec = JSON.parse(root.dataset.spec);
    const task = tasks[spec.task];
    const id = `toybook-try-${++counter}`;
    const state = {model: spec.models.find((m) => m.name === spec.model) || spec.models[0], off: new Set(), timings: [], goalMet: false};
    root.toybookTry = state;
    root.replaceChildren();
    const intro = element("p", {class: "toybook-try-intro"});
    intro.append(element("strong", {}, "Try the model. "),
                 `Runs the trained ${spec.task} model in this page; the runtime loads when you press the button.`);
    const open = element("button", {type: "button", class: "toybook-try-open", "aria-expanded": "false", "aria-controls": `${id}-body`}, "Run the model in your browser");
    const body = element("div", {class: "toybook-try-body", id: `${id}-body`, hidden: ""});
    root.append(intro, open, body);

    const form = element("form", {class: "toybook-try-form", novalidate: ""});
    const choose = element("label", {}, "Model ");
    const select = element("select", {name: "model"});
    spec.models.forEach((m) => select.append(element("option", {value: m.name}, m.name)));
    select.value = state.model.name;
    choose.append(select);
    form.append(choose);
    const inputs = {};
    task.fields.forEach((field) => {
      const label = element("label", {});
      const hint = field.kind === "int" ? `${field.min}–${field.max}` : `${field.length[0] === field.length[1] ? field.length[0] : `${field.length[0]}–${field.length[1]}`} values, ${field.min}–${field.max}`;
      label.append(`${field.label} `, element("span", {class: "toybook-try-hint"}, `(${hint}) `));
      const input = element("input", {type: "text", name: field.name, inputmode: field.kind === "int" ? "numeric" : "text",
                                        autocomplete: "off", spellcheck: "false", "aria-describedby": `${id}-error`,
                                        class: field.kind === "list" && field.length[1] > 10 ? "toybook-try-long" : ""});
      input.value = showField(field, field.value);
      label.append(input);
      inputs[field.name] = input;
      form.append(label);
    });
    const go = element("button", {type: "submit"}, "Answer");
    form.append(go);
    const error = element("p", {class: "toybook-try-error", id: `${id}-error`, role: "alert"});
    const switches = element("fieldset", {class: "toybook-try-switches"});
    const result = element("div", {class: "toybook-try-result", "aria-live": "polite"});
    const heads = element("div", {class: "toybook-try-heads"});
    const goal = spec.goal ? element("p", {class: "toybook-try-goal", "aria-live": "polite"}) : null;
    body.append(form, error, switches, result, heads);
    if (goal) body.append(goal);

    function buildSwitches() {
      switches.replaceChildren(element("legend", {}, "Components (clear a box to zero-ablate it)"));
      state.off.clear();
      const m = state.model;
      for (let l = 0; l < m.n_layers; l++) {
        const names = Array.from({length: m.n_heads}, (_, h) => `L${l}H${h}`);
        if (m.mlp) names.push(`MLP${l}`);
        names.forEach((name) => {
          const label = element("label", {});
          const box = element("input", {type: "checkbox", name, checked: ""});
          box.addEventListener("change", () => { box.checked ? state.off.delete(name) : state.off.add(name); update(); });
          label.append(box, ` ${name}`);
          switches.append(label);
        });
      }
    }

    function read() {
      const values = {};
      Object.values(inputs).forEach((input) => input.removeAttribute("aria-invalid"));
      for (const field of task.fields) {
        try {
          values[field.name] = parseField(field, inputs[field.name].value);
        } catch (e) {
          inputs[field.name].setAttribute("aria-invalid", "true");
          throw e;
        }
      }
      return values;
    }

    let pending = Promise.resolve();
    function update() {
      pending = pending.then(render).catch((e) => { error.textContent = `The model could not run here: ${e.message}`; });
      return pending;
    }

    async function render() {
      let values;
      try {
        values = read();
      } catch (e) {
        error.textContent = e.message;
        result.classList.add("toybook-try-stale");
        heads.classList.add("toybook-try-stale");
        if (goal) checkGoal(null);
        return;
      }
      error.textContent = "";
      const began = performance.now();
      const encoded = task.encode(values);
      const off = Array.from(state.off);
      const got = await answer(spec, state.model, encoded, off);
      const whole = off.length ? await answer(spec, state.model, encoded, []) : got;
      state.timings.push(performance.now() - began);
      state.last = {values, encoded, got, whole, off};
      showResult(encoded, got, whole, off);
      drawHeads(got);
      result.classList.remove("toybook-try-stale");
      heads.classList.remove("toybook-try-stale");
      if (goal) checkGoal(state.last);
    }

    function answerText(got) {
      const shown = spec.shown === "last" ? got.predicted.slice(-1) : got.predicted;
      return task.answer(shown);
    }

    function showResult(encoded, got, whole, off) {
      const right = task.answer(spec.shown === "last" ? encoded.targets.slice(-1) : encoded.targets);
      const lines = [];
      const verdict = `wrong (the right answer: ${right})`;
      const head = element("p", {class: "toybook-try-answer"});
      head.append(element("strong", {}, off.length ? `With ${off.join(", ")} off: ` : "The model's answer: "),
                  `${answerText(got)} `, element("span", {class: got.right ? "toybook-try-right" : "toybook-try-wrong"}, got.right ? "✓ right" : `✗ ${verdict}`));
      lines.push(head);
      if (off.length) {
        lines.push(element("p", {}, `The whole model: ${answerText(whole)} (${whole.right ? "right" : "wrong"}).`));
      }
      const table = element("table", {class: "toybook-try-probs"});
      table.append(element("caption", {}, "Probabilities at each answer position"));
      const header = element("tr");
      ["answer", "model's choice", "runner-up", "right"].forEach((t) => header.append(element("th", {scope: "col"}, t)));
      table.append(header);
      const indices = spec.shown === "last" ? [got.positions.length - 1] : got.positions.map((_, i) => i);
      indices.forEach((i) => {
        const probs = got.probs[i];
        const order = probs.map((p, v) => [p, v]).sort((a, b) => b[0] - a[0]);
        const row = element("tr");
        const target = encoded.targets[i];
        row.append(element("th", {scope: "row"}, spec.answer_names[got.positions[i] - spec.answers[0]]),
                   element("td", {}, `${order[0][1]} (${(100 * order[0][0]).toFixed(1)}%)`),
                   element("td", {}, `${order[1][1]} (${(100 * order[1][0]).toFixed(1)}%)`),
                   element("td", {}, `${target}${order[0][1] === target ? "" : ` (${(100 * probs[target]).toFixed(1)}%)`}`));
        table.append(row);
      });
      result.replaceChildren(...lines, table);
    }

    function drawHeads(got) {
      const m = state.model, T = spec.n_ctx, length = got.length;
      const labels = got.row.slice(0, length).map((token, i) => (spec.slot_separator[i] ? spec.slot_names[i] : `${spec.slot_names[i]}=${token}`));
      const query = got.positions[spec.shown === "last" ? got.positions.length - 1 : 0];
      heads.replaceChildren();
      const room = (heads.clientWidth || 600) < 560 ? (heads.clientWidth - 28) / 2 : 284;
      for (let l = 0; l < m.n_layers; l++) {
        for (let h = 0; h < m.n_heads; h++) {
          const offset = (l * m.n_heads + h) * T * T;
          const row = Array.from(got.pattern.subarray(offset + query * T, offset + query * T + query + 1));
          const top = row.indexOf(Math.max(...row));
          const name = `L${l}H${h}`;
          const figure = element("figure", {});
          const canvas = element("canvas", {role: "img", "aria-label":
            `Attention of head ${name}, rows are queries and columns keys over ${length} positions; from ${labels[query]} it attends most to ${labels[top]} (${(100 * row[top]).toFixed(0)}%)${state.off.has(name) ? "; this head is switched off, so its output is not used" : ""}`});
          drawHead(canvas, got.pattern, offset, T, length, labels, room);
          figure.style.width = `max(${canvas.style.width}, 9rem)`;
          figure.append(canvas, element("figcaption", {}, `${name}${state.off.has(name) ? " (off)" : ""}: from ${labels[query]}, most to ${labels[top]} (${(100 * row[top]).toFixed(0)}%)`));
          heads.append(figure);
        }
      }
      state.drawn = got;
    }

    function checkGoal(last) {
      const g = spec.goal;
      const wanted = new Set(g.off);
      const setup = last && last.off.length === wanted.size && last.off.every((n) => wanted.has(n)) &&
                    (!g.model || state.model.name === g.model);
      let met = false;
      if (setup) {
        if (g.expect === "right") met = last.got.right;
        else if (g.expect === "wrong") met = !last.got.right;
        else if (g.expect === "changes") met = answerText(last.got) !== answerText(last.whole);
      }
      state.goalMet = met;
      goal.className = `toybook-try-goal ${met ? "toybook-try-right" : ""}`;
      goal.textContent = met ? `✓ Exercise solved: ${g.solved}` :
        `Exercise: ${g.text}${setup ? " Not yet: try another input." : ` (Switch off exactly ${g.off.join(", ")}${g.model ? ` on model ${g.model}` : ""}.)`}`;
    }

    select.addEventListener("change", () => {
      state.model = spec.models.find((m) => m.name === select.value);
      buildSwitches();
      update();
    });
    form.addEventListener("submit", (event) => { event.preventDefault(); update(); });
    Object.values(inputs).forEach((input) => input.addEventListener("input", () => update()));
    new MutationObserver(() => { if (state.drawn) drawHeads(state.drawn); })
      .observe(document.documentElement, {attributes: true, attributeFilter: ["data-theme"]});

    open.addEventListener("click", async () => {
      const opening = body.hidden;
      body.hidden = !opening;
      open.setAttribute("aria-expanded", String(opening));
      open.textContent = opening ? "Hide the model" : "Run the model in your browser";
      if (!opening || state.opened) return;
      state.opened = performance.now();
      buildSwitches();
      result.textContent = "Loading the runtime and the model…";
      await update();
      state.firstAnswer = performance.now() - state.opened;
    });
  }

  window.toybookTry = {
    register: (name, task) => { tasks[name] = task; },
    tasks, run, answer,
    loaded: () => runtime !== null,
  };
  const start = () => document.querySelectorAll("div.toybook-try").forEach(build);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else setTimeout(start, 0);  // after the tasks appended to this file have registered
})();
