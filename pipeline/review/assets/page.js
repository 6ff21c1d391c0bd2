"use strict";
(function () {
  const data = JSON.parse(document.getElementById("data").textContent);
  const byId = new Map(data.crops.map((c) => [c.id, c]));
  const sources = new Map(data.sources.map((s) => [s.id, s]));
  const initial = new Set(data.crops.filter((c) => c.status === "rejected").map((c) => c.id));
  const rejected = new Set(initial);
  const figures = new Map();

  // Decisions survive a reload: localStorage keeps, per run and by crop id, the crops whose
  // state differs from the manifest, as now ("now") and as last saved ("saved"). Ids that are
  // not on this page are ignored; entries the manifest has caught up with fall away on the next write.
  const storeKey = "pipeline-review:" + data.run;
  function diffFromManifest(set) {
    const out = {};
    for (const c of data.crops) if (set.has(c.id) !== (c.status === "rejected")) out[c.id] = set.has(c.id);
    return out;
  }
  function writeStore() {
    try {
      localStorage.setItem(storeKey, JSON.stringify({now: diffFromManifest(rejected), saved: diffFromManifest(initial)}));
    } catch (e) { /* storage disabled: the page works without it */ }
  }
  function applyStored(map, set) {
    for (const [id, rej] of Object.entries(map || {})) {
      if (!byId.has(id)) continue;
      if (rej) set.add(id); else set.delete(id);
    }
  }
  try {
    const stored = JSON.parse(localStorage.getItem(storeKey) || "{}") || {};
    applyStored(stored.now, rejected);
    applyStored(stored.saved, initial);
  } catch (e) { /* nothing stored, or unreadable: start from the manifest */ }
  const undo = [];  // crop ids, most recent change last
  let savedNote = "";
  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const safeLink = (url) => (typeof url === "string" && /^(https?:|file:)/i.test(url) ? url : null);

  function fillSelect(select, values, labelOf) {
    for (const v of values) {
      const o = el("option", "", labelOf ? labelOf(v) : v);
      o.value = v;
      select.appendChild(o);
    }
  }
  fillSelect($("f-label"), data.labels);
  fillSelect($("f-split"), data.splits);
  fillSelect($("f-source"), data.sources.map((s) => s.id), (id) => {
    const s = sources.get(id);
    return s.title ? s.short + " · " + s.title : s.short;
  });

  function figureFor(c) {
    const s = sources.get(c.source) || {short: c.source, title: "", uploader: ""};
    const fig = el("figure");
    fig.dataset.id = c.id;
    const btn = el("button", "thumb");
    btn.type = "button";
    btn.title = c.id + " (click to reject or restore)";
    const img = el("img");
    img.loading = "lazy";
    img.decoding = "async";
    img.alt = c.id;
    img.src = c.img;
    btn.appendChild(img);
    btn.appendChild(el("span", "badge", "rejected"));
    btn.addEventListener("click", () => toggle(c.id));
    fig.appendChild(btn);
    const cap = el("figcaption");
    const src = el("div", "src", s.short);
    src.title = [s.title, s.uploader].filter(Boolean).join(" — ") || c.source;
    cap.appendChild(src);
    const meta = el("div", "meta");
    const href = safeLink(c.link);
    let when;
    if (href) {
      when = el("a", "", c.time + " ↗");
      when.href = href;
      when.target = "_blank";
      when.rel = "noopener noreferrer";
      when.title = "open the source at " + c.time;
    } else {
      when = el("span", "", c.time);
    }
    meta.appendChild(when);
    meta.appendChild(el("span", "score", c.score === null || c.score === undefined ? "" : Number(c.score).toFixed(2)));
    cap.appendChild(meta);
    const where = el("div", "muted", c.label + " · " + c.split);
    cap.appendChild(where);
    fig.appendChild(cap);
    fig.classList.toggle("rejected", rejected.has(c.id));
    btn.setAttribute("aria-pressed", rejected.has(c.id) ? "true" : "false");
    figures.set(c.id, fig);
    return fig;
  }

  // Person clusters (runs with `identity`): a name per cluster, as the manifest has it (a cluster
  // whose crops all carry one identity), changed by the Name button of its section.
  const names = new Map();
  const clusterCrops = new Map();
  for (const c of data.crops) {
    if (!c.cluster) continue;
    if (!clusterCrops.has(c.cluster)) clusterCrops.set(c.cluster, []);
    clusterCrops.get(c.cluster).push(c);
  }
  for (const [k, cs] of clusterCrops) {
    const ids = new Set(cs.map((c) => c.identity));
    if (ids.size === 1 && cs[0].identity) names.set(k, cs[0].identity);
  }
  if (data.clusters) {
    document.querySelector('#f-group option[value="cluster"]').hidden = false;
    $("save-names").hidden = false;
    if (data.group === "cluster") $("f-group").value = "cluster";  // sheet.by: person
  }
  const NO_CLUSTER = "no person cluster";

  // What the run checks in full (a label is a folder name); caught here so a save is not wasted.
  function nameProblem(name) {
    if (!name) return "type a name first";
    if (/[\/\\<>:"|?*]/.test(name) || name.includes("..")) return "a name may not hold / \\ < > : \" | ? * or ..";
    return null;
  }

  function nameField(k) {
    const form = el("span", "name");
    const input = el("input");
    input.type = "text";
    input.placeholder = "who is this?";
    input.value = names.get(k) || "";
    input.setAttribute("aria-label", "name of cluster " + k);
    const btn = el("button", "", "Name");
    btn.type = "button";
    btn.title = "label every crop of this cluster with the name (saved to identities.txt)";
    const name = () => {
      const v = input.value.trim();
      const problem = nameProblem(v);
      if (problem) { $("review-state").textContent = problem; return; }
      names.set(k, v);
      saveNames();
    };
    btn.addEventListener("click", name);
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); name(); } });
    form.appendChild(input);
    form.appendChild(btn);
    return form;
  }

  function groupKey(c, how) {
    if (how === "cluster") return c.cluster || NO_CLUSTER;
    if (how === "split") return c.split;
    if (how === "both") return c.label + " · " + c.split;
    return c.label;
  }

  function render() {
    const how = $("f-group").value;
    const main = $("groups");
    main.replaceChildren();
    figures.clear();
    const groups = new Map();
    const order = how === "split" ? data.splits : data.labels;
    for (const c of data.crops) {
      const k = groupKey(c, how);
      if (!groups.has(k)) groups.set(k, []);
      groups.get(k).push(c);
    }
    const rank = (k) => {
      if (how === "cluster") return k === NO_CLUSTER ? 1 : 0;
      const head = how === "split" ? k : k.split(" · ")[0];
      const i = order.indexOf(head);
      return i < 0 ? 1e9 : i;
    };
    const keys = [...groups.keys()].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
    for (const k of keys) {
      const sec = el("section");
      sec.dataset.group = k;
      const h = el("h2", "", k + " ");
      h.appendChild(el("span", "muted count"));
      if (how === "cluster" && k !== NO_CLUSTER) h.appendChild(nameField(k));
      sec.appendChild(h);
      const grid = el("div", "grid");
      for (const c of groups.get(k)) grid.appendChild(figureFor(c));
      sec.appendChild(grid);
      main.appendChild(sec);
    }
    applyFilters();
  }

  function visible(c) {
    const label = $("f-label").value, split = $("f-split").value, source = $("f-source").value;
    const status = $("f-status").value, min = Number($("f-score").value);
    if (label && c.label !== label) return false;
    if (split && c.split !== split) return false;
    if (source && c.source !== source) return false;
    if (status && (rejected.has(c.id) ? "rejected" : "kept") !== status) return false;
    if (min > 0 && !(Number(c.score) >= min)) return false;
    return true;
  }

  // Per section: how many of its crops the filters show, and how many of those are rejected.
  // A click only adjusts these counters, so a review stays instant with tens of thousands of crops.
  const sections = new Map();
  let shownTotal = 0;
  const labelTotals = new Map(), splitTotals = new Map();
  for (const c of data.crops) {
    labelTotals.set(c.label, (labelTotals.get(c.label) || 0) + 1);
    splitTotals.set(c.split, (splitTotals.get(c.split) || 0) + 1);
  }

  function writeSection(s) {
    s.el.hidden = s.n === 0;
    s.el.querySelector(".count").textContent = (s.n === s.total ? "(" + s.total : "(" + s.n + " of " + s.total) +
      (s.nRej ? ", " + s.nRej + " rejected)" : ")");
  }

  function applyFilters() {
    $("f-score-out").textContent = Number($("f-score").value).toFixed(2);
    shownTotal = 0;
    sections.clear();
    for (const sec of document.querySelectorAll("#groups section")) {
      const s = {el: sec, n: 0, total: 0, nRej: 0};
      for (const fig of sec.querySelectorAll("figure")) {
        const show = visible(byId.get(fig.dataset.id));
        fig.hidden = !show;
        s.total += 1;
        if (show) s.n += 1;
        if (show && rejected.has(fig.dataset.id)) s.nRej += 1;
      }
      shownTotal += s.n;
      sections.set(sec.dataset.group, s);
      writeSection(s);
    }
    updateCounts();
  }

  function updateCounts() {
    const total = data.crops.length;
    const nRej = rejected.size;
    const rejLabel = new Map(), rejSplit = new Map();
    for (const id of rejected) {
      const c = byId.get(id);
      rejLabel.set(c.label, (rejLabel.get(c.label) || 0) + 1);
      rejSplit.set(c.split, (rejSplit.get(c.split) || 0) + 1);
    }
    const perLabel = data.labels.map((l) => l + " " + (labelTotals.get(l) - (rejLabel.get(l) || 0))).join(", ");
    const perSplit = data.splits.map((s) => s + " " + (splitTotals.get(s) - (rejSplit.get(s) || 0))).join(" / ");
    $("counts").textContent = total + " crops · " + (total - nRej) + " kept (" + perLabel + "; " + perSplit + ") · " +
      nRej + " rejected · " + shownTotal + " shown";
    let added = 0, removed = 0;
    for (const id of rejected) if (!initial.has(id)) added += 1;
    for (const id of initial) if (!rejected.has(id)) removed += 1;
    const dirty = added + removed > 0;
    $("review-state").textContent = dirty ? "unsaved: " + added + " newly rejected, " + removed + " restored" :
      savedNote || (nRej ? nRej + " rejected in this run's manifest" : "no crop rejected");
    const save = $("save");
    save.textContent = "Save rejects.txt (" + nRej + ")";
    save.classList.toggle("dirty", dirty);
    document.body.dataset.dirty = dirty ? "1" : "";
  }

  // The clicked crop stays in view even when a status filter no longer matches it, so a
  // mistaken click can be undone where it happened; the filters apply again when changed.
  function toggle(id, record = true) {
    const now = !rejected.has(id);
    if (record) undo.push(id);
    if (now) rejected.add(id); else rejected.delete(id);
    const fig = figures.get(id);
    if (fig) {
      fig.classList.toggle("rejected", now);
      fig.querySelector("button.thumb").setAttribute("aria-pressed", now ? "true" : "false");
      const s = sections.get(fig.closest("section").dataset.group);
      if (s && !fig.hidden) {
        s.nRej += now ? 1 : -1;
        writeSection(s);
      }
    }
    savedNote = "";
    writeStore();
    updateCounts();
  }

  function markSaved(note) {
    initial.clear();
    for (const id of rejected) initial.add(id);
    savedNote = note;
    writeStore();
    updateCounts();
  }

  // Served by `python -m pipeline review`: the server writes rejects.txt into the output folder.
  // Opened from disk (or if the server is gone): the file is downloaded, as before.
  async function save() {
    const ids = data.crops.map((c) => c.id).filter((id) => rejected.has(id));
    const text = "# rejects.txt for run " + data.run + ", saved " + new Date().toISOString() + "\n" +
      "# Put this file in the run's output folder and run again. One crop id a line.\n" +
      ids.map((id) => id + "\n").join("");
    const info = await post("/api/rejects", text, "rejects.txt");
    if (info === REFUSED) return;
    markSaved(info ? "saved " + info.count + " crop id(s) to " + info.file + ": run the pipeline again to apply them" : "");
  }

  async function saveNames() {
    const keys = [...names.keys()].sort();
    const text = "# identities.txt for run " + data.run + ", saved " + new Date().toISOString() + "\n" +
      "# Put this file in the run's output folder and run again. One '<cluster> <name>' a line.\n" +
      keys.map((k) => k + " " + names.get(k) + "\n").join("");
    const info = await post("/api/identities", text, "identities.txt");
    if (info === REFUSED) return;
    savedNote = info ? "saved " + info.count + " name(s) to " + info.file + ": run the pipeline again to apply them" : "";
    updateCounts();
  }

  // The server that served this page puts its token (only its own page can read it) and the
  // version of each file it saves into a meta tag; the page on disk has none and downloads.
  const serverMeta = document.querySelector('meta[name="review-server"]');
  const server = serverMeta && location.protocol === "http:" ? JSON.parse(serverMeta.content) : null;
  const REFUSED = {};

  // Served: the server writes the file into the output folder and its answer is returned; a
  // refusal (the file changed since this page loaded, a run is using the folder, a bad name) is
  // shown and nothing is downloaded. Opened from disk, or the server gone: the file is downloaded.
  async function post(url, text, file) {
    if (server) {
      let r;
      try {
        r = await fetch(url, {method: "POST", body: text, headers: {
          "Content-Type": "text/plain; charset=utf-8", "X-Review-Token": server.token,
          "X-Review-Version": server.versions[file] || "absent"}});
      } catch (err) {
        savedNote = "";
        $("review-state").textContent = "the review server did not answer (" + err.message + "); downloading instead";
        download(text, file);
        return null;
      }
      if (!r.ok) {
        savedNote = "";
        $("review-state").textContent = "not saved: " + (await r.text()).trim();
        return REFUSED;
      }
      const info = await r.json();
      server.versions[file] = info.version;
      return info;
    }
    download(text, file);
    return null;
  }

  function download(text, file) {
    const url = URL.createObjectURL(new Blob([text], {type: "text/plain"}));
    const a = el("a");
    a.href = url;
    a.download = file;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  // Keyboard: arrows move between the crops shown, x rejects the current one and moves on,
  // u undoes the last change (click or key). Keys typed into the filters are left alone.
  function shown() { return [...document.querySelectorAll("#groups figure:not([hidden])")]; }
  function focusFigure(fig) {
    if (!fig) return;
    const btn = fig.querySelector("button.thumb");
    btn.focus({preventScroll: true});
    fig.scrollIntoView({block: "nearest"});
  }
  function columns(figs, i) {
    const top = figs[i].offsetTop, grid = figs[i].parentElement;
    return Math.max(1, figs.filter((f) => f.parentElement === grid && f.offsetTop === top).length);
  }
  const STEP = {ArrowLeft: -1, ArrowRight: 1};
  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || (e.target.closest && e.target.closest("#filters, .name"))) return;
    const figs = shown();
    const current = document.activeElement && document.activeElement.closest ?
      document.activeElement.closest("#groups figure") : null;
    const i = current ? figs.indexOf(current) : -1;
    if (e.key in STEP || e.key === "ArrowUp" || e.key === "ArrowDown") {
      if (!figs.length) return;
      e.preventDefault();
      if (i < 0) { focusFigure(figs[0]); return; }
      const step = e.key in STEP ? STEP[e.key] : (e.key === "ArrowUp" ? -1 : 1) * columns(figs, i);
      focusFigure(figs[Math.min(figs.length - 1, Math.max(0, i + step))]);
    } else if (e.key === "x" && i >= 0) {
      e.preventDefault();
      if (!rejected.has(current.dataset.id)) toggle(current.dataset.id);
      focusFigure(figs[Math.min(figs.length - 1, i + 1)]);
    } else if (e.key === "u" && undo.length) {
      e.preventDefault();
      const id = undo.pop();
      toggle(id, false);
      focusFigure(figures.get(id));
    }
  });

  for (const id of ["f-label", "f-split", "f-source", "f-status", "f-score"]) {
    $(id).addEventListener("input", applyFilters);
  }
  $("f-group").addEventListener("input", render);
  $("filters").addEventListener("submit", (e) => e.preventDefault());
  $("save").addEventListener("click", save);
  $("save-names").addEventListener("click", saveNames);
  window.addEventListener("beforeunload", (e) => {
    if (document.body.dataset.dirty) { e.preventDefault(); e.returnValue = ""; }
  });
  render();
})();
