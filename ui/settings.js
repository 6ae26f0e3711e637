// The Settings page: API keys and channel tokens (kept by the gateway in the OS keyring, never in
// a file: the page only learns whether each is set), the local model, and the providers,
// channels, rate limits and backups, changed in config.yaml by the gateway (PATCH /api/settings,
// which keeps the file's comments and refuses a change that would not load).
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

// The last GET /api/settings: its config.revision goes with every change, so a file changed by
// hand meanwhile is not overwritten.
let current = null;
// Forms with something typed and not saved yet: a refresh leaves them alone.
const dirty = new Set();

const CHANNEL_NAMES = { telegram: 'Telegram', slack: 'Slack', discord: 'Discord', whatsapp: 'WhatsApp', webchat: 'WebChat' };
const KIND_NAMES = { anthropic: 'Anthropic', openai: 'OpenAI-compatible', local: 'Local model' };

function configState(c) {
  const el = $('config-state');
  el.className = c.error ? 'error-text' : 'muted';
  if (!c.editable) {
    el.textContent = 'This gateway has no config file, so these are its defaults: start it with --config FILE to change them here.';
  } else if (c.error) {
    el.textContent = `The config file cannot be read, so this shows what the assistant runs with: ${c.error}`;
  } else if (c.pending_restart) {
    el.textContent = c.restarts_itself
      ? `Saved in ${c.file}; the assistant restarts with it.`
      : `Saved in ${c.file}. It applies when the gateway restarts (for example: systemctl restart openclaw).`;
  } else {
    el.textContent = `Saved in ${c.file}, keeping its comments. Keys and tokens stay in the keyring.`;
  }
  for (const form of document.querySelectorAll('#view-settings .settings-form')) {
    for (const control of form.elements) control.disabled = !c.editable;
  }
}

/** Sends one change with the revision the page read; says what became of it. */
async function save(form, change, what) {
  try {
    const done = await api('PATCH', '/api/settings', { revision: current.config.revision, ...change });
    dirty.delete(form);
    if (!done.changed) say(`${what}: nothing to change`);
    else if (done.restarts_itself) say(`${what} saved; the assistant restarts with it…`);
    else say(`${what} saved in ${done.config_file}. Restart the gateway to apply it.`);
    if (done.changed && done.restarts_itself) await untilRestarted(what);
  } catch (e) {
    say(e.message, true);
    // A file changed by hand meanwhile: show what it says now.
    if (e.status === 409) dirty.delete(form);
  }
  await refreshSettings();
}

// The app restarts its gateway with the new config: wait until it answers with it.
async function untilRestarted(what) {
  const until = Date.now() + 30000;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 300));
    try {
      const s = await api('GET', '/api/settings');
      if (!s.config.pending_restart) { say(`${what} saved; the assistant runs with it.`); return; }
    } catch { /* restarting */ }
  }
  say(`${what} saved, but the assistant has not restarted with it yet.`, true);
}

function providerRow(p) {
  const providers = $('providers');
  const what = p.kind === 'local' ? (p.model_path ?? 'the built-in model') : (p.model ?? 'its default model');
  const key = p.kind === 'local' ? 'not needed' : p.key_configured ? 'configured' : 'missing';
  const tr = row(providers, [p.name, KIND_NAMES[p.kind] ?? p.kind, what, p.base_url ?? '', key, '']);
  const actions = tr.cells[5];
  const edit = document.createElement('button');
  edit.type = 'button';
  edit.textContent = 'Edit';
  edit.setAttribute('aria-label', `Edit provider ${p.name}`);
  edit.addEventListener('click', () => editProvider(p));
  const remove = document.createElement('button');
  remove.type = 'button';
  remove.textContent = 'Remove';
  remove.setAttribute('aria-label', `Remove provider ${p.name}`);
  remove.addEventListener('click', () => {
    if (!confirm(`Remove the provider ${p.name} from config? Its key stays in the keyring.`)) return;
    save($('provider-form'), { remove_provider: p.name }, `Provider ${p.name} removed`);
  });
  actions.append(edit, remove);
}

function showKindFields() {
  const kind = $('provider-kind').value;
  for (const label of $('provider-form').querySelectorAll('label[data-kinds]')) {
    label.hidden = !label.dataset.kinds.split(' ').includes(kind);
  }
}

function resetProviderForm() {
  const form = $('provider-form');
  form.reset();
  form.dataset.editing = '';
  $('provider-name').readOnly = false;
  $('provider-form-title').textContent = 'Add a provider';
  $('provider-save').textContent = 'Add provider';
  $('provider-cancel').hidden = true;
  dirty.delete(form);
  showKindFields();
}

function editProvider(p) {
  const form = $('provider-form');
  form.dataset.editing = p.name;
  $('provider-kind').value = p.kind;
  $('provider-name').value = p.name;
  $('provider-name').readOnly = true;
  $('provider-model').value = p.model ?? '';
  $('provider-base-url').value = p.base_url ?? '';
  $('provider-max-tokens').value = p.max_tokens ?? '';
  $('provider-model-path').value = p.model_path ?? '';
  $('provider-key').value = '';
  $('provider-key').placeholder = p.key_configured ? 'configured (type to replace)' : 'kept in the keyring';
  $('provider-form-title').textContent = `Change provider ${p.name}`;
  $('provider-save').textContent = 'Save provider';
  $('provider-cancel').hidden = false;
  showKindFields();
  $('provider-kind').focus();
}

function fillChannels(channels) {
  $('channels').replaceChildren(...channels.map((c) => {
    const label = document.createElement('label');
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.name = c.name;
    box.checked = c.enabled;
    label.append(box, ` ${CHANNEL_NAMES[c.name] ?? c.name}`);
    return label;
  }));
}

export async function refreshSettings() {
  let s;
  try { s = await api('GET', '/api/settings'); } catch (e) { say(e.message, true); return; }
  current = s;
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
  for (const p of s.providers) providerRow(p);
  if (!dirty.has($('provider-form'))) resetProviderForm();
  await refreshLocalModel();
  if (!dirty.has($('channels-form'))) fillChannels(s.channels);
  const r = s.rate_limiting;
  if (!dirty.has($('rate-form'))) {
    $('rate-enabled').checked = r.enabled;
    $('rate-messages').value = r.messages_per_minute;
    $('rate-tools').value = r.tool_calls_per_minute;
  }
  const b = s.backup;
  if (!dirty.has($('backup-form'))) {
    $('backup-enabled').checked = b.enabled;
    $('backup-schedule').value = b.schedule;
    $('backup-keep').value = b.max_backups;
    $('backup-path').value = b.path ?? '';
  }
  configState(s.config);
}

for (const id of ['provider-form', 'channels-form', 'rate-form', 'backup-form']) {
  $(id).addEventListener('input', () => dirty.add($(id)));
}
$('provider-kind').addEventListener('change', () => {
  if (!$('provider-form').dataset.editing) $('provider-name').value = $('provider-kind').value;
  showKindFields();
});
$('provider-cancel').addEventListener('click', resetProviderForm);
$('provider-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = $('provider-name').value.trim();
  const max = $('provider-max-tokens').value;
  const provider = {
    name,
    kind: $('provider-kind').value,
    model: $('provider-model').value,
    base_url: $('provider-base-url').value,
    model_path: $('provider-model-path').value,
    max_tokens: max === '' ? null : Number(max),
    api_key: $('provider-key').value,
  };
  if (provider.kind === 'local') provider.api_key = '';
  const form = $('provider-form');
  save(form, { provider }, `Provider ${name}`).then(() => { if (!dirty.has(form)) resetProviderForm(); });
});
$('channels-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const channels = {};
  for (const box of $('channels').querySelectorAll('input[type="checkbox"]')) channels[box.name] = box.checked;
  save($('channels-form'), { channels }, 'Channels');
});
$('rate-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  save($('rate-form'), {
    rate_limiting: {
      enabled: $('rate-enabled').checked,
      messages_per_minute: Number($('rate-messages').value),
      tool_calls_per_minute: Number($('rate-tools').value),
    },
  }, 'Rate limits');
});
$('backup-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  save($('backup-form'), {
    backup: {
      enabled: $('backup-enabled').checked,
      schedule: $('backup-schedule').value,
      max_backups: Number($('backup-keep').value),
      path: $('backup-path').value,
    },
  }, 'Backups');
});

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
