#include "proxy/coalescer/admission.h"

#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

TEST(Admission, RefusesTheCallThatWouldPassABound) {
  Admission admission({.queued_events_max = 10, .queued_bytes_max = 1000, .callers_max = 3});
  ASSERT_TRUE(admission.TryAdmit(10, 100).ok());
  EXPECT_EQ(admission.Check(1, 1), RefusalReason::kQueuedEvents);
  EXPECT_EQ(admission.TryAdmit(1, 1).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(admission.Check(0, 901), RefusalReason::kQueuedBytes);
  ASSERT_TRUE(admission.TryAdmit(0, 900).ok());
  ASSERT_TRUE(admission.TryAdmit(0, 0).ok());
  EXPECT_EQ(admission.Check(0, 0), RefusalReason::kCallers);
  EXPECT_EQ(admission.callers(), 3u);
}

TEST(Admission, QueuedUnitsAndCallersAreReleasedSeparately) {
  Admission admission({.queued_events_max = 10, .queued_bytes_max = 1000, .callers_max = 1});
  ASSERT_TRUE(admission.TryAdmit(10, 1000).ok());
  admission.ReleaseQueued(10, 1000);
  EXPECT_EQ(admission.queued_events(), 0u);
  EXPECT_EQ(admission.queued_bytes(), 0u);
  // The caller is still in flight: the caller bound holds.
  EXPECT_EQ(admission.Check(1, 1), RefusalReason::kCallers);
  admission.ReleaseCaller();
  EXPECT_TRUE(admission.TryAdmit(10, 1000).ok());
}

}  // namespace
}  // namespace tb::proxy
