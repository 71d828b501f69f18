"use strict";
const $ = id => document.getElementById(id), pad = $("pad"), ink = pad.getContext("2d");
let model = null, answer = null, unit = null;  // the weights, the last reply, the unit shown
let drawn = false, busy = false, again = false, timer = null, version = 0, fetched = 0;
let fooling = false;  // after "Fool it", every answer comes with its fooled image
const LAB = null;  // the form's flags and the lessons: the server writes them in as it sends this file
let runs = [], selected = null, following = true;  // GET /runs; the run shown below; newest?
const progress = {}, hidden = new Set();  // each run's latest /progress; runs not drawn
const base = () => `/runs/${selected}`;  // the selected run's routes
const COLOURS = ["#2f6fd0", "#e0302a", "#2a9d3a", "#8a3fd0", "#e08a00", "#00a0b0", "#d03f8a",
                 "#6b6b00", "#7a4a2a", "#555555"];
const colour = id => COLOURS[(id - 1) % COLOURS.length];

function bars(parent, signed) {  // ten rows of digit, bar, number; returns their setter
  const rows = [...Array(10)].map((_, k) => parent.appendChild(Object.assign(
    document.createElement("div"),
    {innerHTML: `<b>${k}</b><span class="track"><i></i></span><span></span>`})));
  return values => {
    const top = signed ? 2 * Math.max(...values.map(Math.abs), 1e-9) : 1;  // signed: from 50%
    values.forEach((v, k) => {
      const width = 100 * Math.abs(v) / top, left = signed ? (v < 0 ? 50 - width : 50) : 0;
      Object.assign(rows[k].querySelector("i").style, {
        width: width + "%", left: left + "%", background: signed && v > 0 ? "#e0302a" : ""});
      rows[k].lastChild.textContent = signed ? v.toFixed(2) : (100 * v).toFixed(1) + "%";
    });
  };
}
const showProbabilities = bars($("probabilities"), false), showOutgoing = bars($("outgoing"), true);

const redBlue = t => {  // a weight -100..100: red raises the unit, blue lowers it
  const v = t / 100;
  return [255 * (1 - Math.max(-v, 0)), 255 * (1 - Math.abs(v)), 255 * (1 - Math.max(v, 0))];
};

const RED_BLUE = Array.from({length: 201}, (_, t) => redBlue(t - 100));  // -100..100

function paint(canvas, values, colour, x = 0, y = 0) {  // 784 values -> a 28x28 picture
  const g = canvas.getContext("2d"), image = g.createImageData(28, 28);
  values.forEach((v, i) => image.data.set([...colour(v), 255], 4 * i));
  g.putImageData(image, x, y);
}

function show() {
  $("prediction").textContent = answer ? answer.label : "?";
  showProbabilities(answer ? answer.probabilities : Array(10).fill(0));
  paint($("seen"), answer ? answer.image : Array(784).fill(0), v => [v, v, v]);
  paint($("saliency"), answer ? answer.saliency : Array(784).fill(0), v => [v, v, v]);
  const fooled = answer && answer.fooled;
  $("fooled").hidden = !fooled;
  if (fooled) paint($("fooled"), fooled.image, v => [v, v, v]);
  drawMaps();
  if (fooling && answer) $("fool-note").textContent = fooled
    ? `Every pixel moved by ${fooled.eps.toFixed(2)}: now it reads ${fooled.label}.`
    : "No change of up to 0.5 per pixel makes it read another digit.";
  if (!model) return;
  light($("hidden").children, answer && answer.hidden);
  [...$("layers").querySelectorAll(".units")].forEach(
    (grid, i) => light(grid.children, answer && answer.deeper[i]));
  [...$("hidden").children].forEach((cell, k) => cell.classList.toggle("picked", k === unit));
  if (unit === null) return;
  $("unit").textContent = `Unit ${unit}`
    + (answer ? `: fires ${answer.hidden[unit].toFixed(2)}` : "");
  $("template").hidden = $("red-blue").hidden = model.filters;  // they look at maps, not pixels
  if (!model.filters)
    paint($("template"), model.templates.subarray(784 * unit, 784 * (unit + 1)), redBlue);
  if (model.outgoing) showOutgoing(model.outgoing[unit]);
}

function light(cells, values) {  // a layer's units, brighter where they fire more
  const top = values ? Math.max(...values, 1e-9) : 1;
  for (let k = 0; k < cells.length; k++) {
    const v = values ? Math.round(255 * Math.max(values[k], 0) / top) : 0;
    cells[k].style.background = `rgb(${v}, ${v}, ${v})`;
  }
}

function fill(grid, n) {  // n cells in the grid, about twice as wide as it is high
  grid.style.gridTemplateColumns = `repeat(${Math.ceil(Math.sqrt(2 * n))}, 1fr)`;
  for (let k = 0; k < n; k++) grid.appendChild(document.createElement("div"));
  return [...grid.children];
}

async function predict() {  // one request at a time; strokes made meanwhile send one more
  if (busy) { again = true; return; }
  if (!drawn) return;  // a blank pad has nothing to read
  busy = true;
  const rgba = ink.getImageData(0, 0, pad.width, pad.height).data;
  let bytes = "";
  for (let i = 0; i < rgba.length; i += 4) bytes += String.fromCharCode(rgba[i]);
  try {
    const response = await fetch(base() + "/predict", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({width: pad.width, height: pad.height, pixels: btoa(bytes),
                            fool: fooling})});
    const reply = await response.json();
    answer = response.ok && drawn ? reply : null;
  } catch (error) {
    $("prediction").textContent = "…";  // the server has stopped
  }
  busy = false;
  show();
  if (again) { again = false; predict(); }
}

async function dreams() {  // the ten dreams of the weights of the moment
  const reply = await (await fetch(base() + "/dreams")).json();
  if (!reply.images) return;
  $("dreamt").replaceChildren(...reply.images.map((image, k) => {
    const figure = document.createElement("figure"), canvas = document.createElement("canvas");
    Object.assign(canvas, {width: 28, height: 28});
    paint(canvas, image, v => [v, v, v]);
    figure.append(canvas, `${k}: p = ${reply.p[k].toFixed(2)}`);
    return figure;
  }));
}

function clear() {
  Object.assign(ink, {fillStyle: "#fff"}).fillRect(0, 0, pad.width, pad.height);
  [drawn, answer, fooling] = [false, null, false];
  $("fool-note").textContent = "The smallest change to every pixel, in the direction that "
    + "hurts, that makes it read another digit.";
  show();
}

function at(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width,
          (event.clientY - box.top) * pad.height / box.height];
}
pad.addEventListener("pointerdown", event => {
  pad.setPointerCapture(event.pointerId);
  Object.assign(ink, {lineWidth: 16, lineCap: "round", lineJoin: "round", strokeStyle: "#000"});
  ink.beginPath();
  ink.moveTo(...at(event));
  ink.lineTo(...at(event));
  ink.stroke();
  drawn = true;
});
pad.addEventListener("pointermove", event => {
  if (!pad.hasPointerCapture(event.pointerId)) return;
  ink.lineTo(...at(event));
  ink.stroke();
  timer = timer || setTimeout(() => { timer = null; predict(); }, 120);  // while drawing
});
pad.addEventListener("lostpointercapture", predict);  // the pen is lifted
$("clear").addEventListener("click", clear);
$("fool").addEventListener("click", () => { fooling = true; predict(); });
$("dream").addEventListener("click", dreams);

function build(m) {  // the unit panel and the deeper layers' grids, for each run shown
  $("hidden").replaceChildren();
  $("layers").replaceChildren();
  $("layer1").textContent = m.sizes.length > 3 ? "Hidden layer 1: brighter fires more"
                                              : "Hidden units: brighter fires more";
  fill($("hidden"), m.units).forEach((cell, k) => {
    cell.title = `unit ${k}`;
    cell.addEventListener("pointerenter", () => { unit = k; show(); });
    cell.addEventListener("click", () => { unit = k; show(); });
  });
  m.sizes.slice(2, -1).forEach((n, i) => {  // hidden layers 2 .. L-1
    $("layers").appendChild(document.createElement("h3")).textContent =
      `Layer ${i + 2}: ${n} units`;
    fill($("layers").appendChild(Object.assign(document.createElement("div"),
                                               {className: "units"})), n);
  });
  $("deeper").hidden = m.sizes.length <= 3;
  $("outgoing").hidden = $("votes").hidden = !m.outgoing;
}

function tiles(canvas, values, side, colour) {  // side x side tiles, 1 pixel apart: one image
  const count = values.length / (side * side), cols = Math.ceil(Math.sqrt(2 * count));
  const rows = Math.ceil(count / cols), width = (side + 1) * cols - 1;
  if (canvas.width !== width) Object.assign(canvas, {width, height: (side + 1) * rows - 1});
  const g = canvas.getContext("2d"), image = g.createImageData(width, canvas.height);
  image.data.fill(255);  // white between the tiles
  for (let k = 0; k < count; k++) {
    const corner = (side + 1) * (k % cols) + (side + 1) * Math.floor(k / cols) * width;
    for (let i = 0; i < side * side; i++) {  // written straight in: a second's redraw of 100,000
      const [r, gr, b] = colour(values[side * side * k + i]);
      const at = 4 * (corner + Math.floor(i / side) * width + i % side);
      [image.data[at], image.data[at + 1], image.data[at + 2]] = [r, gr, b];
    }
  }
  g.putImageData(image, 0, 0);
}

function drawTemplates(m) {  // every unit's weights, or a conv network's first filters
  $("templates-title").textContent = m.filters
    ? `What each of the ${m.templates.length / 9} first-layer filters looks for: its 3x3 weights`
    : "What every first-layer unit looks for: its 784 input weights";
  const canvas = $("templates").querySelector("canvas");
  canvas.style.maxWidth = m.filters ? "400px" : "";  // 3x3 tiles: a picture, not a wall
  tiles(canvas, m.templates, m.side, t => RED_BLUE[t + 100]);
}

function drawMaps() {  // a conv network's maps of the drawn digit, a picture per layer
  const layers = answer ? answer.maps : [];
  $("maps").hidden = !layers.length;
  while ($("map-layers").children.length > layers.length) $("map-layers").lastChild.remove();
  layers.forEach((layer, l) => {
    const figure = $("map-layers").children[l] || $("map-layers").appendChild(Object.assign(
      document.createElement("figure"), {innerHTML: "<canvas></canvas><figcaption>"}));
    const maps = layer.values.length / layer.side ** 2, side = `${layer.side}x${layer.side}`;
    figure.lastChild.textContent = `conv layer ${l + 1}: ${maps} maps of ${side}`;
    tiles(figure.firstChild, layer.values, layer.side, v => [v, v, v]);
  });
}

async function loadModel() {  // the weights of the latest snapshot
  const m = await (await fetch(base() + "/model")).json();
  m.templates = Int8Array.from(atob(m.templates), c => c.charCodeAt(0));
  if (!model) build(m);
  model = m;
  drawTemplates(m);
  if (drawn) predict();  // the answer follows the learning
  show();
}

function ticks(low, high, most) {  // round numbers from low up to high or just past it
  const step = [0.05, 0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500]
    .find(s => (high - low) / s <= most);
  return [...Array(Math.ceil((high - low) / step - 1e-9) + 1)].map((_, i) => low + i * step);
}

// Lines of [x, y] on labelled axes: series of {points, colour, name, dots}. With log, y is
// drawn on a log scale from ymin to ymax (powers of ten); with key, the names are drawn
// above the chart. Pointing at the chart names the nearest point's run and value.
function chart(svg, series, label, ymin, ymax, epochs, {log = false, key = true, unit = ""} = {}) {
  const [x0, x1, y0, y1] = [56, 400, 196, 34], f = log ? Math.log10 : y => y;  // room for "200"
  const X = x => x0 + (x1 - x0) * x / epochs;
  const Y = y => y0 - (y0 - y1) * (f(Math.max(y, ymin)) - f(ymin)) / (f(ymax) - f(ymin));
  const parts = [`<line x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}" stroke="#888"/>`,
    `<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="#888"/>`,
    `<text x="${(x0 + x1) / 2}" y="236" text-anchor="middle">epoch</text>`,
    `<text x="14" y="${(y0 + y1) / 2}" text-anchor="middle"
      transform="rotate(-90 14 ${(y0 + y1) / 2})">${label}</text>`];
  const [e0, e1] = [Math.round(Math.log10(ymin)), Math.round(Math.log10(ymax))];
  const decades = log ? [...Array(e1 - e0 + 1)].map((_, i) => 10 ** (e0 + i)) : [];
  const marks = !log ? ticks(ymin, ymax, 5) : decades.length > 4 ? decades  // 1, 2, 5, 10, ...
    : decades.flatMap(d => [d, 2 * d, 5 * d]).filter(y => y <= ymax * 1.0001);
  for (const y of marks)
    parts.push(`<text x="${x0 - 5}" y="${Y(y) + 4}" text-anchor="end">${+y.toPrecision(2)}</text>`);
  for (const e of ticks(0, epochs, 10).filter(Number.isInteger))
    parts.push(`<text x="${X(e)}" y="${y0 + 17}" text-anchor="middle">${e}</text>`);
  const near = [];  // every point drawn: [x, y, what it says]
  series.forEach(({points, colour, name, dots}, i) => {
    dots = dots && epochs <= 50;  // a dot an epoch, while they stand apart
    if (key) parts.push(`<text x="${x0 + 130 * i}" y="16" fill="${colour}">— ${name}</text>`);
    const at = points.map(([x, y]) => [X(x).toFixed(1), Y(y).toFixed(1)]);
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2"
      points="${at.map(p => p.join(",")).join(" ")}"/>`);
    if (dots) parts.push(...at.map(([x, y]) => `<circle cx="${x}" cy="${y}" r="3" fill="${colour}"/>`));
    points.forEach(([x, y], k) => near.push([+at[k][0], +at[k][1],
      `${name}: ${+y.toFixed(4)}${unit} at epoch ${+x.toFixed(2)}`, colour]));
  });
  parts.push(`<g class="hover" visibility="hidden"><circle r="5" fill="none" stroke-width="2"/>
    <text y="16" font-weight="700"></text></g>`);
  svg.innerHTML = parts.join("");
  svg.onpointermove = event => {  // the point nearest the pointer, in the chart's units
    svg.pointer = event;
    const box = svg.getBoundingClientRect(), scale = 420 / box.width;
    const [px, py] = [(event.clientX - box.left) * scale, (event.clientY - box.top) * scale];
    let best = null, distance = 20;
    for (const p of near) {
      const d = Math.hypot(p[0] - px, p[1] - py);
      if (d < distance) [best, distance] = [p, d];
    }
    const hover = svg.querySelector(".hover");
    hover.setAttribute("visibility", best ? "visible" : "hidden");
    if (!best) return;
    const [circle, text] = hover.children;
    [["cx", best[0]], ["cy", best[1]], ["stroke", best[3]]].forEach(a => circle.setAttribute(...a));
    [["x", x1], ["text-anchor", "end"], ["fill", best[3]]].forEach(a => text.setAttribute(...a));
    text.textContent = best[2];
  };
  svg.onpointerleave = () => {
    svg.querySelector(".hover").setAttribute("visibility", "hidden");
    svg.pointer = null;
  };
  if (svg.pointer) svg.onpointermove(svg.pointer);  // still pointed at after a redraw
}

const lossPoints = p => p.losses.map(([step, loss]) => [step / Math.max(p.batches, 1), loss]);
const lossRange = values => {  // whole powers of ten around the losses, at least 1 apart
  const low = Math.floor(Math.log10(Math.max(Math.min(...values, 1), 1e-3)));
  return [10 ** low, 10 ** Math.max(Math.ceil(Math.log10(Math.max(...values, 1))), low + 1)];
};

function drawProgress(p) {  // the selected run: where it is, its loss, train and val accuracy
  const done = (p.epoch - 1) * p.batches + p.batch, total = p.epochs * p.batches;
  const fraction = p.done ? 1 : Math.max(done, 0) / Math.max(total, 1);
  const left = done > 0 && !p.done ? p.elapsed * (total - done) / done : 0;
  $("status").textContent = p.interrupted ? `${p.interrupted}; ${p.elapsed.toFixed(1)} s`
    : p.epoch === 0 ? "starting…"
    : `epoch ${p.epoch} of ${p.epochs}, batch ${p.batch} of ${p.batches} · ` +
      `${p.elapsed.toFixed(1)} s elapsed, ${p.done ? "done" : left.toFixed(1) + " s left"}`;
  $("progress").querySelector("progress").value = fraction;
  const epochs = Math.max(p.epochs, 1), h = p.history, losses = lossPoints(p);
  chart($("loss"), [{points: losses, colour: "#2f6fd0", name: "training loss, every 25 batches"}],
        "loss", ...lossRange(losses.map(([, l]) => l)), epochs, {log: true});
  const train = h.map(r => [r.epoch, 100 * r.train_acc]);
  const val = h.filter(r => r.val_acc !== null).map(r => [r.epoch, 100 * r.val_acc]);
  const low = Math.min(90, ...train.map(([, a]) => a), ...val.map(([, a]) => a));
  chart($("acc"), [{points: train, colour: "#2f6fd0", name: "training", dots: true},
                   {points: val, colour: "#e0302a", name: "validation", dots: true}],
        "accuracy (%)", Math.floor(low / 20) * 20, 100, epochs, {unit: "%"});
}

function showResult(r) {
  $("accuracy").textContent = `test accuracy: ${(100 * r.test_accuracy).toFixed(2)}%`;
  const most = Math.max(...r.confusion.flatMap((row, t) => row.filter((_, p) => p !== t)), 1);
  $("confusion").innerHTML = "<tr><th></th>" + r.confusion.map((_, k) => `<th>${k}</th>`).join("")
    + "</tr>" + r.confusion.map((row, t) => `<tr><th>${t}</th>` + row.map((c, p) => t === p ?
      `<td class="right">${c}</td>` :  // a mistake: the redder, the more often
      `<td style="background: rgba(224, 48, 42, ${(0.6 * c / most).toFixed(2)})">${c}</td>`
    ).join("") + "</tr>").join("");
  $("mistakes").replaceChildren(...r.mistakes.map(m => {
    const figure = document.createElement("figure"), canvas = document.createElement("canvas");
    Object.assign(canvas, {width: 28, height: 28});
    paint(canvas, Array.from(atob(m.image), c => c.charCodeAt(0)), v => [v, v, v]);
    figure.append(canvas, Object.assign(document.createElement("figcaption"),
      {textContent: `true ${m.true}, said ${m.said} (${(100 * m.p).toFixed(0)}%)`}));
    return figure;
  }));
  $("result").hidden = false;
}

// The settings form, built from the parser's own flags (LAB.fields): a flag left empty is
// not sent, and the run takes its default. The flags live in the URL, as #flags=...
const fields = LAB.fields.map(f => {
  const label = document.createElement("label"), name = document.createElement("span");
  name.textContent = f.flag;
  let input;
  if (f.kind === "choice" || f.kind === "bool") {
    input = document.createElement("select");
    const options = f.kind === "bool" ? [["", "default"], ["on", "on"], ["off", "off"]]
      : [["", `default${f.default === null ? "" : ` (${f.default})`}`],
         ...f.choices.map(c => [c, c])];
    input.append(...options.map(([value, text]) => Object.assign(
      document.createElement("option"), {value, textContent: text})));
  } else {
    input = Object.assign(document.createElement("input"),
                          {placeholder: f.default === null ? "default" : f.default});
  }
  input.title = f.help;
  label.append(name, input);
  $("settings").querySelector(".fields").append(label);
  const said = () => { $("flag-help").textContent = `${f.flag}: ${f.help}`; };
  input.addEventListener("focus", said);
  label.addEventListener("pointerenter", said);
  input.addEventListener("input", flagsChanged);
  return {...f, input, label};
});

function formFlags() {  // the form as flags: "--init zeros --epochs 5"
  return fields.filter(f => f.input.value.trim() !== "").map(f => f.kind === "bool"
    ? (f.input.value === "on" ? f.flag : "--no-" + f.flag.slice(2))
    : `${f.flag} ${f.input.value.trim()}`).join(" ");
}

function fillForm(flags) {  // flags -> the form; a flag the form does not have is said
  fields.forEach(f => { f.input.value = ""; });
  const unknown = [];
  for (const [, flag, values] of flags.matchAll(/(--[\w-]+)((?:\s+(?!--)\S+)*)/g)) {
    const field = fields.find(f => f.flag === flag);
    const negated = fields.find(f => f.kind === "bool" && "--no-" + f.flag.slice(2) === flag);
    if (field) field.input.value = field.kind === "bool" ? "on" : values.trim();
    else if (negated) negated.input.value = "off";
    else unknown.push(flag);
  }
  flagsChanged();
  showError(unknown.length ? `not a flag of the form: ${unknown.join(" ")}` : null);
}

function flagsChanged() {
  const flags = formFlags();
  $("command").textContent = "python nn_from_scratch.py" + (flags ? " " + flags : "");
  fields.forEach(f => f.label.classList.toggle("set", f.input.value.trim() !== ""));
  history.replaceState(null, "", flags ? "#flags=" + encodeURIComponent(flags) : "#");
}

function showError(message) {
  $("settings-error").hidden = !message;
  $("settings-error").textContent = message || "";
}

async function post(path, body) {  // a write: JSON, from this page (the server checks both)
  const response = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                      body: JSON.stringify(body)});
  const reply = await response.json();
  if (!response.ok) throw new Error(reply.error);
  return reply;
}

async function startRuns(list) {  // queue each run; the first refusal is said, the rest not sent
  try {
    const started = [];
    for (const flags of list) started.push((await post("/runs", {flags})).id);
    showError(null);
    return started;
  } catch (error) {
    showError(error.message);
    return [];
  }
}

$("settings").addEventListener("submit", async event => {
  event.preventDefault();
  const [id] = await startRuns([formFlags()]);
  if (id) { hidden.delete(id); pollSoon(); }
});

LAB.lessons.forEach(([key, title, list]) => {
  const item = Object.assign(document.createElement("li"), {id: "lesson-" + key});
  const button = Object.assign(document.createElement("button"), {type: "button",
                                                                   textContent: "Run"});
  const link = Object.assign(document.createElement("a"), {href: "#lesson=" + key,
                                                           textContent: title});
  item.append(button, link, ": ", ...list.flatMap((flags, k) => [k ? " | " : "",
    Object.assign(document.createElement("a"), {href: "#flags=" + encodeURIComponent(flags),
                                                textContent: flags || "default"})]));
  button.addEventListener("click", async () => {
    const ids = await startRuns(list);
    if (!ids.length) return;
    runs.forEach(r => hidden.add(r.id));  // the lesson's runs alone on the charts
    ids.forEach(id => hidden.delete(id));
    $("compare-title").textContent = title;
    pollSoon();
  });
  $("lessons").append(item);
});

function openLink() {  // #flags=... fills the form; #lesson=key too, with its first run
  const [, what, value] = location.hash.match(/^#(flags|lesson)=(.*)$/) || [];
  document.querySelectorAll("#lessons li").forEach(li => li.classList.remove("chosen"));
  if (what === "flags") fillForm(decodeURIComponent(value));
  const lesson = what === "lesson" && LAB.lessons.find(([key]) => key === value);
  if (lesson) {
    $("lesson-" + lesson[0]).classList.add("chosen");
    $("compare-title").textContent = lesson[1];
    const hash = location.hash;
    fillForm(lesson[2][0]);
    history.replaceState(null, "", hash);  // the lesson's own link stays
  }
}
window.addEventListener("hashchange", openLink);

const percent = v => v === null || v === undefined ? "" : (100 * v).toFixed(2) + "%";

const rows = {}, keys = {};  // each run's row and legend entry, made once, then updated
const put = (element, value, key = "textContent") => {  // only what changed: each write has
  if (element[key] !== value) element[key] = value;     // the page laid out again, every second
};

function drawRuns() {  // a row per run, a legend entry per run, and the two overlaid charts
  for (const id of Object.keys(rows)) if (!runs.find(r => r.id === +id)) {
    rows[id].remove(); keys[id].remove(); delete rows[id]; delete keys[id];
  }
  for (const r of runs) {  // ids only grow: a new run's row goes last
    if (!rows[r.id]) [rows[r.id], keys[r.id]] = [$("runs").appendChild(newRow(r)),
                                                 $("legend").appendChild(newKey(r))];
    const row = rows[r.id], key = keys[r.id], cells = row.children;
    const busy = ["queued", "training"].includes(r.state);
    put(row.dataset, r.state, "state");
    row.classList.toggle("selected", r.id === selected);
    put(cells[0].querySelector(".error"), r.error || "");
    put(cells[0].querySelector("a"), r.test_accuracy === null, "hidden");
    put(cells[1], r.state + (r.state === "training" ? ` ${r.epochs_done}/${r.epochs}` : ""));
    put(cells[2], r.epoch_seconds === null ? "" : r.epoch_seconds.toFixed(2) + " s");
    put(cells[3], r.loss_before === null ? "" : r.loss_before.toFixed(2));
    [r.best_val_accuracy, r.train_accuracy, r.test_accuracy].forEach(
      (v, k) => put(cells[4 + k], percent(v)));
    put(cells[7].firstChild, busy ? "Stop" : "Remove");
    put(key, !progress[r.id], "hidden");
    key.classList.toggle("off", hidden.has(r.id));
  }
  const shown = runs.filter(r => progress[r.id] && !hidden.has(r.id));
  const drawn = JSON.stringify(shown.map(r => [r.id, progress[r.id].version]));
  if (drawn === drawRuns.drawn) return;  // the charts have not changed
  drawRuns.drawn = drawn;
  const epochs = Math.max(1, ...shown.map(r => r.epochs));
  const losses = shown.map(r => ({points: lossPoints(progress[r.id]), colour: colour(r.id),
                                  name: `${r.id}: ${r.name}`}));
  chart($("compare-loss"), losses, "training loss",
        ...lossRange(losses.flatMap(s => s.points.map(([, l]) => l))), epochs,
        {log: true, key: false});
  const val = shown.map(r => ({points: progress[r.id].history.filter(h => h.val_acc !== null)
    .map(h => [h.epoch, 100 * h.val_acc]), colour: colour(r.id), name: `${r.id}: ${r.name}`,
    dots: true}));
  const low = Math.min(90, ...val.flatMap(s => s.points.map(([, a]) => a)));
  chart($("compare-acc"), val, "validation (%)", Math.floor(low / 20) * 20, 100,
        epochs, {key: false, unit: "%"});
}

function newRow(r) {  // its name, command and record link, its figures, Stop or Remove
  const row = document.createElement("tr");
  row.dataset.runId = r.id;
  row.innerHTML = `<td><span class="swatch" style="background: ${colour(r.id)}"></span>` +
    `<b></b><br><code></code> <a href="/runs/${r.id}" target="_blank">record</a>` +
    `<div class="error"></div></td>` + ["state", "epoch", "loss at start", "best val", "train",
    "test"].map(label => `<td data-label="${label}"></td>`).join("") + "<td></td>";
  row.lastChild.append(Object.assign(document.createElement("button"), {type: "button"}));
  row.querySelector("b").textContent = `${r.id}: ${r.name}`;
  row.querySelector("code").textContent = r.command;
  row.querySelector("button").addEventListener("click", async event => {
    event.stopPropagation();
    const busy = ["queued", "training"].includes(row.dataset.state);
    const response = await fetch(`/runs/${r.id}` + (busy ? "/stop" : ""), busy
      ? {method: "POST", headers: {"Content-Type": "application/json"}, body: "{}"}
      : {method: "DELETE"});
    if (!response.ok) showError((await response.json()).error);
    pollSoon();
  });
  row.addEventListener("click", () => { select(r.id, false); drawRuns(); pollSoon(); });
  return row;
}

function newKey(r) {  // its legend entry: click to hide or show its curves
  const key = Object.assign(document.createElement("button"), {type: "button"});
  key.innerHTML = `<span class="swatch" style="background: ${colour(r.id)}"></span>`;
  key.append(`${r.id}: ${r.name}`);
  key.addEventListener("click", () => {
    hidden.has(r.id) ? hidden.delete(r.id) : hidden.add(r.id);
    drawRuns.drawn = null;
    drawRuns();
  });
  return key;
}

function select(id, follow) {  // point the rest of the page at run id
  following = follow;
  if (id === selected) return;
  selected = id;
  [model, version, fetched, answer, fooling] = [null, 0, 0, null, false];
  $("result").hidden = true;
  $("dreamt").replaceChildren();
  $("fooled").hidden = true;
  const run = runs.find(r => r.id === id);
  $("training-title").textContent = run ? `Run ${run.id}: ${run.name}` : "Training";
  show();
}

// While a run trains, its weights are fetched again (once a second) only while a panel that
// draws them is on the screen: redrawing 100,000 template pixels unseen would take the
// training's cores for nothing.
const onScreen = new Set();
const panels = new IntersectionObserver(entries => entries.forEach(
  e => e.isIntersecting ? onScreen.add(e.target) : onScreen.delete(e.target)));
[$("hidden"), $("templates")].forEach(panel => panels.observe(panel));

let next = null, polling = false;
function pollSoon() { clearTimeout(next); next = setTimeout(poll, 50); }

async function poll() {  // the runs every second, and the selected run's weights
  if (polling) return;
  polling = true;
  clearTimeout(next);
  try {
    runs = await (await fetch("/runs")).json();
    for (const id of Object.keys(progress)) if (!runs.find(r => r.id === +id)) delete progress[id];
    for (const r of runs)  // only the runs that moved since
      if (r.state !== "queued" && (!progress[r.id] || progress[r.id].version !== r.version))
        progress[r.id] = await (await fetch(`/runs/${r.id}/progress`)).json();
    const started = runs.filter(r => r.state !== "queued");
    if (following || !runs.find(r => r.id === selected))
      select(started.length ? started.at(-1).id : null, true);
    drawRuns();
    const p = progress[selected];
    $("training").hidden = !p || !p.training;
    if (p && p.training) drawProgress(p);
    const fresh = p && p.weights && p.version !== version;  // weights newer than those drawn
    if (fresh && (!model || p.done || (onScreen.size && Date.now() - fetched > 1000))) {
      [version, fetched] = [p.version, Date.now()];
      await loadModel();
    }
    if (p && p.result) showResult(p.result);
  } catch (error) {
    $("status").textContent = "the server has stopped";
    showError("the server has stopped");
    polling = false;
    return;
  }
  polling = false;
  next = setTimeout(poll, 1000);
}
clear();
openLink();
poll();
