// srlab playground: plain JavaScript, no dependencies. URLs are relative, so the page works under a
// reverse proxy's path prefix too.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { models: [], file: null, job: null, view: { zoom: 1, x: 0, y: 0 }, size: null };

async function api(path, opts) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin" }, opts || {}));
  const isJson = (r.headers.get("content-type") || "").includes("application/json");
  const body = isJson ? await r.json() : null;
  if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

function say(text, error) {
  const p = $("status-text");
  p.textContent = text;
  p.classList.toggle("error", !!error);
}

function label(m) {
  const scale = m.scale ? `x${m.scale}` : "x?";
  return `${m.name} (${scale}, ${m.speed})`;
}

async function loadModels() {
  const { models } = await api("api/models");
  state.models = models.filter((m) => m.available);
  const sel = $("model");
  sel.innerHTML = "";
  const checks = $("model-checks");
  checks.innerHTML = "";
  for (const m of state.models) {
    const o = document.createElement("option");
    o.value = m.name;
    o.textContent = label(m);
    if (m.name === "srcnn-x2") o.selected = true;
    sel.appendChild(o);
    const l = document.createElement("label");
    const c = document.createElement("input");
    c.type = "checkbox";
    c.value = m.name;
    if (m.name === "bicubic-x2" || m.name === "srcnn-x2") c.checked = true;
    l.append(c, " " + label(m));
    checks.appendChild(l);
  }
  showHint();
}

function showHint() {
  const m = state.models.find((x) => x.name === $("model").value);
  $("model-hint").textContent = m ? `${m.family}, ${m.kind}, speed: ${m.speed}. ${m.description}` : "";
}

function mode() {
  return document.querySelector("input[name=mode]:checked").value;
}

function setMode() {
  const cmp = mode() === "compare";
  $("compare-models").hidden = !cmp;
  $("single-model").hidden = cmp;
  $("submit").textContent = cmp ? "Compare" : "Upscale";
}

function setFile(f) {
  state.file = f || null;
  $("drop-text").textContent = f ? `${f.name} (${Math.round(f.size / 1024)} KB)` : "Drop an image here, or press Enter to choose one";
  $("submit").disabled = !f;
}

async function submit(ev) {
  ev.preventDefault();
  if (!state.file) return;
  const fd = new FormData();
  fd.append("file", state.file, state.file.name);
  for (const k of ["tile", "precision", "scale"]) {
    const v = $(k).value;
    if (v && v !== "auto") fd.append(k, v);
  }
  let path = "api/jobs";
  if (mode() === "compare") {
    const names = [...document.querySelectorAll("#model-checks input:checked")].map((c) => c.value);
    if (!names.length) return say("choose at least one model to compare", true);
    fd.append("models", names.join(","));
    fd.append("protocol", $("protocol").value);
    if ($("truth").files[0]) fd.append("truth", $("truth").files[0]);
    fd.delete("scale");
    path = "api/compare";
  } else {
    fd.append("model", $("model").value);
  }
  $("submit").disabled = true;
  try {
    const { id } = await api(path, { method: "POST", body: fd });
    say(`job ${id} queued`);
    follow(id);
  } catch (e) {
    say(e.message, true);
  } finally {
    $("submit").disabled = !state.file;
    refreshRecent();
  }
}

function follow(id) {
  const bar = $("progress");
  bar.hidden = false;
  bar.value = 0;
  const done = (job) => {
    bar.hidden = true;
    refreshRecent();
    if (job.status === "done") {
      say(`job ${id} done`);
      show(id);
    } else {
      say(`job ${id} failed: ${job.error}`, true);
    }
  };
  if (window.EventSource) {
    const es = new EventSource(`api/jobs/${id}/events`);
    const on = (ev) => {
      const job = JSON.parse(ev.data);
      bar.value = job.progress || 0;
      if (job.status === "queued" || job.status === "running") say(`job ${id} ${job.status}, ${Math.round(100 * (job.progress || 0))}%`);
      else { es.close(); done(job); }
    };
    for (const t of ["queued", "running", "done", "failed"]) es.addEventListener(t, on);
    es.addEventListener("deleted", () => { es.close(); bar.hidden = true; say(`job ${id} was deleted`, true); });
    es.onerror = () => { es.close(); poll(id, bar, done); };
  } else {
    poll(id, bar, done);
  }
}

async function poll(id, bar, done) {
  for (;;) {
    let job;
    try { job = await api(`api/jobs/${id}`); } catch (e) { return say(e.message, true); }
    bar.value = job.progress || 0;
    if (job.status === "done" || job.status === "failed") return done(job);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function show(id) {
  const job = await api(`api/jobs/${id}`);
  state.job = job;
  const files = (n) => `api/jobs/${id}/files/${encodeURIComponent(n)}`;
  const input = files(job.params.input);
  const viewer = $("viewer");
  viewer.hidden = false;
  let outs;
  if (job.kind === "compare") {
    outs = job.result.outputs.filter((o) => o.file).map((o) => ({ name: o.model, src: files(o.file), w: o.width, h: o.height }));
  } else {
    outs = [{ name: job.params.model, src: files(job.result.file), w: job.result.width, h: job.result.height }];
  }
  const isVideo = job.params.media === "video";
  $("video-block").hidden = !isVideo;
  $("compare-block").hidden = isVideo || !outs.length;
  $("side-block").hidden = isVideo;
  const dl = $("download");
  dl.href = job.kind === "compare" ? `api/jobs/${id}/result` : `api/jobs/${id}/result?download=1`;
  dl.textContent = job.kind === "compare" ? "Download results (JSON)" : "Download";
  if (isVideo) {
    $("video-in").src = input;
    $("video").src = files(job.result.file);
    $("video-cap").textContent = `${job.params.model} ${job.result.width}x${job.result.height}, ${job.result.frames} frames`;
    // both at the output's size, so the input shows its pixels enlarged (the browser's scaling)
    const w = Math.min(640, Math.max(320, job.result.width));
    for (const v of [$("video-in"), $("video")]) v.style.width = `${w}px`;
  } else if (outs.length) {
    state.size = { w: outs[0].w, h: outs[0].h };
    $("ba-before").src = input;
    $("ba-after").src = outs[0].src;
    const pick = $("after-pick");
    pick.innerHTML = "";
    outs.forEach((o, i) => { const opt = document.createElement("option"); opt.value = i; opt.textContent = o.name; pick.appendChild(opt); });
    pick.onchange = () => { $("ba-after").src = outs[pick.value].src; };
    $("after-pick-row").hidden = outs.length < 2;
    fitBeforeAfter();
    setSlider($("slider").value);
    const panels = [{ name: `input ${job.params.width}x${job.params.height} (nearest)`, src: input, nearest: true }];
    for (const o of outs) panels.push({ name: `${o.name} ${o.w}x${o.h}`, src: o.src });
    if (job.params.truth) panels.push({ name: "ground truth", src: files(job.params.truth) });
    buildPanels(panels);
  }
  metricsTable(job);
  const notes = (job.result && job.result.notes) || [];
  $("notes").textContent = notes.join(" ");
}

function metricsTable(job) {
  const t = $("metrics");
  const rows = job.kind === "compare" ? job.result.outputs : [];
  t.hidden = !rows.length;
  const body = t.querySelector("tbody");
  body.innerHTML = "";
  // non-finite scores arrive as the strings "Infinity"/"NaN" (srlab's JSON rule): identical images score ∞
  const f = (v, d) => (typeof v === "number" ? v.toFixed(d) : v === "Infinity" ? "∞" : v === "NaN" ? "NaN" : "–");
  for (const r of rows) {
    const tr = document.createElement("tr");
    const cells = [r.model, r.width ? `${r.width}x${r.height}` : "", f(r.psnr, 2), f(r.ssim, 4), f(r.lpips, 4)];
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); }
    const td = document.createElement("td");
    if (r.file) {
      const a = document.createElement("a");
      a.href = `api/jobs/${job.id}/files/${r.file}?download=1`;
      a.textContent = "download";
      td.appendChild(a);
    } else {
      td.textContent = r.error || "";
    }
    tr.appendChild(td);
    body.appendChild(tr);
  }
  const truth = job.result && job.result.truth;
  $("metrics-caption").textContent = truth
    ? `against the ground truth, protocol ${job.result.protocol} (${job.result.metric_channel.toUpperCase()} channel)`
    : "no ground truth given: outputs only";
}

// the input is shown at the output's size (nearest neighbour), both fitted into the column and 60% of
// the window height with the output's aspect ratio
function fitBeforeAfter() {
  if (!state.size) return;
  const box = $("viewer");
  const k = Math.min(4, (box.clientWidth - 4) / state.size.w, Math.min(640, window.innerHeight * 0.6) / state.size.h);
  for (const img of [$("ba-before"), $("ba-after")]) {
    img.style.width = `${Math.round(state.size.w * k)}px`;
    img.style.height = `${Math.round(state.size.h * k)}px`;
  }
  // enlarged past 1:1, the output shows its own pixels too rather than the browser's smoothing
  $("ba-after").style.imageRendering = k > 1 ? "pixelated" : "auto";
  $("slider").style.width = `${Math.max(200, Math.round(state.size.w * k))}px`;
}

function setSlider(v) {
  $("ba-after-wrap").style.clipPath = `inset(0 0 0 ${v}%)`;
  $("ba-line").style.left = `${v}%`;
}

// ---- synchronised zoom / pan: every panel shows the same region, in output pixels
function buildPanels(list) {
  const box = $("panels");
  box.innerHTML = "";
  for (const p of list) {
    const fig = document.createElement("figure");
    fig.className = "panel";
    fig.style.margin = "0";
    const view = document.createElement("div");
    view.className = "view";
    const img = document.createElement("img");
    img.src = p.src;
    img.alt = p.name;
    img.draggable = false;
    img.width = state.size.w;
    img.height = state.size.h;
    if (!p.nearest) img.style.imageRendering = "auto";
    view.appendChild(img);
    const cap = document.createElement("figcaption");
    cap.className = "cap";
    cap.textContent = p.name;
    fig.append(view, cap);
    box.appendChild(fig);
  }
  resetView();
}

function resetView() {
  const view = document.querySelector("#panels .view");
  if (!view || !state.size) return;
  const z = Math.min(view.clientWidth / state.size.w, view.clientHeight / state.size.h, 1) || 1;
  state.view = { zoom: z, x: 0, y: 0 };
  applyView();
}

function applyView() {
  const { zoom, x, y } = state.view;
  for (const img of document.querySelectorAll("#panels img")) {
    img.style.transform = `translate(${-x * zoom}px, ${-y * zoom}px) scale(${zoom})`;
  }
}

function zoomAt(factor, cx, cy) {
  const v = state.view;
  const nz = Math.min(32, Math.max(0.05, v.zoom * factor));
  // keep the image point under (cx, cy) fixed
  v.x = v.x + cx / v.zoom - cx / nz;
  v.y = v.y + cy / v.zoom - cy / nz;
  v.zoom = nz;
  applyView();
}

function panBy(dx, dy) {
  state.view.x -= dx / state.view.zoom;
  state.view.y -= dy / state.view.zoom;
  applyView();
}

function wirePanels() {
  const box = $("panels");
  box.addEventListener("wheel", (e) => {
    const view = e.target.closest(".view");
    if (!view) return;
    e.preventDefault();
    const r = view.getBoundingClientRect();
    zoomAt(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  let drag = null;
  box.addEventListener("pointerdown", (e) => {
    if (!e.target.closest(".view")) return;
    drag = { x: e.clientX, y: e.clientY };
    box.setPointerCapture(e.pointerId);
  });
  box.addEventListener("pointermove", (e) => {
    if (!drag) return;
    panBy(e.clientX - drag.x, e.clientY - drag.y);
    drag = { x: e.clientX, y: e.clientY };
  });
  box.addEventListener("pointerup", () => { drag = null; });
  box.addEventListener("keydown", (e) => {
    const step = 40;
    const keys = {
      "+": () => zoomAt(1.25, 0, 0), "=": () => zoomAt(1.25, 0, 0), "-": () => zoomAt(0.8, 0, 0),
      "0": resetView, ArrowLeft: () => panBy(step, 0), ArrowRight: () => panBy(-step, 0),
      ArrowUp: () => panBy(0, step), ArrowDown: () => panBy(0, -step),
    };
    if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
  });
}

// ---- recent jobs
async function refreshRecent() {
  let jobs;
  try { ({ jobs } = await api("api/jobs")); } catch (e) { return; }
  const ul = $("recent");
  ul.innerHTML = "";
  for (const j of jobs.slice(0, 20)) {
    const li = document.createElement("li");
    const what = j.kind === "compare" ? `compare ${j.params.models.length} models` : j.params.model;
    const name = document.createElement("span");
    name.textContent = `${j.params.name || j.id} · ${what}`;
    const st = document.createElement("span");
    st.className = "st";
    st.textContent = j.status;
    if (j.error) st.title = j.error;
    li.append(name, st);
    if (j.status === "done") {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "show";
      b.setAttribute("aria-label", `show job ${j.id}`);
      b.onclick = () => show(j.id);
      li.appendChild(b);
    }
    const del = document.createElement("button");
    del.type = "button";
    del.textContent = "delete";
    del.setAttribute("aria-label", `delete job ${j.id}`);
    del.onclick = async () => { try { await api(`api/jobs/${j.id}`, { method: "DELETE" }); } catch (e) { say(e.message, true); } refreshRecent(); };
    li.appendChild(del);
    ul.appendChild(li);
  }
}

function wire() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => setFile(e.target.files[0]));
  drop.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("file").click(); } });
  for (const t of ["dragenter", "dragover"]) drop.addEventListener(t, (e) => { e.preventDefault(); drop.classList.add("over"); });
  for (const t of ["dragleave", "drop"]) drop.addEventListener(t, () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); if (e.dataTransfer.files[0]) setFile(e.dataTransfer.files[0]); });
  $("model").addEventListener("change", showHint);
  for (const r of document.querySelectorAll("input[name=mode]")) r.addEventListener("change", setMode);
  $("job-form").addEventListener("submit", submit);
  $("slider").addEventListener("input", (e) => setSlider(e.target.value));
  const ba = $("ba");
  const slideTo = (e) => {
    const r = ba.getBoundingClientRect();
    const v = Math.round(Math.min(100, Math.max(0, (100 * (e.clientX - r.left)) / r.width)));
    $("slider").value = v;
    setSlider(v);
  };
  ba.addEventListener("pointerdown", (e) => { ba.setPointerCapture(e.pointerId); slideTo(e); });
  ba.addEventListener("pointermove", (e) => { if (e.buttons) slideTo(e); });
  window.addEventListener("resize", fitBeforeAfter);
  wirePanels();
  loadModels().catch((e) => say(`cannot list models: ${e.message}`, true));
  refreshRecent();
  setInterval(refreshRecent, 10000);  // jobs of other users (a lab server) show up too
  setMode();
}

document.addEventListener("DOMContentLoaded", wire);
