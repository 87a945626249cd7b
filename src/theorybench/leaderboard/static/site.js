// theorybench leaderboard: sort and filter tables. Plain JavaScript, nothing fetched.
// A form.filters[data-table=ID] filters table#ID: each select or input names the row attribute
// it matches in data-filter ("text" matches the row's text); multi-valued attributes are joined
// with "|". A table.sortable sorts by a click on a th[data-sort] ("number" or "text"), reading
// each cell's data-value, else its text.
(function () {
  "use strict";

  function rowMatches(row, controls) {
    for (const control of controls) {
      const want = control.value.trim().toLowerCase();
      if (!want) continue;
      const key = control.dataset.filter;
      if (key === "text") {
        if (!row.textContent.toLowerCase().includes(want)) return false;
      } else {
        const have = (row.dataset[key] || "").toLowerCase().split("|");
        if (!have.includes(want)) return false;
      }
    }
    return true;
  }

  function setUpFilters(form) {
    const table = document.getElementById(form.dataset.table);
    if (!table) return;
    const controls = Array.from(form.querySelectorAll("[data-filter]"));
    const count = document.querySelector('[data-count-for="' + form.dataset.table + '"]');
    const params = new URLSearchParams(window.location.search);
    for (const control of controls) {
      if (control.name && params.has(control.name)) {
        control.value = params.get(control.name);
        if (control.tagName === "SELECT" && control.value !== params.get(control.name)) {
          control.value = "";
        }
      }
    }
    function apply() {
      const rows = Array.from(table.tBodies[0].rows);
      let shown = 0;
      for (const row of rows) {
        const ok = rowMatches(row, controls);
        row.hidden = !ok;
        if (ok) shown += 1;
      }
      if (count) count.textContent = shown + " of " + rows.length + " shown";
    }
    form.addEventListener("input", apply);
    form.addEventListener("change", apply);
    form.addEventListener("submit", function (event) { event.preventDefault(); });
    apply();
  }

  function cellValue(row, index, kind) {
    const cell = row.cells[index];
    if (!cell) return kind === "number" ? NaN : "";
    const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent;
    if (kind === "number") {
      const value = parseFloat(raw);
      return Number.isNaN(value) ? NaN : value;
    }
    return raw.trim().toLowerCase();
  }

  function setUpSorting(table) {
    const headers = Array.from(table.tHead.rows[0].cells);
    headers.forEach(function (th, index) {
      const kind = th.dataset.sort;
      if (!kind) return;
      th.tabIndex = 0;
      th.classList.add("sort-key");
      function sort() {
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        rows.sort(function (a, b) {
          const x = cellValue(a, index, kind);
          const y = cellValue(b, index, kind);
          if (kind === "number") {
            if (Number.isNaN(x)) return Number.isNaN(y) ? 0 : 1;  // missing values last
            if (Number.isNaN(y)) return -1;
            return ascending ? x - y : y - x;
          }
          return ascending ? x.localeCompare(y) : y.localeCompare(x);
        });
        for (const row of rows) body.appendChild(row);
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sort(); }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable").forEach(setUpSorting);
    document.querySelectorAll("form.filters").forEach(setUpFilters);
  });
})();
