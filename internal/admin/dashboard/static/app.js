// Portico dashboard: polls the admin API of the listener that served this
// page and renders traffic, routes, upstream health, recent errors and the
// config revision. Plain JavaScript, no dependencies.
//
// Sources, each optional except /metrics:
//   GET /metrics         Prometheus text: request counters, latency histogram,
//                        per-target availability (always used)
//   GET /routes          route list (preferred over route names from metrics)
//   GET /upstreams       upstreams and their targets' live state (preferred
//                        over portico_upstream_target_up)
//   GET /version         version, uptime, revision
//   GET /config/history  config revisions
// An endpoint answering 404, 405 or 501 is treated as absent and asked again
// every 30 s. A 401 shows the token field; the token is kept in
// sessionStorage and sent as "Authorization: Bearer <token>".
(function () {
  'use strict';

  var POLL_MS = 2000;
  var RING = 150;           // samples kept: 5 min at 2 s
  var WINDOW = 15;          // samples in the headline window: 30 s
  var REPROBE_MS = 30000;   // how often an absent endpoint is asked again
  var SLOW_MS = 10000;      // how often /version and /config/history are asked
  var MAX_EVENTS = 60;
  var TOKEN_KEY = 'portico.adminToken';

  // The dashboard lives at <base>dashboard/, the admin API at <base>.
  var base = location.pathname.replace(/dashboard(\/.*)?$/, '');
  if (base.charAt(base.length - 1) !== '/') base += '/';

  var $ = function (id) { return document.getElementById(id); };

  // ---- state ----------------------------------------------------------

  var ring = [];            // metric summaries, oldest first
  var series = { rate: [], err: [], p50: [], p99: [] };
  var events = [];
  var endpoints = {};       // path -> {absent: bool, next: ms, data: any}
  var needToken = false;
  var lastVersion = null;   // {body, at}
  var lastTick = 0;

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }

  // ---- fetching -------------------------------------------------------

  function api(path, accept) {
    var headers = { Accept: accept };
    var t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    return fetch(base + path.replace(/^\//, ''), { headers: headers, cache: 'no-store', credentials: 'same-origin' })
      .then(function (resp) {
        if (resp.status === 401) needToken = true;
        if (!resp.ok) return { status: resp.status, body: null };
        return (accept === 'application/json' ? resp.json() : resp.text()).then(
          function (body) { return { status: resp.status, body: body }; },
          function () { return { status: 0, body: null }; });
      }, function () { return { status: 0, body: null }; });
  }

  // optional fetches an optional JSON endpoint: absent endpoints are only
  // asked again every REPROBE_MS, slow ones every `every` ms. It resolves to
  // the last good body, or null when the endpoint is absent.
  function optional(path, every, now) {
    var ep = endpoints[path] || (endpoints[path] = { absent: false, next: 0, data: null });
    if (now < ep.next) return Promise.resolve(ep.absent ? null : ep.data);
    return api(path, 'application/json').then(function (r) {
      if (r.status === 404 || r.status === 405 || r.status === 501) {
        ep.absent = true; ep.data = null; ep.next = now + REPROBE_MS;
      } else if (r.status === 200 && r.body !== null) {
        ep.absent = false; ep.data = r.body; ep.next = now + (every || 0);
      } else if (r.status === 401) {
        ep.data = null;
      }
      return ep.absent ? null : ep.data;
    });
  }

  // ---- Prometheus text format ---------------------------------------

  function parseValue(s) {
    if (s === '+Inf' || s === 'Inf') return Infinity;
    if (s === '-Inf') return -Infinity;
    return parseFloat(s);
  }

  // parseProm returns [{name, labels, value}] for the sample lines of a
  // Prometheus text exposition.
  function parseProm(text) {
    var out = [];
    var lines = text.split('\n');
    for (var n = 0; n < lines.length; n++) {
      var line = lines[n];
      if (!line || line.charAt(0) === '#') continue;
      var brace = line.indexOf('{');
      var sp = line.indexOf(' ');
      var name, labels = {}, rest;
      if (brace >= 0 && (sp < 0 || brace < sp)) {
        name = line.slice(0, brace);
        var j = brace + 1;
        while (j < line.length && line.charAt(j) !== '}') {
          while (line.charAt(j) === ',' || line.charAt(j) === ' ') j++;
          if (line.charAt(j) === '}') break;
          var eq = line.indexOf('=', j);
          if (eq < 0) break;
          var key = line.slice(j, eq).trim();
          j = eq + 1;
          if (line.charAt(j) !== '"') break;
          j++;
          var v = '';
          while (j < line.length && line.charAt(j) !== '"') {
            var c = line.charAt(j);
            if (c === '\\') { j++; c = line.charAt(j); v += c === 'n' ? '\n' : c; } else v += c;
            j++;
          }
          j++;
          labels[key] = v;
        }
        rest = line.slice(j + 1);
      } else {
        if (sp < 0) continue;
        name = line.slice(0, sp);
        rest = line.slice(sp + 1);
      }
      out.push({ name: name, labels: labels, value: parseValue(rest.trim().split(/\s+/)[0]) });
    }
    return out;
  }

  function newCounts() { return { total: 0, '1xx': 0, '2xx': 0, '3xx': 0, '4xx': 0, '5xx': 0, buckets: {}, upstream: '' }; }

  // summarize folds the samples we use into one snapshot.
  function summarize(samples, at) {
    var s = newCounts();
    s.at = at; s.routes = {}; s.targets = {}; s.inflight = null; s.reloads = {}; s.configHash = '';
    function route(name) { return s.routes[name] || (s.routes[name] = newCounts()); }
    function target(up, t) {
      var u = s.targets[up] || (s.targets[up] = {});
      return u[t] || (u[t] = { up: null, inflight: 0, ejections: 0 });
    }
    samples.forEach(function (m) {
      var l = m.labels, v = m.value;
      switch (m.name) {
        case 'portico_requests_total':
          var r = route(l.route || '');
          r.total += v; s.total += v;
          if (l.status in r) { r[l.status] += v; s[l.status] += v; }
          if (l.upstream && !r.upstream) r.upstream = l.upstream;
          break;
        case 'portico_request_duration_seconds_bucket':
          var rb = route(l.route || '').buckets;
          rb[l.le] = (rb[l.le] || 0) + v;
          s.buckets[l.le] = (s.buckets[l.le] || 0) + v;
          break;
        case 'portico_request_duration_seconds_count':
          route(l.route || '');
          break;
        case 'portico_upstream_target_up':
          target(l.upstream, l.target).up = v;
          break;
        case 'portico_upstream_target_requests_in_flight':
          target(l.upstream, l.target).inflight = v;
          break;
        case 'portico_upstream_target_ejections_total':
          target(l.upstream, l.target).ejections = v;
          break;
        case 'portico_requests_in_flight':
          s.inflight = v;
          break;
        case 'portico_config_reloads_total':
          s.reloads[l.result] = v;
          break;
        case 'portico_config_info':
          if (v === 1) s.configHash = l.hash;
          break;
      }
    });
    return s;
  }

  // ---- arithmetic over counters -----------------------------------------

  // delta of a counter between two snapshots; a counter that went down was
  // reset (process restart) and counts from zero.
  function delta(cur, prev) {
    if (prev === undefined || prev === null || cur < prev) return cur || 0;
    return cur - prev;
  }

  // quantile estimates the q-quantile of the observations made between two
  // cumulative histograms (le -> count), as histogram_quantile does:
  // linear interpolation inside the bucket holding the rank.
  function quantile(q, cur, prev) {
    var les = Object.keys(cur).map(function (k) { return [k, parseValue(k)]; })
      .sort(function (a, b) { return a[1] - b[1]; });
    if (!les.length) return null;
    var reset = prev && (cur['+Inf'] || 0) < (prev['+Inf'] || 0);
    var counts = les.map(function (e) {
      return Math.max(0, (cur[e[0]] || 0) - (prev && !reset ? prev[e[0]] || 0 : 0));
    });
    var total = counts[counts.length - 1];
    if (!total) return null;
    var rank = q * total;
    var i = 0;
    while (i < counts.length - 1 && counts[i] < rank) i++;
    if (les[i][1] === Infinity) return i > 0 ? les[i - 1][1] : null;
    var lo = i === 0 ? 0 : les[i - 1][1];
    var clo = i === 0 ? 0 : counts[i - 1];
    var span = counts[i] - clo;
    return span > 0 ? lo + (les[i][1] - lo) * (rank - clo) / span : les[i][1];
  }

  // stats are rate, 5xx share, 4xx share and p50/p99 between two snapshots
  // of one set of counters (the whole gateway or a route).
  function stats(cur, prev, seconds) {
    var n = delta(cur.total, prev && prev.total);
    var out = { count: n, rate: seconds > 0 ? n / seconds : null, err: null, warn: null, p50: null, p99: null };
    if (n > 0) {
      out.err = delta(cur['5xx'], prev && prev['5xx']) / n;
      out.warn = delta(cur['4xx'], prev && prev['4xx']) / n;
    }
    out.p50 = quantile(0.5, cur.buckets, prev && prev.buckets);
    out.p99 = quantile(0.99, cur.buckets, prev && prev.buckets);
    return out;
  }

  // ---- formatting -------------------------------------------------------

  function fmtRate(v) {
    if (v === null || v === undefined || isNaN(v)) return '—';
    if (v === 0) return '0';
    if (v < 10) return v.toFixed(2);
    if (v < 100) return v.toFixed(1);
    return Math.round(v).toString();
  }
  function fmtPct(v) {
    if (v === null || v === undefined || isNaN(v)) return '—';
    if (v === 0) return '0%';
    var p = v * 100;
    return (p < 1 ? p.toFixed(2) : p < 10 ? p.toFixed(1) : p.toFixed(0)) + '%';
  }
  function fmtDur(s) {
    if (s === null || s === undefined || isNaN(s)) return '—';
    if (s < 0.001) return (s * 1e6).toFixed(0) + ' µs';
    if (s < 1) {
      var ms = s * 1000;
      return (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : ms.toFixed(0)) + ' ms';
    }
    return s.toFixed(2) + ' s';
  }
  function fmtCount(n) {
    return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }
  function fmtUptime(sec) {
    sec = Math.max(0, Math.floor(sec));
    var d = Math.floor(sec / 86400), h = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60), s = sec % 60;
    if (d) return d + 'd ' + h + 'h';
    if (h) return h + 'h ' + m + 'm';
    if (m) return m + 'm ' + s + 's';
    return s + 's';
  }
  function fmtClock(ms) {
    var d = new Date(ms);
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map(function (x) { return (x < 10 ? '0' : '') + x; }).join(':');
  }
  function shortRev(v) {
    v = String(v);
    return /^[0-9a-f]{16,}$/i.test(v) ? v.slice(0, 12) : v;
  }

  // ---- DOM helpers --------------------------------------------------------

  // el builds an element: el('td', {class: 'num'}, 'text', childNode…).
  function el(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) Object.keys(attrs).forEach(function (k) {
      if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    });
    for (var i = 2; i < arguments.length; i++) {
      var c = arguments[i];
      if (c === null || c === undefined) continue;
      e.appendChild(typeof c === 'object' ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  function setText(id, text) { var e = $(id); if (e.textContent !== text) e.textContent = text; }
  function replaceChildren(parent, nodes) {
    while (parent.firstChild) parent.removeChild(parent.firstChild);
    nodes.forEach(function (n) { parent.appendChild(n); });
  }
  function emptyRow(cols, text) { return el('tr', { class: 'empty' }, el('td', { colspan: cols }, text)); }

  // sparkline draws values (null = gap) into an SVG with a 300x48 viewBox;
  // the newest value is at the right edge. Until the ring fills, the x axis
  // spans at least MIN_SPAN samples, so a young page still shows a line.
  var MIN_SPAN = 30;
  function sparkline(svg, values) {
    var max = 0;
    values.forEach(function (v) { if (v !== null && v > max) max = v; });
    var w = 300, h = 48, pad = 3;
    var step = w / Math.max(values.length - 1, MIN_SPAN);
    var x0 = w - (values.length - 1) * step;
    var line = '', area = '', dots = [], seg = [];
    function flush() {
      if (seg.length === 1) dots.push(seg[0]);
      if (seg.length > 1) {
        var pts = seg.map(function (p) { return p[0].toFixed(1) + ',' + p[1].toFixed(1); });
        line += 'M' + pts.join('L');
        area += 'M' + seg[0][0].toFixed(1) + ',' + h + 'L' + pts.join('L') + 'L' + seg[seg.length - 1][0].toFixed(1) + ',' + h + 'Z';
      }
      seg = [];
    }
    values.forEach(function (v, i) {
      if (v === null || isNaN(v)) { flush(); return; }
      seg.push([x0 + i * step, h - pad - (max > 0 ? (v / max) * (h - 2 * pad) : 0)]);
    });
    flush();
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    var ns = svg.namespaceURI;
    function add(tag, attrs) {
      var e = document.createElementNS(ns, tag);
      Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
      svg.appendChild(e);
    }
    add('path', { class: 'base', d: 'M0,' + (h - 0.5) + 'L' + w + ',' + (h - 0.5) });
    if (area) add('path', { class: 'area', d: area });
    if (line) add('path', { class: 'line', d: line });
    dots.forEach(function (p) { add('path', { class: 'line', d: 'M' + p[0].toFixed(1) + ',' + p[1].toFixed(1) + 'h0.01' }); });
  }

  // ---- JSON shapes ----------------------------------------------------------

  // asList accepts [..], {key: [..]}, {key: {name: {..}}} or {name: {..}}.
  function asList(body, key) {
    if (!body) return null;
    if (Array.isArray(body)) return body;
    if (typeof body !== 'object') return null;
    var inner = body[key];
    if (Array.isArray(inner)) return inner;
    var obj = inner && typeof inner === 'object' ? inner : body;
    var out = [];
    Object.keys(obj).forEach(function (name) {
      var v = obj[name];
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        var item = { name: name };
        Object.keys(v).forEach(function (k) { item[k] = v[k]; });
        out.push(item);
      }
    });
    return out;
  }

  var MATCH_LABELS = { methods: '', hosts: 'host', path: '', path_prefix: 'prefix', path_regex: 'regex', headers: 'header', query: 'query' };

  // describeMatch renders a route's match conditions compactly, e.g.
  // "GET POST · host api.example.org · prefix /v1"; empty conditions are left out.
  function describeMatch(m) {
    if (!m) return '';
    if (typeof m === 'string') return m;
    var keys = Object.keys(MATCH_LABELS).filter(function (k) { return k in m; })
      .concat(Object.keys(m).filter(function (k) { return !(k in MATCH_LABELS); }));
    return keys.map(function (k) {
      var v = m[k];
      if (v === null || v === undefined || v === '' || v === false || v === 0) return '';
      if (Array.isArray(v)) {
        if (!v.length) return '';
        v = v.join(k === 'methods' ? ' ' : ', ');
      } else if (typeof v === 'object') {
        var pairs = Object.keys(v).map(function (name) { return name + '=' + v[name]; });
        if (!pairs.length) return '';
        v = pairs.join(', ');
      }
      var label = k in MATCH_LABELS ? MATCH_LABELS[k] : k.replace(/_/g, ' ');
      return (label ? label + ' ' : '') + v;
    }).filter(Boolean).join(' · ');
  }

  // hostOf reduces a target URL to its host:port, the form the metrics use.
  function hostOf(u) {
    var m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]+)/i.exec(String(u));
    return m ? m[1] : String(u);
  }

  function first() {
    for (var i = 0; i < arguments.length; i++) if (arguments[i] !== undefined && arguments[i] !== null) return arguments[i];
    return undefined;
  }

  // ---- rendering ------------------------------------------------------------

  function renderOverview() {
    var cur = ring[ring.length - 1];
    var prev = ring.length > 1 ? ring[Math.max(0, ring.length - 1 - WINDOW)] : null;
    var st = prev ? stats(cur, prev, (cur.at - prev.at) / 1000) : null;
    setText('v-rate', st ? fmtRate(st.rate) : '—');
    setText('v-err', st ? fmtPct(st.err) : '—');
    setText('v-p50', st ? fmtDur(st.p50) : '—');
    setText('v-p99', st ? fmtDur(st.p99) : '—');
    $('tile-err').classList.toggle('alert', !!(st && st.err > 0.01));
    setText('sub-rate', fmtCount(cur.total) + ' requests since start');
    setText('sub-err', st && st.count ? '4xx ' + fmtPct(st.warn) + ' · ' + fmtCount(st.count) + ' requests in 30 s' : 'no requests in the last 30 s');
    var peak = function (xs) { return xs.reduce(function (m, v) { return v !== null && v > m ? v : m; }, 0); };
    setText('sub-p50', 'peak ' + fmtDur(peak(series.p50) || null) + ' in 5 min');
    setText('sub-p99', 'peak ' + fmtDur(peak(series.p99) || null) + ' in 5 min');
    sparkline($('s-rate'), series.rate);
    sparkline($('s-err'), series.err);
    sparkline($('s-p50'), series.p50);
    sparkline($('s-p99'), series.p99);
  }

  function renderRoutes(json) {
    var cur = ring[ring.length - 1];
    var prev = ring.length > 1 ? ring[Math.max(0, ring.length - 1 - WINDOW)] : null;
    var secs = prev ? (cur.at - prev.at) / 1000 : 0;
    var list = asList(json, 'routes');
    var rows;
    if (list) {
      rows = list.map(function (r) {
        var up = r.upstream;
        if (up && typeof up === 'object') up = up.name;
        if (!up) up = r.redirect ? 'redirect' : (r.direct_response || r.respond || r.response) ? 'direct response' : '';
        return { name: String(first(r.name, r.id, '')), match: describeMatch(first(r.match, r.matcher, r.paths)), upstream: up || '' };
      });
      setText('routes-src', 'from /routes');
    } else {
      rows = Object.keys(cur.routes).filter(function (n) { return n !== ''; }).sort().map(function (n) {
        return { name: n, match: '', upstream: cur.routes[n].upstream };
      });
      setText('routes-src', 'from metrics');
    }
    setText('routes-count', String(rows.length));
    var body = $('routes-body');
    if (!rows.length) { replaceChildren(body, [emptyRow(6, 'No routes.')]); return; }
    replaceChildren(body, rows.map(function (r) {
      var m = cur.routes[r.name];
      var st = m && prev ? stats(m, prev.routes[r.name], secs) : null;
      var errCell = el('td', { class: 'num' + (st && st.err > 0 ? ' bad-text' : '') }, st ? fmtPct(st.err) : '—');
      return el('tr', { 'data-route': r.name },
        el('td', { class: 'name' }, r.name),
        el('td', { class: 'match' }, r.match || '—'),
        el('td', null, r.upstream || '—'),
        el('td', { class: 'num' }, st ? fmtRate(st.rate) : '—'),
        errCell,
        el('td', { class: 'num' }, st ? fmtDur(st.p99) : '—'));
    }));
  }

  // targetState maps a target from /upstreams to [health, label, badge class].
  function targetState(t) {
    if (t.ejected) return ['down', 'ejected', 'warn'];
    if (t.healthy === false) return ['down', 'unhealthy', 'bad'];
    if (t.available === false) return ['down', 'unavailable', 'bad'];
    return ['up', 'healthy', 'ok'];
  }

  function renderUpstreams(json) {
    var cur = ring[ring.length - 1];
    var list = asList(json, 'upstreams');
    var ups;
    if (list) {
      ups = list.map(function (u) {
        var targets = asList(u.targets, 'targets') || [];
        return {
          name: String(first(u.name, '')), balancer: u.balancer || '',
          targets: targets.map(function (t) {
            if (typeof t === 'string') t = { url: t };
            var host = hostOf(first(t.url, t.address, t.target, t.name, ''));
            var m = (cur.targets[u.name] || {})[host] || {};
            var s = targetState(t);
            return {
              url: String(first(t.url, t.address, t.target, host)), host: host, weight: t.weight || (t.weight === 0 ? 1 : ''),
              inflight: first(t.in_flight, t.inflight, m.inflight, 0), ejections: first(t.ejections_total, t.ejections, m.ejections),
              health: s[0], label: s[1], badge: s[2]
            };
          })
        };
      });
      setText('upstreams-src', 'from /upstreams');
    } else {
      ups = Object.keys(cur.targets).sort().map(function (name) {
        var ts = cur.targets[name];
        return {
          name: name, balancer: '',
          targets: Object.keys(ts).sort().map(function (host) {
            var t = ts[host], up = t.up === 1;
            return {
              url: host, host: host, weight: '', inflight: t.inflight, ejections: t.ejections,
              health: up ? 'up' : 'down', label: up ? 'up' : 'down', badge: up ? 'ok' : 'bad'
            };
          })
        };
      });
      setText('upstreams-src', 'from metrics');
    }
    setText('upstreams-count', String(ups.length));
    var body = $('upstreams-body');
    if (!ups.length) { replaceChildren(body, [el('p', { class: 'empty' }, 'No upstreams.')]); return; }
    replaceChildren(body, ups.map(function (u) {
      var upN = u.targets.filter(function (t) { return t.health === 'up'; }).length;
      var cls = upN === u.targets.length ? 'ok' : upN === 0 ? 'bad' : 'warn';
      var head = el('div', { class: 'up-head' },
        el('span', { class: 'name' }, u.name),
        u.balancer ? el('span', { class: 'muted' }, u.balancer) : null,
        el('span', { class: 'pill ' + cls }, upN + '/' + u.targets.length + ' up'));
      var rows = u.targets.map(function (t) {
        return el('tr', { class: 'target', 'data-upstream': u.name, 'data-target': t.host, 'data-health': t.health },
          el('td', null, el('span', { class: 'badge ' + t.badge, title: t.label }, t.label)),
          el('td', { class: 'mono' }, t.url),
          el('td', { class: 'num' }, t.weight === '' ? '—' : String(t.weight)),
          el('td', { class: 'num' }, fmtCount(t.inflight || 0)),
          el('td', { class: 'num' }, t.ejections === undefined ? '—' : fmtCount(t.ejections)));
      });
      var table = el('table', { class: 'targets' },
        el('thead', null, el('tr', null, el('th', null, 'State'), el('th', null, 'Target'),
          el('th', { class: 'num' }, 'Weight'), el('th', { class: 'num' }, 'In flight'), el('th', { class: 'num' }, 'Ejections'))),
        el('tbody', null));
      rows.forEach(function (r) { table.tBodies[0].appendChild(r); });
      if (!rows.length) table.tBodies[0].appendChild(emptyRow(5, 'No targets.'));
      return el('div', { class: 'upstream', 'data-upstream': u.name }, head, table);
    }));
  }

  // recordEvents notes 5xx and 4xx counter increases per route and targets
  // going down or coming back between two snapshots. Errors of one route and
  // class in consecutive polls are one event whose count and time span grow.
  function recordEvents(cur, prev) {
    var changed = false;
    function note(key, route, kind, count, text) {
      changed = true;
      var e = null;
      for (var i = 0; i < events.length; i++) {
        if (events[i].key === key) { e = events[i]; break; }
      }
      if (e && e.last === prev.at && count) {
        events.splice(i, 1);
        e.count += count; e.last = cur.at;
      } else {
        e = { key: key, route: route, kind: kind, count: count, first: cur.at, last: cur.at, text: text };
      }
      events.unshift(e);
    }
    Object.keys(cur.routes).sort().forEach(function (name) {
      var c = cur.routes[name], p = prev.routes[name];
      var d5 = delta(c['5xx'], p && p['5xx']), d4 = delta(c['4xx'], p && p['4xx']);
      var label = name === '' ? '(no route)' : name;
      if (d5 > 0) note('5xx|' + name, label, 'bad', d5, '5xx' + (c.upstream ? ' via ' + c.upstream : ''));
      if (d4 > 0) note('4xx|' + name, label, 'warn', d4, '4xx');
    });
    Object.keys(cur.targets).forEach(function (u) {
      Object.keys(cur.targets[u]).forEach(function (t) {
        var was = prev.targets[u] && prev.targets[u][t];
        var now = cur.targets[u][t].up;
        if (was && was.up === 1 && now === 0) note('target|' + u + '|' + t + '|' + cur.at, u, 'bad', 0, 'target ' + t + ' down');
        if (was && was.up === 0 && now === 1) note('target|' + u + '|' + t + '|' + cur.at, u, 'ok', 0, 'target ' + t + ' back up');
      });
    });
    if (!changed) return;
    events = events.slice(0, MAX_EVENTS);
    replaceChildren($('errors-body'), events.map(function (e) {
      var when = fmtClock(e.first) + (e.last !== e.first ? '–' + fmtClock(e.last) : '');
      return el('tr', { class: 'event', 'data-kind': e.kind },
        el('td', { class: 'mono' }, when),
        el('td', null, e.route),
        el('td', null, el('span', { class: 'dot ' + e.kind }), (e.count ? fmtCount(e.count) + ' × ' : '') + e.text));
    }));
  }

  function renderConfig(history) {
    var cur = ring[ring.length - 1];
    var v = lastVersion && lastVersion.body;
    var rev = v && (v.revision !== undefined && v.revision !== null && v.revision !== '') ? v.revision : cur.configHash;
    setText('cfg-rev', rev !== undefined && rev !== '' ? shortRev(rev) : '—');
    $('cfg-rev').title = rev ? String(rev) : '';
    var ok = cur.reloads.success, bad = cur.reloads.failure;
    setText('cfg-reloads', ok === undefined && bad === undefined ? '—' : fmtCount(ok || 0) + ' applied · ' + fmtCount(bad || 0) + ' failed');
    setText('cfg-inflight', cur.inflight === null ? '—' : fmtCount(cur.inflight) + (cur.inflight === 1 ? ' request' : ' requests'));
    setText('cfg-source', v && v.config_source ? String(v.config_source) : '—');
    var started = v && v.started_at ? new Date(v.started_at) : null;
    setText('cfg-started', started && !isNaN(started) ? started.toLocaleString() + (v.go_version ? ' · ' + v.go_version : '') : '—');
    $('cfg-reloads').classList.toggle('bad-text', (bad || 0) > 0);

    var list = asList(history, 'history') || asList(history, 'revisions');
    $('history').hidden = !list;
    if (!list) return;
    list = list.slice(-10).reverse();
    replaceChildren($('history-body'), list.length ? list.map(function (h) {
      if (typeof h !== 'object') h = { revision: h };
      var id = first(h.revision, h.id, h.version, h.hash, '');
      var when = first(h.applied_at, h.time, h.at, h.timestamp, h.created_at, '');
      if (typeof when === 'number') when = new Date(when > 1e12 ? when : when * 1000).toLocaleString();
      var detail = [h.source, h.author, h.comment, h.message, h.result].filter(Boolean).join(' · ');
      return el('tr', null, el('td', { class: 'mono' }, shortRev(id)), el('td', null, String(when)), el('td', null, detail));
    }) : [emptyRow(3, 'No revisions.')]);
  }

  function renderVersion() {
    var v = lastVersion && lastVersion.body;
    if (!v) { setText('version', ''); setText('uptime', ''); return; }
    var ver = first(v.version, '');
    setText('version', ver ? String(ver) : '');
    var up = v.uptime;
    if (typeof up === 'number') setText('uptime', 'up ' + fmtUptime(up + (Date.now() - lastVersion.at) / 1000));
    else if (typeof v.uptime_seconds === 'number') setText('uptime', 'up ' + fmtUptime(v.uptime_seconds + (Date.now() - lastVersion.at) / 1000));
    else setText('uptime', up ? 'up ' + up : '');
  }

  function setStatus(state, text) {
    var s = $('status');
    s.setAttribute('data-state', state);
    setText('status', text);
  }

  // ---- polling ------------------------------------------------------------

  function tick() {
    var now = Date.now();
    lastTick = now;
    needToken = false;
    var metrics = api('/metrics', 'text/plain');
    var routes = optional('/routes', 0, now);
    var upstreams = optional('/upstreams', 0, now);
    var version = optional('/version', SLOW_MS, now);
    var history = optional('/config/history', SLOW_MS, now);
    return Promise.all([metrics, routes, upstreams, version, history]).then(function (r) {
      $('auth').hidden = !needToken;
      $('logout').hidden = needToken || !token();
      if (r[3]) {
        if (!lastVersion || lastVersion.body !== r[3]) lastVersion = { body: r[3], at: now };
      } else {
        lastVersion = null;
      }
      renderVersion();
      var m = r[0];
      if (m.status !== 200) {
        if (needToken) setStatus('auth', 'token required');
        else setStatus('down', m.status ? 'admin API: HTTP ' + m.status : 'admin API unreachable');
        if (!ring.length) return;
      } else if (ring.length && now <= ring[ring.length - 1].at) {
        // An overlapping poll (a token was just entered) already recorded a
        // newer sample; keep the ring in time order.
        return;
      } else {
        var cur = summarize(parseProm(m.body), now);
        var prev = ring[ring.length - 1];
        ring.push(cur);
        if (ring.length > RING) ring.shift();
        if (prev) {
          var st = stats(cur, prev, (cur.at - prev.at) / 1000);
          push(series.rate, st.rate);
          push(series.err, st.err);
          push(series.p50, st.p50);
          push(series.p99, st.p99);
          recordEvents(cur, prev);
        }
        setStatus('live', 'live · ' + fmtClock(now));
      }
      renderOverview();
      renderRoutes(r[1]);
      renderUpstreams(r[2]);
      renderConfig(r[4]);
    }).catch(function (e) {
      setStatus('down', 'dashboard error: ' + (e && e.message ? e.message : e));
    });
  }

  function push(xs, v) {
    xs.push(v === undefined || (typeof v === 'number' && isNaN(v)) ? null : v);
    if (xs.length > RING) xs.shift();
  }

  function loop() {
    tick().then(function () {
      setTimeout(loop, Math.max(0, POLL_MS - (Date.now() - lastTick)));
    });
  }

  function init() {
    var form = $('auth');
    $('token').value = token();
    form.hidden = true;
    $('logout').hidden = !token();
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      try { sessionStorage.setItem(TOKEN_KEY, $('token').value.trim()); } catch (err) { /* storage off */ }
      Object.keys(endpoints).forEach(function (k) { endpoints[k].next = 0; });
      tick();
    });
    function forget() {
      try { sessionStorage.removeItem(TOKEN_KEY); } catch (err) { /* storage off */ }
      $('token').value = '';
      Object.keys(endpoints).forEach(function (k) { endpoints[k].next = 0; });
      tick();
    }
    $('token-clear').addEventListener('click', forget);
    $('logout').addEventListener('click', forget);
    loop();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
