#include "proxy/coalescer/admission.h"

#include <ostream>
#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

void ExpectRefused(const absl::StatusOr<AdmissionPermit>& permit, RefusalReason reason) {
  ASSERT_FALSE(permit.ok());
  EXPECT_EQ(permit.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(permit.status().message(),
            std::string("coalescer bound reached: ") + RefusalReasonName(reason));
  EXPECT_EQ(AdmissionRefusal(permit.status()), reason);
}

// What `admission` has handed out and not had back: callers, queued events and queued bytes.
struct Held {
  uint32_t callers;
  uint64_t events;
  uint64_t bytes;
  bool operator==(const Held&) const = default;
};
Held HeldBy(const Admission& admission) {
  return {admission.callers(), admission.queued_events(), admission.queued_bytes()};
}
void PrintTo(const Held& held, std::ostream* out) {
  *out << "{callers " << held.callers << ", events " << held.events << ", bytes " << held.bytes
       << "}";
}

TEST(Admission, RefusesTheCallThatWouldPassABoundWithAStatusNamingIt) {
  Admission admission({.queued_events_max = 10, .queued_bytes_max = 1000, .callers_max = 3});
  absl::StatusOr<AdmissionPermit> first = admission.TryAdmit(10, 100);
  ASSERT_TRUE(first.ok());
  ExpectRefused(admission.TryAdmit(1, 1), RefusalReason::kQueuedEvents);
  ExpectRefused(admission.TryAdmit(0, 901), RefusalReason::kQueuedBytes);
  absl::StatusOr<AdmissionPermit> second = admission.TryAdmit(0, 900);
  absl::StatusOr<AdmissionPermit> third = admission.TryAdmit(0, 0);
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(third.ok());
  ExpectRefused(admission.TryAdmit(0, 0), RefusalReason::kCallers);
  EXPECT_EQ(admission.callers(), 3u);
}

TEST(Admission, AnyOtherStatusNamesNoBound) {
  EXPECT_EQ(AdmissionRefusal(absl::OkStatus()), std::nullopt);
  EXPECT_EQ(AdmissionRefusal(absl::ResourceExhaustedError("coalescer bound reached: callers_max")),
            std::nullopt);
}

TEST(AdmissionPermit, QueuedUnitsAndTheCallerAreReleasedSeparately) {
  Admission admission({.queued_events_max = 10, .queued_bytes_max = 1000, .callers_max = 1});
  absl::StatusOr<AdmissionPermit> permit = admission.TryAdmit(10, 1000);
  ASSERT_TRUE(permit.ok());
  EXPECT_TRUE(permit->queued());
  permit->ReleaseQueued();
  EXPECT_FALSE(permit->queued());
  EXPECT_TRUE(permit->held());
  EXPECT_EQ(HeldBy(admission), (Held{1, 0, 0}));
  // The caller is still in flight: the caller bound holds.
  ExpectRefused(admission.TryAdmit(1, 1), RefusalReason::kCallers);
  permit->Release();
  EXPECT_EQ(admission.callers(), 0u);
  EXPECT_TRUE(admission.TryAdmit(10, 1000).ok());
}

TEST(AdmissionPermit, DestructionGivesBackEverythingStillHeld) {
  Admission admission({.queued_events_max = 10, .queued_bytes_max = 1000, .callers_max = 2});
  {
    absl::StatusOr<AdmissionPermit> queued = admission.TryAdmit(4, 400);
    absl::StatusOr<AdmissionPermit> in_flight = admission.TryAdmit(5, 500);
    ASSERT_TRUE(queued.ok());
    ASSERT_TRUE(in_flight.ok());
    in_flight->ReleaseQueued();
    EXPECT_EQ(HeldBy(admission), (Held{2, 4, 400}));
  }
  EXPECT_EQ(HeldBy(admission), (Held{0, 0, 0}));
}

TEST(AdmissionPermit, ReleasesOnceHoweverOftenAskedOrDestroyed) {
  Admission admission({.queued_events_max = 10, .queued_bytes_max = 1000, .callers_max = 2});
  absl::StatusOr<AdmissionPermit> other = admission.TryAdmit(1, 1);
  ASSERT_TRUE(other.ok());
  {
    absl::StatusOr<AdmissionPermit> permit = admission.TryAdmit(2, 2);
    ASSERT_TRUE(permit.ok());
    permit->Release();
    permit->Release();
    EXPECT_FALSE(permit->held());
  }
  // Only the released permit's units came back; `other` still holds its own.
  EXPECT_EQ(HeldBy(admission), (Held{1, 1, 1}));
}

TEST(AdmissionPermit, MovingTransfersTheUnitsWithoutReleasingThem) {
  Admission admission({.queued_events_max = 10, .queued_bytes_max = 1000, .callers_max = 2});
  absl::StatusOr<AdmissionPermit> admitted = admission.TryAdmit(3, 30);
  ASSERT_TRUE(admitted.ok());
  AdmissionPermit moved = *std::move(admitted);
  EXPECT_FALSE(admitted->held());  // NOLINT(bugprone-use-after-move): moved-from is empty.
  EXPECT_TRUE(moved.held());
  AdmissionPermit assigned;
  EXPECT_FALSE(assigned.held());
  assigned = std::move(moved);
  EXPECT_FALSE(moved.held());  // NOLINT(bugprone-use-after-move)
  EXPECT_EQ(HeldBy(admission), (Held{1, 3, 30}));
  // Assigning over a permit that holds units gives those units back first.
  absl::StatusOr<AdmissionPermit> next = admission.TryAdmit(4, 40);
  ASSERT_TRUE(next.ok());
  assigned = *std::move(next);
  EXPECT_EQ(HeldBy(admission), (Held{1, 4, 40}));
  assigned = AdmissionPermit();
  EXPECT_EQ(HeldBy(admission), (Held{0, 0, 0}));
}

}  // namespace
}  // namespace tb::proxy
