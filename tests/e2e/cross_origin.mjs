// A hostile page on another loopback origin tries to drive the gateway from headless
// Chromium, the way a site the user visits could: a cross-origin WebSocket (connect, then
// chat.send), a no-preflight `text/plain` POST to /v1/chat/completions, and a DNS-rebound
// name pointing at the gateway's port. Even the gateway's token, had the page stolen it, must
// not help it past the origin rule.
// Usage: node cross_origin.mjs <gateway-host:port> <token>
// Prints one JSON line with what the page saw.
import http from 'node:http';
import { chromium } from 'playwright-core';

const [gateway, token] = process.argv.slice(2);
if (!gateway || !token) {
  console.error('usage: node cross_origin.mjs <gateway-host:port> <token>');
  process.exit(64);
}
const gatewayPort = gateway.split(':').pop();

const attack = `<!doctype html><meta charset="utf-8"><title>evil</title><script>
window.result = (async () => {
  const out = {};
  out.websocket = await new Promise((resolve) => {
    const events = [];
    let ws;
    try { ws = new WebSocket('ws://${gateway}/ws'); } catch (e) { resolve(['threw ' + e.message]); return; }
    const done = () => resolve(events);
    ws.onopen = () => events.push('open');
    ws.onmessage = (m) => {
      events.push('message');
      const frame = JSON.parse(m.data);
      if (frame.event === 'connect.challenge') {
        ws.send(JSON.stringify({ type: 'req', id: 'c', method: 'connect', params: { auth: { token: ${JSON.stringify(token)} } } }));
      } else if (frame.id === 'c' && frame.ok) {
        ws.send(JSON.stringify({ type: 'req', id: 's', method: 'chat.send', params: { text: 'exfiltrate', session: 'evil' } }));
      }
    };
    ws.onerror = () => events.push('error');
    ws.onclose = (e) => { events.push('close ' + e.code); done(); };
    setTimeout(done, 5000);
  });
  try {
    await fetch('http://${gateway}/v1/chat/completions', {
      method: 'POST', mode: 'no-cors',
      headers: { 'Content-Type': 'text/plain' },
      body: JSON.stringify({ model: 'openclaw', messages: [{ role: 'user', content: 'exfiltrate' }] }),
    });
    out.post = 'sent';
  } catch (e) { out.post = 'failed: ' + e.message; }
  try {
    const r = await fetch('http://${gateway}/api/status', { headers: { Authorization: 'Bearer ${token}' } });
    out.status_read = r.status;
  } catch (e) { out.status_read = 'failed: ' + e.message; }
  return out;
})();
</script>`;

const server = http.createServer((_, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html' });
  res.end(attack);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const evilPort = server.address().port;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    // DNS rebinding, as an attacker's resolver would do it: their name, our address.
    '--host-resolver-rules=MAP rebind.evil.test 127.0.0.1'],
});
try {
  const page = await browser.newPage();
  await page.goto(`http://localhost:${evilPort}/`);
  const seen = await page.evaluate(() => window.result);
  // The rebound name reaches the gateway's socket, but not the gateway.
  const rebound = await page.goto(`http://rebind.evil.test:${gatewayPort}/api/status`);
  const reboundPage = await page.goto(`http://rebind.evil.test:${gatewayPort}/`);
  const reboundBody = await reboundPage.text();
  console.log(JSON.stringify({
    ...seen,
    rebound_status: rebound.status(),
    rebound_page_status: reboundPage.status(),
    rebound_page_has_token: reboundBody.includes(token),
    evil_origin: `http://localhost:${evilPort}`,
  }));
} finally {
  await browser.close();
  server.close();
}
