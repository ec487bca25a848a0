//! The one list of the portable tests: `tests/portable.rs` (host) and
//! `on-target/tests/core.rs` (Cortex-M3 under QEMU) each expand it once, with their own
//! harness attribute on the module, so a test added here runs on both and is named once.

/// Expands to `mod $name` holding one `#[test]` per portable body, under the attributes
/// given (the target's `#[defmt_test::tests]`; none on the host).
#[allow(unused_macros)]
macro_rules! portable_tests {
    ($(#[$attr:meta])* mod $name:ident) => {
        $(#[$attr])*
        mod $name {
            use crate::portable::{cancel, classify, codec, ledger};

            // --- ledger ---

            #[test]
            fn sequence_wraps_at_i32_max_like_the_broker() {
                ledger::sequence_wraps_at_i32_max_like_the_broker();
            }

            #[test]
            fn ledger_hands_out_ranges_across_the_wrap() {
                ledger::ledger_hands_out_ranges_across_the_wrap();
            }

            #[test]
            fn ledger_window_opens_after_the_first_success_and_closes_on_reset() {
                ledger::ledger_window_opens_after_the_first_success_and_closes_on_reset();
            }

            #[test]
            fn sequences_are_contiguous_and_the_window_opens_after_the_first_success() {
                ledger::sequences_are_contiguous_and_the_window_opens_after_the_first_success();
            }

            #[test]
            fn sequencer_sequences_wrap_past_i32_max() {
                ledger::sequencer_sequences_wrap_past_i32_max();
            }

            #[test]
            fn a_duplicate_answer_acks_the_sequence_without_an_offset() {
                ledger::a_duplicate_answer_acks_the_sequence_without_an_offset();
            }

            #[test]
            fn a_retriable_refusal_resends_the_same_stamp_in_order_after_backoff() {
                ledger::a_retriable_refusal_resends_the_same_stamp_in_order_after_backoff();
            }

            #[test]
            fn a_gap_fences_then_resends_under_the_bumped_epoch_from_sequence_zero() {
                ledger::a_gap_fences_then_resends_under_the_bumped_epoch_from_sequence_zero();
            }

            #[test]
            fn unknown_is_sticky_across_a_later_refusal() {
                ledger::unknown_is_sticky_across_a_later_refusal();
            }

            #[test]
            fn epoch_exhaustion_gets_a_new_producer_id_instead_of_wrapping() {
                ledger::epoch_exhaustion_gets_a_new_producer_id_instead_of_wrapping();
            }

            #[test]
            fn each_batch_gets_exactly_one_outcome_and_stale_tokens_are_refused() {
                ledger::each_batch_gets_exactly_one_outcome_and_stale_tokens_are_refused();
            }

            #[test]
            fn enqueue_rejects_what_it_cannot_hold() {
                ledger::enqueue_rejects_what_it_cannot_hold();
            }

            #[test]
            fn bad_configuration_is_rejected_with_what_to_change() {
                ledger::bad_configuration_is_rejected_with_what_to_change();
            }

            #[test]
            fn producer_id_request_retries_with_backoff_and_stops_on_authorization_failure() {
                ledger::producer_id_request_retries_with_backoff_and_stops_on_authorization_failure();
            }

            // --- cancel ---

            #[test]
            fn cancel_row_buffered() {
                cancel::cancel_row_buffered();
            }

            #[test]
            fn cancel_row_stamped_not_written() {
                cancel::cancel_row_stamped_not_written();
            }

            #[test]
            fn cancel_row_stamped_maybe_written() {
                cancel::cancel_row_stamped_maybe_written();
            }

            #[test]
            fn cancel_row_in_flight() {
                cancel::cancel_row_in_flight();
            }

            #[test]
            fn cancel_row_decided() {
                cancel::cancel_row_decided();
            }

            #[test]
            fn expiry_rows() {
                cancel::expiry_rows();
            }

            #[test]
            fn give_up_rules() {
                cancel::give_up_rules();
            }

            #[test]
            fn fatal_rows() {
                cancel::fatal_rows();
            }

            #[test]
            fn restore_rows() {
                cancel::restore_rows();
            }

            #[test]
            fn cancel_applies_the_same_decision_as_a_deadline() {
                cancel::cancel_applies_the_same_decision_as_a_deadline();
            }

            #[test]
            fn a_late_answer_after_the_deadline_does_not_change_the_outcome() {
                cancel::a_late_answer_after_the_deadline_does_not_change_the_outcome();
            }

            #[test]
            fn unreachable_broker_gives_not_persisted_at_the_deadline() {
                cancel::unreachable_broker_gives_not_persisted_at_the_deadline();
            }

            #[test]
            fn written_then_connection_died() {
                cancel::written_then_connection_died();
            }

            // --- classify ---

            #[test]
            fn classification_success_and_duplicate_are_persisted() {
                classify::classification_success_and_duplicate_are_persisted();
            }

            #[test]
            fn classification_every_row() {
                classify::classification_every_row();
            }

            #[test]
            fn classification_transport_failures() {
                classify::classification_transport_failures();
            }

            #[test]
            fn init_producer_id_errors_retry_unless_the_cluster_refuses_for_good() {
                classify::init_producer_id_errors_retry_unless_the_cluster_refuses_for_good();
            }

            #[test]
            fn refused_and_unknown_answers_decide_the_batch_and_fence() {
                classify::refused_and_unknown_answers_decide_the_batch_and_fence();
            }

            // --- codec ---

            #[test]
            fn crc32c_known_answers() {
                codec::crc32c_known_answers();
            }

            #[test]
            fn varint_and_zigzag_known_encodings() {
                codec::varint_and_zigzag_known_encodings();
            }

            #[test]
            fn malformed_varints_are_errors() {
                codec::malformed_varints_are_errors();
            }

            #[test]
            fn record_batch_built_and_stamped_matches_librdkafkas_byte_for_byte() {
                codec::record_batch_built_and_stamped_matches_librdkafkas_byte_for_byte();
            }

            #[test]
            fn record_batch_decodes_to_its_known_fields() {
                codec::record_batch_decodes_to_its_known_fields();
            }

            #[test]
            fn record_batch_corruption_is_detected() {
                codec::record_batch_corruption_is_detected();
            }

            #[test]
            fn every_strict_prefix_of_a_batch_is_an_error() {
                codec::every_strict_prefix_of_a_batch_is_an_error();
            }

            #[test]
            fn frame_decoder_handles_partial_reads_and_refuses_oversized_frames() {
                codec::frame_decoder_handles_partial_reads_and_refuses_oversized_frames();
            }

            #[test]
            fn every_strict_prefix_of_a_fixture_is_an_error_and_so_is_a_trailing_byte() {
                codec::every_strict_prefix_of_a_fixture_is_an_error_and_so_is_a_trailing_byte();
            }

            #[test]
            fn mutated_fixtures_never_panic() {
                codec::mutated_fixtures_never_panic();
            }

            #[test]
            fn requests_decode_to_their_known_fields_and_reencode_identically() {
                codec::requests_decode_to_their_known_fields_and_reencode_identically();
            }

            #[test]
            fn api_versions_responses_negotiate_the_known_versions() {
                codec::api_versions_responses_negotiate_the_known_versions();
            }

            #[test]
            fn metadata_response_has_the_known_broker_and_partitions() {
                codec::metadata_response_has_the_known_broker_and_partitions();
            }

            #[test]
            fn init_producer_id_response_grants_id_1_epoch_0() {
                codec::init_producer_id_response_grants_id_1_epoch_0();
            }

            #[test]
            fn produce_response_acknowledges_offset_0() {
                codec::produce_response_acknowledges_offset_0();
            }

            #[test]
            fn unknown_api_is_reported_and_its_header_still_read() {
                codec::unknown_api_is_reported_and_its_header_still_read();
            }
        }
    };
}
