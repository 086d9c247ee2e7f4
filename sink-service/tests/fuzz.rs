// SPDX-License-Identifier: MIT OR Apache-2.0
//! Property tests over arbitrary bytes: the record decoder and the whole ingest path never
//! panic, and whatever is not a valid record is quarantined, never stored.

mod common;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

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
        // The mutant first, then the device's real chain: the mutant must neither be stored
        // as valid nor keep the real records from being stored.
        ingest.take(&records[0].key_expr(), &bytes).unwrap();
        common::take_all(&mut ingest, &records);
        let report = veil_sink_service::verify::verify(&store).unwrap();
        prop_assert!(report.ok(), "{:?}", report.errors);
        prop_assert_eq!(report.records, records.len() as u64);
        let stored = veil_sink_service::query::history(
            &store,
            &zenoh::key_expr::KeyExpr::try_from("veil/**").unwrap(),
            veil_sink_service::query::parse_range("").unwrap(),
            Some(&records[0].tenant),
            &|_, _, _, _| true,
        )
        .unwrap();
        for (_, b) in stored {
            let r = veil_wire::Record::from_slice(&b).unwrap();
            prop_assert!(records.contains(&r));
        }
        drop(ingest);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
