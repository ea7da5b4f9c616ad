// genzoo's web page: a genzoo generator (ONNX) run in the browser with onnxruntime-web.
// Written by `zoo export RUN_DIR --web`; the config is the JSON in index.html's #genzoo-config.
// Also loads in Node.js (require("./genzoo-web.js")) for its latent maths alone.
"use strict";

// ---- latent maths: the same arithmetic as Python's export.web.seeded_latents and
// zoo_common.latents.interpolate_latents, so a seed gives the same z on both sides. ----

// mulberry32: the k-th draw (k = 1, 2, ...) mixes seed + k * 0x6D2B79F5 (mod 2**32).
function uniformWords(seed, count) {
  const out = new Uint32Array(count);
  let a = seed >>> 0;
  for (let k = 0; k < count; k++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1) >>> 0;
    t = ((t + Math.imul(t ^ (t >>> 7), t | 61)) ^ t) >>> 0;
    out[k] = (t ^ (t >>> 14)) >>> 0;
  }
  return out;
}

// z ~ N(0, I), n rows of latentDim, row-major Float32Array: Box-Muller on pairs of uniforms, in float64.
function seededLatents(seed, n, latentDim) {
  const total = n * latentDim;
  const pairs = Math.ceil(total / 2);
  const words = uniformWords(seed, 2 * pairs);
  const z = new Float32Array(total);
  for (let i = 0; i < pairs; i++) {
    const u1 = words[2 * i] / 4294967296, u2 = words[2 * i + 1] / 4294967296;
    const radius = Math.sqrt(-2 * Math.log(1 - u1)), angle = 2 * Math.PI * u2;
    if (2 * i < total) z[2 * i] = radius * Math.cos(angle);
    if (2 * i + 1 < total) z[2 * i + 1] = radius * Math.sin(angle);
  }
  return z;
}

// `steps` latents from a to b, both ends exact; "spherical" along the great circle with the norm
// interpolated linearly (as OnnxGenerator.interpolate(..., method="slerp")), else the straight line.
function interpolateLatents(a, b, steps, method) {
  const d = a.length, out = new Float32Array(steps * d);
  let normA = 0, normB = 0, dot = 0;
  for (let i = 0; i < d; i++) { normA += a[i] * a[i]; normB += b[i] * b[i]; }
  normA = Math.sqrt(normA); normB = Math.sqrt(normB);
  let omega = 0, spherical = false;
  if (method !== "linear" && normA > 0 && normB > 0) {
    for (let i = 0; i < d; i++) dot += (a[i] / normA) * (b[i] / normB);
    omega = Math.acos(Math.min(1, Math.max(-1, dot)));
    spherical = Math.sin(omega) >= 1e-6;
  }
  for (let s = 0; s < steps; s++) {
    const t = steps === 1 ? 0 : s / (steps - 1);
    for (let i = 0; i < d; i++) {
      let v = (1 - t) * a[i] + t * b[i];
      if (spherical) {
        const direction = (Math.sin((1 - t) * omega) * (a[i] / normA) + Math.sin(t * omega) * (b[i] / normB)) / Math.sin(omega);
        v = direction * ((1 - t) * normA + t * normB);
      }
      out[s * d + i] = v;
    }
  }
  out.set(a, 0);
  out.set(b, (steps - 1) * d);
  return out;
}

// A whole number in [low, high] from a text field, or an Error saying what is allowed.
function parseWhole(text, name, low, high) {
  const value = String(text).trim();
  if (!/^[+-]?\d+$/.test(value)) return new Error(`${name} must be a whole number from ${low} to ${high}; got "${value}".`);
  const number = Number(value);
  if (number < low || number > high) {
    const why = number < low ? `at least ${low}` : `at most ${high} on this page`;
    return new Error(`${name} must be ${why}; got ${value}.`);
  }
  return number;
}

const GenzooMath = { uniformWords, seededLatents, interpolateLatents, parseWhole };

if (typeof module === "object" && module.exports) {
  module.exports = GenzooMath;
} else {
  startPage();
}

// ---- the page ----

function startPage() {
  const $ = (id) => document.getElementById(id);
  const config = JSON.parse($("genzoo-config").textContent);
  const state = (window.genzoo = { state: "loading", error: null, config, math: GenzooMath });

  function fail(message) {
    state.state = "error";
    state.error = message;
    document.body.dataset.state = "error";
    $("status").textContent = "The page cannot run the generator.";
    $("error").textContent = message;
    $("error").hidden = false;
    $("samples").hidden = $("walk").hidden = true;
  }

  function loadScript(src) {
    return new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = resolve;
      script.onerror = () => reject(new Error(`could not load onnxruntime-web from ${src}`));
      document.head.appendChild(script);
    });
  }

  async function fetchOrSay(file, what) {
    let response;
    try {
      response = await fetch(file, { cache: "no-cache" });
    } catch (err) {
      throw new Error(`The ${what} ${file} could not be fetched (${err.message}). Serve this folder over HTTP, e.g. python -m http.server.`);
    }
    if (!response.ok) throw new Error(`The ${what} ${file} could not be loaded (HTTP ${response.status} ${response.statusText}). It should sit next to index.html.`);
    return response;
  }

  function checkMetadata(meta, file) {
    const bad = (why) => new Error(`${file} is not the metadata of a genzoo generator: ${why}.`);
    if (meta === null || typeof meta !== "object" || Array.isArray(meta)) throw bad("not a JSON object");
    for (const key of ["schema_version", "model", "latent_dim", "latent_prior", "image_shape", "input_name", "output_name"]) {
      if (!(key in meta)) throw bad(`it lacks "${key}"`);
    }
    if (meta.schema_version !== 1) throw bad(`schema ${meta.schema_version} is not supported (this page reads schema 1)`);
    if (!Number.isInteger(meta.latent_dim) || meta.latent_dim < 1) throw bad(`latent_dim is ${JSON.stringify(meta.latent_dim)}`);
    if (meta.num_classes != null && (!Number.isInteger(meta.num_classes) || meta.num_classes < 1)) {
      throw bad(`num_classes is ${JSON.stringify(meta.num_classes)}`);
    }
    const shape = meta.image_shape;
    if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((v) => Number.isInteger(v) && v > 0) || ![1, 3].includes(shape[2])) {
      throw bad(`image_shape is ${JSON.stringify(shape)}, not [height, width, 1 or 3]`);
    }
    return meta;
  }

  async function createSession(bytes, file) {
    // One provider at a time: given ["webgpu", "wasm"], onnxruntime-web falls back silently and
    // does not say which ran; this way state.backend names it.
    const wanted = new URLSearchParams(location.search).get("ep");
    let providers = ["wasm"];
    if (wanted === "webgpu" || (!wanted && navigator.gpu && (await navigator.gpu.requestAdapter().catch(() => null)))) {
      providers = ["webgpu", "wasm"];
    }
    let lastError = null;
    for (const provider of providers) {
      try {
        const session = await ort.InferenceSession.create(bytes, { executionProviders: [provider] });
        state.backend = provider;
        return session;
      } catch (err) {
        lastError = err;
      }
    }
    throw new Error(`${file} is not an ONNX model onnxruntime-web can load (${lastError && lastError.message}).`);
  }

  let session, meta;

  // A conditional generator's labels: `cls` for every image, or (null) every class in turn.
  function labelsFor(n, cls) {
    return Array.from({ length: n }, (_, i) => (cls === null ? i % meta.num_classes : cls));
  }

  function parseClass(text) {
    const trimmed = String(text).trim().toLowerCase();
    return trimmed === "all" || trimmed === "" ? null : parseWhole(trimmed, "class", 0, meta.num_classes - 1);
  }

  async function generate(z, n, labels) {
    const feeds = { z: new ort.Tensor("float32", z, [n, meta.latent_dim]) };
    if (meta.num_classes != null) {
      feeds.labels = new ort.Tensor("int64", BigInt64Array.from(labels.map((v) => BigInt(v))), [n]);
    }
    const output = (await session.run(feeds)).images;
    return { data: output.data, dims: output.dims };
  }

  function paint(canvas, images, n, columns, scale, gap) {
    const [h, w, c] = meta.image_shape;
    const rows = Math.ceil(n / columns);
    canvas.width = columns * (w * scale + gap) - gap;
    canvas.height = rows * (h * scale + gap) - gap;
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const tile = document.createElement("canvas");
    tile.width = w;
    tile.height = h;
    const tileCtx = tile.getContext("2d");
    const pixels = tileCtx.createImageData(w, h);
    for (let k = 0; k < n; k++) {
      for (let p = 0; p < h * w; p++) {
        for (let ch = 0; ch < 3; ch++) {
          const v = images[(k * h * w + p) * c + (c === 1 ? 0 : ch)];
          pixels.data[4 * p + ch] = Math.round(Math.min(1, Math.max(0, v)) * 255);
        }
        pixels.data[4 * p + 3] = 255;
      }
      tileCtx.putImageData(pixels, 0, 0);
      const x = (k % columns) * (w * scale + gap), y = Math.floor(k / columns) * (h * scale + gap);
      ctx.drawImage(tile, x, y, w * scale, h * scale);
    }
  }

  function scaleFor(size) {
    return Math.max(1, Math.floor(size / Math.max(meta.image_shape[0], meta.image_shape[1])));
  }

  async function drawSamples() {
    const seed = parseWhole($("seed").value, "seed", 0, config.max_seed);
    const count = parseWhole($("count").value, "count", 1, config.max_count);
    const cls = meta.num_classes != null ? parseClass($("class").value) : null;
    const refused = [seed, count, cls].filter((v) => v instanceof Error);
    state.refused = refused.map((e) => e.message);
    $("samples-refused").textContent = state.refused.join(" ");
    if (refused.length) return false;
    const z = seededLatents(seed, count, meta.latent_dim);
    const labels = meta.num_classes != null ? labelsFor(count, cls) : null;
    const out = await generate(z, count, labels);
    state.grid = { seed, count, labels, z: Array.from(z), images: Array.from(out.data), dims: Array.from(out.dims) };
    paint($("grid"), out.data, count, Math.ceil(Math.sqrt(count)), scaleFor(64), 4);
    return true;
  }

  async function drawWalk() {
    const from = parseWhole($("walk-from").value, "from seed", 0, config.max_seed);
    const to = parseWhole($("walk-to").value, "to seed", 0, config.max_seed);
    const refused = [from, to].filter((v) => v instanceof Error);
    state.walkRefused = refused.map((e) => e.message);
    $("walk-refused").textContent = state.walkRefused.join(" ");
    if (refused.length) return false;
    const steps = config.walk_steps, d = meta.latent_dim;
    const method = meta.latent_prior === "standard_normal" ? "spherical" : "linear";
    const z = interpolateLatents(seededLatents(from, 1, d), seededLatents(to, 1, d), steps, method);
    // A conditional generator walks within the class chosen for the samples (class 0 for "all").
    const chosen = meta.num_classes != null ? parseClass($("class").value) : null;
    const labels = meta.num_classes != null ? labelsFor(steps, chosen instanceof Error || chosen === null ? 0 : chosen) : null;
    const out = await generate(z, steps, labels);
    state.walk = { seeds: [from, to], steps, method, labels, z: Array.from(z), frames: Array.from(out.data) };
    $("walk-method").textContent = method === "spherical"
      ? "Spherical interpolation: the path keeps the typical radius of N(0, I) latents."
      : "Linear interpolation (this model has no Gaussian prior).";
    paint($("walk-strip"), out.data, steps, Math.ceil(steps / 2), scaleFor(40), 2);
    showFrame();
    return true;
  }

  function showFrame() {
    if (!state.walk) return;
    const position = Number($("walk-slider").value);
    const size = meta.image_shape.reduce((p, v) => p * v, 1);
    const frame = state.walk.frames.slice(position * size, (position + 1) * size);
    state.walk.position = position;
    state.walk.frame = frame;
    paint($("walk-frame"), frame, 1, 1, scaleFor(144), 0);
  }

  // Each action runs after the previous one: onnxruntime-web runs one session call at a time.
  let queue = Promise.resolve();
  function act(work) {
    queue = queue.then(work).catch((err) => fail(`Generating failed: ${err.message}`));
    state.busy = queue;
    return queue;
  }
  state.act = act;

  async function main() {
    try {
      await loadScript(config.ort_script).catch((err) => {
        throw new Error(`${err.message}. Without internet access, export the page with zoo export RUN_DIR --web --offline.`);
      });
      ort.env.wasm.wasmPaths = new URL(config.ort_base, document.baseURI).href;
      // Threads need a cross-origin-isolated page (COOP/COEP headers); a plain static server gives one thread.
      ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;

      const metaResponse = await fetchOrSay(config.metadata, "generator's metadata");
      let parsed;
      try {
        parsed = await metaResponse.json();
      } catch (err) {
        throw new Error(`${config.metadata} is not the metadata of a genzoo generator: not valid JSON (${err.message}).`);
      }
      meta = checkMetadata(parsed, config.metadata);
      const bytes = new Uint8Array(await (await fetchOrSay(config.model, "generator model")).arrayBuffer());
      session = await createSession(bytes, config.model);
      const io = `takes ${JSON.stringify(session.inputNames)} and gives ${JSON.stringify(session.outputNames)}`;
      const inputs = meta.num_classes != null ? "z,labels" : "z";
      if (session.inputNames.join() !== inputs || session.outputNames.join() !== "images") {
        throw new Error(`${config.model} is not a genzoo generator: it ${io}; a genzoo generator takes ${JSON.stringify(inputs.split(","))} and gives ["images"].`);
      }
      let trial;
      try {
        trial = await generate(seededLatents(0, 1, meta.latent_dim), 1, [0]);
      } catch (err) {
        throw new Error(`${config.model} is not the generator ${config.metadata} describes: it fails on z of shape [1, ${meta.latent_dim}] (${err.message}).`);
      }
      const expected = [1, ...meta.image_shape];
      if (trial.dims.join() !== expected.join()) {
        throw new Error(`${config.model} is not the generator ${config.metadata} describes: it gives images of shape [${trial.dims}], not [${expected}].`);
      }
      state.metadata = meta;
      const where = meta.dataset ? ` trained on ${meta.dataset}` : "";
      $("title").textContent = `genzoo ${meta.model}${where}`;
      $("walk-slider").max = String(config.walk_steps - 1);
      $("samples").hidden = $("walk").hidden = false;
      $("class-field").hidden = meta.num_classes == null;
      await drawSamples();
      await drawWalk();
      const classes = meta.num_classes != null ? `, ${meta.num_classes} classes` : "";
      $("status").textContent = `${meta.model} generator, latent_dim ${meta.latent_dim}${classes}, images ${meta.image_shape.join("×")}; ` +
        `computed in this page by onnxruntime-web ${config.ort_version} (${state.backend}).`;
      state.state = "ready";
      document.body.dataset.state = "ready";
    } catch (err) {
      fail(err.message);
      return;
    }
    $("samples-form").addEventListener("submit", (e) => { e.preventDefault(); act(drawSamples); });
    $("new-samples").addEventListener("click", () => {
      $("seed").value = String(crypto.getRandomValues(new Uint32Array(1))[0]);
      act(drawSamples);
    });
    $("walk-form").addEventListener("submit", (e) => { e.preventDefault(); act(drawWalk); });
    $("walk-slider").addEventListener("input", showFrame);
  }

  main();
}
