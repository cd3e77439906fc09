// Internal: dense indices for string ids. Each id is stored once (in the
// vector); the table holds only 4-byte indices and compares through the
// vector, with lookup by string view.
//
// The table is bucketed: a 64-byte bucket holds ten 16-bit hash tags and
// the ten indices beside them, so a lookup costs one cache miss for the
// bucket and one for the id it verifies, and the second is off the
// critical path (the caller goes on with the index while the comparison
// completes). A Swiss table keeps its control bytes and its slots in
// separate arrays, which makes those two misses and a third, all serial:
// on the event path of a 10,000,000-member tree that chain was most of an
// order's latency (docs/performance.md). KeyOf() hashes an id and loads
// its bucket early, so two lookups of one event overlap their misses.
//
// Ids known to be new (a batch's row numbers) can be appended without
// hashing; they are indexed on the next lookup, so a run that never looks
// them up never pays for it.
#ifndef REFPAY_SRC_ID_INDEX_H_
#define REFPAY_SRC_ID_INDEX_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/types/span.h"
#include "absl_compat.h"
#include "huge_pages.h"

namespace refpay::internal {

class IdIndex {
 public:
  // An id with its hash, from KeyOf(), for one or more lookups and an Add.
  // Holds a view: the id's characters must outlive the key.
  struct Key {
    std::string_view id;
    size_t hash;
  };

  IdIndex() = default;
  IdIndex(const IdIndex&) = delete;
  IdIndex& operator=(const IdIndex&) = delete;

  // Hashes `id` and loads its home bucket, so that the cache miss overlaps
  // whatever the caller does before it looks the key up.
  Key KeyOf(std::string_view id) const {
    IndexAppended();
    const Key key{id, absl::Hash<absl::string_view>{}(AsAbsl(id))};
    if (!buckets_.empty()) {
      const uint16_t loaded = buckets_[key.hash & mask_].tags[0];
      asm volatile("" : : "r"(loaded));  // a load, not a prefetch: see tree.h Touch()
    }
    return key;
  }

  // The index of the id, if it was added.
  std::optional<int32_t> Find(const Key& key) const {
    IndexAppended();
    if (buckets_.empty()) return std::nullopt;
    const uint16_t tag = TagOf(key.hash);
    for (size_t b = key.hash & mask_;; b = (b + 1) & mask_) {
      const Bucket& bucket = buckets_[b];
      for (int s = 0; s < kSlots; ++s) {
        if (bucket.tags[s] == tag && ids_[bucket.index[s]] == key.id) return bucket.index[s];
      }
      if (!bucket.overflowed) return std::nullopt;
    }
  }
  std::optional<int32_t> Find(std::string_view id) const { return Find(KeyOf(id)); }

  bool Contains(const Key& key) const { return Find(key).has_value(); }
  bool Contains(std::string_view id) const { return Find(KeyOf(id)).has_value(); }

  // Appends the id (the caller checked it is new) and returns its index.
  int32_t Add(const Key& key) {
    IndexAppended();
    const int32_t index = AddUnindexed(std::string(key.id));
    Insert(index, key.hash);
    ++indexed_;
    return index;
  }
  int32_t Add(std::string id) {
    const int32_t index = AddUnindexed(std::move(id));
    IndexAppended();
    return index;
  }

  // Appends `id` unless it is there already: its new index, or nullopt
  // (and nothing changed) for a duplicate.
  std::optional<int32_t> TryAdd(std::string_view id) {
    const Key key = KeyOf(id);
    if (Contains(key)) return std::nullopt;
    return Add(key);
  }

  // Takes back the id added last, indexed or not.
  void RemoveLast() {
    const size_t last = ids_.size() - 1;
    if (indexed_ > last) {
      Erase(static_cast<int32_t>(last));
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

  // Sizes the index for `ids` ids in all; `populate` also faults in the
  // pages of the id column (PopulateCapacity). The table needs no such
  // step: a rehash writes every bucket.
  void Reserve(int32_t ids, bool populate = false) {
    ids_.reserve(ids);
    if (populate) PopulateCapacity(ids_);
    if (static_cast<size_t>(ids) > Capacity(buckets_.size())) Rehash(BucketsFor(ids));
  }

  const std::string& operator[](int32_t index) const { return ids_[index]; }
  absl::Span<const std::string> ids() const { return ids_; }
  int32_t size() const { return static_cast<int32_t>(ids_.size()); }

 private:
  static constexpr int kSlots = 10;
  // Filled to at most 8 of 10 slots per bucket on average: a full bucket
  // (rare at that load) sends ids on to the next one.
  static constexpr size_t kLoadPerBucket = 8;

  struct alignas(64) Bucket {
    std::array<uint16_t, kSlots> tags{};  // 0: the slot is empty
    bool overflowed = false;              // an id whose probe passed this bucket lies beyond it
    std::array<int32_t, kSlots> index{};
  };
  static_assert(sizeof(Bucket) == 64);

  static uint16_t TagOf(size_t hash) {
    const auto tag = static_cast<uint16_t>(hash >> 48);
    return tag == 0 ? 1 : tag;
  }
  static size_t Capacity(size_t buckets) { return buckets * kLoadPerBucket; }
  static size_t BucketsFor(size_t ids) {
    size_t buckets = 1;
    while (Capacity(buckets) < ids) buckets *= 2;
    return buckets;
  }
  size_t HashOf(int32_t index) const {
    return absl::Hash<absl::string_view>{}(AsAbsl(ids_[index]));
  }

  // Files `index` under `hash`, growing the table first if it is full.
  // Const for the lookups that index appended ids (see IndexAppended).
  void Insert(int32_t index, size_t hash) const {
    if (indexed_ + 1 > Capacity(buckets_.size())) Rehash(BucketsFor(indexed_ + 1));
    const uint16_t tag = TagOf(hash);
    for (size_t b = hash & mask_;; b = (b + 1) & mask_) {
      Bucket& bucket = buckets_[b];
      for (int s = 0; s < kSlots; ++s) {
        if (bucket.tags[s] == 0) {
          bucket.tags[s] = tag;
          bucket.index[s] = index;
          return;
        }
      }
      bucket.overflowed = true;
    }
  }

  // Empties the slot of `index`. Overflow marks stay: they only make a
  // later miss look one bucket further.
  void Erase(int32_t index) {
    const size_t hash = HashOf(index);
    for (size_t b = hash & mask_;; b = (b + 1) & mask_) {
      Bucket& bucket = buckets_[b];
      for (int s = 0; s < kSlots; ++s) {
        if (bucket.tags[s] != 0 && bucket.index[s] == index) {
          bucket.tags[s] = 0;
          return;
        }
      }
    }
  }

  // Rebuilds the table with `buckets` buckets from the ids indexed so far.
  void Rehash(size_t buckets) const {
    buckets_.assign(buckets, Bucket{});
    mask_ = buckets - 1;
    const size_t indexed = indexed_;
    indexed_ = 0;
    IndexUpTo(indexed);
  }

  // Hashes the ids appended since the last lookup. Lookups are const, so
  // the table and its watermark are mutable: a cache of ids_.
  void IndexAppended() const { IndexUpTo(ids_.size()); }

  // Files ids_[indexed_, end) and moves the watermark to `end`.
  void IndexUpTo(size_t end) const {
    for (; indexed_ < end; ++indexed_) {
      const auto index = static_cast<int32_t>(indexed_);
      Insert(index, HashOf(index));
    }
  }

  HugePageVector<std::string> ids_;         // appended per order: see huge_pages.h
  mutable HugePageVector<Bucket> buckets_;  // a power of two of them, or none
  mutable size_t mask_ = 0;
  mutable size_t indexed_ = 0;  // ids_[0, indexed_) are in buckets_
};

}  // namespace refpay::internal

#endif  // REFPAY_SRC_ID_INDEX_H_
