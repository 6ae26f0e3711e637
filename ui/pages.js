// The pages beside the chat: which one shows (the URL's #hash: #dashboard, #chat, #devices,
// #approvals, #settings, #setup), the Dashboard (health checks and figures, uptime, response times from /metrics,
// the pause), Devices (paired nodes; pair by a code either way; remove; a screenshot) and
// Approvals (DM pairing codes chat senders were given: approve or reject; approved senders:
// remove). Everything goes through the gateway's control API with its token (./api.js).
import { api, ApiError, metricTotals } from './api.js';
import { refreshSettings } from './settings.js';
import { refreshSetup } from './setup.js';

const $ = (id) => document.getElementById(id);
const VIEWS = ['dashboard', 'chat', 'devices', 'approvals', 'settings', 'setup'];
let timer = null;

function show() {
  const wanted = location.hash.slice(1);
  const view = VIEWS.includes(wanted) ? wanted : 'chat';
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  for (const a of document.querySelectorAll('header nav a')) {
    if (a.dataset.view === view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  clearInterval(timer);
  timer = null;
  if (view === 'dashboard') { refreshDashboard(); timer = setInterval(refreshDashboard, 5000); }
  if (view === 'devices') { refreshDevices(); timer = setInterval(refreshDevices, 5000); }
  if (view === 'approvals') { refreshApprovals(); timer = setInterval(refreshApprovals, 5000); }
  if (view === 'settings') refreshSettings();
  if (view === 'setup') refreshSetup();
  const heading = document.querySelector(`#view-${view} h2`);
  if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
}

function uptime(seconds) {
  const s = Math.floor(seconds);
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return `up ${d ? d + 'd ' : ''}${h ? h + 'h ' : ''}${m}m ${s % 60}s`;
}

function cell(row, text) {
  const td = document.createElement('td');
  td.textContent = text;
  row.append(td);
  return td;
}

/** A cell holding a state badge (healthy, paused, online…). */
function badgeCell(row, text, state, title = '') {
  const span = document.createElement('span');
  span.className = 'badge';
  span.dataset.state = state;
  span.textContent = text;
  if (title) span.title = title;
  cell(row, '').append(span);
}

const METRICS = [
  ['memory_usage_mb', 'Memory (MB)'], ['active_sessions', 'Active sessions'],
  ['queued_messages', 'Answering now'], ['connected_channels', 'Connected channels'],
  ['registered_tools', 'Tools'], ['messages_processed_24h', 'Messages (24 h)'],
  ['tool_calls_24h', 'Tool calls (24 h)'], ['avg_response_time_ms', 'Average response (ms)'],
  ['error_rate_24h', 'Error rate (24 h)'],
];

// Average response time per poll, from the histogram's sum and count deltas.
const samples = [];
let last = null;

async function refreshDashboard() {
  const error = $('dashboard-error');
  try {
    // All three asked at once; the health part is drawn as soon as it is in (the first thing
    // a person looks for), the rest when theirs are.
    const asked = [api('GET', '/health'), api('GET', '/api/pause'), metricTotals()];
    for (const p of asked) p.catch(() => {}); // each is awaited below; none goes unhandled meanwhile
    const health = await asked[0];
    error.hidden = true;
    const badge = $('health-status');
    badge.textContent = health.status;
    badge.dataset.state = health.status;
    $('uptime').textContent = uptime(health.uptime_seconds);
    const body = $('checks').tBodies[0];
    body.replaceChildren();
    for (const [name, check] of Object.entries(health.checks)) {
      const row = body.insertRow();
      cell(row, name);
      badgeCell(row, check.status, check.status);
      cell(row, check.detail);
    }
    const dl = $('metrics');
    dl.replaceChildren();
    for (const [key, label] of METRICS) {
      const dt = document.createElement('dt');
      dt.textContent = label;
      const dd = document.createElement('dd');
      dd.textContent = String(health.metrics[key]);
      dd.dataset.metric = key;
      dl.append(dt, dd);
    }
    const [pause, totals] = await Promise.all(asked.slice(1));
    const toggle = $('pause-toggle');
    toggle.setAttribute('aria-pressed', String(pause.paused));
    toggle.textContent = pause.paused ? 'Resume assistant' : 'Pause assistant';
    const sum = totals.get('openclaw_response_time_seconds_sum') ?? 0;
    const count = totals.get('openclaw_response_time_seconds_count') ?? 0;
    if (last && count > last.count) samples.push((sum - last.sum) / (count - last.count) * 1000);
    last = { sum, count };
    drawSparkline();
  } catch (e) {
    error.textContent = e instanceof ApiError ? `${e.code}: ${e.message}` : String(e);
    error.hidden = false;
  }
}

function drawSparkline() {
  const points = samples.slice(-60);
  const text = $('spark-text');
  if (!points.length) { text.textContent = 'no answers since this page opened'; return; }
  const max = Math.max(...points, 1);
  const step = points.length > 1 ? 300 / (points.length - 1) : 0;
  $('sparkline').querySelector('polyline').setAttribute('points',
    points.map((v, i) => `${(i * step).toFixed(1)},${(58 - (v / max) * 56).toFixed(1)}`).join(' '));
  text.textContent = `latest ${points.at(-1).toFixed(0)} ms, highest ${max.toFixed(0)} ms (${points.length} samples, 5 s apart)`;
}

async function togglePause() {
  const toggle = $('pause-toggle');
  const paused = toggle.getAttribute('aria-pressed') !== 'true';
  try { await api('POST', '/api/pause', { paused }); } catch (e) { $('dashboard-error').textContent = e.message; $('dashboard-error').hidden = false; }
  refreshDashboard();
}

function say(text, isError = false) {
  const p = $('devices-message');
  p.textContent = text;
  p.className = isError ? 'error-text' : '';
}

async function refreshDevices() {
  let nodes;
  try { ({ nodes } = await api('GET', '/api/nodes')); } catch (e) { say(e.message, true); return; }
  const body = $('nodes').tBodies[0];
  body.replaceChildren();
  $('no-nodes').hidden = nodes.length > 0;
  for (const node of nodes) {
    const row = body.insertRow();
    row.dataset.node = node.name;
    cell(row, node.name);
    const online = node.connected ? 'online' : 'offline';
    badgeCell(row, online, online, node.detail);
    cell(row, String(node.priority));
    cell(row, node.capabilities.join(', '));
    const actions = cell(row, '');
    if (node.capabilities.includes('screen.snapshot')) {
      const shot = document.createElement('button');
      shot.type = 'button';
      shot.textContent = 'Screenshot';
      shot.setAttribute('aria-label', `Take a screenshot on ${node.name}`);
      shot.addEventListener('click', () => screenshot(node.name));
      actions.append(shot);
    }
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = 'Remove';
    remove.setAttribute('aria-label', `Remove ${node.name}`);
    remove.addEventListener('click', () => removeNode(node.name));
    actions.append(' ', remove);
  }
}

async function screenshot(name) {
  say(`taking a screenshot on ${name}…`);
  try {
    const { node, payload } = await api('POST', '/api/nodes/invoke', { command: 'screen.snapshot', params: {}, node: name });
    const img = $('screenshot-img');
    img.src = `data:image/${payload.format};base64,${payload.data}`;
    img.alt = `Screenshot of ${node}`;
    $('screenshot-caption').textContent = `${node}, ${payload.width ?? '?'}×${payload.height ?? '?'}`;
    $('screenshot').hidden = false;
    say(`screenshot from ${node}`);
  } catch (e) { say(e.message, true); }
}

async function removeNode(name) {
  if (!confirm(`Remove ${name}? It must be paired again to be used.`)) return;
  try { await api('DELETE', `/api/nodes/${encodeURIComponent(name)}`); say(`${name} removed`); } catch (e) { say(e.message, true); }
  refreshDevices();
}

let countdown = null;
async function showCode() {
  try {
    const shown = await api('POST', '/api/nodes/pairing-code', {});
    const until = Date.now() + shown.valid_seconds * 1000;
    const out = $('pair-code');
    clearInterval(countdown);
    const tick = () => {
      const left = Math.max(0, Math.round((until - Date.now()) / 1000));
      out.textContent = left ? `${shown.code.slice(0, 3)} ${shown.code.slice(3)} (${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')} left)` : 'expired';
      out.dataset.code = left ? shown.code : '';
      if (!left) clearInterval(countdown);
    };
    tick();
    countdown = setInterval(tick, 1000);
    say(`type it on the device: openclaw-node pair --gateway ${location.host} --code ${shown.code}`);
  } catch (e) { say(e.message, true); }
}

async function pairByCode(ev) {
  ev.preventDefault();
  const address = $('pair-address').value.trim();
  const code = $('pair-code-input').value.replace(/\s/g, '');
  const name = $('pair-name').value.trim();
  say(`pairing with ${address}…`);
  try {
    const body = { address, code };
    if (name) body.name = name;
    const paired = await api('POST', '/api/nodes/pair', body);
    say(`paired with ${paired.name ?? name ?? address}`);
    $('pair-form').reset();
  } catch (e) { say(e.message, true); }
  refreshDevices();
}

function sayApprovals(text, isError = false) {
  const p = $('approvals-message');
  p.textContent = text;
  p.className = isError ? 'error-text' : '';
}

/** How a sender is named to the owner: the platform's name with its id, or the id. */
function senderLabel(s) {
  return s.name ? `${s.name} (${s.sender})` : s.sender;
}

function button(text, label, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  b.setAttribute('aria-label', label);
  b.addEventListener('click', onClick);
  return b;
}

async function refreshApprovals() {
  let list;
  try { list = await api('GET', '/api/approvals'); } catch (e) { sayApprovals(e.message, true); return; }
  const pending = $('pending').tBodies[0];
  pending.replaceChildren();
  $('no-pending').hidden = list.pending.length > 0;
  for (const p of list.pending) {
    const row = pending.insertRow();
    row.dataset.channel = p.channel;
    row.dataset.code = p.code;
    cell(row, p.channel);
    cell(row, senderLabel(p));
    cell(row, p.code).className = 'code';
    const left = p.expires_in_seconds;
    cell(row, `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`);
    const actions = cell(row, '');
    actions.append(
      button('Approve', `Approve ${senderLabel(p)} on ${p.channel}`, () => decide('approve', p)),
      ' ',
      button('Reject', `Reject ${senderLabel(p)} on ${p.channel}`, () => decide('reject', p)),
    );
  }
  const approved = $('approved').tBodies[0];
  approved.replaceChildren();
  $('no-approved').hidden = list.approved.length > 0;
  for (const a of list.approved) {
    const row = approved.insertRow();
    row.dataset.channel = a.channel;
    row.dataset.sender = a.sender;
    cell(row, a.channel);
    cell(row, senderLabel(a));
    cell(row, new Date(a.approved_at * 1000).toLocaleString());
    cell(row, '').append(button('Remove', `Remove ${senderLabel(a)} on ${a.channel}`, () => revoke(a)));
  }
}

async function decide(how, p) {
  try {
    await api('POST', `/api/approvals/${how}`, { channel: p.channel, code: p.code });
    sayApprovals(how === 'approve' ? `${senderLabel(p)} may talk to the assistant on ${p.channel} now` : `${senderLabel(p)} was turned down`);
  } catch (e) { sayApprovals(e.message, true); }
  refreshApprovals();
}

async function revoke(a) {
  if (!confirm(`Remove ${senderLabel(a)}? They must be approved again to talk to the assistant.`)) return;
  try {
    await api('POST', '/api/approvals/revoke', { channel: a.channel, sender: a.sender });
    sayApprovals(`${senderLabel(a)} removed`);
  } catch (e) { sayApprovals(e.message, true); }
  refreshApprovals();
}

$('pause-toggle').addEventListener('click', togglePause);
$('show-code').addEventListener('click', showCode);
$('pair-form').addEventListener('submit', pairByCode);
addEventListener('hashchange', show);
show();
