// Downloading the built-in local model through the gateway (`/api/models/fetch`): the gateway
// runs the download (a closed window does not stop it); the page asks where it is four times a
// second and draws a <progress> bar. Used by the setup (#setup) and Settings.
import { api } from './api.js';

const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;

function describe(f) {
  switch (f.state) {
    case 'looking': return 'Finding the model on the package index…';
    case 'downloading': return f.total ? `Downloading: ${mb(f.done)} of ${mb(f.total)}` : `Downloading: ${mb(f.done)}`;
    case 'unpacking': return `Unpacking and checking: ${mb(f.done)} of ${mb(f.total)}`;
    case 'done': return 'Downloaded and checked.';
    case 'failed': return `The download failed: ${f.error}`;
    default: return '';
  }
}

/**
 * Shows a fetch's progress in `bar` (a <progress>) and `text` (its live label) until it ends;
 * resolves with the last answer of `GET /api/models/fetch` (`{fetch, restart, model}`).
 * Starts the fetch unless `start` is false (then it follows one that runs).
 */
export async function fetchModel(bar, text, { start = true } = {}) {
  let answer = start ? await api('POST', '/api/models/fetch') : await api('GET', '/api/models/fetch');
  bar.hidden = false;
  for (;;) {
    const f = answer.fetch;
    if (f.state === 'downloading' || f.state === 'unpacking') {
      // The download is about 93 MB and the unpacked model 98 MB: one bar, two halves.
      const total = f.total || answer.model.size_bytes;
      const share = total ? Math.min(1, f.done / total) : 0;
      bar.value = f.state === 'downloading' ? share * 50 : 50 + share * 50;
      bar.setAttribute('aria-valuetext', describe(f));
    } else if (f.state === 'done') {
      bar.value = 100;
    } else if (f.state === 'looking') {
      bar.removeAttribute('value'); // indeterminate
    }
    text.textContent = describe(f);
    if (f.state === 'done' || f.state === 'failed' || f.state === 'idle') return answer;
    await new Promise((r) => setTimeout(r, 250));
    answer = await poll();
  }
}

// One progress question; a gateway that does not answer for a moment (restarting) is asked
// again for up to 15 s before the error is shown.
async function poll() {
  for (let tries = 0; ; tries++) {
    try {
      return await api('GET', '/api/models/fetch');
    } catch (e) {
      if (e.status !== 0 || tries >= 60) throw e;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
