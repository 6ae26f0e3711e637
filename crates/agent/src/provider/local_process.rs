//! The local model in a process of its own: the gateway's binary started again as
//! `openclaw model-worker`, spoken to in JSON lines over its stdin and stdout.
//!
//! Why not only a thread: llama.cpp keeps process-wide state once it has run (a 2.1 MiB Unicode
//! table, 0.5 MiB of f16 tables, its code paged in), so an in-process model never gives all of
//! its memory back; and a malformed model that trips one of its asserts aborts the whole
//! process. In a child, the idle release is the child exiting (the gateway is back at its start-up
//! RSS) and a crash costs one answer: the gateway reports it and starts a new child on the next
//! request. The child runs the same `load` and `generate` as the in-process worker.
//!
//! Protocol (one JSON object per line): the parent sends `init` once, then `generate` and waits
//! for its `done`/`failed`, sending `cancel` if the client goes away meanwhile; the child answers
//! with `loaded`/`load_failed` (first request only), `delta`s, then `done` or `failed`. EOF on
//! stdin ends the child.

use super::{
    Engine, Job, LocalSettings, ModelState, Shared, WorkerMsg, generate, load, load_failure,
    mark_failed, set_status,
};
use crate::error::{ErrorKind, ProviderError};
use crate::types::{ChatRequest, Completion};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How to start a model process: a program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerProcess {
    pub program: PathBuf,
    pub args: Vec<String>,
}

static DEFAULT_PROCESS: OnceLock<WorkerProcess> = OnceLock::new();

/// Makes every `local` provider created from now on run its model in a child started with
/// `program args…`, a program that calls [`run_model_worker`]. The gateway binary calls this
/// with itself and `model-worker`. Without it (library users, tests) models run in-process.
pub fn run_local_models_in(program: PathBuf, args: Vec<String>) {
    let _ = DEFAULT_PROCESS.set(WorkerProcess { program, args });
}

pub(super) fn default_process() -> Option<WorkerProcess> {
    DEFAULT_PROCESS.get().cloned()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ToWorker {
    Init {
        name: String,
        model_path: PathBuf,
        context_tokens: u32,
        threads: u32,
        max_tokens: u32,
    },
    Generate {
        request: ChatRequest,
    },
    Cancel,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum FromWorker {
    Loaded {
        memory_bytes: u64,
        tools: bool,
        load_ms: u64,
    },
    LoadFailed {
        absent: bool,
        message: String,
    },
    Delta {
        text: String,
    },
    Done {
        completion: Completion,
    },
    Failed {
        kind: String,
        message: String,
    },
}

/// A running model process, seen from the gateway.
struct ModelProcess {
    child: Child,
    /// `None` once closed (which tells the child to exit).
    stdin: Option<ChildStdin>,
    /// Parsed lines from the child's stdout, read by a thread of their own so that waiting for
    /// them can time out (to notice a client that went away).
    lines: Receiver<Result<FromWorker, String>>,
    loaded: bool,
}

impl ModelProcess {
    fn spawn(how: &WorkerProcess, name: &str, settings: &LocalSettings) -> Result<Self, String> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(&how.program)
            .args(&how.args)
            // Its own process group: Ctrl-C in the gateway's terminal is the gateway's to handle
            // (it ends the child by closing its stdin, also when the gateway itself is killed).
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot start the local model process `{} {}`: {e}",
                    how.program.display(),
                    how.args.join(" ")
                )
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the local model process has no stdin/stdout pipes".to_owned());
        };
        let (tx, lines) = std::sync::mpsc::channel();
        let reader = std::thread::Builder::new()
            .name(format!("local-model-io-{name}"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let msg = line.map_err(|e| e.to_string()).and_then(|l| {
                        serde_json::from_str(&l).map_err(|e| {
                            format!(
                                "the local model process wrote an unreadable line ({e}): {l:.200}"
                            )
                        })
                    });
                    if tx.send(msg).is_err() {
                        break;
                    }
                }
            });
        let mut process = Self {
            child,
            stdin: Some(stdin),
            lines,
            loaded: false,
        };
        if let Err(e) = reader {
            return Err(format!("cannot start the local model reader thread: {e}"));
        }
        process
            .send(&ToWorker::Init {
                name: name.to_owned(),
                model_path: settings.model_path.clone(),
                context_tokens: settings.context_tokens,
                threads: settings.threads,
                max_tokens: settings.max_tokens,
            })
            .map_err(|e| format!("cannot talk to the local model process: {e}"))?;
        Ok(process)
    }

    fn send(&mut self, msg: &ToWorker) -> std::io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        write_json_line(stdin, msg)
    }

    /// One request, start to end. `Err(.., true)` when the process is gone or unusable.
    fn answer(
        &mut self,
        name: &str,
        shared: &Shared,
        job: &Job,
    ) -> (Result<Completion, ProviderError>, bool) {
        let err = |kind: ErrorKind, m: String| ProviderError::new(name, kind, None, m);
        if !self.loaded {
            set_status(shared, |s| s.state = ModelState::Loading);
        }
        if self
            .send(&ToWorker::Generate {
                request: job.request.clone(),
            })
            .is_err()
        {
            return (Err(self.died(name, shared)), true);
        }
        let mut cancel_sent = false;
        loop {
            // Checked on every message, not only when none came for a while: tokens arrive
            // every few ms, so a check on the timeout alone may never run.
            if !cancel_sent && job.cancelled() {
                cancel_sent = true;
                if self.send(&ToWorker::Cancel).is_err() {
                    return (Err(self.died(name, shared)), true);
                }
            }
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(Ok(FromWorker::Loaded {
                    memory_bytes,
                    tools,
                    load_ms,
                })) => {
                    self.loaded = true;
                    set_status(shared, |s| {
                        s.state = ModelState::Ready;
                        s.memory_bytes = memory_bytes;
                        s.tools = Some(tools);
                        s.load_time = Some(Duration::from_millis(load_ms));
                        s.error = None;
                    });
                    tracing::info!(
                        provider = name,
                        pid = self.child.id(),
                        load_ms,
                        tools,
                        "local model loaded (in its own process)"
                    );
                }
                Ok(Ok(FromWorker::LoadFailed { absent, message })) => {
                    mark_failed(shared, absent, &message);
                    tracing::error!(provider = name, "{message}");
                }
                Ok(Ok(FromWorker::Delta { text })) => {
                    let _ = job.events.send(WorkerMsg::Delta(text));
                }
                // The child names the provider: `init` gave it our name.
                Ok(Ok(FromWorker::Done { completion })) => return (Ok(completion), false),
                Ok(Ok(FromWorker::Failed { kind, message })) => {
                    return (Err(err(ErrorKind::from_label(&kind), message)), false);
                }
                Ok(Err(message)) => {
                    // Not our protocol any more: stop it rather than guess.
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    mark_failed(shared, false, &message);
                    return (Err(err(ErrorKind::Malformed, message)), true);
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return (Err(self.died(name, shared)), true);
                }
            }
        }
    }

    /// The child stopped while answering: say how, mark the model failed.
    fn died(&mut self, name: &str, shared: &Shared) -> ProviderError {
        let how = match wait_briefly(&mut self.child) {
            Some(status) => describe_exit(status),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                "stopped answering".to_owned()
            }
        };
        let message = format!(
            "the local model process stopped unexpectedly ({how}) while answering; the gateway is unaffected and starts a new one with the next request"
        );
        mark_failed(shared, false, &message);
        tracing::error!(provider = name, "{message}");
        ProviderError::new(name, ErrorKind::Server, None, message)
    }
}

impl Drop for ModelProcess {
    /// Closing stdin ends the child; one that does not go within 2 s is killed.
    fn drop(&mut self) {
        drop(self.stdin.take());
        if wait_briefly(&mut self.child).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn wait_briefly(child: &mut Child) -> Option<ExitStatus> {
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
            _ => return None,
        }
    }
}

fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// The model in a child process, started by the first request it gets.
pub(super) struct InChild {
    how: WorkerProcess,
    process: Option<ModelProcess>,
}

impl InChild {
    pub(super) fn new(how: WorkerProcess) -> Self {
        Self { how, process: None }
    }
}

impl Engine for InChild {
    fn answer(
        &mut self,
        name: &str,
        settings: &LocalSettings,
        shared: &Shared,
        job: &Job,
    ) -> Result<Completion, ProviderError> {
        let mut process = match self.process.take() {
            Some(p) => p,
            None => ModelProcess::spawn(&self.how, name, settings)
                .map_err(|message| load_failure(name, shared, false, message))?,
        };
        let (result, gone) = process.answer(name, shared, job);
        if !gone {
            self.process = Some(process);
        }
        result
    }

    fn release(&mut self) -> Option<String> {
        let process = self.process.take()?;
        let was_loaded = process.loaded;
        drop(process);
        // The gateway never held the model; what its threads freed while relaying the answers
        // (their malloc arenas) goes back too.
        openclaw_reclaim::trim_heap();
        was_loaded.then(|| "its process ended".to_owned())
    }
}

/// Entry point of `openclaw model-worker`: serves `generate` requests from stdin until it closes.
/// Writes nothing but protocol lines to stdout.
pub fn run_model_worker() -> ExitCode {
    // SIGTERM/SIGINT are for the gateway: systemd stops a service by signalling its whole
    // cgroup, and a model process that died then would fail the answers the gateway is still
    // draining. This process ends when the gateway closes its stdin (or dies, which closes it).
    let ignored = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(signal, ignored.clone()) {
            eprintln!("openclaw model-worker: cannot set up signal {signal}: {e}");
        }
    }
    let stdin = std::io::stdin();
    let mut first = String::new();
    if stdin.lock().read_line(&mut first).is_err() || first.is_empty() {
        return ExitCode::SUCCESS;
    }
    let Ok(ToWorker::Init {
        name,
        model_path,
        context_tokens,
        threads,
        max_tokens,
    }) = serde_json::from_str(&first)
    else {
        eprintln!("openclaw model-worker: is started by the gateway, which speaks to it on stdin");
        return ExitCode::from(64);
    };
    let mut settings = LocalSettings::new(model_path);
    settings.context_tokens = context_tokens;
    settings.threads = threads;
    settings.max_tokens = max_tokens;

    // Requests in order; a `cancel` applies to the request read last (the parent sends one at
    // a time), so the flag is made by the reader, never raced by the generating thread.
    let (requests, incoming) = std::sync::mpsc::channel::<(ChatRequest, Arc<AtomicBool>)>();
    let current = Arc::new(Mutex::new(Arc::new(AtomicBool::new(false))));
    let reader_current = current.clone();
    let reader = std::thread::Builder::new()
        .name("model-worker-stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                match serde_json::from_str::<ToWorker>(&line) {
                    Ok(ToWorker::Generate { request }) => {
                        let flag = Arc::new(AtomicBool::new(false));
                        *reader_current.lock().unwrap_or_else(|p| p.into_inner()) = flag.clone();
                        if requests.send((request, flag)).is_err() {
                            break;
                        }
                    }
                    Ok(ToWorker::Cancel) => reader_current
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .store(true, Ordering::Relaxed),
                    Ok(ToWorker::Init { .. }) => {}
                    Err(e) => {
                        eprintln!("openclaw model-worker: unreadable request ({e}); stopping");
                        break;
                    }
                }
            }
        });
    if reader.is_err() {
        return ExitCode::FAILURE;
    }

    let shared = Shared::new(ModelState::Unloaded);
    let mut loaded = None;
    for (request, cancel) in incoming {
        if loaded.is_none() {
            match load(&name, &settings, &shared) {
                Ok(l) => {
                    let s = shared.status.lock().unwrap_or_else(|p| p.into_inner());
                    write_line(&FromWorker::Loaded {
                        memory_bytes: s.memory_bytes,
                        tools: s.tools.unwrap_or(false),
                        load_ms: s.load_time.map_or(0, |t| t.as_millis() as u64),
                    });
                    drop(s);
                    loaded = Some(l);
                }
                Err(e) => {
                    let absent = shared
                        .status
                        .lock()
                        .map(|s| s.state == ModelState::Absent)
                        .unwrap_or(false);
                    write_line(&FromWorker::LoadFailed {
                        absent,
                        message: e.message.clone(),
                    });
                    write_line(&failed(&e));
                    continue;
                }
            }
        }
        let Some(model) = loaded.as_ref() else {
            continue;
        };
        let (events, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let job = Job {
            request,
            events,
            cancel,
        };
        // Deltas go out as they come, from a thread of their own, so that writing to the pipe
        // never slows the generation down.
        std::thread::scope(|scope| {
            scope.spawn(move || {
                while let Some(msg) = rx.blocking_recv() {
                    match msg {
                        WorkerMsg::Delta(text) => write_line(&FromWorker::Delta { text }),
                        WorkerMsg::Done(Ok(completion)) => {
                            write_line(&FromWorker::Done { completion });
                        }
                        WorkerMsg::Done(Err(e)) => write_line(&failed(&e)),
                    }
                }
            });
            let result = generate(&name, &settings, model, &job);
            let _ = job.events.send(WorkerMsg::Done(result));
            drop(job);
        });
    }
    ExitCode::SUCCESS
}

fn failed(e: &ProviderError) -> FromWorker {
    FromWorker::Failed {
        kind: e.kind.label().to_owned(),
        message: e.message.clone(),
    }
}

/// One protocol line to stdout; the parent gone means there is nobody left to answer.
fn write_line(msg: &FromWorker) {
    if write_json_line(&mut std::io::stdout().lock(), msg).is_err() {
        std::process::exit(0);
    }
}

/// One message of the protocol, either way: its JSON, a newline, flushed.
fn write_json_line(out: &mut impl Write, msg: &impl Serialize) -> std::io::Result<()> {
    let mut line = serde_json::to_string(msg).map_err(std::io::Error::other)?;
    line.push('\n');
    out.write_all(line.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{StopReason, Usage};

    #[test]
    fn protocol_lines_round_trip() {
        let request = super::super::tests::a_tool_round();
        let line = serde_json::to_string(&ToWorker::Generate {
            request: request.clone(),
        })
        .unwrap_or_default();
        match serde_json::from_str::<ToWorker>(&line) {
            Ok(ToWorker::Generate { request: back }) => assert_eq!(back, request),
            other => panic!("{other:?}"),
        }
        let done = FromWorker::Done {
            completion: Completion {
                text: "Paris".into(),
                tool_calls: Vec::new(),
                usage: Usage {
                    input_tokens: 3,
                    output_tokens: 1,
                },
                stop: StopReason::EndTurn,
                provider: "local".into(),
            },
        };
        let line = serde_json::to_string(&done).unwrap_or_default();
        assert!(line.starts_with(r#"{"type":"done""#), "{line}");
        assert!(matches!(
            serde_json::from_str::<FromWorker>(&line),
            Ok(FromWorker::Done { .. })
        ));
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        let how = WorkerProcess {
            program: PathBuf::from("/nonexistent/openclaw"),
            args: vec!["model-worker".into()],
        };
        let settings = LocalSettings::new(PathBuf::from("/nonexistent/model.gguf"));
        let e = ModelProcess::spawn(&how, "local", &settings)
            .err()
            .unwrap_or_default();
        assert!(e.contains("cannot start the local model process"), "{e}");
        assert!(e.contains("/nonexistent/openclaw model-worker"), "{e}");
    }
}
