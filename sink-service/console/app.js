// SPDX-License-Identifier: MIT OR Apache-2.0
// The Veil web console: a plain single-page app over the sink service's HTTPS API.
//
// Security rules this file keeps (the page runs under a strict Content-Security-Policy, and names
// of streams, sites, keys and webhooks are user input):
// - DOM is built only with h() below: every string becomes a text node, never markup.
// - No inline handlers or style attributes: listeners via addEventListener, styles via CSSOM.
// - The session lives in an HttpOnly cookie; its CSRF token only in a variable of this script.
'use strict';

(function () {
  // ---------------------------------------------------------------------------------------------
  // State

  const state = {
    session: null, // GET/POST /v1/session answer
    csrf: null, // sent as X-CSRF-Token on every non-GET request
    pageLimit: 1000, // page size asked for; dropped if the server's max_page is smaller
    // The range and offset are shared by the audience, inspection and compliance pages.
    range: { from: '', to: '', offset: -new Date().getTimezoneOffset() },
  };
  let charts = []; // live uPlot instances of the current page: resized and destroyed with it

  const EMPTY = {
    audience: 'No metrics windows in this range. Run ./scripts/demo.sh, or point a pipeline\'s auditsink at this store.',
    inspection: 'No inspection records in this range. Run pipelines/inspection-audit.pipeline (README, "A pipeline per use case") with its auditsink pointed at this store.',
    compliance: 'No compliance records in this range. Run pipelines/compliance-audit.pipeline (README, "A pipeline per use case") with its auditsink pointed at this store.',
  };
  const BANDS = ['0-5s', '5-15s', '15-30s', '30-60s', '60s+'];
  const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];
  const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777'];

  const $ = (id) => document.getElementById(id);
  const view = () => $('view');

  // ---------------------------------------------------------------------------------------------
  // DOM helper: the only way this file creates elements. Strings become text nodes.

  const PROPS = new Set(['value', 'checked', 'selected', 'disabled', 'hidden', 'required']);

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
      // Never an inline handler, and URLs only of this page's own kinds (no javascript:).
      else if (k.toLowerCase().startsWith('on')) throw new Error('event attribute without a function: ' + k);
      else if ((k === 'href' || k === 'src') && !/^(#|blob:|\/(?!\/))/.test(String(v))) throw new Error('refused URL in ' + k);
      else if (PROPS.has(k)) el[k] = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  // A table; cells are strings or nodes (a <td>/<th> node is used as is, so it can carry a class).
  function table(id, head, rows, emptyText, cls) {
    const cell = (c) => (c instanceof Node && (c.tagName === 'TD' || c.tagName === 'TH') ? c : h('td', null, c));
    const t = h('table', { id, class: cls || null },
      h('thead', null, h('tr', null, head.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', null, rows.map((r) => h('tr', null, r.map(cell)))));
    return h('div', { class: 'table-wrap' }, t, rows.length || !emptyText ? null : h('p', { class: 'muted' }, emptyText));
  }

  const num = (x, cls) => h('td', { class: 'num' + (cls ? ' ' + cls : '') }, x);
  const dash = (v) => (v === null || v === undefined || v === '' ? '—' : v);
  const json = (v) => h('code', { class: 'json' }, v === undefined ? '' : JSON.stringify(v));
  const where = (o) => [o.site, o.device, o.stream].filter((x) => x !== null && x !== undefined).join('/');
  // Integers exactly as the API sums them; other numbers to a millisecond's precision.
  const fmt = (x) => (typeof x !== 'number' ? dash(x) : Number.isInteger(x) ? String(x) : String(Math.round(x * 1000) / 1000));

  // ---------------------------------------------------------------------------------------------
  // API access

  class ApiError extends Error {
    constructor(status, reason) {
      super(reason);
      this.status = status;
      this.reason = reason;
    }
  }

  // One request. Cookies carry the session; a change carries the CSRF token. A 401 ends the
  // console session (unless `signIn`, where a 401 means a wrong key and is the caller's to show).
  async function api(method, path, opts = {}) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(opts.query || {})) {
      if (v !== null && v !== undefined && v !== '') url.searchParams.set(k, String(v));
    }
    const headers = { Accept: opts.blob ? '*/*' : 'application/json' };
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
    let res;
    try {
      res = await fetch(url, {
        method, headers, credentials: 'same-origin', cache: 'no-store',
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      });
    } catch (e) {
      throw new ApiError(0, 'the service cannot be reached (' + e.message + ')');
    }
    if (!res.ok) {
      let reason = res.status + ' ' + res.statusText;
      try {
        const body = await res.json();
        reason = body.reason || body.error || reason;
      } catch (_) { /* not JSON: keep the status line */ }
      if (res.status === 401 && !opts.signIn) signedOut('Your session ended: ' + reason);
      throw new ApiError(res.status, reason);
    }
    return opts.blob ? res.blob() : res.json();
  }

  const t = (path) => '/v1/t/' + encodeURIComponent(state.session.tenant) + path;
  const has = (scope) => Boolean(state.session && (state.session.scopes || []).includes(scope));

  // Every page of a listing (follows next_cursor until null).
  async function listAll(path, query) {
    const items = [];
    let cursor = null;
    for (;;) {
      let page;
      try {
        page = await api('GET', path, { query: Object.assign({}, query, { limit: state.pageLimit, cursor }) });
      } catch (e) {
        // A deployment may set a smaller max_page: retry with the server's default page size.
        if (e.status === 400 && state.pageLimit && /limit/.test(e.reason)) {
          state.pageLimit = null;
          continue;
        }
        throw e;
      }
      items.push(...(page.items || []));
      if (!page.next_cursor || page.next_cursor === cursor) return items;
      cursor = page.next_cursor;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Time: the API speaks RFC 3339 UTC; the user picks a UTC offset for local hours.

  // Seconds since the epoch of an RFC 3339 time (Veil writes nanoseconds; Date.parse wants ms).
  function parseTime(s) {
    const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/i.exec(s || '');
    if (!m) return NaN;
    return Date.parse(m[1] + (m[2] ? '.' + (m[2] + '00').slice(0, 3) : '') + m[3]) / 1000;
  }

  // A datetime-local value, read as local time at `off` minutes from UTC, as RFC 3339 UTC.
  function localToUtc(value, off) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?/.exec(value || '');
    if (!m) return '';
    const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] || 0)) - off * 60000;
    return new Date(ms).toISOString().replace('.000Z', 'Z');
  }

  // An hour key of the roll-ups (2026-11-23T10, local at `off`) as a unix timestamp.
  function hourKeyToTs(key, off) {
    const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})$/.exec(key);
    return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4]) / 1000 - off * 60 : NaN;
  }

  // The start of the local hour (at `off`) holding `ts`, as a unix timestamp.
  const hourOf = (ts, off) => Math.floor((ts + off * 60) / 3600) * 3600 - off * 60;

  function utcLabel(off) {
    const a = Math.abs(off);
    return 'UTC' + (off < 0 ? '−' : '+') + String(Math.floor(a / 60)).padStart(2, '0') + ':' + String(a % 60).padStart(2, '0');
  }

  // `ts` as RFC 3339 text at `off` (chart legends).
  function tsLabel(ts, off) {
    const d = new Date((ts + off * 60) * 1000).toISOString().slice(0, 19);
    const a = Math.abs(off);
    const z = off === 0 ? 'Z' : (off < 0 ? '-' : '+') + String(Math.floor(a / 60)).padStart(2, '0') + ':' + String(a % 60).padStart(2, '0');
    return d + z;
  }

  // uPlot draws axes in the browser's zone; this shifts a timestamp so that they read as local
  // time at the chosen offset instead.
  function shiftedDate(ts, off) {
    const d = new Date((ts + off * 60) * 1000);
    return new Date(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds());
  }

  function offsets() {
    const list = [];
    for (let m = -720; m <= 840; m += 60) list.push(m);
    // Zones off the whole hour: Marquesas, Newfoundland, Iran, Afghanistan, India, Nepal,
    // Myanmar, Eucla, central Australia, Lord Howe, Chatham.
    list.push(-570, -210, 210, 270, 330, 345, 390, 525, 570, 630, 765);
    if (!list.includes(state.range.offset) && state.range.offset >= -720 && state.range.offset <= 840) list.push(state.range.offset);
    return list.sort((a, b) => a - b);
  }

  // The from/to query of the chosen range (empty: everything).
  function rangeQuery() {
    const off = state.range.offset;
    return { from: localToUtc(state.range.from, off), to: localToUtc(state.range.to, off) };
  }

  // From, to, UTC offset and Apply; Apply stores them and renders the page again.
  function rangeControls() {
    const from = h('input', { type: 'datetime-local', id: 'from', value: state.range.from });
    const to = h('input', { type: 'datetime-local', id: 'to', value: state.range.to });
    const off = h('select', { id: 'utc-offset' }, offsets().map((m) => h('option', { value: String(m) }, utcLabel(m))));
    off.value = String(state.range.offset);
    const form = h('form', { class: 'controls card', id: 'range' },
      h('label', null, 'From', from), h('label', null, 'To', to), h('label', null, 'UTC offset', off),
      h('button', { type: 'submit', id: 'apply', class: 'primary' }, 'Apply'),
      h('span', { class: 'hint' }, 'From and To are local times at the chosen UTC offset; empty means everything.'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      state.range = { from: from.value, to: to.value, offset: Number(off.value) };
      route();
    });
    return form;
  }

  // ---------------------------------------------------------------------------------------------
  // Charts (uPlot)

  // Consecutive hour timestamps from the first to the last of `tss` (hours without data are
  // zeros, not gaps, so areas and lines do not bridge them); plain `tss` if that would be huge.
  function hourAxis(tss) {
    const sorted = [...new Set(tss)].sort((a, b) => a - b);
    if (!sorted.length) return sorted;
    const first = sorted[0];
    const last = sorted[sorted.length - 1];
    if ((last - first) / 3600 > 24 * 400) return sorted;
    const out = [];
    for (let x = first; x <= last; x += 3600) out.push(x);
    return out;
  }

  function chartBox(parent, id, title) {
    const box = h('div', { id, class: 'chart' });
    parent.appendChild(h('section', { class: 'card' }, h('h3', null, title), box));
    return box;
  }

  // A time chart in `box` (already in the page, so it has a width).
  function timeChart(box, xs, series, extra) {
    if (!box.isConnected) return null; // a superseded render: its page is gone
    const off = state.range.offset;
    const opts = Object.assign({
      width: box.clientWidth || 600,
      height: 260,
      tzDate: (ts) => shiftedDate(ts, off),
      scales: { x: { time: true } },
      axes: [{}, {}],
      series: [{ label: 'Hour', value: (u, v) => (v === null || v === undefined ? '--' : tsLabel(v, off)) }]
        .concat(series.map((s, i) => Object.assign({ stroke: COLORS[i % COLORS.length], width: 2, points: { show: xs.length < 60 } }, s.opts, { label: s.label }))),
    }, extra);
    const plot = new uPlot(opts, [xs].concat(series.map((s) => s.data)), box);
    charts.push({ plot, box });
    return plot;
  }

  function resizeCharts() {
    for (const c of charts) {
      const w = c.box.clientWidth;
      if (w && Math.abs(w - c.plot.width) > 1) c.plot.setSize({ width: w, height: c.plot.height });
    }
  }

  let resizeQueued = false;
  window.addEventListener('resize', () => {
    if (resizeQueued) return;
    resizeQueued = true;
    requestAnimationFrame(() => { resizeQueued = false; resizeCharts(); });
  });

  function destroyCharts() {
    for (const c of charts) c.plot.destroy();
    charts = [];
  }

  const rgba = (hex, a) => 'rgba(' + [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(',') + ',' + a + ')';

  // ---------------------------------------------------------------------------------------------
  // Downloads (built here from what is shown: no server round-trip)

  function download(name, type, text) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = h('a', { href: url, download: name, hidden: true });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  function csvCell(v) {
    const s = v === null || v === undefined ? '' : String(v);
    return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  // ---------------------------------------------------------------------------------------------
  // Sessions

  function signedOut(message) {
    state.session = null;
    state.csrf = null;
    showSignIn(message);
  }

  function setHeader() {
    const s = state.session;
    $('tenant').textContent = s ? 'tenant ' + s.tenant : '';
    $('who').textContent = s ? (s.name || s.key_id) + ' (' + (s.role || (s.scopes || []).join(', ')) + ')' : '';
    $('sign-out').hidden = !s;
    const nav = $('nav');
    nav.textContent = '';
    if (!s) return;
    const current = pageName();
    for (const [name, page] of Object.entries(PAGES)) {
      if (page.scope && !has(page.scope)) continue;
      nav.appendChild(h('a', { href: '#/' + name, class: name === current ? 'active' : null }, page.title));
    }
  }

  function showSignIn(message) {
    destroyCharts();
    setHeader();
    const v = view();
    const input = h('input', { type: 'password', id: 'api-key', name: 'api_key', autocomplete: 'off', placeholder: 'veil_…', required: true });
    const err = h('p', { id: 'sign-in-error', class: 'error', role: 'alert' }, message || '');
    const form = h('form', { id: 'sign-in' },
      h('label', { for: 'api-key' }, 'API key'), input,
      h('button', { type: 'submit', class: 'primary' }, 'Sign in'), err);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      err.textContent = '';
      try {
        const s = await api('POST', '/v1/session', { body: { api_key: input.value.trim() }, signIn: true });
        input.value = ''; // the key is not kept anywhere once exchanged for the session
        signedIn(s);
      } catch (e) {
        err.textContent = e.reason || e.message;
      }
    });
    v.replaceChildren(h('section', { class: 'card sign-in-box' },
      h('h2', null, 'Sign in to Veil'),
      h('p', { class: 'muted' }, 'Paste an API key. It is exchanged for a session cookie and not stored by this page.'),
      form));
    v.dataset.ready = '1';
    document.body.dataset.page = 'sign-in';
    input.focus();
  }

  function signedIn(s) {
    state.session = s;
    state.csrf = s.csrf_token;
    if (!PAGES[pageName()]) location.hash = '#/overview'; // hashchange renders it
    else route();
  }

  $('sign-out').addEventListener('click', async () => {
    let message = '';
    try {
      await api('DELETE', '/v1/session', { signIn: true });
    } catch (e) {
      if (e.status !== 401) message = 'Sign-out failed: ' + (e.reason || e.message);
    }
    signedOut(message);
  });

  // ---------------------------------------------------------------------------------------------
  // Routing

  const pageName = () => (location.hash.replace(/^#\/?/, '').split(/[/?]/)[0] || 'overview');

  // Renders the page of the hash. Pages build into a fresh root attached at once (charts need
  // a width); a root detached by a newer render means that render was superseded.
  async function route() {
    if (!state.session) return showSignIn();
    let name = pageName();
    if (!PAGES[name]) name = 'overview';
    const v = view();
    destroyCharts();
    v.removeAttribute('data-ready');
    delete document.body.dataset.page;
    setHeader();
    const root = h('div', { class: 'page page-' + name });
    v.replaceChildren(root);
    try {
      await PAGES[name].render(root);
    } catch (e) {
      if (e.status === 401) return; // the sign-in view is already shown
      if (root.isConnected) root.appendChild(h('p', { class: 'error', role: 'alert' }, e.reason || e.message));
    }
    if (!root.isConnected) return;
    v.dataset.ready = '1';
    document.body.dataset.page = name;
  }

  // Runs an action of a rendered page: the view is not ready meanwhile; a failure shows its
  // reason in `errEl` (401s go back to the sign-in view).
  async function act(errEl, fn) {
    const v = view();
    v.removeAttribute('data-ready');
    errEl.textContent = '';
    errEl.hidden = true;
    try {
      await fn();
    } catch (e) {
      if (e.status === 401) return;
      errEl.textContent = e.reason || e.message;
      errEl.hidden = false;
    }
    if (state.session) v.dataset.ready = '1';
  }

  const errorBox = (id) => h('p', { id: id || null, class: 'error', role: 'alert', hidden: true });

  // ---------------------------------------------------------------------------------------------
  // Overview: streams and open integrity alerts

  async function pageOverview(root) {
    root.appendChild(h('h2', null, 'Streams'));
    const [streams, alerts] = await Promise.all([api('GET', t('/streams')), listAll(t('/integrity'))]);
    const items = streams.items || [];
    const kinds = [...new Set(items.flatMap((s) => Object.keys(s.records || {})))].sort();
    root.appendChild(table('streams',
      ['Site', 'Device', 'Stream', 'Last record', 'Epoch'].concat(kinds, ['Chain seq', 'Signed up to']),
      items.map((s) => [s.site, s.device, s.stream, dash(s.last_capture_time), num(s.chain_epoch)]
        .concat(kinds.map((k) => num((s.records || {})[k] || 0)), [num(s.chain_seq), num(s.signed_upto)])),
      'No streams yet. Run ./scripts/demo.sh, or point a pipeline\'s auditsink at this store.'));

    const open = alerts.filter((a) => !a.acknowledged);
    const errs = errorBox();
    root.appendChild(h('h2', null, 'Integrity alerts ',
      h('span', { id: 'open-alerts', class: 'badge' + (open.length ? '' : ' zero') }, String(open.length)), ' open'));
    root.appendChild(errs);
    const ack = (a) => h('button', {
      type: 'button', class: 'ack', 'data-alert-id': a.id,
      onclick: (ev) => act(errs, async () => {
        ev.target.disabled = true;
        await api('POST', t('/integrity/' + encodeURIComponent(a.id) + '/acknowledge'), { body: {} });
        await route();
      }),
    }, 'Acknowledge');
    const head = ['Time', 'Source', 'Type', 'Where', 'Detail'].concat(has('write') ? ['Action'] : []);
    root.appendChild(table('alerts', head,
      open.map((a) => [a.time, a.source, typeof a.type === 'string' ? a.type : JSON.stringify(a.type), dash(where(a)), json(a.detail)]
        .concat(has('write') ? [ack(a)] : [])),
      'No open integrity alerts.'));
  }

  // ---------------------------------------------------------------------------------------------
  // Audience: roll-ups of metrics windows

  function totalsBox(entries) {
    return h('div', { class: 'totals' }, entries.map(([id, label, value, exact]) =>
      h('div', { class: 'total' }, h('span', { class: 'label' }, label),
        h('span', { class: 'value', id, 'data-value': exact === undefined ? null : String(exact) }, value))));
  }

  async function pageAudience(root) {
    root.appendChild(h('h2', null, 'Audience'));
    root.appendChild(rangeControls());
    const off = state.range.offset;
    const query = Object.assign(rangeQuery(), { utc_offset_minutes: off });
    const [hour, cells, zones, flows, lines] = await Promise.all(['hour', 'weekday-hour', 'zone', 'flow', 'line']
      .map((d) => api('GET', t('/rollups/' + d), { query })));
    const buckets = hour.buckets || [];
    const sum = (f) => buckets.reduce((acc, b) => acc + (b[f] || 0), 0);
    const attention = sum('attention_time_s');
    root.appendChild(totalsBox([
      ['total-ots', 'Opportunities to see', String(sum('opportunities_to_see'))],
      ['total-watchers', 'Watchers', String(sum('watchers'))],
      ['total-windows', 'Metrics windows', String(hour.windows)],
      ['total-attention', 'Attention time (s)', fmt(attention), attention],
    ]));

    // Exports: the hour buckets as shown (CSV with one column per dwell band, or JSON Lines).
    const bands = orderedBands(buckets);
    const name = 'veil-audience-hour' + (state.range.from ? '-from-' + state.range.from : '') + (state.range.to ? '-to-' + state.range.to : '');
    const csv = () => {
      const head = ['hour', 'utc_offset_minutes', 'windows', 'opportunities_to_see', 'watchers', 'attention_time_s', 'dwell_time_s']
        .concat(bands.map((b) => 'dwell_' + b));
      const lines = [head.join(',')].concat(buckets.map((b) => [b.key, off, b.windows, b.opportunities_to_see, b.watchers,
        b.attention_time_s, b.dwell_time_s].concat(bands.map((x) => (b.dwell_bands || {})[x] || 0)).map(csvCell).join(',')));
      download(name.replace(/:/g, '') + '.csv', 'text/csv;charset=utf-8', lines.join('\r\n') + '\r\n');
    };
    const jsonl = () => download(name.replace(/:/g, '') + '.jsonl', 'application/jsonl',
      buckets.map((b) => JSON.stringify(Object.assign({ utc_offset_minutes: off }, b)) + '\n').join(''));
    root.appendChild(h('div', { class: 'actions' },
      h('button', { type: 'button', id: 'export-csv', onclick: csv }, 'Export CSV'),
      h('button', { type: 'button', id: 'export-jsonl', onclick: jsonl }, 'Export JSON Lines')));

    if (!hour.windows) {
      root.appendChild(h('p', { class: 'empty' }, EMPTY.audience));
      return;
    }

    // Hourly series on a continuous hour axis.
    const byTs = new Map(buckets.map((b) => [hourKeyToTs(b.key, off), b]));
    const xs = hourAxis([...byTs.keys()].filter((x) => !Number.isNaN(x)));
    const col = (f) => xs.map((x) => (byTs.get(x) ? byTs.get(x)[f] || 0 : 0));
    timeChart(chartBox(root, 'chart-ots', 'Opportunities to see and watchers per hour'), xs, [
      { label: 'Opportunities to see', data: col('opportunities_to_see') },
      { label: 'Watchers', data: col('watchers') },
    ]);

    // Dwell bands stacked: each series is the running sum up to its band; drawn from the top
    // band down so every smaller area is painted over the larger one; the legend shows the
    // band's own count.
    const raw = bands.map((band) => xs.map((x) => ((byTs.get(x) || {}).dwell_bands || {})[band] || 0));
    const cumulative = raw.map((_, k) => xs.map((_, i) => raw.slice(0, k + 1).reduce((acc, r) => acc + r[i], 0)));
    const stacked = bands.map((band, k) => ({
      label: band, data: cumulative[k],
      opts: { stroke: COLORS[k % COLORS.length], fill: rgba(COLORS[k % COLORS.length], 0.35), width: 1, points: { show: false },
        value: (u, v, si, idx) => (idx === null || idx === undefined ? '--' : String(raw[k][idx])) },
    })).reverse();
    timeChart(chartBox(root, 'chart-dwell', 'Dwell bands per hour (stacked)'), xs, stacked);

    timeChart(chartBox(root, 'chart-attention', 'Attention time per hour (s)'), xs, [
      { label: 'Attention time (s)', data: col('attention_time_s'), opts: { fill: rgba(COLORS[2], 0.15), stroke: COLORS[2] } },
    ]);

    root.appendChild(h('h2', null, 'Week heatmap (opportunities to see)'));
    root.appendChild(heatmap(cells.buckets || []));
    root.appendChild(h('h2', null, 'Zones'));
    root.appendChild(table('zones', ['Zone', 'Windows', 'Visitors', 'Mean occupancy', 'Max occupancy'],
      (zones.buckets || []).map((z) => [z.key, num(z.windows), num(z.visitors), num(fmt(z.occupancy_mean)), num(z.occupancy_max)]),
      'No zones in these windows.'));
    root.appendChild(h('h2', null, 'Zone-to-zone flows'));
    root.appendChild(table('flows', ['From → to', 'Windows', 'Transitions'],
      (flows.buckets || []).map((f) => [f.key.replace('->', ' → '), num(f.windows), num(f.transitions)]),
      'No flows between zones in these windows.'));
    root.appendChild(h('h2', null, 'Line crossings'));
    root.appendChild(table('lines', ['Line', 'Windows', 'Forward', 'Backward'],
      (lines.buckets || []).map((l) => [l.key, num(l.windows), num(l.forward), num(l.backward)]),
      'No counting lines in these windows.'));
  }

  function orderedBands(buckets) {
    const seen = new Set(buckets.flatMap((b) => Object.keys(b.dwell_bands || {})));
    return BANDS.filter((b) => seen.has(b)).concat([...seen].filter((b) => !BANDS.includes(b)).sort());
  }

  // Monday..Sunday × 00..23; a cell's text is its opportunities to see, its colour their share
  // of the busiest cell.
  function heatmap(buckets) {
    const cells = new Map(buckets.map((b) => [b.key, b]));
    const max = Math.max(1, ...buckets.map((b) => b.opportunities_to_see || 0));
    const hours = Array.from({ length: 24 }, (_, i) => String(i).padStart(2, '0'));
    const rows = WEEKDAYS.map((day) => h('tr', null, h('th', { scope: 'row' }, day[0].toUpperCase() + day.slice(1)),
      hours.map((hh) => {
        const b = cells.get(day + '-' + hh);
        const ots = b ? b.opportunities_to_see || 0 : 0;
        const td = h('td', { 'data-key': day + '-' + hh, 'data-windows': b ? String(b.windows) : '0', class: b ? null : 'none',
          title: day + ' ' + hh + ':00, ' + ots + ' opportunities to see, ' + (b ? b.windows : 0) + ' windows' }, String(ots));
        const a = ots ? 0.08 + 0.82 * (ots / max) : 0;
        td.style.backgroundColor = 'rgba(37, 99, 235, ' + a.toFixed(3) + ')';
        if (a > 0.55) td.classList.add('dark');
        return td;
      })));
    return h('div', { class: 'table-wrap' }, h('table', { id: 'heatmap', class: 'heatmap' },
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, ''), hours.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', null, rows)));
  }

  // ---------------------------------------------------------------------------------------------
  // Inspection: OK/NG decisions (inspection records: body.part, decision, reason, time, image)

  function reasonText(r) {
    if (r === null || r === undefined) return '—';
    if (Array.isArray(r)) return r.map(reasonText).join('; ');
    if (typeof r !== 'object') return String(r);
    const conf = typeof r.confidence === 'number' ? ' ' + r.confidence.toFixed(2) : '';
    const min = typeof r.min_confidence === 'number' ? ' (min ' + r.min_confidence + ')' : '';
    return (r.rule ? r.rule + ': ' : '') + (r.label || '') + conf + min;
  }

  // Per-hour counts of records, keyed by the hour of their capture time at `off`.
  function perHour(records, off, fields) {
    const acc = new Map();
    for (const r of records) {
      const ts = parseTime(r.capture_time);
      if (Number.isNaN(ts)) continue;
      const x = hourOf(ts, off);
      const row = acc.get(x) || Object.fromEntries(fields.map((f) => [f, 0]));
      for (const f of fields) row[f] += f === 'all' ? 1 : fieldTest[f](r) ? 1 : 0;
      acc.set(x, row);
    }
    const xs = hourAxis([...acc.keys()]);
    return { xs, col: (f) => xs.map((x) => (acc.get(x) || {})[f] || 0) };
  }
  const fieldTest = {
    ng: (r) => (r.body || {}).decision === 'NG',
    ok: (r) => (r.body || {}).decision === 'OK',
    flagged: (r) => (r.body || {}).status !== 'in_order',
  };

  async function pageInspection(root) {
    root.appendChild(h('h2', null, 'Inspection'));
    root.appendChild(rangeControls());
    const off = state.range.offset;
    const query = rangeQuery();
    const errs = errorBox();
    root.appendChild(errs);
    const [records, images] = await Promise.all([
      listAll(t('/inspections'), query),
      // Images are optional: a failure to list them is shown but does not hide the decisions.
      has('images') ? listAll(t('/images'), query).catch((e) => {
        if (e.status !== 401) { errs.textContent = 'Images: ' + (e.reason || e.message); errs.hidden = false; }
        return [];
      }) : Promise.resolve([]),
    ]);
    if (!records.length) {
      root.appendChild(h('p', { class: 'empty' }, EMPTY.inspection));
      return;
    }
    const ng = records.filter(fieldTest.ng);
    const decided = records.filter((r) => fieldTest.ng(r) || fieldTest.ok(r)).length;
    root.appendChild(totalsBox([
      ['total-parts', 'Parts', String(decided)],
      ['total-ng', 'NG', String(ng.length)],
      ['total-yield', 'Yield', decided ? (100 * (decided - ng.length) / decided).toFixed(2) + ' %' : '—'],
    ]));

    const s = perHour(records, off, ['ok', 'ng']);
    const ok = s.col('ok');
    const bad = s.col('ng');
    const parts = ok.map((v, i) => v + bad[i]);
    timeChart(chartBox(root, 'chart-yield', 'Parts, NG and yield per hour'), s.xs, [
      { label: 'Parts', data: parts },
      { label: 'NG', data: bad },
      { label: 'Yield %', data: parts.map((p, i) => (p ? Math.round(10000 * ok[i] / p) / 100 : null)), opts: { scale: '%' } },
    ], {
      scales: { x: { time: true }, '%': { range: [0, 100] } },
      axes: [{}, { label: 'parts' }, { scale: '%', side: 1, grid: { show: false }, values: (u, vals) => vals.map((v) => v + '%') }],
    });

    // Images by the digest the decision names (else by station and part).
    const bySha = new Map(images.filter((i) => i.sha256).map((i) => [i.sha256, i]));
    const byPart = new Map(images.map((i) => [where(i) + '#' + i.part, i]));
    const imageOf = (r) => {
      const ref = (r.body || {}).image;
      if (!ref) return null;
      return bySha.get(ref.sha256) || byPart.get(where(r) + '#' + r.body.part) || null;
    };
    const viewer = h('div', { id: 'image-view', class: 'image-view' });
    let shownUrl = null;
    const show = (img, r) => act(errs, async () => {
      const blob = await api('GET', t('/images/' + encodeURIComponent(img.id)), { blob: true });
      if (shownUrl) URL.revokeObjectURL(shownUrl);
      shownUrl = URL.createObjectURL(blob);
      viewer.replaceChildren(h('section', { class: 'card' },
        h('h3', null, 'Part ' + r.body.part + ' — ' + where(r) + ' — ' + (r.body.time || r.capture_time)),
        h('img', { src: shownUrl, alt: 'NG part ' + r.body.part + ' of ' + where(r) })));
    });

    const latest = ng.slice().sort((a, b) => parseTime(b.capture_time) - parseTime(a.capture_time));
    const shown = latest.slice(0, 500);
    root.appendChild(h('h2', null, 'NG parts'));
    root.appendChild(table('ng-list', ['Time', 'Site/device/stream', 'Part', 'Reason'].concat(has('images') ? ['Image'] : []),
      shown.map((r) => {
        const img = has('images') ? imageOf(r) : null;
        return [(r.body || {}).time || r.capture_time, where(r), num((r.body || {}).part), reasonText((r.body || {}).reason)]
          .concat(has('images') ? [img ? h('button', { type: 'button', class: 'view-image', 'data-image-id': img.id, onclick: () => show(img, r) }, 'View image') : '—'] : []);
      }),
      'No NG parts in this range.'));
    if (latest.length > shown.length) root.appendChild(h('p', { class: 'muted' }, 'The latest ' + shown.length + ' of ' + latest.length + ' NG parts.'));
    root.appendChild(viewer);
  }

  // ---------------------------------------------------------------------------------------------
  // Compliance: cycles of the expected step sequence (compliance records: body.cycle, status,
  // start, end, cycle_time_s, missing, extra, out_of_order, timed_out)

  async function pageCompliance(root) {
    root.appendChild(h('h2', null, 'Compliance'));
    root.appendChild(rangeControls());
    const off = state.range.offset;
    const records = await listAll(t('/compliance'), rangeQuery());
    if (!records.length) {
      root.appendChild(h('p', { class: 'empty' }, EMPTY.compliance));
      return;
    }
    const flagged = records.filter(fieldTest.flagged);
    root.appendChild(totalsBox([
      ['total-cycles', 'Cycles', String(records.length)],
      ['total-violations', 'Violations', String(flagged.length)],
      ['total-compliance', 'In order', (100 * (records.length - flagged.length) / records.length).toFixed(2) + ' %'],
    ]));
    const s = perHour(records, off, ['all', 'flagged']);
    timeChart(chartBox(root, 'chart-compliance', 'Cycles and violations per hour'), s.xs, [
      { label: 'Cycles', data: s.col('all') },
      { label: 'Violations', data: s.col('flagged'), opts: { stroke: COLORS[1] } },
    ]);
    const latest = flagged.slice().sort((a, b) => parseTime(b.capture_time) - parseTime(a.capture_time)).slice(0, 100);
    const list = (xs) => (xs && xs.length ? xs.join(', ') : '—');
    root.appendChild(h('h2', null, 'Latest flagged cycles'));
    root.appendChild(table('flagged',
      ['End', 'Site/device/stream', 'Cycle', 'Status', 'Cycle time (s)', 'Missing', 'Extra', 'Out of order', 'Timed out'],
      latest.map((r) => {
        const b = r.body || {};
        return [b.end || r.capture_time, where(r), num(b.cycle), b.status, num(fmt(b.cycle_time_s)), list(b.missing), list(b.extra),
          list((b.out_of_order || []).map((o) => o.before + ' ↔ ' + o.after)), b.timed_out ? 'yes' : 'no'];
      }),
      'No flagged cycles in this range.'));
  }

  // ---------------------------------------------------------------------------------------------
  // Keys (admin)

  function stationsText(s) {
    if (!s) return 'all';
    const parts = ['sites', 'devices', 'streams'].filter((k) => s[k] && s[k].length).map((k) => k + ': ' + s[k].join(', '));
    return parts.length ? parts.join('; ') : 'all';
  }

  async function pageKeys(root) {
    root.appendChild(h('h2', null, 'API keys'));
    if (!has('admin')) {
      root.appendChild(h('p', { class: 'notice' }, 'This key cannot manage keys.'));
      return;
    }
    const errs = errorBox('keys-error');
    const token = h('code', { id: 'new-token' });
    const tokenFor = h('span');
    const tokenBox = h('section', { class: 'card token-box', hidden: true },
      h('h3', null, 'New token for ', tokenFor), token,
      h('p', { class: 'note' }, 'Copy it now: it will not be shown again (the service keeps only its hash).'));
    // The token is shown once: kept only in this element, which the next render discards.
    const showToken = (answer) => {
      tokenFor.textContent = answer.key.name || answer.key.id;
      token.textContent = answer.token;
      tokenBox.hidden = false;
    };
    const holder = h('div');
    const load = async () => {
      const { items } = await api('GET', t('/keys'));
      holder.replaceChildren(keysTable(items || []));
    };
    const keysTable = (items) => table('keys',
      ['Name', 'Id', 'Role', 'Scopes', 'Stations', 'Created', 'Expires', 'Revoked', 'Rotated', 'Actions'],
      items.map((k) => {
        const own = k.id === state.session.key_id;
        const off = Boolean(k.revoked) || own;
        return [k.name, h('td', { class: 'mono' }, k.id), dash(k.role), (k.scopes || []).join(' '), stationsText(k.stations),
          k.created, dash(k.expires), dash(k.revoked), dash(k.rotated),
          h('td', null,
            h('button', { type: 'button', class: 'rotate', 'data-key-id': k.id, disabled: off, title: own ? 'This console\'s own key' : null,
              onclick: () => act(errs, async () => {
                showToken(await api('POST', t('/keys/' + encodeURIComponent(k.id) + '/rotate'), { body: {} }));
                await load();
              }) }, 'Rotate'),
            h('button', { type: 'button', class: 'revoke danger', 'data-key-id': k.id, disabled: off,
              onclick: () => {
                if (!confirm('Revoke the key "' + k.name + '" (' + k.id + ')? Whatever uses it stops working at once.')) return;
                act(errs, async () => {
                  await api('DELETE', t('/keys/' + encodeURIComponent(k.id)));
                  await load();
                });
              } }, 'Revoke'))];
      }), 'No keys.');

    const name = h('input', { id: 'key-name', type: 'text', maxlength: '100', required: true });
    const role = h('select', { id: 'key-role' }, ['operator', 'engineer', 'admin'].map((r) => h('option', { value: r }, r)));
    const site = h('input', { id: 'key-site', type: 'text', placeholder: 'site-a, site-b' });
    const form = h('form', { id: 'create-key', class: 'inline-form card' },
      h('label', null, 'Name', name), h('label', null, 'Role', role),
      h('label', null, 'Sites (optional, comma-separated)', site),
      h('button', { type: 'submit', class: 'primary' }, 'Create key'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      act(errs, async () => {
        const body = { name: name.value.trim(), role: role.value || 'operator' };
        const sites = site.value.split(',').map((x) => x.trim()).filter(Boolean);
        if (sites.length) body.stations = { sites: [...new Set(sites)] };
        showToken(await api('POST', t('/keys'), { body }));
        form.reset();
        await load();
      });
    });
    root.append(errs, tokenBox, holder, h('h2', null, 'Create a key'), form);
    await load();
  }

  // ---------------------------------------------------------------------------------------------
  // Webhooks: subscriptions and a chosen one's delivery log

  async function pageWebhooks(root) {
    root.appendChild(h('h2', null, 'Webhooks'));
    if (!has('webhooks')) {
      root.appendChild(h('p', { class: 'notice' }, 'This key cannot manage webhooks.'));
      return;
    }
    const errs = errorBox();
    const log = h('div');
    const { items } = await api('GET', t('/webhooks'));
    const hooks = items || [];
    const showLog = async (w) => {
      const answer = await api('GET', t('/webhooks/' + encodeURIComponent(w.id) + '/deliveries'), { query: { limit: 100 } });
      log.replaceChildren(h('h2', null, 'Deliveries of ', h('span', { class: 'mono' }, w.url)),
        table('deliveries', ['Time', 'Event', 'Attempt', 'Status', 'Outcome', 'Error'],
          (answer.items || []).map((d) => [d.time, d.event, num(d.attempt), num(dash(d.status)),
            h('td', { class: 'status-' + d.outcome }, d.outcome), dash(d.error)]),
          'No deliveries yet.'));
    };
    root.append(errs, table('webhooks', ['Id', 'URL', 'Events', 'Description', 'Stations', 'Created', ''],
      hooks.map((w) => [h('td', { class: 'mono' }, w.id), w.url, (w.events || []).join(', '), dash(w.description), stationsText(w.stations), w.created,
        h('button', { type: 'button', class: 'show-deliveries', 'data-webhook-id': w.id, onclick: () => act(errs, () => showLog(w)) }, 'Delivery log')]),
      'No webhook subscriptions.'), log);
    if (hooks.length) await showLog(hooks[0]);
  }

  // ---------------------------------------------------------------------------------------------
  // Audit log (admin), oldest first, a page at a time

  async function pageAudit(root) {
    root.appendChild(h('h2', null, 'Audit log'));
    if (!has('admin')) {
      root.appendChild(h('p', { class: 'notice' }, 'This key cannot read the audit log.'));
      return;
    }
    const errs = errorBox();
    const wrap = table('audit', ['Seq', 'Time', 'Actor', 'Action', 'Outcome', 'Source IP', 'Detail'], []);
    const body = wrap.querySelector('tbody');
    let cursor = null;
    const more = h('button', { type: 'button', id: 'audit-more' }, 'More');
    const load = async () => {
      const page = await api('GET', t('/audit'), { query: { limit: 100, cursor } });
      append(body, (page.items || []).map((e) => h('tr', null,
        num(e.seq), h('td', null, e.time), h('td', null, e.actor), h('td', null, e.action),
        h('td', { class: 'status-' + e.outcome }, e.outcome), h('td', null, dash(e.source_ip)), h('td', null, json(e.detail)))));
      cursor = page.next_cursor || null;
      more.hidden = !cursor;
    };
    more.addEventListener('click', () => act(errs, load));
    root.append(errs, wrap, h('div', { class: 'actions' }, more));
    await load();
  }

  // ---------------------------------------------------------------------------------------------
  // Pages (nav order) and start

  const PAGES = {
    overview: { title: 'Overview', scope: 'read', render: pageOverview },
    audience: { title: 'Audience', scope: 'analytics', render: pageAudience },
    inspection: { title: 'Inspection', scope: 'read', render: pageInspection },
    compliance: { title: 'Compliance', scope: 'read', render: pageCompliance },
    keys: { title: 'Keys', scope: 'admin', render: pageKeys },
    webhooks: { title: 'Webhooks', scope: 'webhooks', render: pageWebhooks },
    audit: { title: 'Audit', scope: 'admin', render: pageAudit },
  };

  window.addEventListener('hashchange', () => route());

  async function start() {
    try {
      const s = await api('GET', '/v1/session', { signIn: true });
      state.session = s;
      state.csrf = s.csrf_token;
      route();
    } catch (e) {
      showSignIn(e.status === 401 ? '' : e.reason || e.message);
    }
  }

  start();
})();
