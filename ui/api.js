// The control API over fetch, with the gateway's token: the one the gateway put in the page
// (served over loopback), or the one the user entered once (kept in this browser).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.status = status;
    this.code = code || 'UNKNOWN';
  }
}

export function token() {
  return document.querySelector('meta[name="openclaw-token"]')?.content
    || localStorage.getItem('openclaw.token') || '';
}

/** `method path` with a JSON body; resolves with the JSON answer, rejects with an ApiError. */
export async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, 'UNREACHABLE', `the gateway does not answer (${e.message})`);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { /* not JSON: shown as text */ }
  if (!response.ok) {
    const error = data?.error ?? {};
    throw new ApiError(response.status, error.code, error.message ?? text);
  }
  return data;
}

/** The Prometheus text at /metrics, summed per family over its labels. */
export async function metricTotals() {
  const response = await fetch('/metrics');
  const totals = new Map();
  for (const line of (await response.text()).split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eE]+|NaN|\+Inf)/.exec(line);
    if (!m) continue;
    const value = Number(m[3]);
    if (Number.isFinite(value)) totals.set(m[1], (totals.get(m[1]) ?? 0) + value);
  }
  return totals;
}
