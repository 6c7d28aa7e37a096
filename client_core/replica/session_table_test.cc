#include "client_core/replica/session_table.h"

#include "gtest/gtest.h"

namespace tb::replica {
namespace {

Session Make(u128 client, uint64_t op) {
  return Session{.client = client, .session = op, .last_op = op};
}

TEST(SessionTable, FindsWhatWasAdded) {
  SessionTable table(4);
  EXPECT_FALSE(table.Add(Make(1, 1)).has_value());
  ASSERT_NE(table.Find(1), nullptr);
  EXPECT_EQ(table.Find(1)->session, 1u);
  EXPECT_EQ(table.Find(2), nullptr);
  EXPECT_EQ(table.size(), 1u);
}

TEST(SessionTable, RemovesTheLeastRecentlyCommittedWhenFull) {
  SessionTable table(3);
  table.Add(Make(1, 1));
  table.Add(Make(2, 2));
  table.Add(Make(3, 3));
  table.Find(1)->last_op = 4;  // Client 1 committed a request: now 2 is the oldest.
  const std::optional<u128> removed = table.Add(Make(4, 5));
  ASSERT_TRUE(removed.has_value());
  EXPECT_EQ(*removed, 2u);
  EXPECT_EQ(table.Find(2), nullptr);
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.Add(Make(5, 6)), std::optional<u128>(3));
}

TEST(SessionTable, KeepsUpToItsCapacityWithoutRemoving) {
  SessionTable table(64);
  for (u128 client = 1; client <= 64; client++) {
    EXPECT_FALSE(table.Add(Make(client, static_cast<uint64_t>(client))).has_value());
  }
  EXPECT_EQ(table.Add(Make(65, 65)), std::optional<u128>(1));
}

}  // namespace
}  // namespace tb::replica
