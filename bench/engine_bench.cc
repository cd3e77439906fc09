// Micro-benchmarks of the engine's hot paths. Run:
//   cmake --build build --target refpay_bench && build/bin/refpay_bench
// BM_OrderEndToEnd and BM_Refund also time each call alone and report its
// latency percentiles as counters (p50_ns, p99_ns, max_ns); the order
// benchmark's repetitions add a p99-of-means aggregate.
// The tree benchmarks build their member tree once per size (1M by
// default; add --benchmark_filter=/10000000 for 10M, which needs ~4 GB).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "refpay/engine.h"
#include "refpay/policy.h"
#include "refpay/tree.h"

namespace refpay {
namespace {

// The standard policy of bench/README: two levels, Haier tiers on level 1,
// nearest leader 2%, order_total 30%.
constexpr char kStandardPolicy[] = R"({"name": "standard",
  "levels": [{"tiers": [{"below": "3000", "rate": "4%"}, {"from": "3000", "below": "5000", "rate": "5%"},
                        {"from": "5000", "rate": "8%"}]},
             {"rate": "5%"}],
  "leader": {"rate": "2%"}, "caps": {"order_total": "30%"}, "checks": {"shared_identity": "off"}})";

const absl::Time kStart = absl::FromUnixSeconds(1'772'326'800);  // 2026-03-01T09:00+08:00

// Per-call latencies, timed one by one around the call alone, reported as
// counters p50_ns / p99_ns / max_ns (of the last run of the benchmark; the
// per-iteration time above them also counts building the event).
class Latencies {
 public:
  explicit Latencies(benchmark::State& state) : state_(state) {
    ns_.reserve(static_cast<size_t>(std::min<int64_t>(state.max_iterations, 1 << 24)));
  }
  template <typename F>
  void Time(F&& call) {
    const auto a = std::chrono::steady_clock::now();
    call();
    const auto b = std::chrono::steady_clock::now();
    ns_.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count());
  }
  ~Latencies() {
    if (ns_.empty()) return;
    std::sort(ns_.begin(), ns_.end());
    auto at = [&](double p) {
      return static_cast<double>(ns_[static_cast<size_t>(p * static_cast<double>(ns_.size() - 1))]);
    };
    state_.counters["p50_ns"] = at(0.5);
    state_.counters["p99_ns"] = at(0.99);
    state_.counters["max_ns"] = static_cast<double>(ns_.back());
  }

 private:
  benchmark::State& state_;
  std::vector<int64_t> ns_;
};

// A random referral tree of `members` (preferential to recent members, 1%
// leaders), built once per size and shared by the benchmarks.
Engine& TreeEngine(int64_t members) {
  static std::map<int64_t, std::unique_ptr<Engine>>* engines =
      new std::map<int64_t, std::unique_ptr<Engine>>;
  std::unique_ptr<Engine>& slot = (*engines)[members];
  if (slot) return *slot;
  slot = std::make_unique<Engine>(*Policy::FromJson(kStandardPolicy));
  std::mt19937_64 random(1);
  Event join;
  join.type = EventType::kJoin;
  join.at = kStart;
  Event role;
  role.type = EventType::kSetRole;
  role.role = "leader";
  role.at = kStart;
  for (int64_t i = 0; i < members; ++i) {
    join.member = absl::StrCat("m", i);
    if (i > 0) {
      join.inviter = absl::StrCat("m", static_cast<int64_t>(random() % i));
    }
    (void)slot->Apply(join);
    if (random() % 100 == 0) {
      role.member = join.member;
      (void)slot->Apply(role);
    }
  }
  return *slot;
}

void BM_OrderEndToEnd(benchmark::State& state) {
  const int64_t members = state.range(0);
  Engine& engine = TreeEngine(members);
  std::mt19937_64 random(2);
  Event order;
  order.type = EventType::kOrder;
  order.at = kStart + absl::Hours(1);
  static int64_t next_order = 0;  // order ids stay unique across runs
  Latencies latencies(state);
  for (auto _ : state) {
    order.order = absl::StrCat("o", next_order++);
    order.buyer = absl::StrCat("m", static_cast<int64_t>(random() % members));
    order.amount = Money::FromFen(1000 + static_cast<int64_t>(random() % 1'000'000));
    latencies.Time([&] { benchmark::DoNotOptimize(engine.Apply(order)); });
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_OrderEndToEnd)
    ->Arg(1'000'000)
    ->Arg(10'000'000)
    ->Unit(benchmark::kNanosecond)
    ->Repetitions(5)
    ->ReportAggregatesOnly(true)
    ->ComputeStatistics("p99", [](const std::vector<double>& v) {
      std::vector<double> sorted = v;  // p99 of the repetitions' means
      std::sort(sorted.begin(), sorted.end());
      return sorted[static_cast<size_t>(0.99 * static_cast<double>(sorted.size() - 1))];
    });

void BM_Refund(benchmark::State& state) {
  Engine& engine = TreeEngine(1'000'000);
  std::mt19937_64 random(3);
  Event order, refund;
  order.type = EventType::kOrder;
  order.at = kStart + absl::Hours(2);
  refund.type = EventType::kRefund;
  refund.at = order.at;
  refund.amount = Money::FromFen(100);
  static int64_t next_order = 0;
  Latencies latencies(state);
  for (auto _ : state) {
    state.PauseTiming();
    order.order = absl::StrCat("r", next_order++);
    order.buyer = absl::StrCat("m", static_cast<int64_t>(random() % 1'000'000));
    order.amount = Money::FromFen(500'000);
    (void)engine.Apply(order);
    refund.order = order.order;
    state.ResumeTiming();
    latencies.Time([&] { benchmark::DoNotOptimize(engine.Apply(refund)); });
  }
}
BENCHMARK(BM_Refund);

void BM_TierLookup(benchmark::State& state) {
  const Policy policy = *Policy::FromJson(kStandardPolicy);
  const AmountRule& tiers = policy.rules.levels[0].amount;
  std::mt19937_64 random(4);
  std::vector<Money> bases;
  for (int i = 0; i < 4096; ++i)
    bases.push_back(Money::FromFen(static_cast<int64_t>(random() % 1'000'000)));
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(tiers.Compute(bases[i++ & 4095], RoundingMode::kHalfUp));
  }
}
BENCHMARK(BM_TierLookup);

void BM_Rounding(benchmark::State& state) {
  const Rate rate = *Rate::Parse("3.3333%");
  int64_t fen = 12345;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ApplyRate(Money::FromFen(fen++), rate, RoundingMode::kHalfEven));
  }
}
BENCHMARK(BM_Rounding);

void BM_NearestLeader(benchmark::State& state) {
  const int64_t members = state.range(0);
  MemberTree tree;
  tree.Reserve(static_cast<int32_t>(members));
  std::mt19937_64 random(5);
  for (int64_t i = 0; i < members; ++i) {
    tree.Add(i == 0 ? MemberIndex::None() : MemberIndex(static_cast<int32_t>(random() % i)));
    if (random() % 100 == 0) tree.SetLeader(MemberIndex(static_cast<int32_t>(i)), true);
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        tree.NearestLeaderAbove(MemberIndex(static_cast<int32_t>(random() % members))));
  }
}
BENCHMARK(BM_NearestLeader)->Arg(1'000'000)->Arg(10'000'000);

}  // namespace
}  // namespace refpay

BENCHMARK_MAIN();
