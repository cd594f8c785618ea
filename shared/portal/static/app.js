// Autopilot Registrar portal. Plain JavaScript, served from this site only; text goes into the page with
// textContent (never as HTML), so nothing a CSV carries can run here.
"use strict";

const API = "/api/portal/api/";
const FINAL = new Set(["ready", "active", "inactive", "failed"]);
const state = { me: null, cursors: [], cursor: null, sort: null, rows: [], poll: null };

// -- small helpers -----------------------------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function call(path, options) {
  const init = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
  if (init.method && init.method !== "GET") init.headers["X-Registrar-Portal"] = "1";
  const response = await fetch(API + path, init);
  const body = (response.headers.get("Content-Type") || "").includes("json") ? await response.json() : null;
  if (!response.ok) {
    const error = new Error((body && body.error && body.error.message) || `HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function main() { return document.getElementById("main"); }

function show(title, ...content) {
  stopPolling();
  const root = main();
  root.replaceChildren(el("h2", { text: title }), ...content.filter(Boolean));
  document.title = `${title} · Autopilot Registrar`;
}

function failure(error) {
  if (error.status === 401) return signIn(error.message);
  main().append(el("p", { class: "error", role: "alert", text: error.message }));
}

function stateBadge(device) {
  const licence = device.licenceMissing && device.licenceMissing.length;
  return el("span", { class: `state state-${licence ? "licence" : device.stateCode}`, text: device.state });
}

function when(iso) {
  if (!iso || iso === "never") return "never";
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toLocaleString();
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  return q.toString();
}

function stopPolling() { if (state.poll) { clearTimeout(state.poll); state.poll = null; } }

function labelled(label, control) {
  return el("div", { class: "field" }, el("label", { for: control.id, text: label }), control);
}

function select(id, label, options, value) {
  const control = el("select", { id, name: id },
    el("option", { value: "", text: `All ${label.toLowerCase()}s` }),
    options.map((o) => el("option", { value: o.value ?? o, text: o.text ?? o, selected: (o.value ?? o) === value })));
  return labelled(label, control);
}

// -- sign-in -----------------------------------------------------------------------------------------------------
function signIn(message) {
  document.getElementById("who").textContent = "";
  show("Sign in",
    el("div", { class: "signin" },
      el("p", { text: message || "Sign in to see your devices." }),
      el("a", { class: "button", href: "/.auth/login/aad?post_login_redirect_uri=/api/portal/", text: "Sign in" })));
}

// -- Devices -----------------------------------------------------------------------------------------------------
function filtersFromHash() {
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  return { state: params.get("state") || "", profile: params.get("profile") || "",
    partner: params.get("partner") || "", serial: params.get("serial") || "" };
}

const COLUMNS = [
  ["serial", "Serial number"], ["assignedUser", "Assigned user"], ["profile", "Profile"], ["partner", "Partner"],
  ["state", "State"], ["message", "Message"], ["groupTag", "Group tag"], ["lastSeen", "Last seen"],
  ["registeredAt", "Age"], ["upload", "Upload"],
];

async function devicesPage(resetPaging) {
  const filters = filtersFromHash();
  if (resetPaging) { state.cursors = []; state.cursor = null; }
  const me = state.me;
  const form = el("form", { class: "filters", role: "search", "aria-label": "Filter devices", onsubmit: (e) => {
    e.preventDefault();
    const data = new FormData(e.target);
    location.hash = "#/devices?" + query(Object.fromEntries(data.entries()));
  } },
    select("state", "State", me.states, filters.state),
    select("profile", "Profile", me.profiles, filters.profile),
    me.role === "admin" ? select("partner", "Partner",
      [{ value: "-", text: "Administrators' uploads" }, ...me.partners], filters.partner) : null,
    labelled("Serial number", el("input", { id: "serial", name: "serial", type: "search", value: filters.serial,
      placeholder: "starts with…", autocomplete: "off" })),
    el("div", { class: "actions" },
      el("button", { type: "submit", text: "Apply" }),
      el("a", { class: "button secondary", id: "export", href: API + "devices.csv?" + query(filters),
        download: "", text: "Export CSV" })));
  for (const control of form.querySelectorAll("select")) control.addEventListener("change", () => form.requestSubmit());
  const status = el("p", { class: "note", id: "devices-status", "aria-live": "polite", text: "Loading devices…" });
  const holder = el("div", { class: "table-wrap" });
  const pager = el("div", { class: "pager" });
  show("Devices", form, status, holder, pager,
    el("p", { class: "note", text: "Pages follow serial number order; sorting a column sorts the page shown." }));
  try {
    const page = await call("devices?" + query({ ...filters, top: "100", cursor: state.cursor }));
    state.rows = page.value;
    status.textContent = `${page.count} device${page.count === 1 ? "" : "s"} on this page` +
      (page.cursor ? " (more on the next page)" : "");
    holder.replaceChildren(devicesTable(page.value));
    pager.replaceChildren(
      el("button", { type: "button", class: "secondary", disabled: state.cursors.length === 0, text: "Previous page",
        onclick: () => { state.cursor = state.cursors.pop() || null; devicesPage(false); } }),
      el("button", { type: "button", class: "secondary", disabled: !page.cursor, text: "Next page",
        onclick: () => { state.cursors.push(state.cursor); state.cursor = page.cursor; devicesPage(false); } }));
  } catch (error) { status.textContent = ""; failure(error); }
}

function sortValue(device, key) {
  if (key === "upload") return device.upload.file || "";
  return String(device[key] ?? "").toLowerCase();
}

function devicesTable(devices) {
  const rows = [...devices];
  if (state.sort) {
    const [key, dir] = state.sort;
    rows.sort((a, b) => (sortValue(a, key) < sortValue(b, key) ? -1 : sortValue(a, key) > sortValue(b, key) ? 1 : 0) * dir);
  }
  const head = el("tr", {}, COLUMNS.map(([key, label]) => {
    const sorted = state.sort && state.sort[0] === key ? (state.sort[1] > 0 ? "ascending" : "descending") : "none";
    return el("th", { scope: "col", "aria-sort": sorted },
      el("button", { type: "button", class: "sort", text: label, onclick: () => {
        state.sort = [key, state.sort && state.sort[0] === key ? -state.sort[1] : 1];
        const holder = document.querySelector(".table-wrap");
        holder.replaceChildren(devicesTable(state.rows));
        holder.querySelector(`th[aria-sort="${state.sort[1] > 0 ? "ascending" : "descending"}"] button`).focus();
      } }));
  }));
  const body = rows.map((d) => el("tr", {},
    el("td", { class: "serial", "data-label": "Serial number" },
      el("a", { href: "#/devices/" + encodeURIComponent(d.serial), text: d.serial })),
    el("td", { "data-label": "Assigned user", text: d.assignedUser || "—" }),
    el("td", { "data-label": "Profile", text: d.profile }),
    el("td", { "data-label": "Partner", text: d.partner || "—" }),
    el("td", { "data-label": "State" }, stateBadge(d)),
    el("td", { class: "message", "data-label": "Message", text: d.message }),
    el("td", { "data-label": "Group tag", text: d.groupTag }),
    el("td", { "data-label": "Last seen", text: when(d.lastSeen) }),
    el("td", { "data-label": "Age", title: d.registeredAt, text: d.age }),
    el("td", { "data-label": "Upload" },
      el("a", { href: "#/uploads/" + d.upload.id, text: `${d.upload.file.split("/").pop()} line ${d.upload.line}` }))));
  if (!body.length) body.push(el("tr", {}, el("td", { colspan: COLUMNS.length, text: "No devices match." })));
  return el("table", { class: "cards", id: "devices" },
    el("caption", { class: "note", text: "Devices" }), el("thead", {}, head), el("tbody", {}, body));
}

// -- Device detail -----------------------------------------------------------------------------------------------
async function devicePage(serial) {
  show("Device " + serial, el("p", { class: "note", text: "Loading…" }));
  try {
    const d = await call("devices/" + encodeURIComponent(serial));
    const facts = el("dl", { class: "facts" },
      [["Serial number", d.serial], ["State", stateBadge(d)], ["Message", d.message],
        ["Assigned user", d.assignedUser || "—"], ["Profile", d.profile], ["Partner", d.partner || "—"],
        ["Group tag", d.groupTag], ["Last seen", when(d.lastSeen)], ["Received", `${when(d.registeredAt)} (${d.age} ago)`],
        ["Upload", el("a", { href: "#/uploads/" + d.upload.id, text: `${d.upload.file} line ${d.upload.line}` })],
        ["Hash fingerprint", d.hashFingerprint], ["Import id", d.importId || "—"], ["Autopilot id", d.autopilotId || "—"],
        ["Entra object id", d.entraObjectId || "—"]].map(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
    const actions = el("div", { class: "actions" });
    if (d.actions.includes("retry")) {
      actions.append(el("button", { type: "button", id: "retry", text: "Retry registration", onclick: async (e) => {
        e.target.disabled = true;
        try { await call("devices/" + encodeURIComponent(d.serial) + "/retry", { method: "POST" }); devicePage(serial); }
        catch (error) { failure(error); e.target.disabled = false; }
      } }));
    }
    const timeline = el("ol", { class: "timeline", id: "timeline" }, d.timeline.map((t) => el("li", {},
      el("time", { datetime: t.at, text: when(t.at) }),
      el("span", { class: "kind", text: t.kind }), el("span", { class: "text", text: t.text }))));
    show("Device " + d.serial, el("p", {}, el("a", { href: "#/devices", text: "← All devices" })), facts, actions,
      el("h3", { text: "Timeline" }), timeline);
  } catch (error) {
    show("Device " + serial);
    failure(error);
  }
}

// -- Register devices --------------------------------------------------------------------------------------------
function registerPage() {
  const me = state.me;
  const files = el("input", { id: "files", name: "files", type: "file", accept: ".csv,text/csv", multiple: true, required: true });
  const profile = el("select", { id: "profile", name: "profile", required: true },
    me.profiles.map((p) => el("option", { value: p, text: p })));
  const progress = el("div", { id: "register-progress", "aria-live": "polite" });
  const form = el("form", { class: "filters", onsubmit: async (e) => {
    e.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    progress.replaceChildren();
    try {
      for (const file of files.files) await sendFile(file, profile.value, progress);
    } catch (error) { progress.append(el("p", { class: "error", role: "alert", text: error.message })); }
    button.disabled = false;
  } },
    labelled("CSV files (hardware hashes)", files), labelled("Profile", profile),
    el("div", { class: "actions" }, el("button", { type: "submit", text: "Register" })));
  show("Register devices", el("p", { class: "note",
    text: "Each file goes straight to storage with a short-lived, write-only address; its rows appear below as they are read." }),
    form, progress);
}

async function sendFile(file, profile, progress) {
  const card = el("section", { class: "card", "aria-label": file.name }, el("h3", { text: file.name }),
    el("p", { class: "note", text: "Sending…" }));
  progress.append(card);
  const address = await call("upload-address", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ profile, fileName: file.name }) });
  const sent = await fetch(address.url, { method: "PUT", headers: address.headers, body: file });
  if (!sent.ok) throw new Error(`storage refused the file (${sent.status})`);
  const found = await call("upload-locate?" + query({ blob: address.blob }));
  card.querySelector("p").textContent = "Sent; waiting for it to be read…";
  followUpload(found.uploadId, card, true);
}

async function followUpload(uploadId, holder, live) {
  let upload;
  try { upload = await call("uploads/" + uploadId); }
  catch (error) {
    if (error.status === 404 && live) { state.poll = setTimeout(() => followUpload(uploadId, holder, live), 1000); return; }
    holder.append(el("p", { class: "error", role: "alert", text: error.message })); return;
  }
  renderUpload(upload, holder);
  const settled = upload.status !== "processing" && upload.devices.every((d) => FINAL.has(d.stateCode));
  if (!settled) state.poll = setTimeout(() => followUpload(uploadId, holder, live), 1500);
}

function renderUpload(u, holder) {
  const c = u.counts;
  const waiting = u.devices.filter((d) => !FINAL.has(d.stateCode)).length;
  const summary = u.status === "processing" ? "Reading the file…" :
    waiting ? `${waiting} device${waiting === 1 ? "" : "s"} still registering…` : "Settled.";
  const rows = el("table", { class: "cards rows" },
    el("caption", { class: "note", text: "Rows of the file" }),
    el("thead", {}, el("tr", {}, ["Line", "Serial number", "Outcome", "Code", "Reason"].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, u.rows.map((r) => el("tr", { class: `row-${r.outcome}` },
      el("td", { "data-label": "Line", text: r.line }), el("td", { class: "serial", "data-label": "Serial number", text: r.serial || "—" }),
      el("td", { "data-label": "Outcome" }, el("span", { class: `outcome-${r.outcome}`, text: r.outcome })),
      el("td", { "data-label": "Code", text: r.code || "" }), el("td", { class: "message", "data-label": "Reason", text: r.message || "" })))));
  const devices = el("table", { class: "cards devices" },
    el("caption", { class: "note", text: "Devices of this upload" }),
    el("thead", {}, el("tr", {}, ["Serial number", "State", "Message"].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, u.devices.map((d) => el("tr", {},
      el("td", { class: "serial", "data-label": "Serial number" }, el("a", { href: "#/devices/" + encodeURIComponent(d.serial), text: d.serial })),
      el("td", { "data-label": "State" }, stateBadge(d)), el("td", { class: "message", "data-label": "Message", text: d.message })))));
  holder.replaceChildren(...[
    el("h3", { text: u.file }),
    el("p", { class: "note upload-status", "data-status": u.status, "data-waiting": waiting, text: `${u.status} · ${summary}` }),
    u.reason ? el("p", { class: "error", text: u.reason }) : null,
    el("ul", { class: "counts", "aria-label": "Counts per outcome" },
      el("li", { text: `${c.accepted} accepted` }), el("li", { text: `${c.duplicates} duplicate` }),
      el("li", { text: `${c.moved} moved` }), el("li", { text: `${c.rejected} rejected` })),
    el("p", {}, el("a", { href: API + "uploads/" + u.uploadId + "/report.csv", download: "", text: "Download the report (CSV)" })),
    el("div", { class: "table-wrap" }, rows), el("div", { class: "table-wrap" }, devices)].filter(Boolean));
}

// -- Uploads -----------------------------------------------------------------------------------------------------
async function uploadsPage() {
  const holder = el("div", { class: "table-wrap" });
  show("Uploads", holder);
  try {
    const page = await call("uploads");
    const body = page.value.map((u) => el("tr", {},
      el("td", { "data-label": "Received", text: when(u.received) }),
      el("td", { "data-label": "File" }, el("a", { href: "#/uploads/" + u.uploadId, text: u.file })),
      el("td", { "data-label": "Profile", text: u.profile }),
      el("td", { "data-label": "Sent by", text: u.sender }),
      el("td", { "data-label": "Status", text: u.status + (u.reason ? `: ${u.reason}` : "") }),
      el("td", { "data-label": "Accepted", text: u.counts.accepted }),
      el("td", { "data-label": "Duplicate", text: u.counts.duplicates }),
      el("td", { "data-label": "Moved", text: u.counts.moved }),
      el("td", { "data-label": "Rejected", text: u.counts.rejected }),
      el("td", { "data-label": "Report" }, el("a", { href: API + "uploads/" + u.uploadId + "/report.csv", download: "", text: "CSV" }))));
    if (!body.length) body.push(el("tr", {}, el("td", { colspan: 10, text: "No uploads yet." })));
    holder.replaceChildren(el("table", { class: "cards", id: "uploads" },
      el("caption", { class: "note", text: "Uploads, newest first" }),
      el("thead", {}, el("tr", {}, ["Received", "File", "Profile", "Sent by", "Status", "Accepted", "Duplicate", "Moved", "Rejected", "Report"]
        .map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, body)));
  } catch (error) { failure(error); }
}

function uploadPage(uploadId) {
  const holder = el("section", { class: "card" }, el("p", { class: "note", text: "Loading…" }));
  show("Upload", el("p", {}, el("a", { href: "#/uploads", text: "← All uploads" })), holder);
  followUpload(uploadId, holder, false);
}

// -- routing -----------------------------------------------------------------------------------------------------
async function route() {
  const hash = location.hash || "#/devices";
  const [path] = hash.slice(2).split("?");
  const parts = path.split("/").map(decodeURIComponent);
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (link.dataset.nav === parts[0]) link.setAttribute("aria-current", "page"); else link.removeAttribute("aria-current");
  }
  if (!state.me) {
    try { state.me = await call("me"); }
    catch (error) { if (error.status === 401 || error.status === 403) return signIn(error.message); throw error; }
    document.getElementById("who").textContent =
      `Signed in as ${state.me.name} (${state.me.role === "admin" ? "administrator" : "partner " + state.me.partner})`;
  }
  if (parts[0] === "devices" && parts[1]) await devicePage(parts[1]);
  else if (parts[0] === "register") registerPage();
  else if (parts[0] === "uploads" && parts[1]) uploadPage(parts[1]);
  else if (parts[0] === "uploads") await uploadsPage();
  else await devicesPage(true);
  main().focus({ preventScroll: true });
}

window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", route);
