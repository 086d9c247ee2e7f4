// SPDX-License-Identifier: MIT OR Apache-2.0
//! The GStreamer side of the event contract (`veil_wire::event`): an [`Event`] as a
//! `GstStructure`, the form it takes as a custom downstream event (ordered with the video, for
//! `auditsink`) and as an element message on the bus (for applications).
//!
//! The structure is named by the event ([`EventKind::name`]) and carries the whole body as JSON
//! in `body`, so any consumer — ours, a Python script, a Zenoh client — decodes the same
//! document; a few scalar fields are copied out for quick reading on the bus:
//!
//! | event | scalar fields |
//! |---|---|
//! | window | `window-start`, `window-end` (RFC 3339), `partial`, `opportunities-to-see`, `watchers` |
//! | step | `step`, `start`, `end`, `duration-s` |
//! | compliance | `cycle`, `status`, `start`, `end`, `cycle-time-s` |
//! | inspection | `part`, `decision` |
//! | image | `part` |
//! | time discontinuity | `cause`, `gap-s` |
//!
//! Every one has `capture-time` (RFC 3339: the time of the record it becomes) and, from the
//! aggregator, `pts` (u64 ns: the frame that produced it). No field identifies anyone: no track
//! ids, no boxes; images only under an explicit retention setting.

pub use veil_wire::event::*;

/// The event as a structure (see the module's table).
pub fn to_structure(event: &Event) -> gst::Structure {
    let b = gst::Structure::builder(event.name());
    let b = match event {
        Event::Window(w) => b
            .field("window-start", w.window_start.as_str())
            .field("window-end", w.window_end.as_str())
            .field("partial", w.partial)
            .field("opportunities-to-see", w.opportunities_to_see)
            .field("watchers", w.watchers),
        Event::Step(s) => b
            .field("step", s.step.as_str())
            .field("start", s.start.as_str())
            .field("end", s.end.as_str())
            .field("duration-s", s.duration_s),
        Event::Compliance(c) => b
            .field("cycle", c.cycle)
            .field("status", c.status.as_str())
            .field("start", c.start.as_str())
            .field("end", c.end.as_str())
            .field("cycle-time-s", c.cycle_time_s),
        Event::Inspection(i) => b
            .field("part", i.part)
            .field("decision", i.decision.as_str()),
        Event::Image(i) => b.field("part", i.part),
        Event::Discontinuity(d) => b.field("cause", d.cause.as_str()).field("gap-s", d.gap_s),
    };
    b.field("capture-time", event.capture_time())
        .field("body", event.body().to_string())
        .build()
}

/// Reads an event back from its structure: `None` for structures that are not Veil events,
/// an error for a Veil event whose body does not read.
pub fn from_structure(s: &gst::StructureRef) -> Option<Result<Event, EventError>> {
    let kind = EventKind::from_name(s.name().as_str())?;
    Some(match s.get::<&str>("body") {
        Ok(body) => Event::from_body(kind.name(), body),
        Err(e) => Err(EventError::Body {
            name: kind.name(),
            reason: e.to_string(),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_a_structure() {
        gst::init().unwrap();
        let mut w = MetricsWindow {
            version: 1,
            window_start: "2026-11-23T10:00:00.000000000Z".into(),
            window_end: "2026-11-23T10:01:00.000000000Z".into(),
            opportunities_to_see: 3,
            ..Default::default()
        };
        w.zone_flows.insert("a->b".into(), 1);
        let event = Event::Window(w);
        let s = to_structure(&event);
        assert_eq!(s.name(), EventKind::Window.name());
        assert_eq!(s.get::<u32>("opportunities-to-see").unwrap(), 3);
        assert_eq!(
            s.get::<&str>("capture-time").unwrap(),
            "2026-11-23T10:01:00.000000000Z"
        );
        assert_eq!(from_structure(&s).unwrap().unwrap(), event);
        let step = Event::Step(StepEvent {
            step: "pick".into(),
            start: "a".into(),
            end: "b".into(),
            duration_s: 1.0,
        });
        let s = to_structure(&step);
        assert_eq!(s.get::<&str>("step").unwrap(), "pick");
        assert_eq!(from_structure(&s).unwrap().unwrap(), step);
        // Not ours: none; ours with a broken body: an error.
        assert!(from_structure(&gst::Structure::new_empty("other")).is_none());
        let broken = gst::Structure::builder(EventKind::Compliance.name())
            .field("body", "{")
            .build();
        assert!(from_structure(&broken).unwrap().is_err());
    }
}
