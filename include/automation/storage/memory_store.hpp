#pragma once
/// An in-memory Store for tests and ephemeral hosts. Same contract as SqliteStore (the contract test
/// suite runs against both); data lives as long as the object.
/// Thread-safety: all operations are serialized by an internal mutex.
#include <automation/storage/store.hpp>

#include <memory>

namespace automation::storage {

class MemoryStore final : public Store {
 public:
  MemoryStore();
  ~MemoryStore() override;

  std::string_view backend() const noexcept override { return "memory"; }
  Result<StoreInfo> info() override;
  Result<int> schema_version() override;
  Result<MigrationReport> migrate() override;
  Result<std::int64_t> append_audit(std::span<const AuditRecord> records) override;
  Result<std::vector<AuditRecord>> query_audit(const AuditQuery& query) override;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace automation::storage
