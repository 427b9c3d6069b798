// The quotio dashboard: reads the management API with the key on every call,
// redraws every REFRESH_MS, and ticks its countdowns every second in between.
'use strict';
(() => {
  const API = '/v0/management';
  const KEY_SLOT = 'quotio.management-key';
  const REFRESH_MS = 10000;
  const PALETTE = ['#3b6fd8', '#1f9d55', '#d98b00', '#9b51e0', '#d64545', '#0f9bb0', '#7a869a', '#c2569b'];
  const state = { key: sessionStorage.getItem(KEY_SLOT) || '', span: '24h', group: 'provider', timer: 0, seq: 0, charts: {} };
  const $ = (id) => document.getElementById(id);

  // Every element is built here: server strings only ever become text nodes
  // or attribute values, never markup.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value !== null && value !== undefined && value !== false) el.setAttribute(name, String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child !== null && child !== undefined && child !== false) el.append(child instanceof Node ? child : String(child));
    }
    return el;
  }

  const num = (n) => (n ?? 0).toLocaleString('en-US');
  const ms = (v) => (v === null || v === undefined ? '–' : `${Math.round(v).toLocaleString('en-US')} ms`);
  const pct = (v) => `${((v ?? 0) * 100).toFixed(1)}%`;

  function duration(seconds) {
    const s = Math.round(seconds);
    if (!(s > 0)) return 'now';
    const d = Math.floor(s / 86400), hr = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d) return `${d}d ${hr}h`;
    if (hr) return `${hr}h ${m}m`;
    if (m) return `${m}m ${s % 60}s`;
    return `${s}s`;
  }

  // Counted from when the answer arrived, so the browser's clock need not agree with the gateway's.
  function countdown(prefix, seconds) {
    return h('span', { 'data-until': Date.now() + seconds * 1000, 'data-prefix': prefix }, prefix + duration(seconds));
  }

  function tick() {
    for (const el of document.querySelectorAll('[data-until]')) {
      el.textContent = el.dataset.prefix + duration((Number(el.dataset.until) - Date.now()) / 1000);
    }
  }

  // --- the management key -------------------------------------------------
  function setKey(key) {
    state.key = key;
    if (key) sessionStorage.setItem(KEY_SLOT, key);
    else sessionStorage.removeItem(KEY_SLOT);
  }

  function takeKeyFromUrl() {
    const url = new URL(location.href);
    if (!url.searchParams.has('key')) return;
    setKey(url.searchParams.get('key'));
    url.searchParams.delete('key');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  }

  function askKey(message) {
    $('main').hidden = true;
    $('keyform').hidden = false;
    $('keyerror').textContent = message;
    $('keyinput').focus();
  }

  class KeyRefused extends Error {}

  async function api(path) {
    const headers = state.key ? { Authorization: `Bearer ${state.key}` } : {};
    let resp;
    try {
      resp = await fetch(API + path, { headers, cache: 'no-store' });
    } catch {
      throw new Error('the gateway does not answer');
    }
    let body = null;
    try {
      body = await resp.json();
    } catch {
      // reported by status below
    }
    if (resp.status === 401) throw new KeyRefused(body?.error || 'the management key was refused');
    if (!resp.ok) throw new Error(`${path}: ${body?.error || `HTTP ${resp.status}`}`);
    return body;
  }

  function setStatus(text, error = false) {
    $('status').textContent = text;
    $('status').classList.toggle('error', error);
  }

  async function refresh() {
    clearTimeout(state.timer);
    const seq = ++state.seq;
    try {
      const [usage, quotas, pool] = await Promise.all([
        api(`/usage?window=${encodeURIComponent(state.span)}`),
        api('/usage/quotas/all'),
        api('/pool'),
      ]);
      if (seq !== state.seq) return; // a newer refresh (say, for another time window) owns the page
      $('keyform').hidden = true;
      $('main').hidden = false;
      render(usage, quotas.quotas || [], pool);
      setStatus(`updated ${new Date().toLocaleTimeString()}`);
    } catch (err) {
      if (seq !== state.seq) return;
      if (err instanceof KeyRefused) {
        askKey(err.message);
        return; // nothing more until a key is entered
      }
      setStatus(err.message, true);
    }
    state.timer = setTimeout(refresh, REFRESH_MS);
  }

  // --- rendering --------------------------------------------------------------
  function render(usage, quotas, pool) {
    renderTotals(usage.totals);
    renderAccounts(quotas, pool, usage.by_credential || []);
    renderCharts(usage.timeseries);
    renderTable($('by-provider'), 'Provider', usage.by_provider || [], 'provider');
    renderTable($('by-model'), 'Model', usage.by_model || [], 'model');
    renderPool(pool, quotas);
  }

  function card(label, value, sub) {
    return h('div', { class: 'card' }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), h('div', { class: 'sub' }, sub));
  }

  function renderTotals(t) {
    $('totals').replaceChildren(
      card('Requests', num(t.requests), `${num(t.attempts)} attempts`),
      card('Errors', num(t.errors), `${pct(t.error_rate)} error rate`),
      card('Cancelled', num(t.cancelled), 'hung up by the client'),
      card('Tokens', num(t.total_tokens), `${num(t.input_tokens)} in · ${num(t.output_tokens)} out · ${num(t.cached_tokens)} cached`),
      card('Latency p50', ms(t.latency_ms.p50), `p95 ${ms(t.latency_ms.p95)}`),
      card('First byte p50', ms(t.ttfb_ms.p50), `p95 ${ms(t.ttfb_ms.p95)}`),
    );
  }

  // The same rule as `quotio quotas` (quotio_core/usage_tables.py account_status).
  function accountStatus(q, pool) {
    if (q.disabled) return 'disabled';
    if (q.credential_status === 'needs-login') return 'needs-login';
    if (pool.breakers?.[q.id]?.state === 'open') return 'breaker open';
    if ((pool.cooldowns || []).some((c) => c.credential_id === q.id && c.scope === 'account')) return 'cooling';
    return q.credential_status;
  }

  const accountName = (q) => q.email || q.label || q.id;

  function windowRow(w) {
    const left = w.remaining_pct;
    const fill = h('span', { class: left !== null && left < 20 ? 'low' : null });
    fill.style.width = `${left === null ? 0 : Math.max(0, Math.min(100, left))}%`;
    const amount = w.unit !== 'percent' && w.limit !== null ? `${num(w.used)} / ${num(w.limit)} ${w.unit}` : null;
    const reset = w.resets_in_seconds === null ? amount : [countdown('resets in ', w.resets_in_seconds), amount && ` · ${amount}`];
    return h('div', { class: 'window', 'data-window': w.name },
      h('span', { class: 'wname' }, w.model && w.model !== w.name ? `${w.name} (${w.model})` : w.name),
      h('div', { class: left !== null && left <= 0 ? 'bar spent' : 'bar', role: 'meter', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': left }, fill),
      h('span', { class: 'left' }, left === null ? '?' : left > 0 && left < 1 ? '<1% left' : `${Math.floor(left)}% left`),
      reset && h('span', { class: 'reset' }, reset));
  }

  function renderAccounts(quotas, pool, byCredential) {
    const used = new Map(byCredential.map((c) => [c.credential_id, c]));
    // Accounts with quota windows first; otherwise the gateway's order.
    const ordered = [...quotas].sort((x, y) => (y.windows.length > 0) - (x.windows.length > 0));
    const cards = ordered.map((q) => {
      const status = accountStatus(q, pool);
      const u = used.get(q.id);
      const meta = [
        q.plan && `plan ${q.plan}`,
        u ? `${num(u.requests)} requests · ${num(u.total_tokens)} tokens` : 'no requests in this window',
      ];
      return h('article', { class: 'account', 'data-id': q.id },
        h('div', { class: 'head' },
          h('span', { class: 'badge provider' }, q.provider),
          h('span', { class: 'name', title: q.id }, accountName(q)),
          h('span', { class: `badge ${status.replace(' ', '-')}` }, status)),
        h('div', { class: 'meta' }, meta.filter(Boolean).join(' · ')),
        q.windows.map(windowRow),
        q.status === 'ok' ? null : h('div', { class: 'note' }, `quota ${q.status}${q.error ? `: ${q.error}` : ''}`));
    });
    $('accounts').replaceChildren(...(cards.length ? cards : [h('p', { class: 'empty' }, 'No accounts in the pool.')]));
  }

  function timeLabel(ts, bucket) {
    const d = new Date(ts * 1000);
    const hm = d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
    const day = d.toLocaleDateString('en-US', { month: 'short', day: 'numeric' });
    return bucket >= 86400 ? day : bucket > 3600 ? `${day} ${hm}` : hm;
  }

  function renderCharts(series) {
    const field = state.group === 'model' ? 'by_model' : 'by_provider';
    const points = series.points;
    const names = [...new Set(points.flatMap((p) => Object.keys(p[field])))].sort();
    const labels = points.map((p) => timeLabel(p.ts, series.bucket_seconds));
    for (const [id, metric] of [['chart-requests', 'requests'], ['chart-tokens', 'tokens']]) {
      const datasets = names.map((name, i) => ({
        label: name,
        data: points.map((p) => p[field][name]?.[metric] ?? 0),
        backgroundColor: PALETTE[i % PALETTE.length],
        stack: metric,
      }));
      const chart = state.charts[id] || (state.charts[id] = new Chart($(id), chartOptions()));
      chart.data.labels = labels;
      chart.data.datasets = datasets;
      chart.update('none');
    }
  }

  function chartOptions() {
    return {
      type: 'bar',
      data: { labels: [], datasets: [] },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: 'index', intersect: false },
        plugins: { legend: { position: 'bottom', labels: { boxWidth: 10 } } },
        scales: {
          x: { stacked: true, grid: { display: false }, ticks: { autoSkip: true, maxTicksLimit: 12, maxRotation: 0 } },
          y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } },
        },
      },
    };
  }

  function renderTable(table, title, rows, key) {
    const heads = [title, 'Requests', 'Errors', 'Error rate', 'Cancelled', 'Tokens in', 'Tokens out', 'p50', 'p95'];
    const body = rows.map((r) => h('tr', null,
      h('td', null, r[key]),
      h('td', null, num(r.requests)),
      h('td', { class: r.errors ? 'bad' : null }, num(r.errors)),
      h('td', null, pct(r.error_rate)),
      h('td', null, num(r.cancelled)),
      h('td', null, num(r.input_tokens)),
      h('td', null, num(r.output_tokens)),
      h('td', null, ms(r.latency_ms.p50)),
      h('td', null, ms(r.latency_ms.p95))));
    const empty = h('tr', null, h('td', { colspan: heads.length, class: 'empty' }, 'No requests in this window.'));
    table.replaceChildren(h('thead', null, h('tr', null, heads.map((t) => h('th', null, t)))), h('tbody', null, body.length ? body : empty));
  }

  function renderPool(pool, quotas) {
    const names = new Map(quotas.map((q) => [q.id, accountName(q)]));
    const name = (id) => names.get(id) || id;
    const rows = [];
    for (const c of pool.cooldowns || []) {
      const what = c.scope === 'account' ? 'cooling' : `cooling ${c.model ?? ''}`.trim();
      rows.push([name(c.credential_id), what, c.reason, countdown('ends in ', c.reset_seconds)]);
    }
    for (const q of quotas.filter((x) => x.credential_status === 'needs-login')) {
      rows.push([accountName(q), 'needs login', `log in again: quotio login ${q.provider}`, '–']);
    }
    for (const [key, b] of Object.entries(pool.breakers || {})) {
      if (b.state === 'closed') continue;
      const when = b.state === 'open' ? countdown('probe in ', b.remaining) : 'probing';
      rows.push([name(key), `breaker ${b.state.replace('_', '-')}`, `${b.failures} failures in a row`, when]);
    }
    if (!rows.length) {
      $('pool').replaceChildren(h('p', { class: 'empty' }, 'Every credential is ready.'));
      return;
    }
    const head = h('tr', null, ['Credential', 'State', 'Reason', 'When'].map((t) => h('th', null, t)));
    $('pool').replaceChildren(h('table', { class: 'text' }, h('thead', null, head), h('tbody', null, rows.map((r) => h('tr', null, r.map((c) => h('td', null, c)))))));
  }

  // --- wiring -------------------------------------------------------------------
  $('keyform').addEventListener('submit', (ev) => {
    ev.preventDefault();
    setKey($('keyinput').value.trim());
    $('keyinput').value = '';
    refresh();
  });
  for (const btn of document.querySelectorAll('#spans button')) {
    btn.addEventListener('click', () => {
      state.span = btn.dataset.span;
      for (const b of document.querySelectorAll('#spans button')) b.setAttribute('aria-pressed', String(b === btn));
      refresh();
    });
  }
  $('group').addEventListener('change', () => {
    state.group = $('group').value;
    refresh();
  });

  takeKeyFromUrl();
  setInterval(tick, 1000);
  refresh();
})();
