// fluxnb JobGrid: a virtually scrolled job table. The kernel keeps every row and the
// sort/filter; this view draws only the window it was sent (model "window":
// {offset, total, rows}) and asks for another one by setting "offset" on scroll.
const ROW_H = 22;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function render({ model, el: root }) {
  root.classList.add("fluxnb-grid");
  const counts = el("div", "fluxnb-grid-counts");
  const head = el("div", "fluxnb-grid-row fluxnb-grid-head");
  const viewport = el("div", "fluxnb-grid-viewport");
  const spacer = el("div", "fluxnb-grid-spacer");
  const body = el("div", "fluxnb-grid-body");
  viewport.append(spacer, body);
  root.append(counts, head, viewport);

  let pending = false;
  viewport.addEventListener("scroll", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      const win = model.get("window") || {};
      const first = Math.floor(viewport.scrollTop / ROW_H);
      const shown = Math.ceil(viewport.clientHeight / ROW_H);
      const have = (win.rows || []).length;
      const start = win.offset || 0;
      if (first < start || first + shown > start + have) {
        model.set("offset", Math.max(0, first - Math.floor(model.get("page_size") / 4)));
        model.save_changes();
      }
    });
  });

  function drawHead() {
    head.replaceChildren();
    const sortBy = model.get("sort_by");
    const desc = model.get("descending");
    for (const [key, label] of model.get("columns")) {
      const c = el("div", `fluxnb-grid-cell fluxnb-col-${key}`, label);
      c.dataset.col = key;
      c.title = `sort by ${label}`;
      if (key === sortBy) {
        c.classList.add("sorted");
        c.textContent = `${label} ${desc ? "▼" : "▲"}`;
      }
      c.addEventListener("click", () => {
        if (model.get("sort_by") === key) {
          model.set("descending", !model.get("descending"));
        } else {
          model.set("sort_by", key);
          model.set("descending", key === "id" || key === "runtime");
        }
        model.save_changes();
      });
      head.append(c);
    }
  }

  function drawCounts() {
    counts.replaceChildren();
    const c = model.get("counts") || {};
    for (const [st, n] of Object.entries(c)) {
      const chip = el("span", `fluxnb-chip fluxnb-st-${st}`, `${st} ${n}`);
      chip.dataset.state = st;
      counts.append(chip);
    }
  }

  function drawRows() {
    const win = model.get("window") || {};
    const rows = win.rows || [];
    const cols = model.get("columns");
    const selected = model.get("selected");
    // as tall as the rows, up to "height"; then it scrolls
    viewport.style.height = `${Math.min(model.get("height"), Math.max(win.total || 0, 3) * ROW_H + 2)}px`;
    spacer.style.height = `${(win.total || 0) * ROW_H}px`;
    body.style.top = `${(win.offset || 0) * ROW_H}px`;
    const frag = document.createDocumentFragment();
    for (const r of rows) {
      // r: [f58, cell per column..., state class]
      const line = el("div", `fluxnb-grid-row fluxnb-st-${r[r.length - 1]}`);
      line.dataset.id = r[0];
      if (r[0] === selected) line.classList.add("selected");
      for (let i = 0; i < cols.length; i++) {
        line.append(el("div", `fluxnb-grid-cell fluxnb-col-${cols[i][0]}`, r[i + 1]));
      }
      line.addEventListener("click", () => {
        model.set("selected", r[0]);
        model.save_changes();
      });
      frag.append(line);
    }
    body.replaceChildren(frag);
    root.dataset.total = String(win.total || 0);
  }

  drawHead();
  drawCounts();
  drawRows();
  model.on("change:columns", drawHead);
  model.on("change:sort_by", drawHead);
  model.on("change:descending", drawHead);
  model.on("change:counts", drawCounts);
  model.on("change:window", drawRows);
  model.on("change:selected", drawRows);
  model.on("change:height", drawRows);
}

export default { render };
