#include <automation/core/files.hpp>

#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace automation {

namespace fs = std::filesystem;

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(errc::not_found, std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return fail(errc::io, std::strerror(errno));
  return std::move(text).str();
}

Result<void> write_file_atomically(const std::string& path, std::string_view contents) {
  std::error_code ec;
  const fs::path p(path);
  if (p.has_parent_path()) {
    fs::create_directories(p.parent_path(), ec);
    if (ec) return fail(errc::io, fmt::format("cannot create {}: {}", p.parent_path().string(), ec.message()));
  }
  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) return fail(errc::io, fmt::format("cannot create a temporary file beside {}: {}", path, std::strerror(errno)));
  int err = 0;
  for (std::string_view rest = contents; !rest.empty() && err == 0;) {
    const auto n = ::write(fd, rest.data(), rest.size());
    if (n > 0) {
      rest.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && errno != EINTR) {
      err = errno;
    }
  }
  if (err == 0 && (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0)) err = errno;
  ::close(fd);
  std::string why = err ? std::strerror(err) : "";
  if (err == 0) {
    fs::rename(tmp, p, ec);
    if (!ec) return {};
    why = ec.message();
  }
  std::error_code ignored;
  fs::remove(tmp, ignored);
  return fail(errc::io, fmt::format("cannot write {}: {}", path, why));
}

}  // namespace automation
