// cat2rs web GUI: loads the server's fragments into the page, keeps the URL
// in step with what is shown, and sends actions to the REST API. No
// framework; every rule is the server's.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

// ---- messages ------------------------------------------------------------
function showMessage(text, kind = "error") {
  const box = $("#alert");
  if (!box) return;
  $("#alert-text").textContent = text;
  box.className = "alert " + kind;
  box.hidden = false;
}
window.cat2ShowMessage = (t) => showMessage(t);
function clearMessage() {
  const box = $("#alert");
  if (box) box.hidden = true;
}
document.addEventListener("click", (e) => {
  if (e.target && e.target.id === "alert-close") clearMessage();
});

// The error text of a failed answer: the API's `detail`, else the status.
async function errorText(resp) {
  let body = "";
  try { body = await resp.text(); } catch (_) { /* keep the status */ }
  try {
    const detail = JSON.parse(body).detail;
    if (typeof detail === "string") return detail;
    if (detail && detail.reason) return detail.reason;
    if (detail && detail.code) return detail.code;
    if (Array.isArray(detail) && detail.length) return detail.map((d) => d.msg).join("; ");
  } catch (_) { /* not JSON */ }
  return `${resp.status} ${resp.statusText}${body ? ": " + body.slice(0, 200) : ""}`;
}

async function getText(url, opts = {}) {
  const resp = await fetch(url, { credentials: "same-origin", ...opts });
  if (!resp.ok) throw new Error(await errorText(resp));
  return resp.text();
}

// Percent-encodes a dataset path for a URL, keeping its slashes.
const urlPath = (p) => p.split("/").map(encodeURIComponent).join("/").replace(/%40/g, "@");

// The banner's disk usage, asked again after a change.
async function refreshUsage() {
  const text = $("#usage-text");
  if (!text) return;
  try {
    const usage = await (await fetch("/gui/usage", { credentials: "same-origin" })).json();
    if (!usage) return;
    text.textContent = usage.text;
    const bar = $("#usage-bar");
    if (bar && usage.percent !== null) bar.value = usage.percent;
  } catch (_) { /* the old figure stays */ }
}

// ---- account pages ---------------------------------------------------------
const ACCOUNT_ERRORS = {
  LOGIN_BAD_CREDENTIALS: "Incorrect credentials, please verify the email address and password.",
  REGISTER_USER_ALREADY_EXISTS: "Email address already registered, did you forget your password?",
  RESET_PASSWORD_BAD_TOKEN: "Invalid or expired link, please ask for a new one.",
};
function accountForm(id, send, next) {
  const form = $(id);
  if (!form) return;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = Object.fromEntries(new FormData(form));
    const resp = await send(data);
    if (resp.ok) { window.location = next(data); return; }
    const text = await errorText(resp);
    const msg = $("#account-message");
    msg.textContent = ACCOUNT_ERRORS[text] || text;
    msg.className = "message error";
    msg.hidden = false;
  });
}
const postJson = (url, data) => fetch(url, {
  method: "POST", credentials: "same-origin",
  headers: { "content-type": "application/json" }, body: JSON.stringify(data),
});
accountForm("#login-form", (d) => fetch("/auth/jwt/login", {
  method: "POST", credentials: "same-origin", body: new URLSearchParams(d),
}), () => "/");
accountForm("#register-form", (d) => postJson("/auth/register", d),
  () => "/login?message=" + encodeURIComponent("Successful registration! Please type your email and password."));
accountForm("#forgot-form", (d) => postJson("/auth/forgot-password", d), () => "/forgot-password-ok");
accountForm("#reset-form", (d) => postJson("/auth/reset-password", d),
  () => "/login?message=" + encodeURIComponent("Your password was changed: sign in with it."));

const signOut = $("#sign-out");
if (signOut) {
  signOut.addEventListener("click", async (e) => {
    e.preventDefault();
    await fetch("/auth/jwt/logout", { method: "POST", credentials: "same-origin" });
    window.location = "/logout";
  });
}

// ---- the browser ------------------------------------------------------------
const browser = $("#browser");
if (browser) initBrowser(browser);

function initBrowser(root) {
  const loggedIn = root.dataset.loggedIn === "1";
  const state = {
    path: root.dataset.path || "",
    search: $("#filter").value,
    fullscreen: root.classList.contains("fullscreen"),
  };
  const checkedRoots = () => $$("#roots input[type=checkbox]").filter((c) => c.checked).map((c) => c.value);

  function query() {
    const q = new URLSearchParams();
    for (const r of checkedRoots()) q.append("roots", r);
    if (state.search) q.set("search", state.search);
    if (state.fullscreen) q.set("fullscreen", "1");
    return q;
  }
  function pushUrl(replace = false) {
    const tab = currentTab();
    const url = (state.path ? "/roots/" + urlPath(state.path) : "/") + "?" + query().toString() + (tab ? "#" + tab : "");
    if (url !== location.pathname + location.search + location.hash) {
      (replace ? history.replaceState : history.pushState).call(history, null, "", url);
    }
    document.title = state.path ? state.path + " · cat2rs" : "cat2rs";
  }

  // -- the list
  let listToken = 0;
  async function loadList() {
    const token = ++listToken;
    const q = query();
    if (state.path) q.set("current", state.path);
    const list = $("#list");
    list.setAttribute("aria-busy", "true");
    try {
      const html = await getText("/gui/list?" + q.toString());
      if (token !== listToken) return;
      list.innerHTML = html;
      markSelected();
    } catch (err) {
      showMessage(err.message);
    } finally {
      if (token === listToken) list.setAttribute("aria-busy", "false");
    }
  }
  function markSelected() {
    for (const tr of $$("#list tr")) tr.classList.toggle("selected", tr.dataset.path === state.path);
  }
  $("#list").addEventListener("click", (e) => {
    const a = e.target.closest("a");
    if (!a) return;
    e.preventDefault();
    const path = a.closest("tr").dataset.path;
    // Clicking the open dataset again closes it.
    openPath(path === state.path ? "" : path);
  });
  for (const box of $$("#roots input[type=checkbox]")) {
    box.addEventListener("change", () => { pushUrl(true); loadList(); });
  }
  let filterTimer = null;
  $("#filter").addEventListener("input", () => {
    clearTimeout(filterTimer);
    filterTimer = setTimeout(() => { state.search = $("#filter").value; pushUrl(true); loadList(); }, 300);
  });

  // -- the dataset panel
  let infoToken = 0;
  const currentTab = () => {
    const active = $("#meta .tab.active");
    return active ? active.dataset.tab : "";
  };
  async function openPath(path, { push = true, tab = "" } = {}) {
    const token = ++infoToken;
    if (window.cat2Viewer) window.cat2Viewer.stop();
    state.path = path;
    markSelected();
    const meta = $("#meta");
    if (!path) {
      meta.innerHTML = "";
      if (push) pushUrl();
      return;
    }
    meta.setAttribute("aria-busy", "true");
    try {
      const html = await getText("/gui/info/" + urlPath(path));
      if (token !== infoToken) return;
      meta.innerHTML = html;
      wirePanel(meta);
      // The tab asked for (a deep link's #hash on page load), else the first.
      const wanted = tab;
      const first = $(".tab", meta);
      const target = $$(".tab", meta).find((t) => t.dataset.tab === wanted) || first;
      if (target) activateTab(target.dataset.tab);
      if (push) pushUrl();
    } catch (err) {
      meta.innerHTML = "";
      showMessage(err.message);
    } finally {
      meta.setAttribute("aria-busy", "false");
    }
  }

  function activateTab(id) {
    const meta = $("#meta");
    for (const t of $$(".tab", meta)) t.classList.toggle("active", t.dataset.tab === id);
    for (const p of $$(".pane", meta)) p.hidden = p.dataset.pane !== id;
    const pane = $(`.pane[data-pane="${id}"]`, meta);
    if (!pane) return;
    if (id === "data" && !pane.dataset.loaded) { pane.dataset.loaded = "1"; loadView(pane, ""); }
    if (id === "display" && !pane.dataset.loaded) {
      pane.dataset.loaded = "1";
      getText("/gui/display/" + urlPath(state.path))
        .then((html) => { $(".pane-body", pane).innerHTML = html; })
        .catch((err) => showMessage(err.message));
    }
    if (window.cat2Viewer) window.cat2Viewer.stop();
    if (id === "viewer") {
      const el = $(".viewer", pane);
      const info = $(".info", meta);
      window.cat2Viewer = new window.Cat2Viewer(el, state.path, JSON.parse(info.dataset.shape));
    }
  }

  async function loadView(pane, params) {
    const body = $(".pane-body", pane);
    body.setAttribute("aria-busy", "true");
    try {
      body.innerHTML = await getText("/gui/view/" + urlPath(state.path) + (params ? "?" + params : ""));
      const form = $(".view-controls", body);
      form.addEventListener("change", () => {
        if (form.classList.contains("records-controls")) {
          // Record arrays: first row, rows shown, fields, order and filter, as a form.
          loadView(pane, new URLSearchParams(new FormData(form)).toString());
          return;
        }
        const starts = $$("input[name=start]", form).map((i) => i.value || "0");
        const sizes = $$("input[name=size]", form).map((i) => i.value || "1");
        loadView(pane, "start=" + starts.join(",") + "&size=" + sizes.join(","));
      });
      form.addEventListener("submit", (e) => e.preventDefault());
    } catch (err) {
      showMessage(err.message);
    } finally {
      body.setAttribute("aria-busy", "false");
    }
  }

  function wirePanel(meta) {
    for (const t of $$(".tab", meta)) {
      t.addEventListener("click", () => { activateTab(t.dataset.tab); pushUrl(true); });
    }
    const fs = $("#fullscreen-toggle", meta);
    fs.textContent = state.fullscreen ? "Exit full screen" : "Full screen";
    fs.addEventListener("click", (e) => {
      e.preventDefault();
      state.fullscreen = !state.fullscreen;
      root.classList.toggle("fullscreen", state.fullscreen);
      fs.textContent = state.fullscreen ? "Exit full screen" : "Full screen";
      pushUrl(true);
    });
    const del = $("#delete", meta);
    if (del) {
      del.addEventListener("click", async () => {
        if (!confirm(`Delete ${state.path}?`)) return;
        const resp = await fetch("/api/remove/" + urlPath(state.path), { method: "POST", credentials: "same-origin" });
        if (!resp.ok) { showMessage(await errorText(resp)); return; }
        showMessage(`Deleted ${state.path}`, "success");
        await openPath("");
        loadList();
        refreshUsage();
      });
    }
  }

  // -- the prompt
  const prompt = $("#prompt");
  if (prompt) {
    let running = null;
    const go = $("#prompt-go");
    $("#prompt-help").addEventListener("click", () => { const h = $("#prompt-help-text"); h.hidden = !h.hidden; });
    go.addEventListener("click", (e) => {
      if (running) { e.preventDefault(); running.abort(); }
    });
    prompt.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (running) return;
      const input = $("#prompt-input");
      const command = input.value.trim();
      if (!command) return;
      const names = $$("#list .alias-name").map((i) => i.value.trim());
      const paths = $$("#list .alias-path").map((i) => i.value);
      running = new AbortController();
      go.textContent = "Abort";
      prompt.setAttribute("aria-busy", "true");
      try {
        const resp = await fetch("/gui/command", {
          method: "POST", credentials: "same-origin", signal: running.signal,
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ command, names, paths }),
        });
        if (!resp.ok) { showMessage(await errorText(resp)); return; }
        const outcome = await resp.json();
        input.value = "";
        if (outcome.message) showMessage(outcome.message, "success"); else clearMessage();
        if (outcome.open) {
          const r = outcome.open.split("/")[0];
          const box = $$("#roots input").find((b) => b.value === r);
          if (box && !box.checked) box.checked = true;
          await openPath(outcome.open);
        } else if (outcome.refresh && state.path) {
          await openPath(state.path, { push: false }).catch(() => openPath(""));
        }
        if (outcome.refresh || outcome.open) { await loadList(); refreshUsage(); }
      } catch (err) {
        showMessage(err.name === "AbortError" ? "Aborted" : err.message);
      } finally {
        running = null;
        go.textContent = "GO";
        prompt.setAttribute("aria-busy", "false");
      }
    });
  }

  // -- uploads: click or drop onto a root's upload button; streamed with a progress bar
  function upload(rootName, file) {
    return new Promise((resolve) => {
      const row = document.createElement("div");
      row.className = "upload-row";
      row.innerHTML = `<span class="name"></span> <progress max="100" value="0"></progress> <span class="pct">0 %</span>`;
      $(".name", row).textContent = file.name;
      $("#uploads").appendChild(row);
      // Archives are unpacked into a folder of the root; other files stored as they are.
      const archive = /\.(zip|tar|tar\.gz|tgz)$/i.test(file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", archive ? "/gui/unpack/" + urlPath(rootName) : "/api/upload/" + urlPath(rootName + "/" + file.name));
      xhr.withCredentials = true;
      xhr.upload.addEventListener("progress", (e) => {
        if (!e.lengthComputable) return;
        const pct = Math.floor((100 * e.loaded) / e.total);
        $("progress", row).value = pct;
        $(".pct", row).textContent = pct + " %";
      });
      xhr.addEventListener("load", () => {
        if (xhr.status >= 200 && xhr.status < 300) {
          $(".pct", row).textContent = "done";
          setTimeout(() => row.remove(), 3000);
          const answer = JSON.parse(xhr.responseText);
          // An unpacked archive opens its first file.
          resolve(Array.isArray(answer) ? answer[0] || null : answer);
        } else {
          row.remove();
          let detail = xhr.responseText;
          try { detail = JSON.parse(xhr.responseText).detail; } catch (_) { /* text */ }
          showMessage(`Upload of ${file.name} failed: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
          resolve(null);
        }
      });
      xhr.addEventListener("error", () => { row.remove(); showMessage(`Upload of ${file.name} failed`); resolve(null); });
      const form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });
  }
  async function uploadAll(rootName, files) {
    let last = null;
    for (const f of files) last = (await upload(rootName, f)) || last;
    const box = $$("#roots input[type=checkbox]").find((b) => b.value === rootName);
    if (box) box.checked = true;
    await loadList();
    refreshUsage();
    if (last) await openPath(last);
  }
  for (const label of $$("#roots .upload")) {
    const input = $("input[type=file]", label);
    input.addEventListener("change", () => { uploadAll(label.dataset.root, Array.from(input.files)); input.value = ""; });
    label.addEventListener("dragover", (e) => { e.preventDefault(); label.classList.add("drop"); });
    label.addEventListener("dragleave", () => label.classList.remove("drop"));
    label.addEventListener("drop", (e) => {
      e.preventDefault();
      label.classList.remove("drop");
      uploadAll(label.dataset.root, Array.from(e.dataTransfer.files));
    });
  }

  window.addEventListener("popstate", () => {
    const m = location.pathname.match(/^\/roots\/(.*)$/);
    const q = new URLSearchParams(location.search);
    const roots = q.getAll("roots");
    for (const b of $$("#roots input[type=checkbox]")) b.checked = roots.includes(b.value);
    state.search = q.get("search") || "";
    $("#filter").value = state.search;
    loadList();
    openPath(m ? decodeURIComponent(m[1]) : "", { push: false, tab: (location.hash || "").slice(1) });
  });

  loadList();
  if (state.path) openPath(state.path, { push: false, tab: (location.hash || "").slice(1) });
  pushUrl(true);
}
