// app.js: the vitrine shop front. Talks only to the REST API (docs/API.md).
"use strict";
const view = document.getElementById("view");
const PAGE = 24;
const FILTERS = ["gender", "masterCategory", "articleType", "baseColour"];
const LABELS = { gender: "Gender", masterCategory: "Department", articleType: "Type", baseColour: "Colour" };

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids.flat()) if (k != null) e.append(k.nodeType ? k : document.createTextNode(String(k)));
  return e;
}

async function api(path, opts) {
  const r = await fetch(path, opts);
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error && body.error.message) || `HTTP ${r.status}`);
  return body;
}

function itemName(it) {
  const a = it.attributes || {};
  return a.productDisplayName || a.name || it.id;
}

function card(it, score) {
  const a = it.attributes || {};
  return el("a", { class: "card", href: `#/item/${encodeURIComponent(it.id)}`, "data-id": it.id },
    el("div", { class: "ph" }, el("img", { src: `/images/${encodeURIComponent(it.id)}`, alt: itemName(it), loading: "lazy" })),
    el("div", { class: "meta" },
      score != null ? el("span", { class: "score" }, `${Math.round(score * 100)}%`) : null,
      el("div", { class: "name", title: itemName(it) }, itemName(it)),
      el("div", { class: "sub" }, [a.articleType, a.baseColour].filter(Boolean).join(" · "))));
}

function parseQuery(hash) {
  const q = new URLSearchParams(hash.split("?")[1] || "");
  return Object.fromEntries(q.entries());
}

async function renderCatalog(q) {
  const offset = parseInt(q.offset || "0", 10) || 0;
  const params = new URLSearchParams({ offset, limit: PAGE });
  for (const f of FILTERS) if (q[f]) params.set(f, q[f]);
  view.replaceChildren(el("div", { class: "msg" }, "Loading…"));
  const [data, facets] = await Promise.all([api(`/api/items?${params}`), api("/api/facets").catch(() => ({}))]);
  const filters = el("aside", { class: "filters" });
  for (const f of FILTERS) {
    const sel = el("select", { "data-filter": f, onchange: () => go({ ...q, [f]: sel.value, offset: 0 }) },
      el("option", { value: "" }, "All"));
    for (const v of (facets[f] || [])) {
      const o = el("option", { value: v.value }, `${v.value} (${v.count})`);
      if (q[f] === v.value) o.selected = true;
      sel.append(o);
    }
    filters.append(el("h3", {}, LABELS[f]), sel);
  }
  filters.append(el("button", { onclick: () => go({}) }, "Clear filters"));
  const title = FILTERS.map(f => q[f]).filter(Boolean).join(" · ") || "All products";
  const grid = el("div", { class: "grid" }, data.items.map(it => card(it)));
  const pager = el("div", { class: "pager" },
    el("button", { onclick: () => go({ ...q, offset: Math.max(0, offset - PAGE) }), ...(offset === 0 ? { disabled: "" } : {}) }, "Previous"),
    el("span", { class: "count" }, `${data.total ? offset + 1 : 0}–${Math.min(offset + PAGE, data.total)} of ${data.total}`),
    el("button", { onclick: () => go({ ...q, offset: offset + PAGE }), ...(offset + PAGE >= data.total ? { disabled: "" } : {}) }, "Next"));
  view.replaceChildren(el("div", { class: "layout" }, filters,
    el("section", {}, el("div", { class: "head" }, el("h1", {}, title), el("span", { class: "count" }, `${data.total} items`)),
      data.items.length ? grid : el("div", { class: "msg" }, "No products match these filters."), pager)));
  renderCats(q);
}

function go(q) {
  const clean = Object.fromEntries(Object.entries(q).filter(([, v]) => v !== "" && v != null && v !== 0));
  location.hash = "#/?" + new URLSearchParams(clean);
}

async function renderCats(q) {
  const nav = document.getElementById("cats");
  const facets = await api("/api/facets").catch(() => ({}));
  nav.replaceChildren(...(facets.masterCategory || []).slice(0, 6).map(v =>
    el("a", { href: "#/?" + new URLSearchParams({ masterCategory: v.value }), class: q && q.masterCategory === v.value ? "on" : "" }, v.value)));
}

async function renderItem(id) {
  view.replaceChildren(el("div", { class: "msg" }, "Loading…"));
  const it = await api(`/api/items/${encodeURIComponent(id)}`);
  const a = it.attributes || {};
  const attrs = el("div", { class: "attrs" });
  for (const [k, v] of Object.entries(a)) if (v !== "" && k !== "productDisplayName") attrs.append(el("span", {}, k), el("b", {}, v));
  const similar = el("div", { class: "grid", id: "similar" }, el("div", { class: "msg" }, "Finding similar items…"));
  view.replaceChildren(
    el("div", { class: "crumbs" }, el("a", { href: "#/" }, "Catalog"), " / ",
      a.masterCategory ? el("a", { href: "#/?" + new URLSearchParams({ masterCategory: a.masterCategory }) }, a.masterCategory) : null,
      a.articleType ? [" / ", el("a", { href: "#/?" + new URLSearchParams({ articleType: a.articleType }) }, a.articleType)] : null),
    el("div", { class: "product" },
      el("div", { class: "ph" }, el("img", { src: `/images/${encodeURIComponent(it.id)}`, alt: itemName(it) })),
      el("div", {}, el("h1", {}, itemName(it)), attrs)),
    el("h2", {}, "You may also like"), similar);
  try {
    const sim = await api(`/api/items/${encodeURIComponent(id)}/similar?k=12`);
    similar.replaceChildren(...sim.results.map(r => card(r.item, r.score)));
    if (!sim.results.length) similar.replaceChildren(el("div", { class: "msg" }, "No similar items."));
  } catch (e) {
    similar.replaceChildren(el("div", { class: "msg err" }, e.message));
  }
}

async function photoSearch(file) {
  const url = URL.createObjectURL(file);
  view.replaceChildren(el("div", { class: "query" }, el("img", { src: url, alt: "your photo" }),
    el("div", {}, el("h1", {}, "Products that look like your photo"), el("div", { class: "count" }, file.name))),
    el("div", { class: "grid", id: "results" }, el("div", { class: "msg" }, "Searching…")));
  const box = document.getElementById("results");
  try {
    const res = await api("/api/search?k=24", { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
    box.replaceChildren(...res.results.map(r => card(r.item, r.score)));
  } catch (e) {
    box.replaceChildren(el("div", { class: "msg err" }, e.message));
  }
}

async function route() {
  const h = location.hash || "#/";
  try {
    if (h.startsWith("#/item/")) await renderItem(decodeURIComponent(h.slice(7).split("?")[0]));
    else await renderCatalog(parseQuery(h));
  } catch (e) {
    view.replaceChildren(el("div", { class: "msg err" }, e.message));
  }
  window.scrollTo(0, 0);
}

document.getElementById("photo").addEventListener("change", e => {
  if (e.target.files[0]) photoSearch(e.target.files[0]);
  e.target.value = "";
});
window.addEventListener("hashchange", route);
route();
