#include "client_core/release.h"

#include "absl/strings/str_cat.h"

namespace tb {

std::string ReleaseToString(uint32_t release) {
  return absl::StrCat(ReleaseMajor(release), ".", ReleaseMinor(release), ".",
                      ReleasePatch(release));
}

}  // namespace tb
