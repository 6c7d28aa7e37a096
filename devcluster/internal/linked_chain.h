// The batch loop shared by create_accounts and create_transfers: linked chains (§6), the
// batch-level checks (§4.1 steps 1–4) and result timestamps (§4.3).
//
// `Traits` supplies the per-kind parts: a CreateKind<Event, Status, flags, create function>.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#include "client_core/assert.h"
#include "client_core/types.h"
#include "devcluster/database.h"

namespace tb::devcluster::internal {

// What creating one event gave: a status, and for `created`/`exists` the object's timestamp.
struct Outcome {
  uint32_t status;
  uint64_t timestamp = 0;  // 0 = use the event's slot.
};

// The batch-level result codes, which both kinds' status enums name alike.
template <typename Status>
struct BatchCodes {
  static constexpr uint32_t Code(Status status) { return static_cast<uint32_t>(status); }
  static constexpr uint32_t kCreated = Code(Status::kCreated);
  static constexpr uint32_t kLinkedEventFailed = Code(Status::kLinkedEventFailed);
  static constexpr uint32_t kLinkedEventChainOpen = Code(Status::kLinkedEventChainOpen);
  static constexpr uint32_t kImportedEventExpected = Code(Status::kImportedEventExpected);
  static constexpr uint32_t kImportedEventNotExpected = Code(Status::kImportedEventNotExpected);
  static constexpr uint32_t kTimestampMustBeZero = Code(Status::kTimestampMustBeZero);
  static constexpr uint32_t kImportedEventTimestampOutOfRange =
      Code(Status::kImportedEventTimestampOutOfRange);
  static constexpr uint32_t kImportedEventTimestampMustNotAdvance =
      Code(Status::kImportedEventTimestampMustNotAdvance);
};

// One kind of create: its event, its status codes, its linked and imported flags and the function
// that creates one event (§4.1 steps 5 onwards).
template <typename EventType, typename Status, uint16_t kLinked, uint16_t kImported,
          Outcome (*kCreate)(Database&, const EventType&, uint64_t slot)>
struct CreateKind : BatchCodes<Status> {
  using Event = EventType;
  static constexpr uint16_t kFlagLinked = kLinked;
  static constexpr uint16_t kFlagImported = kImported;
  static Outcome Create(Database& db, const Event& event, uint64_t slot) {
    return kCreate(db, event, slot);
  }
};

// §4.1 steps 3–4: the batch's imported mode and the event's own timestamp.
template <typename Traits>
std::optional<uint32_t> CheckImported(const typename Traits::Event& event, bool batch_imported,
                                      uint64_t batch_last_slot) {
  const bool imported = (event.flags & Traits::kFlagImported) != 0;
  if (imported != batch_imported) {
    return imported ? Traits::kImportedEventNotExpected : Traits::kImportedEventExpected;
  }
  if (!imported) {
    if (event.timestamp != 0) return Traits::kTimestampMustBeZero;
    return std::nullopt;
  }
  if (event.timestamp == 0 || event.timestamp > kTimestampMax) {
    return Traits::kImportedEventTimestampOutOfRange;
  }
  if (event.timestamp >= batch_last_slot) return Traits::kImportedEventTimestampMustNotAdvance;
  return std::nullopt;
}

template <typename Traits>
void ExecuteCreateBatch(Database& db, std::span<const uint8_t> bytes, uint64_t batch_last_slot,
                        std::vector<CreateResult>& results) {
  using Event = typename Traits::Event;
  TB_ASSERT(bytes.size() % sizeof(Event) == 0);
  const size_t count = bytes.size() / sizeof(Event);
  if (count == 0) return;
  TB_ASSERT(batch_last_slot >= count && batch_last_slot <= kTimestampMax);

  auto read = [&](size_t index) {
    Event event;
    std::memcpy(&event, bytes.data() + index * sizeof(Event), sizeof(Event));
    return event;
  };
  const bool batch_imported = (read(0).flags & Traits::kFlagImported) != 0;
  const size_t results_start = results.size();
  std::optional<size_t> chain_start;
  bool chain_broken = false;

  for (size_t index = 0; index < count; index++) {
    const Event event = read(index);
    const uint64_t slot = batch_last_slot - count + index + 1;
    const bool linked = (event.flags & Traits::kFlagLinked) != 0;
    std::optional<uint32_t> status;
    uint64_t timestamp = slot;

    if (linked) {
      if (!chain_start.has_value()) {
        TB_ASSERT(!chain_broken);
        chain_start = index;
        db.BeginScope();
      }
      if (index == count - 1) status = Traits::kLinkedEventChainOpen;
    }
    if (!status && chain_broken) status = Traits::kLinkedEventFailed;
    if (!status) status = CheckImported<Traits>(event, batch_imported, batch_last_slot);
    if (!status) {
      const Outcome outcome = Traits::Create(db, event, slot);
      status = outcome.status;
      if (outcome.timestamp != 0) timestamp = outcome.timestamp;
    }

    if (*status != Traits::kCreated && chain_start.has_value() && !chain_broken) {
      // The chain breaks here: undo its earlier events and rewrite their results, keeping
      // their timestamps (§4.3).
      chain_broken = true;
      db.RollbackScope();
      for (size_t chained = *chain_start; chained < index; chained++) {
        results[results_start + chained].status = Traits::kLinkedEventFailed;
      }
    }
    results.push_back({.timestamp = timestamp, .status = *status, .reserved = 0});

    if (chain_start.has_value() && (!linked || *status == Traits::kLinkedEventChainOpen)) {
      if (!chain_broken) db.CommitScope();
      chain_start.reset();
      chain_broken = false;
    }
  }
  TB_ASSERT(!chain_start.has_value());
  TB_ASSERT(!db.scope_open());
}

}  // namespace tb::devcluster::internal
