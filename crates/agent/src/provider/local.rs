//! The `local` provider: a GGUF chat model run by the llama.cpp linked into this binary
//! (`llama-cpp-2`), in a child process of the gateway (`process`) or, for library users and
//! tests, on a thread of this one.
//!
//! Why it is shaped like this:
//! - llama.cpp calls block for milliseconds to seconds, so they run on one dedicated worker
//!   thread per provider, never on the async runtime. Requests reach it through a bounded queue;
//!   past the bound the caller gets a "busy" error classified as overloaded (the chain may fail
//!   over, as for a remote provider's 529).
//! - Nothing happens at start-up: the worker thread, the model process (or the llama.cpp backend)
//!   and the model are all created by the first request. After `idle_unload` without a request
//!   the model is dropped and the worker thread ends: the model process exits (all memory back);
//!   in-process, `openclaw-reclaim` hands back the freed heap and the inference code's pages.
//! - A request whose future is dropped (the client went away) sets its cancel flag; the worker
//!   checks it between tokens, and skips requests cancelled while they waited.
//! - The prompt is rendered with the chat template stored in the GGUF (llama.cpp's built-in
//!   template engine). Tools are offered only when that template knows about tools; calls come
//!   back Hermes/Qwen-style as `<tool_call>{"name": …, "arguments": {…}}</tool_call>`.

#[path = "local_process.rs"]
mod process;

pub use process::{WorkerProcess, run_local_models_in, run_model_worker};

use super::local_types::{LocalModelStatus, LocalSettings, ModelState};
use super::{EventSink, Provider};
use crate::error::{ErrorKind, ProviderError};
use crate::types::{ChatRequest, Completion, StopReason, StreamEvent, ToolCall, Turn, Usage};
use futures_util::future::BoxFuture;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use openclaw_config::ProviderKind;
use serde_json::Value;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Prompt tokens decoded per llama.cpp call.
const BATCH: usize = 512;
const TOOL_OPEN: &str = "<tool_call>";
const TOOL_CLOSE: &str = "</tool_call>";

pub struct Local {
    name: String,
    label: String,
    settings: LocalSettings,
    shared: Arc<Shared>,
    /// Where llama.cpp runs: a child process (the gateway) or this process (library use).
    process: Option<WorkerProcess>,
}

/// What the provider and its worker thread share.
struct Shared {
    /// Published for `/health`.
    status: Mutex<Status>,
    queued: AtomicUsize,
    /// The worker's queue: created with the worker by the first request, emptied by the worker
    /// when it leaves after the idle time (under this lock, so no job can slip into a queue
    /// nobody reads).
    worker: Mutex<Option<SyncSender<Job>>>,
}

impl Shared {
    fn new(state: ModelState) -> Self {
        Self {
            status: Mutex::new(Status {
                state,
                memory_bytes: 0,
                tools: None,
                load_time: None,
                error: None,
            }),
            queued: AtomicUsize::new(0),
            worker: Mutex::new(None),
        }
    }
}

struct Status {
    state: ModelState,
    memory_bytes: u64,
    tools: Option<bool>,
    load_time: Option<Duration>,
    error: Option<String>,
}

struct Job {
    request: ChatRequest,
    events: tokio::sync::mpsc::UnboundedSender<WorkerMsg>,
    cancel: Arc<AtomicBool>,
}

impl Job {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.events.is_closed()
    }
}

enum WorkerMsg {
    Delta(String),
    Done(Result<Completion, ProviderError>),
}

/// Sets the cancel flag when the request's future goes away before the worker finished.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl CancelOnDrop {
    fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Drop for Local {
    /// The queue's sender lives in `Shared`, which the worker also holds: drop it here so the
    /// worker sees the provider gone and ends now (releasing the model), not at the idle time.
    fn drop(&mut self) {
        self.shared
            .worker
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

impl Local {
    pub fn new(name: &str, settings: LocalSettings) -> Self {
        let label = settings
            .model_path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| settings.model_path.display().to_string());
        let state = if settings.model_path.is_file() {
            ModelState::Unloaded
        } else {
            ModelState::Absent
        };
        Self {
            name: name.to_owned(),
            label,
            settings,
            shared: Arc::new(Shared::new(state)),
            process: process::default_process(),
        }
    }

    fn error(&self, kind: ErrorKind, message: impl Into<String>) -> ProviderError {
        ProviderError::new(&self.name, kind, None, message)
    }

    /// Queues `job`, starting the worker on first use (or again, should it have died).
    fn submit(&self, job: Job) -> Result<(), ProviderError> {
        let mut worker = self.shared.worker.lock().unwrap_or_else(|p| p.into_inner());
        let mut job = job;
        for _ in 0..2 {
            let tx = match worker.as_ref() {
                Some(tx) => tx.clone(),
                None => {
                    let tx = self.spawn_worker()?;
                    *worker = Some(tx.clone());
                    tx
                }
            };
            self.shared.queued.fetch_add(1, Ordering::Relaxed);
            match tx.try_send(job) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(_)) => {
                    self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                    return Err(self.error(
                        ErrorKind::Overloaded,
                        format!(
                            "the local model is busy: one reply is being generated and {} more are waiting (the queue holds {})",
                            self.settings.queue_size, self.settings.queue_size
                        ),
                    ));
                }
                Err(TrySendError::Disconnected(back)) => {
                    self.shared.queued.fetch_sub(1, Ordering::Relaxed);
                    tracing::warn!(provider = %self.name, "local model worker had stopped; restarting it");
                    *worker = None;
                    job = back;
                }
            }
        }
        Err(self.error(
            ErrorKind::Server,
            "the local model worker could not be started",
        ))
    }

    fn spawn_worker(&self) -> Result<SyncSender<Job>, ProviderError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(self.settings.queue_size);
        let (settings, shared, name, how) = (
            self.settings.clone(),
            self.shared.clone(),
            self.name.clone(),
            self.process.clone(),
        );
        std::thread::Builder::new()
            .name(format!("local-model-{}", self.name))
            .spawn(move || {
                let mut engine: Box<dyn Engine> = match how {
                    Some(how) => Box::new(process::InChild::new(how)),
                    None => Box::<InProcess>::default(),
                };
                worker(&name, &settings, &shared, &rx, engine.as_mut());
            })
            .map_err(|e| {
                self.error(
                    ErrorKind::Server,
                    format!("cannot start the local model thread: {e}"),
                )
            })?;
        Ok(tx)
    }
}

impl Provider for Local {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Local
    }

    fn model(&self) -> &str {
        &self.label
    }

    fn complete<'a>(
        &'a self,
        request: &'a ChatRequest,
        on_event: EventSink<'a>,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>> {
        Box::pin(async move {
            let (events, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
            self.submit(Job {
                request: request.clone(),
                events,
                cancel: cancel.0.clone(),
            })?;
            while let Some(msg) = rx.recv().await {
                match msg {
                    WorkerMsg::Delta(text) => on_event(StreamEvent::TextDelta(text)),
                    WorkerMsg::Done(result) => return result,
                }
            }
            cancel.cancel();
            Err(self.error(
                ErrorKind::Server,
                "the local model worker stopped before answering",
            ))
        })
    }

    /// Nothing to reach: the model is a file. Checks that it is there, without loading it.
    fn check_access(&self) -> BoxFuture<'_, Result<(), ProviderError>> {
        Box::pin(async move {
            let path = &self.settings.model_path;
            std::fs::metadata(path).map(|_| ()).map_err(|e| {
                self.error(
                    ErrorKind::Config,
                    format!("cannot open the model file {}: {e}", path.display()),
                )
            })
        })
    }

    fn local_status(&self) -> Option<LocalModelStatus> {
        let s = self.shared.status.lock().unwrap_or_else(|p| p.into_inner());
        // A file added or removed since the last look changes absent ↔ unloaded.
        let state = match s.state {
            ModelState::Absent | ModelState::Unloaded => {
                if self.settings.model_path.is_file() {
                    ModelState::Unloaded
                } else {
                    ModelState::Absent
                }
            }
            other => other,
        };
        Some(LocalModelStatus {
            provider: self.name.clone(),
            path: self.settings.model_path.clone(),
            state,
            memory_bytes: s.memory_bytes,
            tools: s.tools,
            load_time: s.load_time,
            queued: self.shared.queued.load(Ordering::Relaxed),
            error: s.error.clone(),
        })
    }
}

/// llama.cpp's global state: initialised by the first load, once per process, and kept (it
/// holds no model memory; `LlamaBackend::init` refuses a second call).
fn backend() -> Result<&'static LlamaBackend, String> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            let mut backend =
                LlamaBackend::init().map_err(|e| format!("cannot initialise llama.cpp: {e}"))?;
            // llama.cpp prints pages of load details to stderr; our own errors say what matters.
            backend.void_logs();
            Ok(backend)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A model in memory, with what the worker needs to prompt it.
struct Loaded {
    model: LlamaModel,
    template: LlamaChatTemplate,
    tools: bool,
}

fn set_status(shared: &Shared, f: impl FnOnce(&mut Status)) {
    let mut s = shared.status.lock().unwrap_or_else(|p| p.into_inner());
    f(&mut s);
}

/// The next job, or `None` when the worker should leave: nothing arrived for `idle_unload`
/// (then `on_idle` releases the model first) or the provider is gone.
fn next_job(
    settings: &LocalSettings,
    shared: &Shared,
    rx: &Receiver<Job>,
    on_idle: impl FnOnce(),
) -> Option<Job> {
    match rx.recv_timeout(settings.idle_unload) {
        Ok(job) => Some(job),
        Err(RecvTimeoutError::Disconnected) => None,
        Err(RecvTimeoutError::Timeout) => {
            on_idle();
            // Leave, unless a job arrived meanwhile: `submit` sends while holding this lock, so
            // once the slot is empty the next request starts a new worker.
            let mut slot = shared.worker.lock().unwrap_or_else(|p| p.into_inner());
            match rx.try_recv() {
                Ok(job) => Some(job),
                Err(_) => {
                    *slot = None;
                    None
                }
            }
        }
    }
}

/// No model in memory, and why: `absent` (no file) or `failed` (a bad file, a dead process).
fn mark_failed(shared: &Shared, absent: bool, message: &str) {
    set_status(shared, |s| {
        s.state = if absent {
            ModelState::Absent
        } else {
            ModelState::Failed
        };
        s.error = Some(message.to_owned());
        s.memory_bytes = 0;
    });
}

/// The model could not be brought into memory: status and log say why, and the request gets a
/// server error, retryable on purpose, so that the chain moves on past a broken local model.
fn load_failure(name: &str, shared: &Shared, absent: bool, message: String) -> ProviderError {
    mark_failed(shared, absent, &message);
    tracing::error!(provider = name, "{message}");
    ProviderError::new(name, ErrorKind::Server, None, message)
}

fn mark_unloaded(shared: &Shared) {
    set_status(shared, |s| {
        s.state = ModelState::Unloaded;
        s.memory_bytes = 0;
    });
}

fn log_result(name: &str, started: Instant, result: &Result<Completion, ProviderError>) {
    let elapsed_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(c) => tracing::debug!(
            provider = name,
            input_tokens = c.usage.input_tokens,
            output_tokens = c.usage.output_tokens,
            elapsed_ms,
            "local generation done"
        ),
        Err(e) if e.message == CANCELLED => tracing::info!(
            provider = name,
            elapsed_ms,
            "local generation cancelled: the client went away"
        ),
        Err(e) => tracing::debug!(provider = name, error = %e, "local generation failed"),
    }
}

/// Where a worker runs the model: on its own thread ([`InProcess`]) or in a child
/// (`process::InChild`). The worker loop around it (queue, idle time, cancelled jobs, logging) is
/// the same for both.
trait Engine {
    /// Answers `job`, loading the model first when it is not in memory.
    fn answer(
        &mut self,
        name: &str,
        settings: &LocalSettings,
        shared: &Shared,
        job: &Job,
    ) -> Result<Completion, ProviderError>;
    /// Drops the model if one is in memory, saying how its memory went back.
    fn release(&mut self) -> Option<String>;
}

/// The worker thread: serves jobs until the provider is gone or nothing came for `idle_unload`.
fn worker(
    name: &str,
    settings: &LocalSettings,
    shared: &Shared,
    rx: &Receiver<Job>,
    engine: &mut dyn Engine,
) {
    let release = |engine: &mut dyn Engine, why: &str| {
        if let Some(how) = engine.release() {
            mark_unloaded(shared);
            tracing::info!(
                provider = name,
                idle_s = settings.idle_unload.as_secs(),
                "local model released {why} ({how})"
            );
        }
    };
    while let Some(job) = next_job(settings, shared, rx, || {
        release(&mut *engine, "after idle time")
    }) {
        shared.queued.fetch_sub(1, Ordering::Relaxed);
        if job.cancelled() {
            continue;
        }
        let started = Instant::now();
        let result = engine.answer(name, settings, shared, &job);
        log_result(name, started, &result);
        let _ = job.events.send(WorkerMsg::Done(result));
    }
    release(engine, "as its provider is gone");
}

/// llama.cpp on the worker thread itself (library users and tests).
#[derive(Default)]
struct InProcess {
    loaded: Option<Loaded>,
}

impl Engine for InProcess {
    fn answer(
        &mut self,
        name: &str,
        settings: &LocalSettings,
        shared: &Shared,
        job: &Job,
    ) -> Result<Completion, ProviderError> {
        let model = match self.loaded.take() {
            Some(model) => model,
            None => load(name, settings, shared)?,
        };
        let result = generate(name, settings, &model, job);
        self.loaded = Some(model);
        result
    }

    fn release(&mut self) -> Option<String> {
        drop(self.loaded.take()?);
        // The model's memory is freed, but glibc keeps the freed heap and the inference code
        // stays mapped: hand both back. (What llama.cpp keeps for the life of the process, its
        // Unicode and f16 tables, stays: the reason the gateway runs models in a process of
        // their own, see `process`.)
        Some(openclaw_reclaim::release_unused_memory().to_string())
    }
}

fn load(name: &str, settings: &LocalSettings, shared: &Shared) -> Result<Loaded, ProviderError> {
    let path = &settings.model_path;
    let fail = |message: String| load_failure(name, shared, !path.is_file(), message);
    // llama.cpp only says "null result" for a missing file; say which file and why.
    if let Err(e) = std::fs::File::open(path) {
        return Err(fail(format!(
            "cannot open the model file {}: {e} (put a GGUF there, e.g. with `openclaw models add`, or fix providers.{name}.model_path)",
            path.display()
        )));
    }
    set_status(shared, |s| s.state = ModelState::Loading);
    let started = Instant::now();
    let backend = backend().map_err(&fail)?;
    let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default()).map_err(
        |e| {
            fail(format!(
                "{} is not a usable GGUF model ({e}): the file may be truncated or corrupt, or its architecture unsupported by this llama.cpp",
                path.display()
            ))
        },
    )?;
    let (template, tools) = match model.chat_template(None) {
        Ok(t) => {
            let text = t.to_str().unwrap_or("");
            // Templates written for tools mention them; llama.cpp's template engine does not
            // render tool definitions, so they go into the system prompt in the Hermes format.
            let tools = text.contains(TOOL_OPEN) || text.contains("tools");
            (t, tools)
        }
        Err(_) => {
            tracing::warn!(
                provider = name,
                "{} has no chat template; using ChatML",
                path.display()
            );
            let t = LlamaChatTemplate::new("chatml")
                .map_err(|e| fail(format!("cannot build the ChatML template: {e}")))?;
            (t, false)
        }
    };
    let load_time = started.elapsed();
    let size = model.size();
    set_status(shared, |s| {
        s.state = ModelState::Ready;
        s.memory_bytes = size;
        s.tools = Some(tools);
        s.load_time = Some(load_time);
        s.error = None;
    });
    tracing::info!(
        provider = name,
        model = %path.display(),
        load_ms = load_time.as_millis() as u64,
        tools,
        "local model loaded"
    );
    Ok(Loaded {
        model,
        template,
        tools,
    })
}

/// Renders the conversation into (role, content) pairs for the chat template.
fn messages(request: &ChatRequest, skip: usize, tools: bool) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(request.turns.len() + 1);
    let mut system = request.system.clone();
    if tools && !request.tools.is_empty() {
        system.push_str(&tool_prompt(request));
    }
    if !system.trim().is_empty() {
        out.push(("system".to_owned(), system));
    }
    for turn in request.turns.iter().skip(skip) {
        match turn {
            Turn::User(text) => out.push(("user".to_owned(), text.clone())),
            // Text models: the picture is described, so the model knows one was there.
            Turn::UserWithImages { text, images } => {
                let mut content = text.clone();
                for i in images {
                    content.push('\n');
                    content.push_str(&i.describe());
                }
                out.push(("user".to_owned(), content));
            }
            Turn::Assistant { text, tool_calls } => {
                let mut content = text.clone();
                for call in tool_calls {
                    let json = serde_json::json!({"name": call.name, "arguments": call.arguments});
                    content.push_str(&format!("\n{TOOL_OPEN}\n{json}\n{TOOL_CLOSE}"));
                }
                out.push(("assistant".to_owned(), content.trim().to_owned()));
            }
            // Qwen's and Hermes' templates hand tool output back as a user turn in this wrapper.
            Turn::ToolResult {
                name,
                content,
                images,
                is_error,
                ..
            } => {
                let status = if *is_error { " (error)" } else { "" };
                let mut content = content.clone();
                for i in images {
                    content.push(' ');
                    content.push_str(&i.describe());
                }
                out.push((
                    "user".to_owned(),
                    format!("<tool_response>\n{name}{status}: {content}\n</tool_response>"),
                ));
            }
        }
    }
    out
}

/// The Hermes function-calling preamble.
fn tool_prompt(request: &ChatRequest) -> String {
    let mut s = String::from(
        "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n",
    );
    for t in &request.tools {
        let spec = serde_json::json!({"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}});
        s.push_str(&spec.to_string());
        s.push('\n');
    }
    s.push_str("</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>");
    s
}

/// Streams text while holding back anything that may be the start of a `<tool_call>`, so tool
/// JSON never reaches the user as reply text.
#[derive(Debug, Default)]
struct ToolCallFilter {
    text: String,
    emitted: usize,
    in_call: bool,
}

impl ToolCallFilter {
    /// Appends `piece` and returns what may be shown now.
    fn push(&mut self, piece: &str, tools: bool) -> Option<String> {
        self.text.push_str(piece);
        if self.in_call {
            return None;
        }
        let pending = &self.text[self.emitted..];
        let upto = if !tools {
            pending.len()
        } else if let Some(i) = pending.find(TOOL_OPEN) {
            self.in_call = true;
            i
        } else {
            // Hold back a tail that could still grow into `<tool_call>`.
            pending
                .rfind('<')
                .filter(|&i| TOOL_OPEN.starts_with(&pending[i..]))
                .unwrap_or(pending.len())
        };
        let out = pending[..upto].to_owned();
        self.emitted += upto;
        (!out.is_empty()).then_some(out)
    }

    /// Text held back at the end that turned out not to be a tool call.
    fn flush(&mut self) -> Option<String> {
        if self.in_call {
            return None;
        }
        let out = self.text[self.emitted..].to_owned();
        self.emitted = self.text.len();
        (!out.is_empty()).then_some(out)
    }
}

/// Splits a reply into its text and its `<tool_call>` blocks. `None` when a block is not the
/// JSON the format asks for (the caller then treats the whole reply as text).
fn parse_tool_calls(reply: &str) -> Option<(String, Vec<ToolCall>)> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let Some(first) = reply.find(TOOL_OPEN) else {
        return Some((reply.trim().to_owned(), Vec::new()));
    };
    let text = reply[..first].trim().to_owned();
    let mut calls = Vec::new();
    let mut rest = &reply[first..];
    while let Some(start) = rest.find(TOOL_OPEN) {
        let body_start = start + TOOL_OPEN.len();
        let (body, next) = match rest[body_start..].find(TOOL_CLOSE) {
            Some(end) => (
                &rest[body_start..body_start + end],
                &rest[body_start + end + TOOL_CLOSE.len()..],
            ),
            // Generation may stop right after the JSON without the closing tag.
            None => (&rest[body_start..], ""),
        };
        let v: Value = serde_json::from_str(body.trim()).ok()?;
        let name = v.get("name")?.as_str()?.to_owned();
        let arguments = match v.get("arguments") {
            Some(Value::String(s)) => serde_json::from_str(s).ok()?,
            Some(a @ Value::Object(_)) => a.clone(),
            None | Some(Value::Null) => Value::Object(Default::default()),
            Some(_) => return None,
        };
        calls.push(ToolCall {
            id: format!("call_local_{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            name,
            arguments,
        });
        rest = next;
    }
    Some((text, calls))
}

/// The longest valid UTF-8 prefix of `bytes` as text; the rest (a split character) stays.
fn take_utf8(bytes: &mut Vec<u8>) -> String {
    let valid = match std::str::from_utf8(bytes) {
        Ok(s) => s.len(),
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        // Invalid, not merely incomplete: replace it rather than stall the stream.
        Err(_) => {
            let s = String::from_utf8_lossy(bytes).into_owned();
            bytes.clear();
            return s;
        }
    };
    let rest = bytes.split_off(valid);
    String::from_utf8(std::mem::replace(bytes, rest)).unwrap_or_default()
}

fn generate(
    name: &str,
    settings: &LocalSettings,
    loaded: &Loaded,
    job: &Job,
) -> Result<Completion, ProviderError> {
    let err = |kind: ErrorKind, m: String| ProviderError::new(name, kind, None, m);
    let model = &loaded.model;
    let request = &job.request;
    let tools = loaded.tools && !request.tools.is_empty();
    let n_ctx = settings.context_tokens.max(64);
    let max_tokens = request
        .max_tokens
        .unwrap_or(settings.max_tokens)
        .min(settings.max_tokens.max(1));
    // Leave room for a useful reply: the oldest turns go first when the prompt is too long.
    let reply_room = max_tokens.min(n_ctx / 4).max(16) as usize;
    let vocab = model.vocab();
    let mut skip = 0;
    let tokens = loop {
        let msgs = messages(request, skip, tools)
            .into_iter()
            .map(|(role, content)| LlamaChatMessage::new(role, content))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                err(
                    ErrorKind::BadRequest,
                    format!("the conversation has a NUL byte: {e}"),
                )
            })?;
        let prompt = model
            .apply_chat_template(&loaded.template, &msgs, true)
            .map_err(|e| {
                err(
                    ErrorKind::BadRequest,
                    format!("the model's chat template failed: {e}"),
                )
            })?;
        let tokens = vocab.tokenize(prompt.as_bytes(), true, true);
        if tokens.len() + reply_room <= n_ctx as usize {
            break tokens;
        }
        if skip + 1 >= request.turns.len() {
            return Err(err(
                ErrorKind::BadRequest,
                format!(
                    "the message needs {} tokens, more than this model's context of {n_ctx} (providers.{name}.context_tokens) leaves after {reply_room} for the reply",
                    tokens.len()
                ),
            ));
        }
        skip += 1;
    };
    if tokens.is_empty() {
        return Err(err(
            ErrorKind::BadRequest,
            "the prompt rendered to no tokens".to_owned(),
        ));
    }
    if job.cancelled() {
        return Err(cancelled(name));
    }

    let threads = settings.threads.max(1) as i32;
    let ctx_params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(BATCH as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let backend = backend().map_err(|m| err(ErrorKind::Server, m))?;
    let mut ctx = model.new_context(backend, ctx_params).map_err(|e| {
        err(
            ErrorKind::Server,
            format!("cannot create a llama.cpp context of {n_ctx} tokens: {e}"),
        )
    })?;
    let mut batch = LlamaBatch::new(BATCH, 1);
    let last = tokens.len() - 1;
    for (c, chunk) in tokens.chunks(BATCH).enumerate() {
        batch.clear();
        for (j, &token) in chunk.iter().enumerate() {
            let pos = c * BATCH + j;
            batch
                .add(token, pos as i32, &[0], pos == last)
                .map_err(|e| err(ErrorKind::Server, format!("llama.cpp batch: {e}")))?;
        }
        ctx.decode(&mut batch)
            .map_err(|e| err(ErrorKind::Server, format!("llama.cpp decode: {e}")))?;
        if job.cancelled() {
            return Err(cancelled(name));
        }
    }

    let mut sampler = LlamaSampler::greedy();
    let mut filter = ToolCallFilter::default();
    let mut pending = Vec::new();
    let mut piece = Vec::new();
    let mut generated = 0u64;
    let mut stop = StopReason::MaxTokens;
    let room = (n_ctx as usize).saturating_sub(tokens.len());
    for pos in tokens.len()..tokens.len() + (max_tokens as usize).min(room) {
        if job.cancelled() {
            return Err(cancelled(name));
        }
        let token = sampler.sample(&ctx, batch.n_tokens() - 1);
        if vocab.is_eog(token) {
            stop = StopReason::EndTurn;
            break;
        }
        generated += 1;
        piece.clear();
        vocab.token_to_piece_into(token, &mut piece, false, None);
        pending.extend_from_slice(&piece);
        let text = take_utf8(&mut pending);
        if let Some(delta) = filter.push(&text, tools) {
            let _ = job.events.send(WorkerMsg::Delta(delta));
        }
        batch.clear();
        batch
            .add(token, pos as i32, &[0], true)
            .map_err(|e| err(ErrorKind::Server, format!("llama.cpp batch: {e}")))?;
        ctx.decode(&mut batch)
            .map_err(|e| err(ErrorKind::Server, format!("llama.cpp decode: {e}")))?;
    }
    if !pending.is_empty() {
        let tail = String::from_utf8_lossy(&pending).into_owned();
        if let Some(delta) = filter.push(&tail, tools) {
            let _ = job.events.send(WorkerMsg::Delta(delta));
        }
    }
    let usage = Usage {
        input_tokens: tokens.len() as u64,
        output_tokens: generated,
    };
    let parsed = if tools {
        parse_tool_calls(&filter.text)
    } else {
        None
    };
    let (text, tool_calls) = match parsed {
        Some(p) => p,
        None => {
            // No tools, or a malformed call: everything is reply text; show what was held back.
            if filter.in_call {
                let rest = filter.text[filter.emitted..].to_owned();
                filter.in_call = false;
                filter.emitted = filter.text.len();
                let _ = job.events.send(WorkerMsg::Delta(rest));
            }
            (filter.text.trim().to_owned(), Vec::new())
        }
    };
    if let Some(delta) = filter.flush() {
        let _ = job.events.send(WorkerMsg::Delta(delta));
    }
    if !tool_calls.is_empty() {
        stop = StopReason::ToolUse;
    }
    Ok(Completion {
        text,
        tool_calls,
        usage,
        stop,
        provider: name.to_owned(),
    })
}

const CANCELLED: &str = "cancelled: the client went away";

fn cancelled(name: &str) -> ProviderError {
    ProviderError::new(name, ErrorKind::Connection, None, CANCELLED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ToolSpec;

    #[test]
    fn filter_holds_back_a_possible_tool_call() {
        let mut f = ToolCallFilter::default();
        assert_eq!(
            f.push("Let me check", true).as_deref(),
            Some("Let me check")
        );
        assert_eq!(f.push(" <tool", true).as_deref(), Some(" "));
        assert_eq!(f.push("_call>{\"name\"", true), None);
        assert!(f.in_call);
        assert_eq!(f.flush(), None);

        let mut f = ToolCallFilter::default();
        // `<b` can never become `<tool_call>`: nothing to hold back.
        assert_eq!(f.push("a <b", true).as_deref(), Some("a <b"));
        assert_eq!(f.push("> c", true).as_deref(), Some("> c"));
        assert_eq!(f.push(" <to", true).as_deref(), Some(" "));
        assert_eq!(f.flush().as_deref(), Some("<to"));

        // Without tools everything streams as it comes.
        let mut f = ToolCallFilter::default();
        assert_eq!(
            f.push("x <tool_call>", false).as_deref(),
            Some("x <tool_call>")
        );
    }

    #[test]
    fn tool_calls_parse_in_hermes_format() {
        let (text, calls) = parse_tool_calls(
            "Sure.\n<tool_call>\n{\"name\": \"memory_save\", \"arguments\": {\"text\": \"likes tea\"}}\n</tool_call>\n<tool_call>{\"name\":\"memory_search\",\"arguments\":\"{\\\"query\\\":\\\"tea\\\"}\"}",
        )
        .expect("parses");
        assert_eq!(text, "Sure.");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].name, "memory_save");
        assert_eq!(calls[0].arguments["text"], "likes tea");
        assert_eq!(calls[1].arguments["query"], "tea");
        assert_ne!(calls[0].id, calls[1].id);

        assert_eq!(parse_tool_calls("<tool_call>{not json}</tool_call>"), None);
        assert_eq!(
            parse_tool_calls("plain"),
            Some(("plain".to_owned(), Vec::new()))
        );
    }

    #[test]
    fn utf8_split_across_tokens_waits_for_the_rest() {
        let mut b = "é".as_bytes()[..1].to_vec();
        assert_eq!(take_utf8(&mut b), "");
        b.extend_from_slice(&"é".as_bytes()[1..]);
        b.extend_from_slice(b"!");
        assert_eq!(take_utf8(&mut b), "é!");
        assert!(b.is_empty());
    }

    /// A conversation with one tool call and its result, and the tool offered.
    pub(super) fn a_tool_round() -> ChatRequest {
        ChatRequest {
            system: "Be brief.".into(),
            turns: vec![
                Turn::User("hi".into()),
                Turn::Assistant {
                    text: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "1".into(),
                        name: "memory_search".into(),
                        arguments: serde_json::json!({"query": "tea"}),
                    }],
                },
                Turn::ToolResult {
                    call_id: "1".into(),
                    name: "memory_search".into(),
                    content: "likes tea".into(),
                    images: Vec::new(),
                    is_error: false,
                },
            ],
            tools: vec![ToolSpec {
                name: "memory_search".into(),
                description: "search".into(),
                parameters: serde_json::json!({"type": "object"}),
            }],
            max_tokens: None,
        }
    }

    #[test]
    fn messages_render_tools_and_results() {
        let request = a_tool_round();
        let with = messages(&request, 0, true);
        assert_eq!(with.len(), 4);
        assert!(with[0].1.contains("<tools>") && with[0].1.contains("memory_search"));
        assert!(with[2].1.starts_with(TOOL_OPEN));
        assert!(with[3].1.contains("<tool_response>"));
        let without = messages(&request, 1, false);
        assert_eq!(without.len(), 3);
        assert_eq!(without[0].1, "Be brief.");
    }
}
