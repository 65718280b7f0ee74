// The dashboard's page: HTML, CSS and the page's script, served as same-origin files (the
// Content-Security-Policy allows no inline script or style). The script draws its charts as
// SVG and writes every piece of data with `textContent`: dead-letter payloads are
// attacker-controlled and never become markup.

function escapeAttribute(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page, for a dashboard mounted at `basePath`. */
export function pageHtml(basePath: string): string {
  const base = escapeAttribute(basePath);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="retrykit-base" content="${base}">
<title>retrykit dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${base}/assets/app.css">
<script src="${base}/assets/app.js" defer></script>
</head>
<body>
<header>
  <h1>retrykit</h1>
  <span id="fleet"></span>
  <span id="mode" class="badge"></span>
  <span id="updated" class="muted"></span>
</header>
<main>
  <section class="wide" id="headline-card">
    <h2>First-attempt success vs retried deliveries</h2>
    <div class="legend" id="headline-legend"></div>
    <div id="headline" class="chart"></div>
  </section>
  <section id="rates-card">
    <h2>Retry and error rates <span class="muted">(dashed: limits)</span></h2>
    <div class="legend" id="rates-legend"></div>
    <div id="rates" class="chart"></div>
  </section>
  <section id="latency-card">
    <h2>Latency</h2>
    <div class="legend" id="latency-legend"></div>
    <div id="latency" class="chart"></div>
    <p id="delivery" class="muted"></p>
    <div id="delivery-chart" class="chart"></div>
  </section>
  <section id="errors-card">
    <h2>Errors by reason and code</h2>
    <div class="split">
      <div><h3>Failed attempts by reason <span class="muted">(fleet metrics)</span></h3><div id="by-reason"></div></div>
      <div><h3>Dead letters by code <span class="muted">(dead-letter queue)</span></h3><div id="by-code"></div></div>
    </div>
  </section>
  <section id="queues-card">
    <h2>Queue depth</h2>
    <div class="legend" id="queues-legend"></div>
    <div id="queues" class="chart"></div>
  </section>
  <section class="wide" id="health-card">
    <h2>Health</h2>
    <ul id="health"></ul>
  </section>
  <section class="wide" id="dlq-card">
    <h2>Dead letters <span id="dlq-total" class="muted"></span></h2>
    <form id="dlq-filter">
      <label>Reason <select id="filter-reason"><option value="">any</option></select></label>
      <label>Code <input id="filter-code" placeholder="131026,ECONNRESET" size="18"></label>
      <button type="submit">Filter</button>
      <span class="spacer"></span>
      <label>Rate <input id="rate" type="number" min="0.1" max="1000" step="0.1" value="5" size="5"> /s</label>
      <button type="button" id="redrive" disabled>Redrive selected</button>
      <button type="button" id="purge" class="danger" disabled>Purge selected</button>
    </form>
    <p id="dlq-result" role="status"></p>
    <table id="dlq">
      <thead><tr><th><input type="checkbox" id="select-all" aria-label="select all"></th><th>ID</th><th>Dead at</th><th>Reason</th><th>Code</th><th>Attempts</th><th>Origin</th></tr></thead>
      <tbody></tbody>
    </table>
    <div id="entry" hidden>
      <h3>Entry <span id="entry-id"></span> <button type="button" id="entry-close">Close</button></h3>
      <table id="entry-attempts">
        <thead><tr><th>#</th><th>At</th><th>Reason</th><th>Code</th><th>Message</th></tr></thead>
        <tbody></tbody>
      </table>
      <h3>Payload</h3>
      <pre id="payload"></pre>
    </div>
  </section>
</main>
</body>
</html>
`;
}

/** The page's stylesheet. */
export const APP_CSS = `
:root { --fg: #1d2430; --muted: #667085; --line: #d0d5dd; --bg: #f7f8fa; --card: #fff;
  --first: #2e7d32; --retried: #f9a825; --gaveup: #c62828; --p50: #1565c0; --p95: #6a1b9a;
  --p99: #c62828; --limit: #c62828; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 16px; align-items: baseline; padding: 12px 20px; background: var(--card); border-bottom: 1px solid var(--line); }
header h1 { font-size: 18px; margin: 0; }
main { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 16px; padding: 16px 20px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; min-width: 0; }
section.wide { grid-column: 1 / -1; }
h2 { font-size: 15px; margin: 0 0 8px; }
h3 { font-size: 13px; margin: 8px 0 4px; }
.muted { color: var(--muted); font-weight: normal; }
.badge { padding: 2px 8px; border-radius: 10px; background: #e3e8ef; font-size: 12px; }
.badge.ok { background: #e6f4ea; }
.chart svg { width: 100%; height: auto; display: block; }
.legend { display: flex; flex-wrap: wrap; gap: 14px; font-size: 12px; margin-bottom: 4px; }
.legend .swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px; border-radius: 2px; background: currentColor; }
.swatch.s-first { background: var(--first); } .swatch.s-retried, .swatch.s-retry { background: var(--retried); }
.swatch.s-gaveup, .swatch.s-error { background: var(--gaveup); } .swatch.s-p50 { background: var(--p50); }
.swatch.s-p95 { background: var(--p95); } .swatch.s-p99 { background: var(--p99); }
.swatch.s-q0 { background: #1565c0; } .swatch.s-q1 { background: #2e7d32; }
.swatch.s-q2 { background: #ef6c00; } .swatch.s-q3 { background: #6a1b9a; }
.split { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.bars .bar-row { display: grid; grid-template-columns: 130px 1fr 60px; gap: 8px; align-items: center; font-size: 12px; margin: 2px 0; }
.bars .bar-row .track { background: #eef0f3; height: 10px; border-radius: 2px; }
.bars svg { width: 100%; height: 10px; display: block; }
.axis { stroke: var(--line); stroke-width: 1; }
.axis-label { fill: var(--muted); font-size: 10px; }
.s-first { fill: var(--first); stroke: var(--first); }
.s-retried { fill: var(--retried); stroke: var(--retried); }
.s-gaveup { fill: var(--gaveup); stroke: var(--gaveup); }
.s-retry { stroke: var(--retried); fill: var(--retried); }
.s-error { stroke: var(--gaveup); fill: var(--gaveup); }
.s-p50 { stroke: var(--p50); fill: var(--p50); }
.s-p95 { stroke: var(--p95); fill: var(--p95); }
.s-p99 { stroke: var(--p99); fill: var(--p99); }
.s-q0 { stroke: #1565c0; fill: #1565c0; } .s-q1 { stroke: #2e7d32; fill: #2e7d32; }
.s-q2 { stroke: #ef6c00; fill: #ef6c00; } .s-q3 { stroke: #6a1b9a; fill: #6a1b9a; }
.chart polyline { fill: none; stroke-width: 2; }
.limit { stroke: var(--limit); stroke-dasharray: 5 4; stroke-width: 1; }
.bar-fill { fill: #5c6bc0; }
#health li.breach { color: var(--gaveup); }
#health li.ok { color: var(--first); }
form#dlq-filter { display: flex; flex-wrap: wrap; gap: 10px; align-items: center; }
form#dlq-filter .spacer { flex: 1; }
button { font: inherit; padding: 3px 10px; border: 1px solid var(--line); border-radius: 4px; background: #fff; cursor: pointer; }
button.danger { color: var(--gaveup); }
button:disabled { opacity: .5; cursor: default; }
table { border-collapse: collapse; width: 100%; font-size: 12px; margin-top: 8px; }
th, td { text-align: left; padding: 4px 6px; border-bottom: 1px solid #eef0f3; vertical-align: top; }
td.id a { font-family: ui-monospace, monospace; cursor: pointer; color: #1565c0; text-decoration: underline; }
pre#payload { background: #f3f4f6; padding: 8px; overflow: auto; max-height: 320px; white-space: pre-wrap; word-break: break-all; }
#dlq-result.error { color: var(--gaveup); }
`;

/** The page's script: no framework, no markup from data. */
export const APP_JS = `'use strict';
(() => {
  const base = document.querySelector('meta[name="retrykit-base"]').getAttribute('content');
  const SVG = 'http://www.w3.org/2000/svg';
  /** Widths of the charts' drawing space: the headline spans the page. */
  const NARROW = 640;
  const WIDE = 1280;
  const H = 180;
  const PAD = { l: 56, r: 8, t: 8, b: 20 };
  const state = { session: null, selected: new Set(), rows: [], refreshes: 0 };
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svg(tag, attrs) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    return e;
  }
  function api(path, init) {
    const options = Object.assign({ credentials: 'same-origin' }, init || {});
    options.headers = Object.assign({ accept: 'application/json' }, (init && init.headers) || {});
    return fetch(base + path, options).then((r) =>
      r.json().then((body) => {
        if (!r.ok) throw new Error(body && body.error ? body.error : 'HTTP ' + r.status);
        return body;
      }),
    );
  }
  const pct = (v) => (v === null || v === undefined ? '-' : (v * 100).toFixed(2) + ' %');
  const axisPct = (v) => (v * 100).toFixed(v < 0.1 ? 1 : 0) + ' %';
  const ms = (v) => (v === null || v === undefined ? '-' : Math.round(v) + ' ms');
  const time = (t) => new Date(t).toISOString().slice(11, 19);

  function legend(id, items) {
    const box = $(id);
    box.replaceChildren();
    for (const item of items) {
      const span = el('span', { 'data-series': item.key });
      const swatch = el('span', { class: 'swatch s-' + item.cls });
      span.append(swatch, document.createTextNode(item.label));
      box.append(span);
    }
  }

  function frame(root, W, starts, max, format) {
    const chart = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img' });
    const ih = H - PAD.t - PAD.b;
    chart.append(svg('line', { class: 'axis', x1: PAD.l, y1: H - PAD.b, x2: W - PAD.r, y2: H - PAD.b }));
    for (const f of [0, 0.5, 1]) {
      const y = PAD.t + ih * (1 - f);
      const label = svg('text', { class: 'axis-label', x: PAD.l - 4, y: y + 3, 'text-anchor': 'end' });
      label.textContent = format(max * f);
      chart.append(label, svg('line', { class: 'axis', x1: PAD.l, y1: y, x2: W - PAD.r, y2: y, 'stroke-opacity': 0.4 }));
    }
    if (starts.length > 0) {
      for (const i of [0, starts.length - 1]) {
        const label = svg('text', { class: 'axis-label', x: i === 0 ? PAD.l : W - PAD.r, y: H - 6, 'text-anchor': i === 0 ? 'start' : 'end' });
        label.textContent = time(starts[i]);
        chart.append(label);
      }
    }
    root.replaceChildren(chart);
    return chart;
  }
  const xOf = (W, i, n) => PAD.l + ((W - PAD.l - PAD.r) * (i + 0.5)) / Math.max(1, n);
  const yOf = (v, max) => PAD.t + (H - PAD.t - PAD.b) * (1 - v / max);

  function lines(id, starts, series, opts) {
    let max = opts.min || 0;
    for (const s of series) for (const v of s.values) if (v !== null && v > max) max = v;
    if (opts.limit !== undefined && opts.limit * 1.25 > max) max = opts.limit * 1.25;
    if (max === 0) max = 1;
    const W = NARROW;
    const chart = frame($(id), W, starts, max, opts.format);
    if (opts.limit !== undefined) {
      const y = yOf(opts.limit, max);
      chart.append(svg('line', { class: 'limit', x1: PAD.l, y1: y, x2: W - PAD.r, y2: y }));
    }
    for (const s of series) {
      let points = '';
      s.values.forEach((v, i) => {
        if (v === null) return;
        points += xOf(W, i, s.values.length).toFixed(1) + ',' + yOf(v, max).toFixed(1) + ' ';
        chart.append(svg('circle', { class: 's-' + s.cls, cx: xOf(W, i, s.values.length), cy: yOf(v, max), r: 1.5 }));
      });
      chart.append(svg('polyline', { class: 's-' + s.cls, points: points.trim(), 'data-series': s.key }));
    }
  }

  function stacked(id, starts, series) {
    let max = 1;
    starts.forEach((_, i) => {
      let sum = 0;
      for (const s of series) sum += s.values[i];
      if (sum > max) max = sum;
    });
    const W = WIDE;
    const chart = frame($(id), W, starts, max, (v) => String(Math.round(v)));
    const bw = Math.max(1, ((W - PAD.l - PAD.r) / Math.max(1, starts.length)) * 0.8);
    starts.forEach((start, i) => {
      let acc = 0;
      for (const s of series) {
        const v = s.values[i];
        if (v <= 0) continue;
        const y = yOf(acc + v, max);
        const rect = svg('rect', { class: 's-' + s.cls, x: xOf(W, i, starts.length) - bw / 2, y, width: bw, height: yOf(acc, max) - y, 'data-series': s.key, 'data-start': start, 'data-value': v });
        const title = svg('title');
        title.textContent = time(start) + ' ' + s.label + ': ' + v;
        rect.append(title);
        chart.append(rect);
        acc += v;
      }
    });
  }

  function bars(id, counts) {
    const box = $(id);
    box.replaceChildren();
    box.className = 'bars';
    const entries = Object.entries(counts).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    if (entries.length === 0) {
      box.append(el('p', { class: 'muted' }, 'none'));
      return;
    }
    const max = entries[0][1];
    for (const [key, n] of entries.slice(0, 12)) {
      const r = el('div', { class: 'bar-row', 'data-key': key, 'data-count': n });
      const track = el('div', { class: 'track' });
      const s = svg('svg', { viewBox: '0 0 100 10', preserveAspectRatio: 'none' });
      s.append(svg('rect', { class: 'bar-fill', x: 0, y: 0, height: 10, width: (100 * n) / max }));
      track.append(s);
      r.append(el('span', {}, key), track, el('span', {}, n));
      box.append(r);
    }
  }

  function renderMetrics(m) {
    const s = m.snapshot;
    const series = m.series || [];
    const starts = series.map((b) => b.start);
    $('fleet').textContent = 'fleet "' + state.session.prefix + '" · dead letters "' + state.session.dlqPrefix + '" · ' + m.instances + ' instance' + (m.instances === 1 ? '' : 's') + ' · last ' + Math.round(s.windowMs / 60000) + ' min';
    const first = s.calls.firstAttemptSucceeded;
    const retried = s.calls.succeeded - s.calls.firstAttemptSucceeded;
    const card = $('headline');
    card.dataset.firstAttempt = String(first);
    card.dataset.retried = String(retried);
    card.dataset.gaveUp = String(s.calls.gaveUp);
    card.dataset.started = String(s.calls.started);
    legend('headline-legend', [
      { key: 'first', cls: 'first', label: 'first attempt ' + first + ' (' + pct(s.ratios.firstAttemptSuccess) + ')' },
      { key: 'retried', cls: 'retried', label: 'after retries ' + retried },
      { key: 'gaveup', cls: 'gaveup', label: 'gave up ' + s.calls.gaveUp },
    ]);
    stacked('headline', starts, [
      { key: 'first', cls: 'first', label: 'first attempt', values: series.map((b) => b.snapshot.calls.firstAttemptSucceeded) },
      { key: 'retried', cls: 'retried', label: 'after retries', values: series.map((b) => b.snapshot.calls.succeeded - b.snapshot.calls.firstAttemptSucceeded) },
      { key: 'gaveup', cls: 'gaveup', label: 'gave up', values: series.map((b) => b.snapshot.calls.gaveUp) },
    ]);

    const rates = $('rates');
    rates.dataset.retryRate = String(s.ratios.retry);
    rates.dataset.errorRate = String(s.ratios.error);
    legend('rates-legend', [
      { key: 'retry', cls: 'retry', label: 'retry rate ' + pct(s.ratios.retry) + ' (limit ' + pct(m.thresholds.retryRatio) + ')' },
      { key: 'error', cls: 'error', label: 'error rate ' + pct(s.ratios.error) + ' (limit ' + pct(m.thresholds.errorRatio) + ')' },
    ]);
    lines('rates', starts, [
      { key: 'retry', cls: 'retry', values: series.map((b) => b.snapshot.ratios.retry) },
      { key: 'error', cls: 'error', values: series.map((b) => b.snapshot.ratios.error) },
    ], { limit: Math.max(m.thresholds.retryRatio, m.thresholds.errorRatio), format: axisPct });

    const latency = $('latency');
    latency.dataset.p50 = String(s.latency.p50Ms);
    latency.dataset.p95 = String(s.latency.p95Ms);
    latency.dataset.p99 = String(s.latency.p99Ms);
    legend('latency-legend', [
      { key: 'p50', cls: 'p50', label: 'p50 ' + ms(s.latency.p50Ms) },
      { key: 'p95', cls: 'p95', label: 'p95 ' + ms(s.latency.p95Ms) },
      { key: 'p99', cls: 'p99', label: 'p99 ' + ms(s.latency.p99Ms) },
    ]);
    lines('latency', starts, ['p50', 'p95', 'p99'].map((p) => ({
      key: p, cls: p, values: series.map((b) => b.snapshot.latency[p + 'Ms']),
    })), { format: ms });
    const d = s.messages;
    const delivery = $('delivery');
    if (d) {
      delivery.dataset.deliveryP50 = String(d.deliveryLatency.p50Ms);
      delivery.dataset.deliveryP95 = String(d.deliveryLatency.p95Ms);
      delivery.dataset.deliveryP99 = String(d.deliveryLatency.p99Ms);
      delivery.textContent = 'send → delivered: p50 ' + ms(d.deliveryLatency.p50Ms) + ' · p95 ' + ms(d.deliveryLatency.p95Ms) + ' · p99 ' + ms(d.deliveryLatency.p99Ms) + ' · ' + d.delivered + ' delivered, ' + d.failed + ' failed';
      const has = series.some((b) => b.snapshot.messages && b.snapshot.messages.deliveryLatency.p50Ms !== null);
      if (has) {
        lines('delivery-chart', starts, ['p50', 'p95', 'p99'].map((p) => ({
          key: 'delivery-' + p, cls: p, values: series.map((b) => (b.snapshot.messages ? b.snapshot.messages.deliveryLatency[p + 'Ms'] : null)),
        })), { format: ms });
      } else $('delivery-chart').replaceChildren();
    }

    bars('by-reason', s.attempts.failedByReason);

    const names = Object.keys(s.queues).sort().slice(0, 4);
    const queues = $('queues');
    queues.dataset.depths = JSON.stringify(Object.fromEntries(names.map((n) => [n, s.queues[n].depth])));
    legend('queues-legend', names.map((n, i) => ({ key: n, cls: 'q' + i, label: n + ' ' + s.queues[n].depth })));
    if (names.length === 0) {
      queues.replaceChildren(el('p', { class: 'muted' }, 'No queue reported its depth in this window (sampleQueueDepth).'));
    } else lines('queues', starts, names.map((n, i) => ({
      key: n, cls: 'q' + i, values: series.map((b) => (b.snapshot.queues[n] ? b.snapshot.queues[n].depth : null)),
    })), { format: (v) => String(Math.round(v * 10) / 10) });

    const health = $('health');
    health.replaceChildren();
    health.dataset.healthy = String(m.health.healthy);
    health.dataset.breaches = String(m.health.breaches.length);
    if (m.health.healthy) health.append(el('li', { class: 'ok' }, 'healthy: no threshold breached'));
    for (const b of m.health.breaches) {
      const isRatio = b.check.endsWith('Ratio');
      const v = isRatio ? pct(b.value) : String(b.value);
      const t = isRatio ? pct(b.threshold) : String(b.threshold);
      health.append(el('li', { class: 'breach', 'data-check': b.check }, b.check + ': ' + v + ' over ' + t + (b.key ? ' (' + b.key + ')' : '')));
    }
  }

  function origin(r) {
    const o = r.origin;
    if (!o) return r.source || '-';
    if (o.kind === 'bullmq') return 'bullmq ' + o.queue + '#' + o.jobId;
    if (o.kind === 'send') return o.key ? 'send ' + o.key : 'send';
    if (o.kind === 'webhook') return 'webhook ' + o.webhookId;
    return o.kind + ' ' + (o.key || '');
  }

  function renderRows(page) {
    $('dlq-total').textContent = '(' + page.total + ' in the queue' + (page.cursor ? ', first ' + page.entries.length + ' shown' : '') + ')';
    $('dlq').dataset.total = String(page.total);
    const body = $('dlq').tBodies[0];
    body.replaceChildren();
    const ids = new Set(page.entries.map((r) => r.id));
    for (const id of [...state.selected]) if (!ids.has(id)) state.selected.delete(id);
    for (const r of page.entries) {
      const tr = el('tr', { 'data-id': r.id });
      const box = el('input', { type: 'checkbox', 'aria-label': 'select' });
      box.checked = state.selected.has(r.id);
      box.addEventListener('change', () => {
        if (box.checked) state.selected.add(r.id);
        else state.selected.delete(r.id);
        updateButtons();
      });
      const cell = el('td');
      cell.append(box);
      const idCell = el('td', { class: 'id' });
      const link = el('a', { role: 'button', tabindex: 0 }, r.id);
      link.addEventListener('click', () => openEntry(r.id));
      idCell.append(link);
      tr.append(cell, idCell, el('td', {}, r.deadAt), el('td', {}, r.reason), el('td', {}, r.code), el('td', {}, r.attempts), el('td', {}, origin(r)));
      body.append(tr);
    }
    updateButtons();
  }

  function openEntry(id) {
    api('/api/dead-letters/entry?id=' + encodeURIComponent(id)).then((entry) => {
      $('entry').hidden = false;
      $('entry').dataset.id = entry.id;
      $('entry-id').textContent = entry.id + ' · ' + entry.reason + ' · code ' + entry.code + ' · ' + entry.disposition;
      const body = $('entry-attempts').tBodies[0];
      body.replaceChildren();
      entry.attempts.forEach((a, i) => {
        const tr = el('tr');
        tr.append(el('td', {}, i + 1), el('td', {}, a.at), el('td', {}, a.reason), el('td', {}, a.errorCode === undefined ? '-' : a.errorCode), el('td', {}, a.message + (a.deferredMs === undefined ? '' : ' (deferred ' + a.deferredMs + ' ms)')));
        body.append(tr);
      });
      $('payload').textContent = typeof entry.payload === 'string' ? entry.payload : JSON.stringify(entry.payload, null, 2);
    }, showError);
  }

  function updateButtons() {
    const can = state.session && state.session.canMutate && state.selected.size > 0;
    $('redrive').disabled = !can;
    $('purge').disabled = !can;
  }

  function showResult(text, error) {
    const p = $('dlq-result');
    p.textContent = text;
    p.className = error ? 'error' : '';
  }
  const showError = (e) => showResult(e.message, true);

  function mutate(path, body) {
    return api(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-retrykit-csrf': state.session.csrf },
      body: JSON.stringify(body),
    });
  }

  function filterQuery() {
    const q = new URLSearchParams({ limit: '200' });
    if ($('filter-reason').value) q.set('reason', $('filter-reason').value);
    if ($('filter-code').value.trim()) q.set('code', $('filter-code').value.trim());
    return q.toString();
  }

  function refresh() {
    return Promise.all([
      api('/api/metrics').then(renderMetrics),
      api('/api/dead-letters/summary').then((s) => {
        bars('by-code', s.byCode);
        $('by-code').dataset.total = String(s.total);
      }),
      api('/api/dead-letters?' + filterQuery()).then(renderRows),
    ]).then(() => {
      state.refreshes++;
      document.body.dataset.refreshes = String(state.refreshes);
      $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    }, (e) => {
      $('updated').textContent = 'refresh failed: ' + e.message;
    });
  }

  function loop() {
    refresh().finally(() => setTimeout(loop, state.session.refreshMs));
  }

  document.addEventListener('DOMContentLoaded', () => {
    api('/api/session').then((session) => {
      state.session = session;
      const mode = $('mode');
      mode.textContent = session.canMutate ? 'redrive and purge allowed' : 'read-only';
      mode.className = session.canMutate ? 'badge ok' : 'badge';
      document.body.dataset.mode = session.canMutate ? 'write' : 'read-only';
      for (const r of session.reasons) $('filter-reason').append(el('option', { value: r }, r));
      $('dlq-filter').addEventListener('submit', (event) => {
        event.preventDefault();
        api('/api/dead-letters?' + filterQuery()).then(renderRows, showError);
      });
      $('select-all').addEventListener('change', (event) => {
        for (const box of $('dlq').tBodies[0].querySelectorAll('input[type=checkbox]')) {
          box.checked = event.target.checked;
          box.dispatchEvent(new Event('change'));
        }
      });
      $('entry-close').addEventListener('click', () => { $('entry').hidden = true; });
      $('redrive').addEventListener('click', () => {
        const ids = [...state.selected];
        const rate = Number($('rate').value);
        showResult('redriving ' + ids.length + ' at ' + rate + '/s…', false);
        mutate('/api/dead-letters/redrive', { ids, entriesPerSecond: rate }).then((r) => {
          state.selected.clear();
          showResult('redriven ' + r.redriven.length + ', failed ' + r.failed.length + ', skipped ' + r.skipped.length + (r.cannot.length ? ', cannot (no handler, not from BullMQ) ' + r.cannot.length : '') + (r.errors.length ? ': ' + r.errors.slice(0, 3).join('; ') : ''), r.failed.length + r.cannot.length > 0);
          return refresh();
        }, showError);
      });
      $('purge').addEventListener('click', () => {
        const ids = [...state.selected];
        if (!window.confirm('Delete ' + ids.length + ' dead letter(s) for good?')) return;
        mutate('/api/dead-letters/purge', { ids }).then((r) => {
          state.selected.clear();
          showResult('purged ' + r.removed.length + (r.missing.length ? ', gone already ' + r.missing.length : ''), false);
          return refresh();
        }, showError);
      });
      loop();
    }, (e) => {
      $('updated').textContent = 'cannot load the session: ' + e.message;
    });
  });
})();
`;
