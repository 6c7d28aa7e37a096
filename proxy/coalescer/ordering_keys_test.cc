#include "proxy/coalescer/ordering_keys.h"

#include "gtest/gtest.h"

namespace tb::proxy {
namespace {

TEST(OrderingKeys, KeyZeroIsAlwaysNext) {
  OrderingKeys keys;
  EXPECT_TRUE(keys.IsNext(0, 42, 0));
  EXPECT_EQ(keys.key_count(), 0u);
}

TEST(OrderingKeys, OnlyTheFirstUnansweredCallOfAKeyIsNext) {
  OrderingKeys keys;
  keys.Add(5, 1);
  keys.Add(5, 3);
  keys.Add(6, 2);
  EXPECT_TRUE(keys.IsNext(5, 1, 0));
  EXPECT_FALSE(keys.IsNext(5, 3, 0));
  EXPECT_TRUE(keys.IsNext(6, 2, 0));
  // Once call 1 travels earlier in the same message, call 3 may follow it there.
  EXPECT_TRUE(keys.IsNext(5, 3, 1));
  keys.Remove(5, 1);
  EXPECT_TRUE(keys.IsNext(5, 3, 0));
}

TEST(OrderingKeys, RemovingFromTheMiddleKeepsTheRestInOrder) {
  OrderingKeys keys;
  for (uint64_t id = 1; id <= 4; id++) keys.Add(9, id);
  keys.Remove(9, 3);  // Its deadline passed while queued.
  EXPECT_TRUE(keys.IsNext(9, 1, 0));
  EXPECT_TRUE(keys.IsNext(9, 2, 1));
  EXPECT_TRUE(keys.IsNext(9, 4, 2));
  keys.Remove(9, 1);
  keys.Remove(9, 2);
  keys.Remove(9, 4);
  EXPECT_EQ(keys.key_count(), 0u);
}

TEST(OrderingKeys, LongChainsStayInOrderAsCallsComeAndGo) {
  OrderingKeys keys;
  uint64_t next_added = 1;
  uint64_t next_removed = 1;
  for (int round = 0; round < 50; round++) {
    for (int i = 0; i < 3; i++) keys.Add(7, next_added++);
    for (int i = 0; i < 2; i++) {
      EXPECT_TRUE(keys.IsNext(7, next_removed, 0));
      EXPECT_TRUE(keys.IsNext(7, next_removed + 1, 1));
      keys.Remove(7, next_removed++);
    }
  }
  keys.Remove(7, next_added - 1);  // The newest, from the middle of the order.
  while (next_removed < next_added - 1) {
    EXPECT_TRUE(keys.IsNext(7, next_removed, 0));
    keys.Remove(7, next_removed++);
  }
  EXPECT_EQ(keys.key_count(), 0u);
}

}  // namespace
}  // namespace tb::proxy
