#include "client_core/u128.h"

#include <algorithm>

namespace tb {

std::string U128ToDecimal(u128 value) {
  if (value == 0) return "0";
  std::string digits;
  while (value != 0) {
    digits.push_back(static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  }
  std::reverse(digits.begin(), digits.end());
  return digits;
}

std::string U128ToHex(u128 value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text = "0x";
  for (int shift = 124; shift >= 0; shift -= 4) {
    text.push_back(kDigits[static_cast<int>((value >> shift) & 0xF)]);
  }
  return text;
}

}  // namespace tb
