#pragma once
// Text that is safe to store and show whatever a process printed: valid UTF-8 of characters XML
// allows, every other byte replaced by U+FFFD (reports' HTML, healing records' details).
#include <cstdint>
#include <string>
#include <string_view>

namespace automation::detail {

// The length of the valid UTF-8 sequence at s[i] of a character XML allows (not a C0 control
// other than tab/newline/return, DEL, a C1 control, a surrogate, U+FFFE or U+FFFF), else 0.
inline std::size_t valid_char(std::string_view s, std::size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return (b0 >= 0x20 && b0 != 0x7F) || b0 == '\t' || b0 == '\n' || b0 == '\r' ? 1 : 0;
  std::size_t n = b0 >= 0xF0 && b0 <= 0xF4 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC2 && b0 <= 0xDF ? 2 : 0;
  if (b0 >= 0xF5) n = 0;
  if (n == 0 || i + n > s.size()) return 0;
  std::uint32_t cp = b0 & (0xFF >> (n + 1));
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  const std::uint32_t min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF || (cp >= 0x80 && cp <= 0x9F)) return 0;
  return n;
}

// `s` with every byte that is not part of a character XML allows replaced by U+FFFD.
inline std::string clean_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto n = valid_char(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace automation::detail
