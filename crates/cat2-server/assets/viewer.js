// cat2rs image viewer: frames of a stack (native arrays, HDF5 proxies, lazy
// expressions) drawn on a canvas. The server sends float32 pixels
// (/gui/frame); colour maps and contrast are applied here, so changing them
// costs no request. Frames are cached and their neighbours prefetched; a
// frame is drawn only if it is still the one asked for, and the index shown
// is always the index of the frame drawn.
"use strict";

(function () {
  const CACHE_FRAMES = 48;
  const PREFETCH = [1, -1, 2, 3];
  // Colour maps as anchors, interpolated into 256-entry tables.
  const ANCHORS = {
    gray: ["#000000", "#ffffff"],
    viridis: ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b", "#fde725"],
    magma: ["#000004", "#180f3d", "#440f76", "#721f81", "#9e2f7f", "#cd4071", "#f1605d", "#fd9668", "#feca8d", "#fcfdbf"],
  };
  const hex = (h) => [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16));
  const LUTS = {};
  for (const [name, anchors] of Object.entries(ANCHORS)) {
    const cols = anchors.map(hex);
    const lut = new Uint8ClampedArray(256 * 3);
    for (let k = 0; k < 256; k++) {
      const t = (k / 255) * (cols.length - 1);
      const i = Math.min(Math.floor(t), cols.length - 2);
      const f = t - i;
      for (let c = 0; c < 3; c++) lut[k * 3 + c] = Math.round(cols[i][c] * (1 - f) + cols[i + 1][c] * f);
    }
    LUTS[name] = lut;
  }

  // Frames of images: the axes they are taken along (0: the array is one image) and
  // whether the last dimension holds colour channels (as the server decides).
  function frameAxes(shape) {
    const n = shape.length;
    const rgb = shape[n - 1] === 3 || shape[n - 1] === 4;
    if (n === 2) return [0, false];
    if (n === 3) return rgb ? [0, true] : [3, false];
    if (n === 4 && rgb) return [3, true];
    return [0, false];
  }

  function percentile(sorted, p) {
    if (!sorted.length) return 0;
    const k = Math.min(sorted.length - 1, Math.max(0, Math.round((p / 100) * (sorted.length - 1))));
    return sorted[k];
  }

  class Viewer {
    constructor(el, path, shape) {
      this.el = el;
      this.path = path;
      this.shape = shape;
      [this.naxes, this.rgb] = frameAxes(shape);
      this.cache = new Map();
      this.pending = new Map();
      this.axis = 0;
      this.wanted = 0;
      this.shown = null;
      this.timer = null;
      this.canvas = el.querySelector(".v-canvas");
      this.ctx = this.canvas.getContext("2d");
      this.q = (s) => el.querySelector(s);
      this.stopped = false;
      this.wire();
      this.setAxis(0);
    }

    frames() { return this.naxes ? this.shape[this.axis] : 1; }

    wire() {
      const q = this.q;
      if (!this.naxes) {
        for (const s of [".v-axis", ".v-prev", ".v-slider", ".v-next", ".v-index", ".v-play"]) {
          const e = q(s);
          (e.closest("label") || e).hidden = true;
        }
      }
      q(".v-axis").addEventListener("change", () => this.setAxis(Number(q(".v-axis").value)));
      q(".v-slider").addEventListener("input", () => this.go(Number(q(".v-slider").value)));
      q(".v-index").addEventListener("change", () => this.go(Number(q(".v-index").value)));
      q(".v-prev").addEventListener("click", () => this.go(this.wanted - 1));
      q(".v-next").addEventListener("click", () => this.go(this.wanted + 1));
      q(".v-play").addEventListener("click", () => this.togglePlay());
      for (const s of [".v-cmap", ".v-contrast", ".v-log"]) q(s).addEventListener("change", () => this.redraw());
      this.keys = (e) => {
        if (this.el.offsetParent === null) return; // hidden tab
        const t = e.target;
        if (t && (t.tagName === "INPUT" && t.type !== "range") || (t && t.tagName === "TEXTAREA")) return;
        if (e.key === "ArrowRight" || e.key === "ArrowDown") { e.preventDefault(); this.go(this.wanted + 1); }
        if (e.key === "ArrowLeft" || e.key === "ArrowUp") { e.preventDefault(); this.go(this.wanted - 1); }
        if (e.key === " " && t === document.body) { e.preventDefault(); this.togglePlay(); }
      };
      document.addEventListener("keydown", this.keys);
      this.canvas.addEventListener("mousemove", (e) => this.readout(e));
    }

    stop() {
      this.stopped = true;
      clearInterval(this.timer);
      this.timer = null;
      document.removeEventListener("keydown", this.keys);
    }

    setAxis(axis) {
      this.axis = axis;
      this.cache.clear();
      const n = this.frames();
      const s = this.q(".v-slider");
      s.max = String(n - 1);
      this.q(".v-index").max = String(n - 1);
      // Reserve the frame's shape before it arrives, so the page never jumps.
      const dims = this.shape.slice(0, this.rgb ? this.shape.length - 1 : this.shape.length);
      const rest = this.naxes ? dims.filter((_, d) => d !== axis) : dims;
      this.canvas.style.aspectRatio = `${rest[1]} / ${rest[0]}`;
      this.go(0, true);
    }

    go(i, force = false) {
      const n = this.frames();
      i = Math.max(0, Math.min(n - 1, Math.round(i) || 0));
      if (i === this.wanted && !force && this.shown && this.shown.index === i) return;
      this.wanted = i;
      this.q(".v-slider").value = String(i);
      this.q(".v-index").value = String(i);
      this.load(this.axis, i).then((frame) => {
        if (this.stopped || frame.axis !== this.axis || frame.index !== this.wanted) return;
        this.draw(frame);
      }).catch((err) => { if (!this.stopped) window.cat2ShowMessage && window.cat2ShowMessage(err.message); });
      for (const d of PREFETCH) {
        const k = i + d;
        if (k >= 0 && k < n) this.load(this.axis, k).catch(() => {});
      }
    }

    load(axis, index) {
      const key = `${axis}:${index}`;
      if (this.cache.has(key)) {
        const f = this.cache.get(key);
        this.cache.delete(key);
        this.cache.set(key, f); // most recently used last
        return Promise.resolve(f);
      }
      if (this.pending.has(key)) return this.pending.get(key);
      const side = Math.min(2048, Math.max(256, Math.round(this.el.clientWidth * (window.devicePixelRatio || 1))));
      const url = `/gui/frame/${this.path.split("/").map(encodeURIComponent).join("/")}?axis=${axis}&i=${index}&max=${side}`;
      const p = fetch(url, { credentials: "same-origin" }).then(async (resp) => {
        if (!resp.ok) {
          let detail = await resp.text();
          try { detail = JSON.parse(detail).detail; } catch (_) { /* text */ }
          throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
        }
        const [h, w, c] = resp.headers.get("x-frame-shape").split(",").map(Number);
        const full = resp.headers.get("x-frame-full").split(",").map(Number);
        const data = new Float32Array(await resp.arrayBuffer());
        const frame = { axis, index, h, w, c, full, data, stats: null };
        this.cache.set(key, frame);
        while (this.cache.size > CACHE_FRAMES) this.cache.delete(this.cache.keys().next().value);
        return frame;
      }).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
      return p;
    }

    // Contrast limits of a frame for the chosen mode.
    limits(frame) {
      const mode = this.q(".v-contrast").value;
      if (!frame.stats) {
        let lo = Infinity, hi = -Infinity;
        const step = Math.max(1, Math.floor(frame.data.length / 65536));
        const sample = [];
        for (let k = 0; k < frame.data.length; k++) {
          const v = frame.data[k];
          if (!Number.isFinite(v)) continue;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
          if (k % step === 0) sample.push(v);
        }
        sample.sort((a, b) => a - b);
        frame.stats = { lo, hi, sample };
      }
      const s = frame.stats;
      if (mode === "p1") return [percentile(s.sample, 1), percentile(s.sample, 99)];
      if (mode === "p01") return [percentile(s.sample, 0.1), percentile(s.sample, 99.9)];
      return [s.lo, s.hi];
    }

    redraw() { if (this.shown) this.draw(this.shown); }

    draw(frame) {
      const { h, w, c, data } = frame;
      let [lo, hi] = this.limits(frame);
      if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
      const log = this.q(".v-log").checked;
      const span = hi > lo ? hi - lo : 1;
      const scale = log ? 255 / Math.log1p(span) : 255 / span;
      const lut = LUTS[this.q(".v-cmap").value] || LUTS.gray;
      if (this.canvas.width !== w || this.canvas.height !== h) { this.canvas.width = w; this.canvas.height = h; }
      const img = this.ctx.createImageData(w, h);
      const out = img.data;
      const level = (v) => {
        if (!Number.isFinite(v)) return 0;
        const t = v <= lo ? 0 : v >= hi ? span : v - lo;
        return Math.round(log ? Math.log1p(t) * scale : t * scale);
      };
      for (let p = 0; p < h * w; p++) {
        if (c >= 3) {
          for (let k = 0; k < 3; k++) out[p * 4 + k] = level(data[p * c + k]);
          out[p * 4 + 3] = c === 4 ? level(data[p * c + 3]) : 255;
        } else {
          const g = level(data[p]) * 3;
          out[p * 4] = lut[g]; out[p * 4 + 1] = lut[g + 1]; out[p * 4 + 2] = lut[g + 2]; out[p * 4 + 3] = 255;
        }
      }
      this.ctx.putImageData(img, 0, 0);
      this.shown = frame;
      this.limitsShown = [lo, hi];
      // What is drawn, for people and for tests.
      this.canvas.dataset.axis = String(frame.axis);
      this.canvas.dataset.frame = String(frame.index);
      this.canvas.dataset.vmin = String(lo);
      this.canvas.dataset.vmax = String(hi);
      const n = this.frames();
      this.q(".v-shown").textContent = this.naxes
        ? `Frame ${frame.index} of ${n - 1} along dim ${frame.axis}` : "Image";
      this.q(".v-range").textContent = `· ${frame.full[1]}×${frame.full[0]} px` +
        (frame.full[0] !== h ? ` (shown at ${w}×${h})` : "") + ` · range ${lo.toPrecision(5)} – ${hi.toPrecision(5)}`;
    }

    readout(e) {
      const f = this.shown;
      if (!f) return;
      const r = this.canvas.getBoundingClientRect();
      const x = Math.floor(((e.clientX - r.left) / r.width) * f.w);
      const y = Math.floor(((e.clientY - r.top) / r.height) * f.h);
      if (x < 0 || y < 0 || x >= f.w || y >= f.h) return;
      const k = (y * f.w + x) * f.c;
      const vals = Array.from(f.data.slice(k, k + f.c)).map((v) => +v.toPrecision(6));
      this.q(".v-pixel").textContent = `· (${y}, ${x}) = ${vals.join(", ")}`;
    }

    togglePlay() {
      const b = this.q(".v-play");
      if (this.timer) { clearInterval(this.timer); this.timer = null; b.textContent = "Play"; return; }
      b.textContent = "Pause";
      this.timer = setInterval(() => {
        // Step only once the current frame is on screen: playback never skips ahead of the data.
        if (this.shown && this.shown.index === this.wanted) this.go((this.wanted + 1) % this.frames(), true);
      }, 100);
    }
  }

  window.Cat2Viewer = Viewer;
})();
