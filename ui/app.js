// WebChat: one conversation per browser (its session key lives in localStorage), replies
// streamed as `chat.delta` events and settled by `chat.final`.
import { GatewayClient, GatewayError } from './client.js';

const $ = (id) => document.getElementById(id);
const log = $('log');
const input = $('input');
const sendButton = $('send');
const status = $('status');

function sessionKey() {
  let key = localStorage.getItem('openclaw.session');
  if (!key) {
    key = 'web-' + crypto.getRandomValues(new Uint32Array(2)).join('');
    localStorage.setItem('openclaw.session', key);
  }
  return key;
}

function setStatus(text, state) {
  status.textContent = text;
  status.dataset.state = state;
}

function bubble(kind, text = '') {
  const div = document.createElement('div');
  div.className = `msg ${kind}`;
  div.textContent = text;
  log.append(div);
  log.scrollTop = log.scrollHeight;
  return div;
}

const runs = new Map(); // runId -> assistant bubble

function wire(client) {
  client.on('chat.delta', ({ runId, delta }) => {
    const el = runs.get(runId);
    if (el) { el.textContent += delta; log.scrollTop = log.scrollHeight; }
  });
  client.on('chat.reset', ({ runId }) => {
    const el = runs.get(runId);
    if (el) el.textContent = '';
  });
  client.on('chat.tool', ({ runId, tool, ok, images = [] }) => {
    const el = runs.get(runId);
    if (!el) return;
    el.title = `${el.title ? el.title + ', ' : 'tools: '}${tool}${ok ? '' : ' (failed)'}`;
    // Pictures a tool returned (a device's screenshot) show above the reply.
    if (images.length) {
      const fig = document.createElement('div');
      fig.className = 'msg images';
      for (const { mediaType, data } of images) {
        const img = document.createElement('img');
        img.src = `data:${mediaType};base64,${data}`;
        img.alt = `${tool} result`;
        fig.append(img);
      }
      log.insertBefore(fig, el);
      log.scrollTop = log.scrollHeight;
    }
  });
  // A message the assistant (or its owner) started for this conversation.
  client.on('chat.message', ({ session, text }) => {
    if (session === sessionKey()) bubble('assistant pushed', text);
  });
  client.on('chat.final', ({ runId, text, kind }) => {
    const el = runs.get(runId);
    if (!el) return;
    el.textContent = text;
    el.classList.remove('streaming');
    el.dataset.kind = kind;
    el.dataset.done = 'true';
    if (kind !== 'answer') el.classList.add('notice');
    runs.delete(runId);
  });
  client.on('chat.error', ({ runId, message }) => {
    const el = runs.get(runId);
    if (!el) return;
    el.textContent = message;
    el.className = 'msg error';
    el.dataset.done = 'true';
    runs.delete(runId);
  });
  client.on('close', (ev) => {
    setStatus(`disconnected${ev.reason ? ': ' + ev.reason : ''}`, 'error');
    input.disabled = sendButton.disabled = true;
    if (current === client) current = null;
    // The gateway restarts (the app's setup, a server's restart): connect again, backing off.
    retryDelay = Math.min(retryDelay * 2, 10000);
    setTimeout(start, retryDelay);
  });
}

let retryDelay = 250;
let needsToken = false;
// The connection the composer sends on (replaced when it connects again).
let current = null;

async function start() {
  if (needsToken) return;
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  // The gateway puts its generated token in the page it serves over loopback; a configured
  // token is entered once and kept in this browser.
  const pageToken = document.querySelector('meta[name="openclaw-token"]')?.content;
  const client = new GatewayClient(url, { token: pageToken || localStorage.getItem('openclaw.token') });
  wire(client);
  try {
    const hello = await client.connect();
    retryDelay = 250;
    setStatus(`connected · openclaw ${hello.server.version}`, 'ready');
  } catch (e) {
    if (e instanceof GatewayError && e.code === 'UNAUTHORIZED') {
      const dialog = $('token-dialog');
      dialog.showModal();
      $('token-form').addEventListener('submit', () => {
        localStorage.setItem('openclaw.token', $('token-input').value);
        location.reload();
      }, { once: true });
      needsToken = true;
      setStatus('needs the gateway token', 'error');
    } else {
      setStatus(`cannot connect: ${e.message}`, 'error');
    }
    return;
  }
  current = client;
  input.disabled = sendButton.disabled = false;
  if (!$('view-chat').hidden) input.focus();
}

/** Sends what is typed on the current connection. */
const send = async () => {
  const client = current;
  if (!client) return;
  const text = input.value.trim();
  if (!text) return;
  input.value = '';
  bubble('user', text);
  const reply = bubble('assistant streaming');
  try {
    const { runId } = await client.request('chat.send', { text, session: sessionKey() });
    runs.set(runId, reply);
  } catch (e) {
    reply.className = 'msg error';
    reply.textContent = e.message;
    reply.dataset.done = 'true';
  }
};

$('composer').addEventListener('submit', (ev) => { ev.preventDefault(); send(); });
input.addEventListener('keydown', (ev) => {
  if (ev.key === 'Enter' && !ev.shiftKey) { ev.preventDefault(); send(); }
});

start();
