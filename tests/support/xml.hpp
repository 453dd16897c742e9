#pragma once
// A strict parser for the XML-compatible HTML the library writes (reports): every element closed
// (or self-closed), attributes quoted, only the five named entities and numeric references in text,
// no stray '<' or '&'. It throws std::runtime_error naming the offset of the first problem, and
// returns the element tree, so tests can both prove the document parses and look inside it.
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace automation::test {

struct XmlNode {
  std::string name;
  std::map<std::string, std::string> attrs;
  std::vector<std::unique_ptr<XmlNode>> children;
  std::string text;  // the decoded text directly inside it

  // Every descendant (this one included) named `n`, in document order.
  std::vector<const XmlNode*> all(std::string_view n) const {
    std::vector<const XmlNode*> out;
    std::function<void(const XmlNode&)> walk = [&](const XmlNode& x) {
      if (x.name == n) out.push_back(&x);
      for (const auto& c : x.children) walk(*c);
    };
    walk(*this);
    return out;
  }
  // All text inside, decoded, children included.
  std::string all_text() const {
    std::string s = text;
    for (const auto& c : children) s += c->all_text();
    return s;
  }
};

class XmlParser {
 public:
  explicit XmlParser(std::string_view s) : s_(s) {}

  std::unique_ptr<XmlNode> parse() {
    skip_space();
    if (starts("<!DOCTYPE")) {
      auto end = s_.find('>', i_);
      if (end == std::string_view::npos) error("unterminated DOCTYPE");
      i_ = end + 1;
    }
    skip_misc();
    if (!starts("<")) error("expected the root element");
    auto root = element();
    skip_misc();
    if (i_ != s_.size()) error("content after the root element");
    return root;
  }

 private:
  [[noreturn]] void error(const std::string& what) const {
    throw std::runtime_error("XML error at offset " + std::to_string(i_) + ": " + what + " near \"" + std::string(s_.substr(i_, 40)) +
                             "\"");
  }
  bool starts(std::string_view p) const { return s_.substr(i_, p.size()) == p; }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  void skip_misc() {
    for (;;) {
      skip_space();
      if (!starts("<!--")) return;
      auto end = s_.find("-->", i_);
      if (end == std::string_view::npos) error("unterminated comment");
      i_ = end + 3;
    }
  }
  static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == ':' || c == '.';
  }
  std::string name() {
    const auto b = i_;
    while (i_ < s_.size() && name_char(s_[i_])) ++i_;
    if (b == i_) error("expected a name");
    return std::string(s_.substr(b, i_ - b));
  }
  std::string decode(std::string_view raw) {
    std::string out;
    for (std::size_t k = 0; k < raw.size(); ++k) {
      if (raw[k] == '<') error("'<' in text or an attribute");
      const auto byte = static_cast<unsigned char>(raw[k]);
      if ((byte < 0x20 && raw[k] != '\t' && raw[k] != '\n' && raw[k] != '\r') || byte == 0x7F) error("a control character");
      if (byte >= 0x80) {  // well-formed UTF-8 of a character XML allows (its Char production)
        const std::size_t n = byte >= 0xF0 && byte <= 0xF4 ? 4 : byte >= 0xE0 && byte <= 0xEF ? 3 : byte >= 0xC2 && byte <= 0xDF ? 2 : 0;
        if (n == 0 || k + n > raw.size()) error("invalid UTF-8");
        unsigned long cp = byte & (0xFFu >> (n + 1));
        for (std::size_t j = 1; j < n; ++j) {
          const auto b = static_cast<unsigned char>(raw[k + j]);
          if ((b & 0xC0) != 0x80) error("invalid UTF-8");
          cp = (cp << 6) | (b & 0x3F);
        }
        const unsigned long min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
        if (cp < min || cp > 0x10FFFF) error("invalid UTF-8");
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF) error("a character XML does not allow");
        if (cp >= 0x80 && cp <= 0x9F) error("a C1 control character");  // allowed by XML, refused by HTML
        out.append(raw.substr(k, n));
        k += n - 1;
        continue;
      }
      if (raw[k] != '&') {
        out += raw[k];
        continue;
      }
      auto semi = raw.find(';', k);
      if (semi == std::string_view::npos) error("'&' without ';'");
      const auto ent = raw.substr(k + 1, semi - k - 1);
      if (ent == "amp") {
        out += '&';
      } else if (ent == "lt") {
        out += '<';
      } else if (ent == "gt") {
        out += '>';
      } else if (ent == "quot") {
        out += '"';
      } else if (ent == "apos") {
        out += '\'';
      } else if (ent.size() > 1 && ent[0] == '#') {
        const unsigned long cp =
            ent[1] == 'x' ? std::stoul(std::string(ent.substr(2)), nullptr, 16) : std::stoul(std::string(ent.substr(1)));
        if (cp == 0 || (cp < 0x20 && cp != 9 && cp != 10 && cp != 13)) error("a reference to a control character");
        if (cp < 0x80) {
          out += static_cast<char>(cp);
        } else {
          out += '?';  // enough for tests
        }
      } else {
        error("unknown entity &" + std::string(ent) + ";");
      }
      k = semi;
    }
    return out;
  }
  std::unique_ptr<XmlNode> element() {
    ++i_;  // '<'
    auto node = std::make_unique<XmlNode>();
    node->name = name();
    for (;;) {
      skip_space();
      if (starts("/>")) {
        i_ += 2;
        return node;
      }
      if (starts(">")) {
        ++i_;
        break;
      }
      auto key = name();
      skip_space();
      if (!starts("=")) error("attribute " + key + " without a value");
      ++i_;
      skip_space();
      if (i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '\'')) error("attribute " + key + " is not quoted");
      const char q = s_[i_++];
      auto end = s_.find(q, i_);
      if (end == std::string_view::npos) error("unterminated attribute " + key);
      if (node->attrs.count(key)) error("attribute " + key + " twice");
      node->attrs[key] = decode(s_.substr(i_, end - i_));
      i_ = end + 1;
    }
    for (;;) {
      auto lt = s_.find('<', i_);
      if (lt == std::string_view::npos) error("element " + node->name + " is not closed");
      node->text += decode(s_.substr(i_, lt - i_));
      i_ = lt;
      if (starts("<!--")) {
        skip_misc();
        continue;
      }
      if (starts("</")) {
        i_ += 2;
        auto closing = name();
        if (closing != node->name) error("</" + closing + "> closes <" + node->name + ">");
        skip_space();
        if (!starts(">")) error("expected '>'");
        ++i_;
        return node;
      }
      node->children.push_back(element());
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

inline std::unique_ptr<XmlNode> parse_xml(std::string_view text) { return XmlParser(text).parse(); }

}  // namespace automation::test
