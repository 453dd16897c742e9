#pragma once
// Lets Catch2 print automation::Result<T> for any T: "ok" or the error's name and message.
#include <automation/core/error.hpp>

#include <catch2/catch.hpp>

namespace Catch {
template <class T>
struct StringMaker<boost::system::result<T, automation::Error>> {
  static std::string convert(const boost::system::result<T, automation::Error>& r) {
    if (r) return "ok";
    return "error " + std::string(r.error().name()) + ": " + r.error().what();
  }
};
}  // namespace Catch
