// The in-process development cluster tbproxy starts when no --cluster-addresses are given: one
// dev-cluster replica (devcluster/) with the full in-memory state machine, on 127.0.0.1 at a
// free port, served by its own thread.
//
// DATA IS IN MEMORY ONLY AND NOT DURABLE: everything is lost when tbproxy stops.
//
//   TB_ASSIGN_OR_RETURN(std::unique_ptr<EmbeddedCluster> cluster, EmbeddedCluster::Start(0));
//   pool_options.replica_addresses = cluster->addresses();
//   ... cluster->Stop();   // After the pool is gone.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "client_core/tcp_transport.h"
#include "client_core/u128.h"

namespace tb::proxy {

class EmbeddedCluster {
 public:
  static absl::StatusOr<std::unique_ptr<EmbeddedCluster>> Start(u128 cluster_id);
  ~EmbeddedCluster();  // Stops if Stop was not called.

  // Where the pool connects: 127.0.0.1 and the bound port.
  std::vector<ReplicaAddress> addresses() const;
  // Closes every connection and joins the thread. Idempotent.
  void Stop();

 private:
  struct Parts;
  explicit EmbeddedCluster(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace tb::proxy
