// Internal: dense indices for string ids. Each id is stored once (in the
// vector); the hash set holds only 4-byte indices and hashes/compares them
// through the vector, with heterogeneous lookup by string view. This halves
// the memory of a string-keyed map, which would store every id twice.
//
// Ids known to be new (a batch's row numbers) can be appended without
// hashing; they are indexed on the next lookup, so a run that never looks
// them up never pays for it.
#ifndef REFPAY_SRC_ID_INDEX_H_
#define REFPAY_SRC_ID_INDEX_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/hash/hash.h"
#include "absl_compat.h"

namespace refpay::internal {

class IdIndex {
 public:
  IdIndex() : set_(0, Hash{&ids_}, Eq{&ids_}) {}
  // The set's functors point at ids_, so an IdIndex stays where it is built.
  IdIndex(const IdIndex&) = delete;
  IdIndex& operator=(const IdIndex&) = delete;

  // The index of `id`, if it was added.
  std::optional<int32_t> Find(std::string_view id) const {
    IndexAppended();
    auto it = set_.find(AsAbsl(id));
    if (it == set_.end()) return std::nullopt;
    return *it;
  }

  bool Contains(std::string_view id) const {
    IndexAppended();
    return set_.contains(AsAbsl(id));
  }

  // Appends `id` (the caller checked it is new) and returns its index.
  int32_t Add(std::string id) {
    const int32_t index = AddUnindexed(std::move(id));
    IndexAppended();
    return index;
  }

  // Appends `id` unless it is there already, with one hash probe: its new
  // index, or nullopt (and nothing changed) for a duplicate.
  std::optional<int32_t> TryAdd(std::string id) {
    IndexAppended();
    const int32_t index = AddUnindexed(std::move(id));
    if (set_.insert(index).second) {
      ++indexed_;
      return index;
    }
    ids_.pop_back();
    return std::nullopt;
  }

  // Takes back the id added last, indexed or not.
  void RemoveLast() {
    const size_t last = ids_.size() - 1;
    if (indexed_ > last) {
      set_.erase(static_cast<int32_t>(last));
      indexed_ = last;
    }
    ids_.pop_back();
  }

  // Appends `id`, which the caller knows differs from every id added, and
  // defers hashing it to the next lookup.
  int32_t AddUnindexed(std::string id) {
    ids_.push_back(std::move(id));
    return static_cast<int32_t>(ids_.size() - 1);
  }

  // Sizes the index for `ids` ids in all.
  void Reserve(int32_t ids) {
    ids_.reserve(ids);
    set_.reserve(ids);
  }

  const std::string& operator[](int32_t index) const { return ids_[index]; }
  const std::vector<std::string>& ids() const { return ids_; }
  int32_t size() const { return static_cast<int32_t>(ids_.size()); }

 private:
  struct Hash {
    using is_transparent = void;
    const std::vector<std::string>* ids;
    size_t operator()(int32_t i) const { return (*this)(absl::string_view((*ids)[i])); }
    size_t operator()(absl::string_view id) const { return absl::Hash<absl::string_view>{}(id); }
  };
  struct Eq {
    using is_transparent = void;
    const std::vector<std::string>* ids;
    absl::string_view View(int32_t i) const { return (*ids)[i]; }
    static absl::string_view View(absl::string_view id) { return id; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return View(a) == View(b);
    }
  };

  // Hashes the ids appended since the last lookup. Lookups are const, so
  // the set and its watermark are mutable: a cache of ids_.
  void IndexAppended() const {
    for (; indexed_ < ids_.size(); ++indexed_) set_.insert(static_cast<int32_t>(indexed_));
  }

  std::vector<std::string> ids_;
  mutable absl::flat_hash_set<int32_t, Hash, Eq> set_;
  mutable size_t indexed_ = 0;  // ids_[0, indexed_) are in set_
};

}  // namespace refpay::internal

#endif  // REFPAY_SRC_ID_INDEX_H_
