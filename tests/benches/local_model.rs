//! Whole-process benchmark of the embedded `local` provider against bare llama.cpp, same model
//! (SmolLM2-135M-Instruct Q4_1), same threads, same context size, same prompt shape, greedy:
//! - bare: `llama-cpp-2` in this process — model load, then per run: context, prompt decode,
//!   first token (TTFT) and decode speed (tokens/s after the first);
//! - gateway: `openclaw gateway run` (release build) with `providers.local`, streamed
//!   `/v1/chat/completions` over a raw socket — TTFT is request written → first content delta,
//!   tokens/s counts the deltas' tokens (`usage.completion_tokens`) after the first;
//! - the gateway's RSS idle, with the model ready (and the model process's), and after
//!   `idle_unload_seconds`.
//!
//! Run: `cargo build --release -p openclaw-server && cargo bench -p openclaw-tests --bench local_model`
//! Knobs: BENCH_RUNS (per side, default 10), BENCH_TOKENS (reply length, default 128),
//! BENCH_THREADS (default 2).
//!
//! Bare and gateway runs alternate, so that both sides see the same machine.
//!
//! Measured 2026-11-29 on the 2-core dev VM (BENCH_RUNS=21, 128 tokens, 2 threads; the model
//! runs in the gateway's child process `openclaw model-worker`): bare TTFT p50 347.4 ms,
//! 100.6 tokens/s; gateway TTFT p50 340.0 ms (-2.1%, noise), 101.4 tokens/s (+0.8%); model
//! load 78 ms bare, 77 ms in the model process; prompt 95 tokens on both sides. Gateway RSS idle
//! 6.0 MiB, with the model ready 6.9 MiB (+ 122.2 MiB in the model process), after the idle
//! release 7.1 MiB with the model process gone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use openclaw_tests::{GatewayProcess, env_num, post_request, rss_kib, smollm2_model};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

const CONTEXT: u32 = 2048;
// Long enough that greedy decoding runs to BENCH_TOKENS on both sides.
const QUESTION: &str = "Write a long story about a dragon who learns to bake bread.";

struct Run {
    ttft: Duration,
    tokens: u64,
    /// First token → last token.
    decode: Duration,
}

impl Run {
    fn tps(&self) -> f64 {
        (self.tokens.saturating_sub(1)) as f64 / self.decode.as_secs_f64()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn summary(label: &str, runs: &[Run]) -> (f64, f64) {
    let ttft = median(runs.iter().map(|r| r.ttft.as_secs_f64() * 1000.0).collect());
    let tps = median(runs.iter().map(Run::tps).collect());
    let tokens = median(runs.iter().map(|r| r.tokens as f64).collect());
    println!(
        "{label:<8} TTFT p50 {ttft:7.2} ms   decode p50 {tps:7.1} tokens/s   ({} runs, {tokens} tokens each)",
        runs.len()
    );
    (ttft, tps)
}

/// The agent's system prompt for a gateway with no tools offered (SmolLM2's template has none),
/// so both sides prompt the same number of tokens.
fn system_prompt() -> String {
    "You are Claw, a personal AI assistant. Personality: helpful, concise, proactive.\nThe current local time is Sunday 2026-11-29 12:00 (UTC).\nUse memory_save to remember lasting facts the user tells you, and memory_search to recall them.\n".to_owned()
}

/// llama-cpp-2 in this process, the model loaded once.
struct Bare {
    backend: LlamaBackend,
    model: LlamaModel,
    prompt: String,
    load: Duration,
}

impl Bare {
    fn load() -> Self {
        let path = smollm2_model().unwrap();
        let mut backend = LlamaBackend::init().unwrap();
        backend.void_logs();
        let t = Instant::now();
        let model =
            LlamaModel::load_from_file(&backend, &path, &LlamaModelParams::default()).unwrap();
        let load = t.elapsed();
        let template = model.chat_template(None).unwrap();
        let msgs = vec![
            LlamaChatMessage::new("system".into(), system_prompt()).unwrap(),
            LlamaChatMessage::new("user".into(), QUESTION.into()).unwrap(),
        ];
        let prompt = model.apply_chat_template(&template, &msgs, true).unwrap();
        Self {
            backend,
            model,
            prompt,
            load,
        }
    }

    /// One run: context, prompt decode, first token (TTFT), then up to `max_tokens`.
    fn run(&self, max_tokens: usize, threads: i32) -> (Run, usize) {
        let (backend, model, prompt) = (&self.backend, &self.model, &self.prompt);
        let vocab = model.vocab();
        let start = Instant::now();
        let tokens = vocab.tokenize(prompt.as_bytes(), true, true);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(CONTEXT))
            .with_n_batch(512)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let mut ctx = model.new_context(backend, params).unwrap();
        let mut batch = LlamaBatch::new(512, 1);
        for (i, &tok) in tokens.iter().enumerate() {
            batch
                .add(tok, i as i32, &[0], i == tokens.len() - 1)
                .unwrap();
        }
        ctx.decode(&mut batch).unwrap();
        let mut sampler = LlamaSampler::greedy();
        let mut first = None;
        let mut n = 0u64;
        let mut piece = Vec::new();
        for pos in tokens.len()..tokens.len() + max_tokens {
            let token = sampler.sample(&ctx, batch.n_tokens() - 1);
            if vocab.is_eog(token) {
                break;
            }
            piece.clear();
            vocab.token_to_piece_into(token, &mut piece, false, None);
            n += 1;
            first.get_or_insert_with(Instant::now);
            batch.clear();
            batch.add(token, pos as i32, &[0], true).unwrap();
            ctx.decode(&mut batch).unwrap();
        }
        let first = first.expect("at least one token");
        let run = Run {
            ttft: first - start,
            tokens: n,
            decode: first.elapsed(),
        };
        (run, tokens.len())
    }
}

/// One streamed request through the gateway: TTFT, tokens (from usage), first → last delta.
fn gateway_run(gw: &GatewayProcess) -> (Run, u64) {
    let body = json!({"model": "openclaw", "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": QUESTION}]});
    let req = post_request(
        gw.addr,
        "/v1/chat/completions",
        gw.token().as_deref(),
        &body,
    );
    let mut tcp = TcpStream::connect(gw.addr).unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let start = Instant::now();
    tcp.write_all(req.as_bytes()).unwrap();
    let mut seen = String::new();
    let mut scanned = 0;
    let mut first = None;
    let mut last = start;
    let mut buf = [0u8; 16384];
    loop {
        let n = tcp.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        let now = Instant::now();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        // Look at each complete SSE event line, not at the read: one read may carry the role
        // chunk (empty content) and the first token together.
        let complete = seen.rfind('\n').map_or(0, |i| i + 1);
        for line in seen[scanned..complete].lines() {
            let Some(event) = line
                .strip_prefix("data: ")
                .and_then(|d| serde_json::from_str::<Value>(d).ok())
            else {
                continue;
            };
            let content = &event["choices"][0]["delta"]["content"];
            if content.as_str().is_some_and(|c| !c.is_empty()) {
                first.get_or_insert(now);
                last = now;
            }
        }
        scanned = complete;
        if seen.contains("data: [DONE]") {
            break;
        }
    }
    let usage: Value = seen
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|v| v.get("usage").is_some_and(|u| !u.is_null()))
        .map(|v| v["usage"].clone())
        .expect("a usage chunk");
    let first = first.expect("a content delta");
    (
        Run {
            ttft: first - start,
            tokens: usage["completion_tokens"].as_u64().unwrap(),
            decode: last - first,
        },
        usage["prompt_tokens"].as_u64().unwrap(),
    )
}

fn main() {
    let runs = env_num("BENCH_RUNS", 10) as usize;
    let max_tokens = env_num("BENCH_TOKENS", 128);
    let threads = env_num("BENCH_THREADS", 2);
    let model = smollm2_model().unwrap();

    let bare = Bare::load();
    let (_, bare_prompt) = bare.run(4, threads as i32);
    println!(
        "bare llama.cpp: model load {:.1} ms, prompt {bare_prompt} tokens",
        bare.load.as_secs_f64() * 1000.0
    );

    let cfg = format!(
        "providers:\n  local:\n    model_path: \"{}\"\n    threads: {threads}\n    context_tokens: {CONTEXT}\n    max_tokens: {max_tokens}\n    idle_unload_seconds: 3\nmemory:\n  persistence: false\n",
        model.display()
    );
    let mut gw = GatewayProcess::start(Some(&cfg), &[]).unwrap();
    gw.wait_ready(Duration::from_secs(20)).unwrap();
    let pid = gw.child.id();
    std::thread::sleep(Duration::from_millis(500));
    let idle = rss_kib(pid).unwrap();
    // The first request pays for the load; measured apart.
    let (first, gw_prompt) = gateway_run(&gw);
    let health: Value = serde_json::from_str(&gw.get("/health").unwrap().1).unwrap();
    println!(
        "gateway: first request TTFT {:.1} ms (includes model load; the gateway's own load time {} s), prompt {gw_prompt} tokens",
        first.ttft.as_secs_f64() * 1000.0,
        health["local_models"][0]["load_seconds"]
    );
    // Alternating, so that both sides see the same machine (another load on a 2-core VM moves
    // the figures by more than the overhead being measured).
    let mut bare_runs = Vec::new();
    let mut gw_runs = Vec::new();
    for _ in 0..runs {
        bare_runs.push(bare.run(max_tokens as usize, threads as i32).0);
        gw_runs.push(gateway_run(&gw).0);
    }
    let loaded = rss_kib(pid).unwrap();
    let model_process: u64 = openclaw_tests::child_pids(pid)
        .into_iter()
        .filter_map(rss_kib)
        .sum();
    let (bt, bs) = summary("bare", &bare_runs);
    let (gt, gs) = summary("gateway", &gw_runs);
    println!(
        "overhead: TTFT {:+.1}% ({:+.2} ms), tokens/s {:+.1}%",
        (gt / bt - 1.0) * 100.0,
        gt - bt,
        (gs / bs - 1.0) * 100.0
    );
    // Wait (bounded) for the idle release.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let h: Value = serde_json::from_str(&gw.get("/health").unwrap().1).unwrap();
        if h["local_models"][0]["state"] == "unloaded" || Instant::now() > until {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let released = rss_kib(pid).unwrap();
    println!(
        "gateway RSS: idle {:.1} MiB, model ready {:.1} MiB (+ model process {:.1} MiB), after idle_unload_seconds {:.1} MiB (model process gone: {})",
        idle as f64 / 1024.0,
        loaded as f64 / 1024.0,
        model_process as f64 / 1024.0,
        released as f64 / 1024.0,
        openclaw_tests::child_pids(pid).is_empty()
    );
    gw.terminate(Duration::from_secs(15)).unwrap();
}
