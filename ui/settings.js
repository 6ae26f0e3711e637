// The Settings page: API keys and channel tokens (kept by the gateway in the OS keyring, never in
// a file: the page only learns whether each is set), and what config.yaml says of the providers,
// the local model, the channels, rate limits and backups.
import { api } from './api.js';
import { fetchModel } from './model_fetch.js';

const $ = (id) => document.getElementById(id);

function say(text, isError = false) {
  const p = $('settings-message');
  p.textContent = text;
  p.className = isError ? 'error-text' : '';
}

function row(table, cells) {
  const tr = table.tBodies[0].insertRow();
  for (const c of cells) {
    const td = tr.insertCell();
    if (c instanceof Node) td.append(c); else td.textContent = c;
  }
  return tr;
}

function code(text) {
  const c = document.createElement('code');
  c.textContent = text;
  return c;
}

/** One secret's field: a password input with Save, and Remove when one is set. */
function secretForm(item) {
  const form = document.createElement('form');
  form.className = 'secret';
  form.autocomplete = 'off';
  form.dataset.secret = item.name;
  const id = `secret-${item.name}`;
  const label = document.createElement('label');
  label.htmlFor = id;
  label.textContent = item.label;
  const input = document.createElement('input');
  input.id = id;
  input.type = 'password';
  input.autocomplete = 'off';
  input.spellcheck = false;
  input.required = true;
  input.placeholder = item.present ? 'set (type to replace)' : 'not set';
  const state = document.createElement('span');
  state.className = 'badge';
  state.dataset.state = item.present ? 'healthy' : 'unknown';
  state.textContent = item.present === null ? 'unknown' : item.present ? 'set' : 'not set';
  const save = document.createElement('button');
  save.type = 'submit';
  save.textContent = 'Save';
  save.setAttribute('aria-label', `Save ${item.label}`);
  form.append(label, ' ', input, ' ', save, ' ', state);
  if (item.present) {
    const remove = document.createElement('button');
    remove.type = 'button';
    remove.textContent = 'Remove';
    remove.setAttribute('aria-label', `Remove ${item.label}`);
    remove.addEventListener('click', async () => {
      if (!confirm(`Remove ${item.label} from the keyring?`)) return;
      try {
        await api('DELETE', `/api/secrets/${encodeURIComponent(item.name)}`);
        say(`${item.label} removed`);
      } catch (e) { say(e.message, true); }
      refreshSettings();
    });
    form.append(' ', remove);
  }
  const hint = document.createElement('p');
  hint.className = 'muted';
  hint.append('In config.yaml: ', code(`${item.used_by}: "${item.reference}"`));
  form.append(hint);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const saved = await api('PUT', `/api/secrets/${encodeURIComponent(item.name)}`, { value: input.value });
      input.value = '';
      say(`${item.label} saved in ${saved.store}`);
    } catch (e) { say(e.message, true); }
    refreshSettings();
  });
  return form;
}

export async function refreshSettings() {
  let s;
  try { s = await api('GET', '/api/settings'); } catch (e) { say(e.message, true); return; }
  const where = $('secrets-store');
  where.textContent = s.secrets.store
    ? `Kept in ${s.secrets.store}, never in a file.`
    : 'This gateway keeps no secrets: use environment variables (${VAR}) in config.yaml.';
  if (s.secrets.error) where.textContent += ` The keyring cannot be read now: ${s.secrets.error}`;
  // Leave the fields alone while one holds something typed and not saved yet.
  const typing = [...$('secrets').querySelectorAll('input')].some((i) => i.value !== '');
  if (!typing) {
    const focused = document.activeElement?.id;
    $('secrets').replaceChildren(...s.secrets.items.map(secretForm));
    if (focused?.startsWith('secret-')) $(focused)?.focus();
  }

  const providers = $('providers');
  providers.tBodies[0].replaceChildren();
  $('no-providers').hidden = s.providers.length > 0;
  for (const p of s.providers) {
    const what = p.kind === 'local' ? (p.model_path ?? 'the default model') : (p.model ?? 'its default model');
    row(providers, [p.name, p.kind, what, p.base_url ?? '', p.kind === 'local' ? 'not needed' : p.key_configured ? 'configured' : 'missing']);
  }
  await refreshLocalModel();
  const channels = $('channels');
  channels.tBodies[0].replaceChildren();
  for (const c of s.channels) row(channels, [c.name, c.enabled ? 'on' : 'off']);
  const r = s.rate_limiting;
  $('rate-limits').textContent = r.enabled
    ? `${r.messages_per_minute} messages and ${r.tool_calls_per_minute} tool calls per sender per minute`
    : 'off';
  const b = s.backup;
  $('backups').textContent = b.enabled
    ? `on, ${b.schedule}, keeping ${b.max_backups}${b.path ? ` in ${b.path}` : ''}`
    : 'off (backup.enabled in config.yaml)';
}

let following = false;

async function followFetch(start) {
  if (following) return;
  following = true;
  $('local-model-fetch').disabled = true;
  try {
    const done = await fetchModel($('local-model-progress'), $('local-model-progress-text'), { start });
    if (done.fetch.state === 'done' && done.restart) {
      // No provider is configured: choosing the model restarts the assistant with it.
      const chosen = await api('POST', '/api/setup', { choice: 'local' });
      if (chosen.restart) $('local-model-progress-text').textContent += ' The assistant restarts to use it.';
    }
  } catch (e) { say(e.message, true); } finally {
    following = false;
    $('local-model-fetch').disabled = false;
    refreshLocalModel();
  }
}

async function refreshLocalModel() {
  let f;
  try { f = await api('GET', '/api/models/fetch'); } catch (e) { say(e.message, true); return; }
  const m = f.model;
  $('local-model').textContent = m.present
    ? `${m.title}: in ${m.path}`
    : `${m.title} is not downloaded (about 93 MB; it goes in ${m.path}).`;
  $('local-model-fetch').hidden = m.present;
  if (['looking', 'downloading', 'unpacking'].includes(f.fetch.state)) followFetch(false);
}

$('local-model-fetch').addEventListener('click', () => followFetch(true));
