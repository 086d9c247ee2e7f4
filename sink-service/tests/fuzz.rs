//! Property tests over arbitrary bytes: the record decoder and the whole ingest path never
//! panic, and whatever is not a valid record is quarantined, never stored.

mod common;

use proptest::prelude::*;
use veil_sink_service::ingest::Outcome;

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn the_decoder_takes_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = veil_wire::Record::from_slice(&bytes);
    }

    #[test]
    fn mutated_records_are_never_stored_as_valid(flip in 0usize..4096, bit in 0u8..8, cut in 0usize..4096) {
        let dir = common::temp(&format!("fuzz-{flip}-{bit}-{cut}"));
        let store = common::store(&dir);
        let mut ingest = common::ingest(&store);
        let mut device = common::Device::new("acme", "cam-1", 1);
        let records = device.records(2, 10);
        let mut bytes = records[0].to_vec();
        let at = flip % bytes.len();
        bytes[at] ^= 1 << bit;
        if cut % 3 == 0 {
            bytes.truncate(cut % bytes.len());
        }
        let outcome = ingest.take(&records[0].key_expr(), &bytes).unwrap();
        if bytes != records[0].to_vec() {
            // Either refused outright, or (a change JSON does not see, e.g. in whitespace) the
            // very same record.
            match &outcome {
                Outcome::Quarantined(_) => {}
                _ => prop_assert_eq!(veil_wire::Record::from_slice(&bytes).ok(), Some(records[0].clone())),
            }
        }
        drop(ingest);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
