//! Short tones through the Web Audio API, made on the spot (no audio asset to ship or cache). One
//! `AudioContext` per caller, created on first use; a browser that allows no sound before a user gesture, or has
//! no Web Audio, stays silent, harmlessly.

use std::cell::RefCell;

use web_sys::{AudioContext, OscillatorType};

/// Plays a quarter-second sine tone at `hz` and `volume` (0–1); `None` when the page has no sound.
pub(crate) fn tone(audio: &RefCell<Option<AudioContext>>, hz: f32, volume: f32) -> Option<()> {
    let mut slot = audio.borrow_mut();
    if slot.is_none() {
        *slot = AudioContext::new().ok();
    }
    let ac = slot.as_ref()?;
    let osc = ac.create_oscillator().ok()?;
    let gain = ac.create_gain().ok()?;
    osc.set_type(OscillatorType::Sine);
    osc.frequency().set_value(hz);
    let t = ac.current_time();
    gain.gain().set_value_at_time(volume.clamp(0.0, 1.0) * 0.1, t).ok()?;
    gain.gain().exponential_ramp_to_value_at_time(0.0001, t + 0.25).ok()?;
    osc.connect_with_audio_node(&gain).ok()?;
    gain.connect_with_audio_node(&ac.destination()).ok()?;
    osc.start_with_when(t).ok()?;
    osc.stop_with_when(t + 0.25).ok()
}
