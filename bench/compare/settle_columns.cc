// settle_columns — refpay's C++ paths on the comparison data (issue #4).
//
//   settle_columns --data DIR/bin --policy P.toml --as-of MICROS
//                  --mode kernel|ledger-kernel|totals|ledger|events
//                  [--orders-limit K] [--repeat R] [--ids given|int|none]
//                  [--reserve] [--out totals.i64]
//
// Reads the little-endian columns bench/compare/gen.py writes (members:
// inviter.i32, joined_at.i64, leader.u8; orders: buyer.i32, amount.i64,
// at.i64, confirmed_at.i64, refund.i64, refunded_at.i64; INT64_MIN = no
// time) into BatchMembers / BatchOrders (ids are the row numbers as
// decimal strings, as refpay.settle makes them from integer ids), then
// times one of
//
//   kernel  SettleTotals (the columnar kernel; fails if it fell back to
//           the engine, so the row is what it says)
//   ledger-kernel  SettleLedger (the same kernel writing the full ledger
//           as columns; fails likewise)
//   totals  SettleBatch + Engine::Totals
//   ledger  SettleBatch + Engine::LedgerTable (the full ledger as columns)
//   events  Engine::Apply per event, in the order SettleBatch merges them
//           (members before orders at one instant, then confirmations and
//           refunds at their own times), each order's Apply timed alone
//           (median, p99, p99.9, max), then Engine::Totals; --reserve
//           first calls Engine::Reserve for all members and orders (timed
//           apart as reserve_s), as a backend that knows its volume would
//
// and prints one JSON object. --out writes each member's total (pending +
// frozen + available + held, fen) as int64, in member row order: in ledger
// mode the sums of the ledger table's rows, so that path is checked too.
// --ids int gives the ids as integer columns (int_ids: the row numbers,
// what refpay.settle_totals passes for integer ids); --ids none leaves both
// id columns empty (the batch's ids are then its
// row numbers, which need no checking: what the peers assume).
// --repeat R runs a kernel mode R times and reports the fastest run.
// --orders-limit K keeps only the first K orders (the pure-Python peer's
// subsample). Any rejected row is an error: the generator makes none.
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "refpay/batch.h"
#include "refpay/engine.h"
#include "refpay/policy.h"

namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// CPU seconds of this process so far (all threads).
double CpuSeconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

[[noreturn]] void Die(const std::string& message) {
  std::cerr << "settle_columns: " << message << "\n";
  std::exit(1);
}

template <typename T>
std::vector<T> ReadColumn(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) Die("cannot open " + path);
  const std::streamsize bytes = in.tellg();
  if (bytes % static_cast<std::streamsize>(sizeof(T)) != 0) Die(path + ": size not a multiple");
  std::vector<T> column(static_cast<size_t>(bytes) / sizeof(T));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(column.data()), bytes);  // little-endian host
  if (!in) Die("cannot read " + path);
  return column;
}

void WriteTotals(const std::string& path, const std::vector<int64_t>& totals) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(totals.data()),
            static_cast<std::streamsize>(totals.size() * sizeof(int64_t)));
  if (!out) Die("cannot write " + path);
}

// Engine index (join order) → member row: ids are the rows' decimal strings.
std::vector<int64_t> RowsOf(const refpay::Engine& engine) {
  std::vector<int64_t> rows;
  rows.reserve(engine.member_ids().size());
  for (const std::string& id : engine.member_ids()) {
    int64_t row = 0;
    if (!absl::SimpleAtoi(id, &row)) Die("member id " + id + " is not a row number");
    rows.push_back(row);
  }
  return rows;
}

std::vector<int64_t> DenseTotals(const refpay::Engine& engine, const refpay::MemberTotals& t) {
  const std::vector<int64_t> rows = RowsOf(engine);
  std::vector<int64_t> totals(rows.size(), 0);
  for (size_t i = 0; i < rows.size(); ++i)
    totals[rows[i]] = t.pending[i] + t.frozen[i] + t.available[i] + t.held[i];
  return totals;
}

struct Args {
  std::string data, policy, mode = "totals", out;
  int64_t as_of = 0;
  int64_t orders_limit = -1;
  int repeat = 1;
  std::string ids = "given";
  bool reserve = false;
};

Args Parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--reserve") {
      args.reserve = true;
      continue;
    }
    if (i + 1 >= argc) Die("missing value after " + flag);
    const std::string value = argv[++i];
    if (flag == "--data") {
      args.data = value;
    } else if (flag == "--policy") {
      args.policy = value;
    } else if (flag == "--mode") {
      args.mode = value;
    } else if (flag == "--out") {
      args.out = value;
    } else if (flag == "--as-of") {
      if (!absl::SimpleAtoi(value, &args.as_of)) Die("bad --as-of");
    } else if (flag == "--ids") {
      args.ids = value;
    } else if (flag == "--repeat") {
      if (!absl::SimpleAtoi(value, &args.repeat) || args.repeat < 1) Die("bad --repeat");
    } else if (flag == "--orders-limit") {
      if (!absl::SimpleAtoi(value, &args.orders_limit)) Die("bad --orders-limit");
    } else {
      Die("unknown flag " + flag);
    }
  }
  if (args.data.empty() || args.policy.empty() || args.as_of == 0) {
    Die("usage: settle_columns --data DIR --policy P.toml --as-of MICROS "
        "--mode kernel|ledger-kernel|totals|ledger|events [--orders-limit K] [--repeat R] [--ids "
        "given|int|none] [--reserve] [--out FILE]");
  }
  if (args.mode != "kernel" && args.mode != "ledger-kernel" && args.mode != "totals" &&
      args.mode != "ledger" && args.mode != "events")
    Die("bad --mode " + args.mode);
  if (args.ids != "given" && args.ids != "int" && args.ids != "none") Die("bad --ids " + args.ids);
  if (args.ids != "given" && args.mode == "events") Die("--mode events needs --ids given");
  if (args.reserve && args.mode != "events") Die("--reserve is for --mode events");
  return args;
}

// The merged event stream of SettleBatch (src/batch.cc documents it):
// members first, then orders, confirms and refunds, stable-sorted by time.
struct Step {
  int64_t at;
  refpay::EventType type;
  int64_t row;
};

int64_t Percentile(std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  // The nearest rank of a latency sample (not money: a float is fine).
  const auto k = static_cast<size_t>(std::lround(p * static_cast<double>(sorted.size() - 1)));
  return sorted[std::min(k, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = Parse(argc, argv);
  const auto load0 = Clock::now();
  absl::StatusOr<refpay::Policy> policy = refpay::Policy::FromFile(args.policy);
  if (!policy.ok()) Die(std::string(policy.status().message()));

  refpay::BatchMembers members;
  members.inviter = ReadColumn<int32_t>(args.data, "inviter.i32");
  members.joined_at = ReadColumn<int64_t>(args.data, "joined_at.i64");
  const std::vector<uint8_t> leader = ReadColumn<uint8_t>(args.data, "leader.u8");
  const size_t m = members.inviter.size();
  const bool ids = args.ids == "given";
  if (ids) members.ids.reserve(m);
  members.role.reserve(m);
  for (size_t i = 0; i < m; ++i) {
    if (ids) members.ids.push_back(absl::StrCat(i));
    members.role.emplace_back(leader[i] ? "leader" : "");
  }
  refpay::BatchOrders orders;
  orders.buyer = ReadColumn<int32_t>(args.data, "buyer.i32");
  orders.amount = ReadColumn<int64_t>(args.data, "amount.i64");
  orders.at = ReadColumn<int64_t>(args.data, "at.i64");
  orders.confirmed_at = ReadColumn<int64_t>(args.data, "confirmed_at.i64");
  orders.refund_amount = ReadColumn<int64_t>(args.data, "refund.i64");
  orders.refunded_at = ReadColumn<int64_t>(args.data, "refunded_at.i64");
  size_t n = orders.buyer.size();
  if (args.orders_limit >= 0 && static_cast<size_t>(args.orders_limit) < n) {
    n = static_cast<size_t>(args.orders_limit);
    for (auto* column : {&orders.amount, &orders.at, &orders.confirmed_at, &orders.refund_amount,
                         &orders.refunded_at})
      column->resize(n);
    orders.buyer.resize(n);
  }
  if (ids) {
    orders.ids.reserve(n);
    for (size_t i = 0; i < n; ++i) orders.ids.push_back(absl::StrCat(i));
  }
  if (args.ids == "int") {
    members.int_ids.resize(m);
    std::iota(members.int_ids.begin(), members.int_ids.end(), 0);
    orders.int_ids.resize(n);
    std::iota(orders.int_ids.begin(), orders.int_ids.end(), 0);
  }
  const absl::Time as_of = absl::FromUnixMicros(args.as_of);
  const auto load1 = Clock::now();

  std::string extra;
  std::vector<int64_t> totals;
  double compute = 0;
  double cpu0 = 0;
  double cpu1 = 0;
  // The kernel modes die if the engine settled instead, so the row is what
  // it says.
  auto require_kernel = [](const auto& result) {
    if (!result.ok()) Die(std::string(result.status().message()));
    if (!result->engine_reason.empty()) Die("the engine settled: " + result->engine_reason);
    if (!result->errors.empty()) Die(absl::StrCat(result->errors.size(), " rejected rows"));
  };
  // Runs `settle` --repeat times, keeping the fastest run's wall and CPU
  // seconds (a long-lived process reuses the memory its first run faulted
  // in) and the first run's as first_compute_s.
  auto repeated = [&](auto settle) {  // cpu0 stays 0: cpu1 is the run's CPU
    decltype(settle()) result;
    for (int r = 0; r < args.repeat; ++r) {
      const auto t0 = Clock::now();
      const double c0 = CpuSeconds();
      result = settle();
      const double seconds = Seconds(t0, Clock::now());
      const double cpu = CpuSeconds() - c0;
      if (r == 0) extra = absl::StrCat(", \"first_compute_s\": ", seconds);
      if (r == 0 || seconds < compute) compute = seconds, cpu1 = cpu;
    }
    return result;
  };
  if (args.mode == "kernel") {
    absl::StatusOr<refpay::BatchTotals> result =
        repeated([&] { return refpay::SettleTotals(*policy, members, orders, as_of); });
    require_kernel(result);
    const refpay::MemberTotals& t = result->by_row;
    totals.resize(t.pending.size());
    for (size_t i = 0; i < totals.size(); ++i)
      totals[i] = t.pending[i] + t.frozen[i] + t.available[i] + t.held[i];
  } else if (args.mode == "ledger-kernel") {
    absl::StatusOr<refpay::BatchLedger> result =
        repeated([&] { return refpay::SettleLedger(*policy, members, orders, as_of); });
    require_kernel(result);
    const refpay::LedgerColumns& ledger = result->ledger;
    absl::StrAppend(&extra, ", \"ledger_rows\": ", ledger.amount.size());
    // The totals from the ledger rows (member rows already), so the rows
    // are checked too.
    totals.assign(m, 0);
    for (size_t i = 0; i < ledger.amount.size(); ++i) totals[ledger.member[i]] += ledger.amount[i];
  } else if (args.mode == "totals" || args.mode == "ledger") {
    const auto t0 = Clock::now();
    cpu0 = CpuSeconds();
    absl::StatusOr<refpay::BatchResult> result = refpay::SettleBatch(*policy, members, orders);
    if (!result.ok()) Die(std::string(result.status().message()));
    if (args.mode == "totals") {
      absl::StatusOr<refpay::MemberTotals> t = result->engine.Totals(as_of);
      const auto t1 = Clock::now();
      cpu1 = CpuSeconds();
      compute = Seconds(t0, t1);
      if (!t.ok()) Die(std::string(t.status().message()));
      if (!args.out.empty()) totals = DenseTotals(result->engine, *t);
    } else {
      absl::StatusOr<refpay::LedgerColumns> ledger = result->engine.LedgerTable(as_of);
      const auto t1 = Clock::now();
      cpu1 = CpuSeconds();
      compute = Seconds(t0, t1);
      if (!ledger.ok()) Die(std::string(ledger.status().message()));
      extra = absl::StrCat(", \"ledger_rows\": ", ledger->amount.size());
      if (!args.out.empty()) {
        const std::vector<int64_t> rows = RowsOf(result->engine);
        totals.assign(rows.size(), 0);
        for (size_t i = 0; i < ledger->amount.size(); ++i)
          totals[rows[ledger->member[i]]] += ledger->amount[i];
      }
    }
    if (!result->errors.empty()) {
      const refpay::BatchError& e = result->errors.front();
      Die(absl::StrCat(result->errors.size(), " rejected rows, first ", e.table, "[", e.row,
                       "]: ", e.code, ": ", e.message));
    }
  } else {
    // Event by event. Building each Event (copying id strings) is outside
    // the per-order timer but inside the total.
    std::vector<Step> steps;
    steps.reserve(2 * m + 3 * n);
    for (size_t i = 0; i < m; ++i) {
      steps.push_back({members.joined_at[i], refpay::EventType::kJoin, static_cast<int64_t>(i)});
      if (leader[i])
        steps.push_back(
            {members.joined_at[i], refpay::EventType::kSetRole, static_cast<int64_t>(i)});
    }
    for (size_t i = 0; i < n; ++i)
      steps.push_back({orders.at[i], refpay::EventType::kOrder, static_cast<int64_t>(i)});
    for (size_t i = 0; i < n; ++i)
      if (orders.confirmed_at[i] != refpay::kNoTime)
        steps.push_back(
            {orders.confirmed_at[i], refpay::EventType::kConfirm, static_cast<int64_t>(i)});
    for (size_t i = 0; i < n; ++i)
      if (orders.refund_amount[i] != 0)
        steps.push_back(
            {orders.refunded_at[i], refpay::EventType::kRefund, static_cast<int64_t>(i)});
    std::stable_sort(steps.begin(), steps.end(),
                     [](const Step& a, const Step& b) { return a.at < b.at; });

    std::vector<int64_t> order_ns;
    order_ns.reserve(n);
    int64_t refund_ns = 0;
    int64_t refunds = 0;
    refpay::Engine engine(*policy);
    double reserve_s = 0;
    if (args.reserve) {
      const auto r0 = Clock::now();
      if (const absl::Status status = engine.Reserve(m, n); !status.ok()) {
        Die(std::string(status.message()));
      }
      reserve_s = Seconds(r0, Clock::now());
    }
    refpay::Event event;
    const auto t0 = Clock::now();
    cpu0 = CpuSeconds();
    for (const Step& step : steps) {
      event = refpay::Event();
      event.type = step.type;
      event.at = absl::FromUnixMicros(step.at);
      const int64_t row = step.row;
      switch (step.type) {
        case refpay::EventType::kJoin:
          event.member = members.ids[row];
          if (members.inviter[row] >= 0) event.inviter = members.ids[members.inviter[row]];
          break;
        case refpay::EventType::kSetRole:
          event.member = members.ids[row];
          event.role = "leader";
          break;
        case refpay::EventType::kOrder:
          event.order = orders.ids[row];
          event.buyer = members.ids[orders.buyer[row]];
          event.amount = refpay::Money::FromFen(orders.amount[row]);
          break;
        case refpay::EventType::kRefund:
          event.order = orders.ids[row];
          event.amount = refpay::Money::FromFen(orders.refund_amount[row]);
          break;
        default:
          event.order = orders.ids[row];
      }
      const auto a = Clock::now();
      const absl::Status status = engine.Apply(event);
      const auto b = Clock::now();
      const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
      if (step.type == refpay::EventType::kOrder) order_ns.push_back(ns);
      if (step.type == refpay::EventType::kRefund) {
        refund_ns += ns;
        ++refunds;
      }
      if (!status.ok()) Die(absl::StrCat("event rejected: ", status.message()));
    }
    absl::StatusOr<refpay::MemberTotals> t = engine.Totals(as_of);
    const auto t1 = Clock::now();
    cpu1 = CpuSeconds();
    compute = Seconds(t0, t1);
    if (!t.ok()) Die(std::string(t.status().message()));
    if (!args.out.empty()) totals = DenseTotals(engine, *t);
    std::sort(order_ns.begin(), order_ns.end());
    int64_t sum = 0;
    for (int64_t ns : order_ns) sum += ns;
    extra = absl::StrCat(
        ", \"events\": ", steps.size(), ", \"order_apply_p50_ns\": ", Percentile(order_ns, 0.5),
        ", \"order_apply_p99_ns\": ", Percentile(order_ns, 0.99),
        ", \"order_apply_p999_ns\": ", Percentile(order_ns, 0.999),
        ", \"order_apply_max_ns\": ", order_ns.empty() ? 0 : order_ns.back(),
        ", \"order_apply_mean_ns\": ", order_ns.empty() ? 0 : sum / (int64_t)order_ns.size(),
        ", \"refund_apply_mean_ns\": ", refunds ? refund_ns / refunds : 0,
        ", \"reserve_s\": ", reserve_s);
  }
  if (!args.out.empty()) WriteTotals(args.out, totals);
  std::printf(
      "{\"mode\": \"%s\", \"members\": %zu, \"orders\": %zu, \"load_s\": %.4f, "
      "\"compute_s\": %.4f, \"compute_cpu_s\": %.4f%s}\n",
      args.mode.c_str(), m, n, Seconds(load0, load1), compute, cpu1 - cpu0, extra.c_str());
  return 0;
}
