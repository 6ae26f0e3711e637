// The first run's setup (#setup): the built-in local model (downloaded first, with a
// progress bar, when it is not here yet) or an API key (kept in the OS
// keyring by the gateway; config refers to it), then pairing a phone. A key changes config, so
// the app restarts its gateway: the page waits for it to answer again.
import { api } from './api.js';
import { fetchModel } from './model_fetch.js';

const $ = (id) => document.getElementById(id);

function say(text, isError = false) {
  const p = $('setup-message');
  p.textContent = text;
  p.className = isError ? 'error-text' : '';
}

async function waitForGateway() {
  // The old gateway drains, the new one starts: /health answers again within seconds.
  await new Promise((r) => setTimeout(r, 500));
  for (let i = 0; i < 60; i++) {
    try {
      const r = await fetch('/health', { cache: 'no-store' });
      if (r.ok || r.status === 503) return true;
    } catch { /* restarting */ }
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

function toPhoneStep(text) {
  $('setup-choose').hidden = true;
  $('setup-phone').hidden = false;
  say(text);
  $('setup-phone-title').tabIndex = -1;
  $('setup-phone-title').focus();
}

async function chose(body) {
  try {
    const done = await api('POST', '/api/setup', body);
    if (done.restart) {
      say('Saved. Restarting the assistant…');
      if (!(await waitForGateway())) { say('The assistant did not come back: see the tray menu.', true); return; }
    }
    toPhoneStep(done.provider === 'local'
      ? 'The built-in model answers you now.'
      : `Your ${done.provider} key is saved in the keyring; the assistant uses it now.`);
  } catch (e) { say(e.message, true); }
}

let localPresent = false;

export async function refreshSetup() {
  try {
    const s = await api('GET', '/api/setup');
    localPresent = s.local_model.present;
    $('setup-local-note').textContent = localPresent
      ? 'ready: it runs offline on this computer'
      : `about 93 MB to download once (it goes in ${s.local_model.models_dir}); then it runs offline`;
    // A download started earlier (the window was closed meanwhile): follow it.
    const f = await api('GET', '/api/models/fetch');
    if (!localPresent && ['looking', 'downloading', 'unpacking'].includes(f.fetch.state)) useLocal(false);
  } catch (e) { say(e.message, true); }
}

async function useLocal(start = true) {
  const button = $('setup-local');
  if (!localPresent) {
    button.disabled = true;
    try {
      const done = await fetchModel($('setup-progress'), $('setup-progress-text'), { start });
      if (done.fetch.state !== 'done') { button.textContent = 'Try the download again'; return; }
      localPresent = true;
    } catch (e) { say(e.message, true); return; } finally { button.disabled = false; }
  }
  // Chosen: the gateway restarts when its agent was built without the model (`chose` waits).
  chose({ choice: 'local' });
}

$('setup-local').addEventListener('click', () => useLocal());
$('setup-key-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  chose({ choice: $('setup-provider').value, api_key: $('setup-key').value });
  $('setup-key').value = '';
});
$('setup-code').addEventListener('click', async () => {
  try {
    const c = await api('POST', '/api/nodes/pairing-code', {});
    $('setup-code-output').textContent = `${c.code.slice(0, 3)} ${c.code.slice(3)}`;
  } catch (e) { say(e.message, true); }
});
