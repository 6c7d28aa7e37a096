// The dev cluster's model of a TigerBeetle primary's pipeline (PipelineOptions in
// server_options.h), without sockets or timers: a FIFO request queue, at most `prepares_max`
// prepares in flight, each committed `prepare_latency` after its admission, in op (admission)
// order. The server (server.cc) feeds it arriving requests, executes each admitted request at
// once (so execution order = admission order) and sends the held replies when they commit.
//
// Not thread-safe: the server's io thread owns it.
//
//   PreparePipeline pipeline(options.faults.pipeline);
//   if (auto client = RequestClient(bytes); client && pipeline.active()) {
//     if (pipeline.Holds(*client)) { /* drop: already queued or preparing */ }
//     else if (PipelinedClient(bytes, protocol.sessions()) &&
//              !pipeline.Enqueue({id, *client, copy_of_bytes})) { /* drop: queue full */ }
//   }
//   while (auto sends = pipeline.PopCommitted(now)) Deliver(*sends);
//   while (auto request = pipeline.NextToAdmit()) { execute; pipeline.Admitted(client, now, sends)
//                                                   or pipeline.Abandon(client); }
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "client_core/replica/replica_protocol.h"
#include "client_core/replica/session_table.h"
#include "client_core/u128.h"
#include "devcluster/server_options.h"

namespace tb::devcluster {

// The client of a request message (command request, client not 0), or nullopt.
std::optional<u128> RequestClient(std::span<const uint8_t> message);

// The client of a message that a real primary would turn into a prepare: a request (not a ping)
// that is a register of an unknown client or a newer request of a known one. Duplicates, old
// requests and requests of unknown clients are answered (or dropped) at once, as by a primary,
// and yield nullopt, as does anything too short to be a request. Check Holds() first: a
// request admitted here is committed in `sessions` already, so its retry looks like a duplicate.
std::optional<u128> PipelinedClient(std::span<const uint8_t> message,
                                    const replica::SessionTable& sessions);

class PreparePipeline {
 public:
  using Clock = std::chrono::steady_clock;
  using Sends = absl::InlinedVector<replica::Send, 2>;

  struct Request {
    replica::ConnectionId connection = 0;
    u128 client = 0;
    std::vector<uint8_t> message;  // The whole message as framed.
  };

  explicit PreparePipeline(const PipelineOptions& options);  // Asserted valid.

  // Takes effect at once, also for prepares in flight (their latency counts from admission).
  void SetOptions(const PipelineOptions& options);  // Asserted valid.
  const PipelineOptions& options() const { return options_; }

  // Requests must go through the pipeline: the latency is on, or some are still in it.
  bool active() const;
  // Whether `client` has a request queued or preparing.
  bool Holds(u128 client) const { return clients_.contains(client); }

  // Appends to the request queue; false (nothing kept) when every prepare slot is taken and the
  // queue holds requests_queued_max requests. `request.client` must not be held (asserted).
  bool Enqueue(Request request);
  // The oldest queued request if a prepare slot is free. Its client stays held: the caller must
  // call Admitted() or Abandon() for it before the next NextToAdmit().
  std::optional<Request> NextToAdmit();
  // The request of `client` was executed at `now`; `sends` are its reply, held until it commits.
  void Admitted(u128 client, Clock::time_point now, Sends sends);
  // The request of `client` was not executed (dropped, evicted, a duplicate): no slot is used.
  void Abandon(u128 client);

  // The reply of the oldest prepare if it has committed by `now` (op order: a younger prepare
  // never commits before an older one).
  std::optional<Sends> PopCommitted(Clock::time_point now);
  // When the oldest prepare commits; nullopt if none is in flight.
  std::optional<Clock::time_point> NextCommit() const;

  // Forgets every queued and preparing request (server stop).
  void Clear();

  size_t prepares() const { return prepares_.size(); }
  size_t queued() const { return queue_.size(); }
  uint64_t prepares_max_seen() const { return prepares_max_seen_; }

 private:
  struct Prepare {
    u128 client = 0;
    Clock::time_point admitted;
    Sends sends;
  };

  PipelineOptions options_;
  std::deque<Request> queue_;
  std::deque<Prepare> prepares_;
  absl::flat_hash_set<u128, replica::ClientIdHash> clients_;  // Queued, admitting or preparing.
  std::optional<u128> admitting_;  // Returned by NextToAdmit(), not yet Admitted()/Abandon()ed.
  uint64_t prepares_max_seen_ = 0;
};

}  // namespace tb::devcluster
