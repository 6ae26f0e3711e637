//! `tts.speak` with the tts crate: speech-dispatcher on Linux (espeak-ng, festival, … behind it),
//! AVFoundation on macOS, WinRT on Windows.

use crate::capabilities::{Backend, CapabilityError, Speech};
use openclaw_protocol::node::SpeakParams;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// How long speech may take to start before the call fails (the synthesiser and audio device
/// are started on demand by speech-dispatcher, which takes a moment the first time).
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Utterances that began speaking, as reported by the engine's callbacks.
#[derive(Default)]
struct Started {
    ids: Mutex<Vec<tts::UtteranceId>>,
    changed: Condvar,
}

struct Tts {
    // tts::Tts is not thread-safe inside (it is an Rc); one lock serialises every use.
    engine: Mutex<tts::Tts>,
    started: Arc<Started>,
}

impl Speech for Tts {
    fn speak(&self, p: &SpeakParams) -> Result<(), CapabilityError> {
        let failed = |what: &str, e: tts::Error| {
            CapabilityError::Failed(format!("the speech engine could not {what}: {e}"))
        };
        let mut engine = self.engine.lock().map_err(|_| crashed())?;
        if let Some(name) = &p.voice {
            let voices = engine.voices().map_err(|e| failed("list its voices", e))?;
            let voice = voices
                .iter()
                .find(|v| v.name().eq_ignore_ascii_case(name) || v.id() == *name)
                .or_else(|| {
                    voices
                        .iter()
                        .find(|v| v.language().as_str().eq_ignore_ascii_case(name))
                })
                .ok_or_else(|| {
                    CapabilityError::InvalidParams(format!(
                        "no voice `{name}` on this node ({} voices; use a name or a language tag like en-US)",
                        voices.len()
                    ))
                })?;
            engine
                .set_voice(voice)
                .map_err(|e| failed("select the voice", e))?;
        }
        let rate = match p.rate {
            Some(r) if !(0.1..=10.0).contains(&r) => {
                return Err(CapabilityError::InvalidParams(format!(
                    "rate {r} is outside 0.1 to 10 (1.0 is normal speed)"
                )));
            }
            Some(r) => to_engine_rate(
                r,
                engine.min_rate(),
                engine.normal_rate(),
                engine.max_rate(),
            ),
            None => engine.normal_rate(),
        };
        engine
            .set_rate(rate)
            .map_err(|e| failed("set the rate", e))?;
        let id = engine
            .speak(p.text.as_str(), false)
            .map_err(|e| failed("take the text", e))?
            .ok_or_else(|| {
                CapabilityError::Failed("the speech engine gave no utterance id".into())
            })?;
        drop(engine);
        // Answer once speech has really started, so "spoken" means the engine is producing audio.
        let ids = self.started.ids.lock().map_err(|_| crashed())?;
        let (mut ids, timeout) = self
            .started
            .changed
            .wait_timeout_while(ids, START_TIMEOUT, |ids| !ids.contains(&id))
            .map_err(|_| crashed())?;
        if timeout.timed_out() {
            return Err(CapabilityError::Failed(format!(
                "the speech engine took the text but did not start speaking within {} s: check its audio output (speech-dispatcher's log)",
                START_TIMEOUT.as_secs()
            )));
        }
        ids.retain(|i| *i != id);
        Ok(())
    }
}

/// A lock poisoned by a panic inside the engine on an earlier call.
fn crashed() -> CapabilityError {
    CapabilityError::Failed("the speech engine crashed earlier".into())
}

/// Maps a speed factor (1.0 = normal) onto the engine's own scale: below 1 between its minimum
/// and normal rate, above 1 between normal and maximum (reached at 3×).
fn to_engine_rate(factor: f32, min: f32, normal: f32, max: f32) -> f32 {
    if factor < 1.0 {
        normal - (normal - min) * ((1.0 - factor) / 0.9).min(1.0)
    } else {
        normal + (max - normal) * ((factor - 1.0) / 2.0).min(1.0)
    }
}

/// Ready when the platform's speech engine answers and has at least one voice.
pub fn probe() -> Backend<dyn Speech> {
    let engine = match tts::Tts::default() {
        Ok(engine) => engine,
        Err(e) => {
            return Backend::Missing(format!(
                "no speech engine ({e}): install speech-dispatcher and a voice such as espeak-ng"
            ));
        }
    };
    match engine.voices() {
        Ok(v) if v.is_empty() => {
            return Backend::Missing(
                "the speech engine has no voices: install one (espeak-ng for speech-dispatcher)"
                    .into(),
            );
        }
        Ok(_) => {}
        Err(e) => return Backend::Missing(format!("the speech engine does not answer: {e}")),
    }
    let started = Arc::new(Started::default());
    let seen = started.clone();
    let callback = engine.on_utterance_begin(Some(Box::new(move |id| {
        if let Ok(mut ids) = seen.ids.lock() {
            ids.push(id);
            seen.changed.notify_all();
        }
    })));
    if let Err(e) = callback {
        return Backend::Missing(format!("the speech engine cannot report progress: {e}"));
    }
    Backend::Ready(Arc::new(Tts {
        engine: Mutex::new(engine),
        started,
    }))
}

#[cfg(test)]
mod tests {
    use super::to_engine_rate;

    #[test]
    fn speed_factors_map_onto_the_engine_scale() {
        // speech-dispatcher: -100 … 0 … 100
        assert_eq!(to_engine_rate(1.0, -100.0, 0.0, 100.0), 0.0);
        assert_eq!(to_engine_rate(0.1, -100.0, 0.0, 100.0), -100.0);
        assert_eq!(to_engine_rate(2.0, -100.0, 0.0, 100.0), 50.0);
        assert_eq!(to_engine_rate(9.0, -100.0, 0.0, 100.0), 100.0);
        // AVFoundation: 0.1 … 0.5 … 2.0
        assert!((to_engine_rate(0.55, 0.1, 0.5, 2.0) - 0.3).abs() < 1e-6);
    }
}
