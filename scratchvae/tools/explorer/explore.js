// scratchvae explorer: the trained VAE in plain JavaScript, offline.
// The weights, the map's data and the model's settings come from data.js (window.SCRATCHVAE_DATA),
// written by `scratchvae explore` (scratchvae/tools/explore.py). Nothing is fetched.
// The model functions are exposed as window.scratchvae for the tests (tests/test_explore.py).
(function () {
  "use strict";
  const DATA = window.SCRATCHVAE_DATA;
  const CONFIG = DATA.config;
  const D = CONFIG.input_dim, DZ = CONFIG.latent_dim, SIDE = 28;
  const LOG_2PI = Math.log(2 * Math.PI);
  const DIGIT_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];  // matplotlib's tab10
  const SAMPLES = 6, WALK_STEPS = 10;

  // --- the model: dense layers on Float32Array weights, sums in float64 ---------------------

  function floats(base64) {
    const text = atob(base64), bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return new Float32Array(bytes.buffer);  // little-endian float32, as written
  }

  const LAYERS = {};
  for (const name in DATA.layers) {
    LAYERS[name] = DATA.layers[name].map(l => ({in: l.in, out: l.out, W: floats(l.W), b: floats(l.b)}));
  }

  function sigmoid(v) {  // the stable form: only exp(-|v|) is computed
    const e = Math.exp(-Math.abs(v));
    return v >= 0 ? 1 / (1 + e) : e / (1 + e);
  }
  function softplus(v) { return Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))); }
  const ACTIVATIONS = {
    relu: v => (v > 0 ? v : 0),
    leaky_relu: v => (v > 0 ? v : DATA.slope * v),
    tanh: Math.tanh,
    sigmoid: sigmoid,
    softplus: softplus,
  };
  const activation = ACTIVATIONS[CONFIG.activation];

  // x W + b for one example; W is (in, out), row-major. Zero inputs (most pixels) are skipped.
  function dense(layer, x, act) {
    const n = layer.out, W = layer.W, out = new Float64Array(n);
    for (let i = 0; i < layer.in; i++) {
      const xi = x[i];
      if (xi === 0) continue;
      const row = i * n;
      for (let j = 0; j < n; j++) out[j] += xi * W[row + j];
    }
    for (let j = 0; j < n; j++) out[j] = act ? act(out[j] + layer.b[j]) : out[j] + layer.b[j];
    return out;
  }

  // An MLP (every layer followed by the activation), then its linear head.
  function network(hidden, head, x) {
    for (const layer of hidden) x = dense(layer, x, activation);
    return dense(head[0], x, null);
  }

  // q(z | x): [mu, logVar], each of length DZ.
  function encodeOne(x) {
    const out = network(LAYERS.encoder, LAYERS.encoder_head, x);
    return [out.slice(0, DZ), out.slice(DZ)];
  }
  // The decoder's raw output: logits (D), or [mean | logVar] (2 D) for the Gaussian likelihood.
  function decoderOutput(z) { return network(LAYERS.decoder, LAYERS.decoder_head, z); }
  // The mean of p(x | z): pixel probabilities, or the Gaussian mean.
  function decodeOne(z) {
    const out = decoderOutput(z);
    return CONFIG.likelihood === "bernoulli" ? out.map(sigmoid) : out.slice(0, D);
  }

  // log N(z; 0, I)
  function logPrior(z) {
    let s = 0;
    for (let u = 0; u < z.length; u++) s += z[u] * z[u] + LOG_2PI;
    return -0.5 * s;
  }
  // KL(q(z | x) || N(0, I)) = 1/2 sum_u (sigma_u^2 - 1 - log sigma_u^2 + mu_u^2)
  function kl(mu, logVar) {
    let s = 0;
    for (let u = 0; u < mu.length; u++) s += Math.expm1(logVar[u]) - logVar[u] + mu[u] * mu[u];
    return 0.5 * s;
  }
  // log p(x | z) from the decoder's output at z.
  function logLikelihood(x, z) {
    const out = decoderOutput(z);
    let s = 0;
    if (CONFIG.likelihood === "bernoulli") {
      for (let i = 0; i < D; i++) s += x[i] * out[i] - softplus(out[i]);  // x l - softplus(l)
    } else {
      for (let i = 0; i < D; i++) {
        const r = x[i] - out[i], lv = out[D + i];
        s -= 0.5 * (LOG_2PI + lv + r * r * Math.exp(-lv));
      }
    }
    return s;
  }
  function standardNormal() {  // Box-Muller
    return Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
  }

  // Batches as in the package: (B, D) in, (B, DZ) out; one example as a flat array works too.
  function batched(one) {
    return rows => (Array.isArray(rows[0]) || ArrayBuffer.isView(rows[0])
      ? rows.map(r => Array.from(one(r))) : Array.from(one(rows)));
  }
  function encode(x) {
    if (!(Array.isArray(x[0]) || ArrayBuffer.isView(x[0]))) return encodeOne(x).map(a => Array.from(a));
    const pairs = x.map(encodeOne);
    return [pairs.map(p => Array.from(p[0])), pairs.map(p => Array.from(p[1]))];
  }
  const decode = batched(decodeOne);

  // --- the map's data --------------------------------------------------------------------

  const MAP = DATA.map, N = MAP.count, MEANS = floats(MAP.mu);  // (N, DZ) row-major
  const BY_KL = Array.from({length: DZ}, (_, u) => u).sort((a, b) => MAP.kl[b] - MAP.kl[a] || a - b);
  // The two dimensions of largest KL, in index order, as the package's scatter plot chooses them.
  const AXES = BY_KL.slice(0, 2).sort((a, b) => a - b);
  const AX = AXES[0], AY = DZ > 1 ? AXES[1] : null;
  const ACTIVE = MAP.activity.map(a => a > MAP.threshold);
  let extent = 3;  // the map spans [-extent, extent] on both axes: the prior's 3 sigma, or the data
  for (let n = 0; n < N; n++) {
    for (const u of AXES) extent = Math.max(extent, Math.abs(MEANS[n * DZ + u]));
  }
  extent = Math.min(Math.ceil(extent * 2) / 2, 8);
  const sprite = new Image();

  // --- state -------------------------------------------------------------------------------

  const z = new Float64Array(DZ);  // the current code
  let drawing = null;  // {mu, logVar} of q(z | x) for the drawing
  const walk = {a: null, b: null, spherical: false};
  const $ = id => document.getElementById(id);
  const mapCanvas = $("map"), mapContext = mapCanvas.getContext("2d");
  const dots = document.createElement("canvas");  // the scatter, drawn once

  // --- drawing helpers ----------------------------------------------------------------------

  function showImage(canvas, pixels) {  // pixels in [0, 1] as grey levels, white ink on black
    const context = canvas.getContext("2d"), image = context.createImageData(SIDE, SIDE);
    for (let i = 0; i < D; i++) {
      const v = Math.round(255 * Math.min(Math.max(pixels[i], 0), 1));
      image.data.set([v, v, v, 255], 4 * i);
    }
    context.putImageData(image, 0, 0);
  }
  function showThumbnail(canvas, n) {
    const context = canvas.getContext("2d"), columns = MAP.sprite_columns;
    context.drawImage(sprite, (n % columns) * SIDE, Math.floor(n / columns) * SIDE, SIDE, SIDE, 0, 0, SIDE, SIDE);
  }
  const W = mapCanvas.width, H = mapCanvas.height;
  const toX = v => (v + extent) / (2 * extent) * W;
  const toY = v => (extent - v) / (2 * extent) * H;
  const fromX = px => px / W * 2 * extent - extent;
  const fromY = py => extent - py / H * 2 * extent;
  // A 1-D latent space: the map's vertical axis has one lane per digit.
  const dotY = n => (AY === null ? H * (Number(MAP.labels[n]) + 0.5) / 10 : toY(MEANS[n * DZ + AY]));

  function drawDots() {
    dots.width = W; dots.height = H;
    const c = dots.getContext("2d");
    c.fillStyle = "#fff"; c.fillRect(0, 0, W, H);
    c.strokeStyle = "#bbb"; c.fillStyle = "#888"; c.font = "12px sans-serif";
    if (AY !== null) {  // the prior N(0, I)'s contours in the shown plane: radius r holds 1 - exp(-r^2 / 2)
      for (const r of [1, 2, 3]) {
        c.beginPath(); c.arc(toX(0), toY(0), r / (2 * extent) * W, 0, 2 * Math.PI); c.stroke();
        c.fillText(`${r}σ, ${Math.round(100 * (1 - Math.exp(-r * r / 2)))}%`, toX(r * 0.71) + 2, toY(r * 0.71) - 2);
      }
    }
    c.globalAlpha = 0.6;
    for (let n = 0; n < N; n++) {  // in data order, so no digit is always on top
      c.fillStyle = DIGIT_COLOURS[Number(MAP.labels[n])];
      c.fillRect(toX(MEANS[n * DZ + AX]) - 1.5, dotY(n) - 1.5, 3, 3);
    }
    c.globalAlpha = 1; c.fillStyle = "#333";
    c.fillText(`z${AX + 1} (KL ${MAP.kl[AX].toFixed(1)} nats) →`, W - 170, H - 6);
    if (AY !== null) {
      c.save(); c.translate(12, 180); c.rotate(-Math.PI / 2);
      c.fillText(`z${AY + 1} (KL ${MAP.kl[AY].toFixed(1)} nats) →`, 0, 0); c.restore();
    }
    c.fillText(`[${-extent}, ${extent}]²`, 4, 14);
  }

  function walkPath() {
    if (!walk.a || !walk.b) return [];
    const a = walk.a.z, b = walk.b.z;
    const norm = v => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
    let dot = 0;
    for (let u = 0; u < DZ; u++) dot += a[u] * b[u];
    const omega = Math.acos(Math.min(1, Math.max(-1, dot / (norm(a) * norm(b) || 1))));
    const path = [];
    for (let k = 0; k < WALK_STEPS; k++) {
      const t = k / (WALK_STEPS - 1);
      // spherical (Shoemake's slerp, as in White 2016) unless the two codes are (anti)parallel
      const [wa, wb] = walk.spherical && Math.sin(omega) > 1e-6
        ? [Math.sin((1 - t) * omega) / Math.sin(omega), Math.sin(t * omega) / Math.sin(omega)]
        : [1 - t, t];
      path.push(a.map((v, u) => wa * v + wb * b[u]));
    }
    return path;
  }

  function redrawMap() {
    const c = mapContext;
    c.drawImage(dots, 0, 0);
    const path = walkPath();
    if (path.length) {
      c.strokeStyle = "#000"; c.lineWidth = 1.5; c.beginPath();
      path.forEach((p, k) => (k ? c.lineTo : c.moveTo).call(c, toX(p[AX]), AY === null ? H / 2 : toY(p[AY])));
      c.stroke();
      c.fillStyle = "#000"; c.font = "bold 13px sans-serif";
      c.fillText("A", toX(path[0][AX]) + 4, (AY === null ? H / 2 : toY(path[0][AY])) - 4);
      c.fillText("B", toX(path[WALK_STEPS - 1][AX]) + 4, (AY === null ? H / 2 : toY(path[WALK_STEPS - 1][AY])) - 4);
    }
    if (drawing) {  // the drawing's q(z | x): mu and the 1 and 2 sigma ellipse
      const sx = Math.exp(drawing.logVar[AX] / 2), sy = AY === null ? 0.3 : Math.exp(drawing.logVar[AY] / 2);
      const cx = toX(drawing.mu[AX]), cy = AY === null ? H / 2 : toY(drawing.mu[AY]);
      c.strokeStyle = "#d00"; c.lineWidth = 2;
      for (const k of [1, 2]) {
        c.beginPath();
        c.ellipse(cx, cy, k * sx / (2 * extent) * W, k * sy / (2 * extent) * H, 0, 0, 2 * Math.PI);
        c.stroke();
      }
    }
    const x = toX(z[AX]), y = AY === null ? H / 2 : toY(z[AY]);  // the current code: a cross
    c.strokeStyle = "#000"; c.lineWidth = 2; c.beginPath();
    c.moveTo(x - 8, y); c.lineTo(x + 8, y); c.moveTo(x, y - 8); c.lineTo(x, y + 8); c.stroke();
  }

  function nearestTestImage(code) {
    let best = 0, bestDistance = Infinity;
    for (let n = 0; n < N; n++) {
      let d = 0;
      for (let u = 0; u < DZ; u++) { const r = MEANS[n * DZ + u] - code[u]; d += r * r; }
      if (d < bestDistance) { best = n; bestDistance = d; }
    }
    return best;
  }
  const meanOf = n => Array.from(MEANS.subarray(n * DZ, (n + 1) * DZ));

  // --- updating everything from the current code -------------------------------------------

  let pending = false;
  function update() {  // at most once per frame
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; render(); });
  }
  function render() {
    showImage($("decoded"), decodeOne(z));
    const n = nearestTestImage(z);
    showThumbnail($("nearest"), n);
    $("nearest-caption").textContent = `nearest test image: a ${MAP.labels[n]} (#${n})`;
    $("code-numbers").textContent = `z${AX + 1} = ${z[AX].toFixed(2)}` + (AY === null ? "" : `, z${AY + 1} = ${z[AY].toFixed(2)}`)
      + `\nlog p(z) = ${logPrior(z).toFixed(2)} nats under the prior N(0, I)`;
    for (let u = 0; u < DZ; u++) {
      const input = $(`slider-${u}`);
      if (Number(input.value) !== z[u]) input.value = z[u];
      $(`value-${u}`).textContent = z[u].toFixed(2);
    }
    redrawMap();
  }
  function setCode(values) {
    values.forEach((v, u) => { z[u] = v; });
    update();
  }

  // --- the map: hover, drag, touch, click, keyboard -------------------------------------------

  function mapPoint(event) {
    const box = mapCanvas.getBoundingClientRect();
    return [(event.clientX - box.left) / box.width * W, (event.clientY - box.top) / box.height * H];
  }
  function moveTo(px, py) {
    z[AX] = Math.min(Math.max(fromX(px), -extent), extent);
    if (AY !== null) z[AY] = Math.min(Math.max(fromY(py), -extent), extent);
    update();
  }
  function dotNear(px, py) {  // the test image whose dot is within 6 px, else -1
    let best = -1, bestDistance = 36;
    for (let n = 0; n < N; n++) {
      const dx = toX(MEANS[n * DZ + AX]) - px, dy = dotY(n) - py, d = dx * dx + dy * dy;
      if (d < bestDistance) { best = n; bestDistance = d; }
    }
    return best;
  }
  let dragging = false;
  mapCanvas.addEventListener("pointerdown", event => {
    dragging = true;
    mapCanvas.setPointerCapture(event.pointerId);
    const [px, py] = mapPoint(event), n = dotNear(px, py);
    if (n >= 0) setCode(meanOf(n));  // a dot: its whole code, the other dimensions included
    else moveTo(px, py);
  });
  mapCanvas.addEventListener("pointermove", event => {
    if (dragging || event.pointerType === "mouse") moveTo(...mapPoint(event));
  });
  for (const type of ["pointerup", "pointercancel"]) mapCanvas.addEventListener(type, () => { dragging = false; });
  mapCanvas.addEventListener("keydown", event => {
    const step = event.shiftKey ? 0.5 : 0.1;
    const moves = {ArrowLeft: [AX, -step], ArrowRight: [AX, step], ArrowUp: [AY, step], ArrowDown: [AY, -step]};
    if (event.key in moves && moves[event.key][0] !== null) {
      const [u, d] = moves[event.key];
      z[u] = Math.min(Math.max(z[u] + d, -extent), extent);
      update();
    } else if (event.key === "Enter") {
      setCode(meanOf(nearestTestImage(z)));
    } else return;
    event.preventDefault();
  });

  // --- sliders ---------------------------------------------------------------------------------

  function buildSliders() {
    const box = $("sliders");
    for (const u of BY_KL) {
      const row = document.createElement("div");
      row.className = "slider" + (ACTIVE[u] ? "" : " inactive");
      const label = document.createElement("label");
      label.htmlFor = `slider-${u}`;
      label.textContent = `z${u + 1}: KL ${MAP.kl[u].toFixed(2)}` + (ACTIVE[u] ? "" : " inactive");
      label.title = ACTIVE[u] ? `activity ${MAP.activity[u].toFixed(3)}`
        : `collapsed: its mean varies by ${MAP.activity[u].toExponential(1)} over the test images `
          + `(active above ${MAP.threshold})`;
      const input = document.createElement("input");
      Object.assign(input, {type: "range", id: `slider-${u}`, min: -extent, max: extent, step: 0.01, value: 0});
      input.addEventListener("input", () => { z[u] = Number(input.value); update(); });
      const value = document.createElement("span");
      value.id = `value-${u}`; value.className = "numbers";
      row.append(label, input, value);
      box.append(row);
    }
    $("to-zero").addEventListener("click", () => setCode(new Array(DZ).fill(0)));
  }

  // --- drawing a digit -------------------------------------------------------------------------

  const ink = new Float64Array(D);
  const drawCanvas = $("draw");
  let lastPoint = null;
  function stamp(gx, gy) {  // a round brush: full ink within 0.8 px of the stroke, none beyond 1.8 px
    for (let r = Math.max(0, Math.floor(gy - 2)); r < Math.min(SIDE, gy + 2); r++) {
      for (let c = Math.max(0, Math.floor(gx - 2)); c < Math.min(SIDE, gx + 2); c++) {
        const d = Math.hypot(c + 0.5 - gx, r + 0.5 - gy), v = Math.min(1, Math.max(0, 1.8 - d));
        ink[r * SIDE + c] = Math.max(ink[r * SIDE + c], v);
      }
    }
  }
  function strokeTo(event) {
    const box = drawCanvas.getBoundingClientRect();
    const point = [(event.clientX - box.left) / box.width * SIDE, (event.clientY - box.top) / box.height * SIDE];
    const from = lastPoint || point, steps = Math.max(1, Math.ceil(Math.hypot(point[0] - from[0], point[1] - from[1]) * 4));
    for (let k = 1; k <= steps; k++) {
      stamp(from[0] + (point[0] - from[0]) * k / steps, from[1] + (point[1] - from[1]) * k / steps);
    }
    lastPoint = point;
    showImage(drawCanvas, ink);
    encodeDrawing();
  }
  let drawPending = false;
  function encodeDrawing() {  // at most once per frame
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(() => {
      drawPending = false;
      const [mu, logVar] = encodeOne(ink);
      drawing = {mu: mu, logVar: logVar};
      const samples = $("samples");
      samples.textContent = "";
      let reconstruction = 0;
      for (let k = 0; k < SAMPLES; k++) {  // z = mu + sigma * eps, the reparameterisation
        const sample = mu.map((m, u) => m + Math.exp(logVar[u] / 2) * standardNormal());
        const canvas = document.createElement("canvas");
        Object.assign(canvas, {width: SIDE, height: SIDE, className: "digit small"});
        showImage(canvas, decodeOne(sample));
        samples.append(canvas);
        reconstruction += logLikelihood(ink, sample) / SAMPLES;
      }
      const divergence = kl(mu, logVar);
      $("elbo").textContent = `KL(q(z|x) ‖ p(z)) = ${divergence.toFixed(2)} nats\n`
        + `E_q[log p(x|z)] ≈ ${reconstruction.toFixed(2)} nats (mean over the ${SAMPLES} samples)\n`
        + `ELBO ≈ ${(reconstruction - divergence).toFixed(2)} nats`;
      setCode(Array.from(mu));
    });
  }
  drawCanvas.addEventListener("pointerdown", event => {
    drawCanvas.setPointerCapture(event.pointerId);
    lastPoint = null;
    strokeTo(event);
  });
  drawCanvas.addEventListener("pointermove", event => { if (lastPoint) strokeTo(event); });
  for (const type of ["pointerup", "pointercancel"]) drawCanvas.addEventListener(type, () => { lastPoint = null; });
  function clearDrawing() {
    ink.fill(0); drawing = null; showImage(drawCanvas, ink);
    $("samples").textContent = ""; $("elbo").textContent = "";
    update();
  }
  $("clear").addEventListener("click", clearDrawing);
  drawCanvas.addEventListener("keydown", event => { if (event.key === "Delete" || event.key === "Backspace") clearDrawing(); });

  // --- the walk ----------------------------------------------------------------------------------

  function setEnd(end, code, n) {  // n: the test image the code comes from, or -1 for a point
    walk[end] = {z: Array.from(code), n: n};
    const canvas = $(`walk-${end}`);
    if (n >= 0) showThumbnail(canvas, n); else showImage(canvas, decodeOne(code));
    $(`${end}-caption`).textContent = `${end.toUpperCase()}: ` + (n >= 0 ? `test image #${n}, a ${MAP.labels[n]}` : "a point");
    drawWalk();
  }
  function drawWalk() {
    const path = walkPath();
    const c = $("walk").getContext("2d");
    path.forEach((p, k) => {
      const tile = document.createElement("canvas");
      tile.width = tile.height = SIDE;
      showImage(tile, decodeOne(p));
      c.drawImage(tile, k * SIDE, 0);
    });
    update();
  }
  $("set-a").addEventListener("click", () => setEnd("a", z, -1));
  $("set-b").addEventListener("click", () => setEnd("b", z, -1));
  $("random-pair").addEventListener("click", () => {
    const i = Math.floor(Math.random() * N);
    let j = Math.floor(Math.random() * N);
    for (let tries = 0; MAP.labels[j] === MAP.labels[i] && tries < 100; tries++) j = Math.floor(Math.random() * N);
    setEnd("a", meanOf(i), i); setEnd("b", meanOf(j), j);
  });
  for (const radio of document.querySelectorAll("input[name=path]")) {
    radio.addEventListener("change", () => { walk.spherical = radio.value === "spherical" && radio.checked; drawWalk(); });
  }

  // --- timing ------------------------------------------------------------------------------------

  function timeDecoder(repeats) {  // mean milliseconds per decode, over `repeats` random codes
    const codes = Array.from({length: repeats}, () => Array.from({length: DZ}, standardNormal));
    decodeOne(codes[0]);  // let the JIT compile first
    const start = performance.now();
    for (const code of codes) decodeOne(code);
    return (performance.now() - start) / repeats;
  }
  $("time-decoder").addEventListener("click", () => {
    $("timing").textContent = `${timeDecoder(1000).toFixed(3)} ms per decode (mean of 1000, performance.now())`;
  });

  // --- start ---------------------------------------------------------------------------------

  const hidden = CONFIG.hidden.join("-");
  $("about").textContent = `Your model: ${D}-${hidden}-${DZ}, ${CONFIG.activation}, ${CONFIG.likelihood} decoder`
    + (CONFIG.likelihood === "gaussian" ? " (its mean is shown)" : "")
    + `; ${N} test images on the map. Runs in this page, offline.`;
  $("legend").innerHTML = DIGIT_COLOURS.map((colour, k) => `<span style="color:${colour}">${k}</span>`).join("");
  $("map-hint").textContent = (DZ === 1 ? "One latent dimension: one lane per digit. "
    : DZ === 2 ? "The whole 2-D latent space, over the prior's contours. "
    : `z${AX + 1} and z${AY + 1}, the two dimensions of largest KL; the other ${DZ - 2} are held at the sliders' values. `)
    + "Hover or drag to decode; tap a dot to take its whole code; arrow keys move, Enter jumps to the nearest test image.";
  buildSliders();
  drawDots();
  sprite.onload = update;
  sprite.src = MAP.sprite;
  showImage(drawCanvas, ink);
  update();

  window.scratchvae = {
    decode: decode, encode: encode, logPrior: logPrior, kl: kl,
    logLikelihood: (x, code) => logLikelihood(x, code),
    code: () => Array.from(z),
    drawing: () => (drawing ? [Array.from(drawing.mu), Array.from(drawing.logVar)] : null),
    axes: () => (AY === null ? [AX] : [AX, AY]),
    timeDecoder: timeDecoder,
  };
})();
