// Reading a Prometheus text exposition in tests.
#pragma once

#include <initializer_list>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"

namespace tb::proxy::testing {

// The value of the sample line `series` (name and labels exactly as exposed), or -1 if absent.
inline double Sample(absl::string_view exposition, absl::string_view series) {
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (line.size() > series.size() && absl::StartsWith(line, series) &&
        line[series.size()] == ' ') {
      double value = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &value)) return value;
    }
  }
  return -1;
}

struct ExpectedSample {
  absl::string_view series;
  double value;
};

// Every expected series has its value in the exposition; a failure names each one that differs.
inline ::testing::AssertionResult SamplesAre(absl::string_view exposition,
                                             std::initializer_list<ExpectedSample> expected) {
  std::string differences;
  for (const ExpectedSample& sample : expected) {
    const double actual = Sample(exposition, sample.series);
    if (actual == sample.value) continue;
    differences += std::string(sample.series) + " is " + std::to_string(actual) + ", want " +
                   std::to_string(sample.value) + "\n";
  }
  if (differences.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << differences;
}

}  // namespace tb::proxy::testing
