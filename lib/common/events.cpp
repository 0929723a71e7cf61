// The list of log events and its markdown table (see events.h).
#include "common/events.h"

#include <fmt/format.h>

namespace pcmoe::events {

// clang-format off
const std::vector<EventInfo>& all() {
  static const std::vector<EventInfo> kEvents = {
      // ---- hub (pcmoe-hub) ----
      {"hub.bad_message", "peer, party, type, code, reason", "a message was refused with an error reply (rate-limited per peer)"},
      {"hub.bad_message_suppressed", "peer, count", "how many hub.bad_message lines the rate limit dropped for one peer"},
      {"hub.checkpoint_complete", "step", "every live party answered the checkpoint request"},
      {"hub.checkpoint_done", "party, step, ok, path", "one party's checkpoint_done (warn when it failed)"},
      {"hub.checkpoint_requested", "step, parties", "checkpoint requests went out between turns (pcmoe-ctl checkpoint)"},
      {"hub.checkpoint_timeout", "step, pending", "parties did not answer a checkpoint request within 60 s; turns go on"},
      {"hub.control", "action, ok, message", "a pcmoe-ctl command (pause, resume, checkpoint, snapshot, stop) and the answer"},
      {"hub.exit_now", "reason, step", "a second stop request: hub_state.json written, exit without the end sequence"},
      {"hub.fast_forward", "party, from, to", "a resumed hub moved its global step on to the step a party had trained: those steps are not trained twice"},
      {"hub.finished", "reason, step, total_steps", "the end sequence is over: release sent to the parties"},
      {"hub.http_listening", "url", "the read-only status page, status JSON and /metrics are served here (hub.http)"},
      {"hub.no_operator", "reason", "CURVE without hub.operators or hub.ctl_key_file: no pcmoe-ctl can control or query this hub"},
      {"hub.party_bye", "party, reason, step", "a party said bye (done at the end, or leaving)"},
      {"hub.party_error", "party, code, reason", "a party sent an error message to the hub"},
      {"hub.party_joined", "party, index, endpoint, rejoin, resume_step", "a party registered (rejoin: it had been registered before)"},
      {"hub.party_lost", "party, reason", "a party was marked lost (silent, bye, or named by failed turns); its experts are masked"},
      {"hub.party_reconnected", "party, old_peer, peer, same_connection", "a live party's own process said hello again (its session token): on a new connection, or after unanswered heartbeats; nothing it did is dropped"},
      {"hub.party_rejected", "party, code, reason", "a hello was refused (unknown party, wrong key, other preset hash, ...)"},
      {"hub.party_replaced", "party, old_peer, peer", "a party registered again on another connection; the old one is dropped"},
      {"hub.pool_written", "snapshot, step, tensors, bytes", "a complete expert-pool snapshot was written to pool.pcmoe"},
      {"hub.resume_ahead", "party, resume_step, step", "a party's checkpoint is ahead of the resumed hub (hub_state.json was older)"},
      {"hub.resume_load_dropped", "reason", "the saved expert load did not fit the model: it starts from zero"},
      {"hub.resume_pool_dropped", "reason", "the saved pool.pcmoe could not be used: the next snapshot rebuilds it"},
      {"hub.resumed", "from, run_id, step, saved_at", "the hub continues the run saved in hub_state.json (hub.resume)"},
      {"hub.round_done", "step, parties, left_out, applied, norm, scale, why, ms", "a concurrent round ended: its expert update applied (info) or dropped (warn, why)"},
      {"hub.round_norm_not_finite", "party, step", "a host's experts had non-finite gradients in a round: its expert update is dropped"},
      {"hub.round_open", "step, parties", "a concurrent round opened: every listed party trains global step `step`"},
      {"hub.round_party_lost", "party, step, stage, norm_in", "a party of an open round was lost: in training it is left out, in norms the round is dropped, in commit (norm_in) it was already counted"},
      {"hub.round_straggler", "party, step, deadline_ms", "a party missed hub.round_deadline_ms and is left out of the round"},
      {"hub.snapshot_incomplete", "snapshot, reason", "a snapshot round ended without every expert: the previous pool stays"},
      {"hub.snapshot_received", "party, snapshot, step", "one host's experts arrived for a snapshot round (debug)"},
      {"hub.snapshot_rejected", "party, snapshot, code, reason", "a snapshot did not match the layout and was refused"},
      {"hub.snapshot_round", "snapshot, final, step, parties", "a snapshot round started (periodic, requested or final)"},
      {"hub.snapshot_superseded", "snapshot", "a snapshot round in progress was dropped because the end began"},
      {"hub.snapshot_timeout", "snapshot, pending", "hosts did not send their experts within 30 s"},
      {"hub.started", "run_id, endpoint, curve, parties, total_steps, ctl_file", "the hub is bound and waiting for its parties"},
      {"hub.stats", "state, step, live, step_ms_mean, slowest, bytes_in, bytes_out", "every 10 s: counters, and each party's recent step time (which party is slow)"},
      {"hub.step", "party, step, loss, tokens", "one accepted step report (debug)"},
      {"hub.stop_sent", "reason, parties, pool_step", "stop went to every live party: they evaluate, checkpoint, export"},
      {"hub.stopping", "reason, step, total_steps", "the end sequence began (finished, or operator: pcmoe-ctl stop / SIGINT / SIGTERM)"},
      {"hub.training_started", "parties, step, total_steps", "every configured party is alive: turns begin"},
      {"hub.turn", "turn, round, party, step_begin, n_steps", "a turn was granted"},
      {"hub.turn_abandoned", "turn, party, reason", "a turn ended without turn_done (its holder was lost or re-registered)"},
      {"hub.turn_done", "turn, party, ok, steps_done, reason, suspect", "a turn ended (warn when it failed or disagrees with the reports)"},
      {"hub.turn_order", "round, order", "the randomised order of a new round of turns"},
      {"hub.write_failed", "what, error", "hub_state.json, pool.pcmoe, expert_load.jsonl or ctl.json could not be written"},
      // ---- party (pcmoe-party) ----
      {"party.abort_unacknowledged", "host, error", "a host did not acknowledge step_abort"},
      {"party.bad_hub_message", "reason", "a message from the hub did not decode"},
      {"party.checkpoint", "path, step", "the party's checkpoint was written"},
      {"party.checkpoint_failed", "path, error, failures, retry_in_ms", "a checkpoint could not be written (disk full, ...): the previous one is kept, the daemon goes on and tries again"},
      {"party.checkpoint_recovered", "path, failures", "a checkpoint was written again after failed attempts"},
      {"party.done", "steps_done, eval_loss, eval_bpb, peak_memory_bytes, bytes_sent", "the party's final summary after stop"},
      {"party.eval", "step, eval_loss, eval_bpb", "a held-out evaluation"},
      {"party.eval_failed", "step, error", "an evaluation failed (the step itself was applied)"},
      {"party.exit", "code", "the last line of a party process"},
      {"party.export_failed", "error", "the exported model could not be written"},
      {"party.experts_from_pool", "pool_step, tensors", "a party restarted without its checkpoint took the experts it hosts from the hub's pool"},
      {"party.exported", "path, pool_step", "model.pcmoe (its backbone + the shared pool) was written"},
      {"party.finishing", "reason", "stop received: final evaluation, checkpoint, export"},
      {"party.footprint", "total_bytes, minimum_bytes", "the memory estimate at start"},
      {"party.fresh_midrun", "step", "restarted without a checkpoint while the federation trains: a new backbone; the hosted experts come from the pool"},
      {"party.hub_error", "code, reason", "the hub answered with an error"},
      {"party.hub_gone_after_bye", "silent_ms", "the hub went quiet after this party's bye: exit 0"},
      {"party.hub_lost", "error", "nothing from the hub for party.hub_timeout_ms: checkpoint, exit 3"},
      {"party.hub_send_failed", "type", "a message to the hub could not be queued within 1 s and was dropped"},
      {"party.joined", "index, parties, expert_endpoint", "the hub's welcome: placement known, serving experts"},
      {"party.join_waiting", "code, reason", "the hub answered duplicate_party (its previous process is still registered): hello again until party.hub_timeout_ms"},
      {"party.memory_limit", "limit_bytes, estimate_bytes, minimum_bytes", "party.memory_limit_mb applied"},
      {"party.no_pool", "reason", "no complete expert pool at the end: model not exported"},
      {"party.peer_connect", "peer, index, endpoint", "connected to another party's expert service"},
      {"party.rejoin_refused", "code, reason", "the hub refused a rejoin hello"},
      {"party.rejoined", "step, index, run_id", "registered again after the hub lost it or restarted"},
      {"party.rejoining", "reason, step", "the hub does not know this party (any more): hello again"},
      {"party.resumed", "path, step, steps_done", "the party restored its checkpoint"},
      {"party.signal", "signal", "SIGINT/SIGTERM: checkpoint, bye, exit 0"},
      {"party.stale_reply", "peer, type", "a late reply of an earlier request was dropped (debug)"},
      {"party.start", "party, device, torch", "the party process started"},
      {"party.step_aborted", "step, reason", "a step failed and was aborted everywhere (nothing applied)"},
      {"party.turn_failed", "step, suspect, reason", "a turn ended early; suspect is the host that failed to answer"},
      {"party.unexpected_hub_message", "type", "a hub message that makes no sense in this state"},
      {"party.unexpected_turn", "turn, state", "a turn while one is open, or while finishing: ignored"},
      // ---- the party's expert service and host ----
      {"host.out_of_turn", "requester, step, refused, reason", "a train request from a party not holding the turn for that step was refused busy (debug the first time; warn at the 20th)"},
      {"host.round_commit", "step, apply, params", "a concurrent round's expert update was applied or dropped on this host (debug)"},
      {"host.round_dropped", "step, reason", "a round this host never saw end was dropped when a later one opened"},
      {"host.round_rows_dropped", "step, kept", "rows kept for a backward that never came were dropped at the round's end (debug)"},
      {"host.step_dropped", "requester, step, reason", "a requester's open step was dropped (aborted, timed out, replaced, turn over)"},
      {"host.step_end_with_pending", "requester, step, pending", "step_end arrived while forward rows still waited for backward"},
      {"server.bad_message", "code, reason, bytes", "the expert service refused a message"},
      {"server.recv_failed", "error", "the expert service's socket failed to receive"},
      {"server.stats", "requests, bad_messages, bytes_received, bytes_sent", "every 10 s: the expert service's counters"},
      // ---- pcmoe-central and pcmoe-eval ----
      {"train.checkpoint", "path, step", "pcmoe-central wrote its checkpoint"},
      {"train.done", "step, eval_loss, eval_bpb", "pcmoe-central's summary"},
      {"train.eval", "step, eval_loss, eval_bpb", "a held-out evaluation"},
      {"train.footprint", "estimate_bytes", "the memory estimate at start"},
      {"train.init_from", "path", "the model starts from run.init_from (a shared checkpoint)"},
      {"train.party_done", "party, steps, eval_loss", "mode protocol: one simulated party's summary"},
      {"train.resumed", "path, step", "pcmoe-central restored its checkpoint (run.resume)"},
      {"train.start", "mode, device", "pcmoe-central started"},
      {"train.step", "step, loss, aux_loss, lr", "every run.log_every steps"},
      {"train.stop_at_step", "step", "run.stop_at_step reached"},
      {"train.time_budget_spent", "minutes, step", "run.max_minutes reached"},
      {"model.cuda_sync", "PCMOE_CUDA_SYNC, applied", "bench only: how host threads wait for the device, from the environment (applied: yes, or why not)"},
      // ---- network (any process) ----
      {"net.auth_denied", "key, address, domain, why", "a CURVE client key is not on this socket's allow-list"},
      {"net.auth_ok", "key, address, domain", "a CURVE client was accepted (debug)"},
      {"net.auth_refused", "endpoint, status", "the server refused this process's CURVE key: check the keys in both configs"},
      {"net.bad_io_threads", "PCMOE_ZMQ_IO_THREADS", "the variable is not 1..16: the default is used"},
      {"net.bound", "endpoint, curve", "a socket was bound (debug)"},
      {"net.curve_any_client", "domain", "a CURVE socket without an allow-list accepts any key"},
      {"net.handshake_failed", "endpoint, failures", "CURVE handshakes with a server fail without an answer: the server's public key configured here is probably wrong"},
      {"net.key_file_mode", "path, mode", "a key file is readable by others (chmod 600 it)"},
      {"net.zap_error", "error", "the CURVE authentication handler failed"},
      // ---- any process ----
      {"data.epoch_start", "split, epoch, files", "the data loader began another pass over its files (debug)"},
      {"model.grouped_mm_disabled", "reason", "grouped expert GEMM unavailable: per-expert loop"},
      {"privacy.shared_backbone", "message, rotate_hidden, row_clip, row_noise_std, local_only_layers", "the backbone starts from the federation's shared initialisation (privacy.shared_init): hosts may decode tokens; the defences in use"},
      {"privacy.row_mechanism", "row_clip, row_noise_std, noise_multiplier, delta, eps_per_release, eps_per_pass, passes_max, eps_run_max", "the (epsilon, delta) of the rows this party sends (privacy.row_clip with row_noise_std; RDP accounting)"},
      {"privacy.row_noise_unbounded", "row_noise_std", "row noise without privacy.row_clip: no formal guarantee"},
      {"audit.capture_on", "path, what, every, max_mb", "PRIVACY AUDIT CAPTURE: this party records federation traffic to disk (audit.capture; audits only)"},
      {"audit.capture_full", "path, records, bytes", "a capture file reached audit.capture_max_mb: capture stopped"},
      // ---- pcmoe-attack ----
      {"attack.own_rows", "model, batches", "the attacker runs its own model on its own data (rows to train on)"},
      {"attack.victim_rows", "victim, model", "the same with a victim's model (the white-box bound)"},
      {"attack.pair", "victim, host, layer, rows", "one victim -> host pair and MoE layer scored"},
      {"process.fatal", "kind, error", "the process ends on an error (its exit code says which kind)"},
  };
  return kEvents;
}
// clang-format on

std::string markdown() {
  std::string s = "| event | main fields | meaning |\n|---|---|---|\n";
  for (const auto& e : all()) {
    s += fmt::format("| `{}` | {} | {} |\n", e.name, e.fields.empty() ? "-" : e.fields, e.meaning);
  }
  return s;
}

}  // namespace pcmoe::events
