// The gateway WebSocket protocol: a `connect.challenge` event, a `connect` request carrying the
// gateway token, then `req` / `res` frames and `event` frames (see ARCHITECTURE.md).

export class GatewayError extends Error {
  constructor(error) {
    super(error?.message ?? 'request failed');
    this.code = error?.code ?? 'UNKNOWN';
  }
}

export class GatewayClient {
  #ws = null;
  #pending = new Map();
  #handlers = new Map();
  #nextId = 1;

  constructor(url, { token = null, clientName = 'webchat' } = {}) {
    this.url = url;
    this.token = token;
    this.clientName = clientName;
  }

  /** Resolves with the `connect` payload, or rejects with a GatewayError / close reason. */
  connect() {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url);
      this.#ws = ws;
      let connected = false;
      ws.addEventListener('message', (msg) => {
        let frame;
        try { frame = JSON.parse(msg.data); } catch { return; }
        if (frame.type === 'event' && frame.event === 'connect.challenge' && !connected) {
          const params = { client: { name: this.clientName, version: '1' } };
          if (this.token) params.auth = { token: this.token };
          this.request('connect', params).then((hello) => { connected = true; resolve(hello); }, reject);
        } else if (frame.type === 'res') {
          const p = this.#pending.get(frame.id);
          if (!p) return;
          this.#pending.delete(frame.id);
          frame.ok ? p.resolve(frame.payload) : p.reject(new GatewayError(frame.error));
        } else if (frame.type === 'event') {
          for (const h of this.#handlers.get(frame.event) ?? []) h(frame.payload);
        }
      });
      ws.addEventListener('close', (ev) => {
        for (const p of this.#pending.values()) p.reject(new GatewayError({ code: 'CLOSED', message: ev.reason || 'connection closed' }));
        this.#pending.clear();
        if (!connected) reject(new GatewayError({ code: 'CLOSED', message: ev.reason || 'connection closed' }));
        for (const h of this.#handlers.get('close') ?? []) h(ev);
      });
    });
  }

  request(method, params = {}) {
    const id = String(this.#nextId++);
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(JSON.stringify({ type: 'req', id, method, params }));
    });
  }

  on(event, handler) {
    if (!this.#handlers.has(event)) this.#handlers.set(event, []);
    this.#handlers.get(event).push(handler);
  }

  close() { this.#ws?.close(); }
}
