// The official `openai` npm client against the gateway's /v1/chat/completions.
// Usage: node openai_client.mjs <base-url> <api-key> <model> <question>
// Prints one JSON line: {"plain": "...", "streamed": "...", "chunks": n}.
import OpenAI from 'openai';

const [baseURL, apiKey, model, question] = process.argv.slice(2);
if (!baseURL || !apiKey || !model || !question) {
  console.error('usage: node openai_client.mjs <base-url> <api-key> <model> <question>');
  process.exit(64);
}
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 20000 });

const models = await client.models.list();
const ids = models.data.map((m) => m.id);

const plain = await client.chat.completions.create({
  model,
  messages: [{ role: 'user', content: question }],
});

const stream = await client.chat.completions.create({
  model,
  messages: [{ role: 'user', content: question }],
  stream: true,
  stream_options: { include_usage: true },
});
let streamed = '';
let chunks = 0;
let usage = null;
for await (const chunk of stream) {
  chunks += 1;
  streamed += chunk.choices[0]?.delta?.content ?? '';
  if (chunk.usage) usage = chunk.usage;
}

let wrongModel = null;
try {
  await client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] });
} catch (e) {
  wrongModel = { status: e.status, code: e.code ?? e.error?.code ?? null };
}

console.log(JSON.stringify({
  models: ids,
  plain: plain.choices[0].message.content,
  finish_reason: plain.choices[0].finish_reason,
  streamed,
  chunks,
  usage,
  wrong_model: wrongModel,
}));
