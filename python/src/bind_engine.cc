// python/src/bind_engine.cc — refpay/engine.h, refpay/event.h and
// refpay/ledger.h: the Engine, timestamps, and the ledger, balances, totals
// and flags as dicts of columns (the refpay package makes DataFrames of
// them). Times cross the boundary as int64 Unix microseconds.
#include <pybind11/stl.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "bind.h"
#include "refpay/batch.h"
#include "refpay/engine.h"
#include "refpay/event.h"
#include "refpay/ledger.h"
#include "refpay/policy.h"
#include "refpay/status.h"

namespace refpay::python {
namespace {

py::object OptionalStr(const std::optional<std::string>& value) {
  return value ? py::object(py::str(*value)) : py::object(py::none());
}

// Ids cross as a Python list of str; pybind11 has no caster for absl::Span.
py::list StrList(absl::Span<const std::string> ids) {
  py::list list(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) list[i] = py::str(ids[i]);
  return list;
}

absl::Time AsOf(int64_t as_of_us) { return absl::FromUnixMicros(as_of_us); }

// One cell of a time column: an ISO-8601 string with offset, or any object
// with isoformat() (datetime, pandas.Timestamp), read by ParseTimestamp() so
// a naive time is refused exactly as in an event.
absl::StatusOr<int64_t> MicrosOfCell(py::handle cell, bool required) {
  if (cell.is_none()) {
    if (!required) return kNoTime;
    return MakeError(absl::StatusCode::kInvalidArgument, "bad_time", "missing time");
  }
  const std::string text = py::isinstance<py::str>(cell) ? cell.cast<std::string>()
                           : py::hasattr(cell, "isoformat")
                               ? cell.attr("isoformat")().cast<std::string>()
                               : std::string(py::str(cell));
  absl::StatusOr<absl::Time> time = ParseTimestamp(text);
  if (!time.ok()) return time.status();
  return absl::ToUnixMicros(*time);
}

py::array_t<int64_t> ParseTimeColumn(const py::iterable& cells, const std::string& column,
                                     bool required) {
  std::vector<int64_t> micros;
  for (py::handle cell : cells) {
    absl::StatusOr<int64_t> at = MicrosOfCell(cell, required);
    if (!at.ok()) {
      throw StatusError(MakeError(at.status().code(), ErrorCodeOf(at.status()),
                                  absl::StrCat(column, "[", micros.size(),
                                               "]: ", std::string(at.status().message()))),
                        ErrorFamily::kEvent);
    }
    micros.push_back(*at);
  }
  return ToNumpy(std::move(micros));
}

// Engine::Ledger() as columns, explanations included.
py::dict LedgerColumnsOf(const std::vector<LedgerRow>& rows) {
  const auto n = static_cast<py::ssize_t>(rows.size());
  py::list order(n), member(n), kind(n), amount(n), status(n), action(n), explanation(n);
  py::array_t<int64_t> amount_fen(n), at(n);
  py::array_t<bool> clawback(n);
  auto fen = amount_fen.mutable_unchecked<1>();
  auto micros = at.mutable_unchecked<1>();
  auto is_clawback = clawback.mutable_unchecked<1>();
  for (py::ssize_t i = 0; i < n; ++i) {
    const LedgerRow& row = rows[i];
    order[i] = OptionalStr(row.order);
    member[i] = py::str(row.member);
    kind[i] = py::str(row.kind);
    amount[i] = py::str(row.amount.ToString());
    fen(i) = row.amount.fen();
    status[i] = py::str(EntryStatusName(row.status));
    action[i] = row.action ? py::object(py::str(ActionName(*row.action))) : py::object(py::none());
    is_clawback(i) = row.clawback;
    micros(i) = absl::ToUnixMicros(row.at);
    explanation[i] = py::str(row.explanation);
  }
  py::dict columns;
  columns["order"] = order;
  columns["member"] = member;
  columns["kind"] = kind;
  columns["amount"] = amount;
  columns["amount_fen"] = amount_fen;
  columns["status"] = status;
  columns["action"] = action;
  columns["clawback"] = clawback;
  columns["at"] = at;
  columns["explanation"] = explanation;
  return columns;
}

py::dict NetColumnsOf(const std::vector<NetRow>& rows) {
  const auto n = static_cast<py::ssize_t>(rows.size());
  py::list order(n), member(n), kind(n), amount(n), status(n);
  py::array_t<int64_t> amount_fen(n);
  auto fen = amount_fen.mutable_unchecked<1>();
  for (py::ssize_t i = 0; i < n; ++i) {
    const NetRow& row = rows[i];
    order[i] = OptionalStr(row.order);
    member[i] = py::str(row.member);
    kind[i] = py::str(row.kind);
    amount[i] = py::str(row.amount.ToString());
    fen(i) = row.amount.fen();
    status[i] = py::str(EntryStatusName(row.status));
  }
  py::dict columns;
  columns["order"] = order;
  columns["member"] = member;
  columns["kind"] = kind;
  columns["amount"] = amount;
  columns["amount_fen"] = amount_fen;
  columns["status"] = status;
  return columns;
}

py::dict BalanceColumnsOf(const std::vector<BalanceRow>& rows) {
  const auto n = static_cast<py::ssize_t>(rows.size());
  py::list member(n), status(n), amount(n);
  py::array_t<int64_t> amount_fen(n);
  auto fen = amount_fen.mutable_unchecked<1>();
  for (py::ssize_t i = 0; i < n; ++i) {
    const BalanceRow& row = rows[i];
    member[i] = py::str(row.member);
    status[i] = py::str(EntryStatusName(row.status));
    amount[i] = py::str(row.amount.ToString());
    fen(i) = row.amount.fen();
  }
  py::dict columns;
  columns["member"] = member;
  columns["status"] = status;
  columns["amount"] = amount;
  columns["amount_fen"] = amount_fen;
  return columns;
}

py::dict FlagColumnsOf(const std::vector<Flag>& flags) {
  const auto n = static_cast<py::ssize_t>(flags.size());
  py::list check(n), member(n), order(n);
  for (py::ssize_t i = 0; i < n; ++i) {
    check[i] = py::str(flags[i].check);
    member[i] = py::str(flags[i].member);
    order[i] = OptionalStr(flags[i].order);
  }
  py::dict columns;
  columns["check"] = check;
  columns["member"] = member;
  columns["order"] = order;
  return columns;
}

// Runs `read` (an Engine query) with the GIL released and unwraps it.
template <typename Read>
auto Unlocked(Read read) {
  py::gil_scoped_release release;
  return ValueOrThrow(read(), ErrorFamily::kEvent);
}

}  // namespace

py::dict TableColumnsOf(LedgerColumns table) {
  py::dict columns;
  columns["order"] = ToNumpy(std::move(table.order));
  columns["member"] = ToNumpy(std::move(table.member));
  columns["kind"] = ToNumpy(std::move(table.kind));
  columns["amount"] = ToNumpy(std::move(table.amount));
  columns["rule_amount"] = ToNumpy(std::move(table.rule_amount));
  columns["status"] = ToNumpy(std::move(table.status));
  columns["action"] = ToNumpy(std::move(table.action));
  columns["clawback"] = ToNumpy(std::move(table.clawback));
  columns["kind_names"] = py::cast(table.kind_names);
  return columns;
}

py::dict TotalsColumnsOf(MemberTotals totals) {
  py::dict columns;
  columns["pending"] = ToNumpy(std::move(totals.pending));
  columns["frozen"] = ToNumpy(std::move(totals.frozen));
  columns["available"] = ToNumpy(std::move(totals.available));
  columns["held"] = ToNumpy(std::move(totals.held));
  return columns;
}

void BindEngine(py::module_& m) {
  py::tuple statuses(4);
  for (const EntryStatus status :
       {EntryStatus::kPending, EntryStatus::kFrozen, EntryStatus::kAvailable, EntryStatus::kHeld}) {
    statuses[static_cast<size_t>(status)] = py::str(EntryStatusName(status));
  }
  m.attr("ENTRY_STATUSES") = statuses;
  py::tuple actions(4);
  actions[0] = py::none();
  for (const Action action : {Action::kFlag, Action::kHold, Action::kDeny}) {
    actions[static_cast<size_t>(action)] = py::str(ActionName(action));
  }
  m.attr("ACTIONS") = actions;

  m.def(
      "parse_timestamp",
      [](const std::string& text) {
        return absl::ToUnixMicros(ValueOrThrow(ParseTimestamp(text), ErrorFamily::kEvent));
      },
      py::arg("text"),
      "parse_timestamp(text) reads ISO-8601 with an offset into Unix microseconds. "
      "Raises EventError (bad_time).");
  m.def("parse_time_column", &ParseTimeColumn, py::arg("cells"), py::arg("column"),
        py::arg("required"),
        "parse_time_column(cells, column, required) reads ISO-8601 strings (or objects "
        "with isoformat()) into int64 Unix microseconds; None is NO_TIME unless "
        "required. Raises EventError (bad_time) naming column[row].");
  m.attr("NO_TIME") = kNoTime;

  py::class_<Engine>(m, "Engine", "The commission engine: events in, ledger out. Not thread-safe.")
      .def(py::init([](const Policy& policy) { return Engine(policy); }), py::arg("policy"))
      .def(
          "apply_json",
          [](Engine& engine, const std::string& json) {
            ThrowIfError(engine.ApplyJson(json), ErrorFamily::kEvent);
          },
          py::arg("json"),
          "apply_json(text) applies one SPEC §2 event, or raises EventError / "
          "UnknownIdError and changes nothing.")
      .def(
          "reserve",
          [](Engine& engine, int64_t members, int64_t orders) {
            ThrowIfError(engine.Reserve(members, orders), ErrorFamily::kEvent);
          },
          py::arg("members"), py::arg("orders"),
          "reserve(members, orders) makes room for that many more members and orders "
          "(Engine::Reserve).")
      .def(
          "apply_json_many",
          [](Engine& engine, const std::vector<std::string>& events) {
            std::vector<std::tuple<int64_t, std::string, std::string>> rejected;
            {
              py::gil_scoped_release release;
              for (size_t i = 0; i < events.size(); ++i) {
                absl::Status status = engine.ApplyJson(events[i]);
                if (!status.ok()) {
                  rejected.emplace_back(static_cast<int64_t>(i), ErrorCodeOf(status),
                                        std::string(status.message()));
                }
              }
            }
            return rejected;
          },
          py::arg("events"),
          "apply_json_many(texts) applies each event in turn and returns the rejected "
          "ones as (position, code, message).")
      .def(
          "ledger",
          [](const Engine& engine, int64_t as_of_us) {
            return LedgerColumnsOf(Unlocked([&] { return engine.Ledger(AsOf(as_of_us)); }));
          },
          py::arg("as_of_us"), "Every entry and clawback as columns, with explanations.")
      .def(
          "net_ledger",
          [](const Engine& engine, int64_t as_of_us) {
            return NetColumnsOf(Unlocked([&] { return engine.NetLedger(AsOf(as_of_us)); }));
          },
          py::arg("as_of_us"), "The SPEC §8 net ledger as columns.")
      .def(
          "balances",
          [](const Engine& engine, int64_t as_of_us) {
            return BalanceColumnsOf(Unlocked([&] { return engine.Balances(AsOf(as_of_us)); }));
          },
          py::arg("as_of_us"), "Non-zero balances per (member, status) as columns.")
      .def(
          "totals",
          [](const Engine& engine, int64_t as_of_us) {
            return TotalsColumnsOf(Unlocked([&] { return engine.Totals(AsOf(as_of_us)); }));
          },
          py::arg("as_of_us"), "Dense per-member sums in fen, indexed like member_ids.")
      .def(
          "ledger_table",
          [](const Engine& engine, int64_t as_of_us) {
            return TableColumnsOf(Unlocked([&] { return engine.LedgerTable(AsOf(as_of_us)); }));
          },
          py::arg("as_of_us"), "The ledger as dense numpy columns of indices (no strings per row).")
      .def(
          "flags", [](const Engine& engine) { return FlagColumnsOf(engine.Flags()); },
          "Check hits and cap cuts as columns, in the order they happened.")
      .def(
          "explain",
          [](const Engine& engine, const std::string& order_id) {
            return ValueOrThrow(engine.Explain(order_id), ErrorFamily::kEvent);
          },
          py::arg("order_id"),
          "explain(order_id) explains every entry of an order, one line each. Raises "
          "UnknownIdError (unknown_order).")
      .def(
          "snapshot", [](const Engine& engine) { return py::bytes(engine.Snapshot()); },
          "snapshot() is the whole state of the run as versioned, checksummed bytes; the "
          "same state always gives the same bytes.")
      .def_static(
          "restore",
          [](const py::bytes& data) {
            const std::string bytes = data;
            py::gil_scoped_release release;
            return ValueOrThrow(Engine::Restore(bytes), ErrorFamily::kSnapshot);
          },
          py::arg("data"),
          "restore(data) rebuilds an engine from snapshot() bytes. Raises SnapshotError "
          "(bad_snapshot for corrupt or truncated bytes, snapshot_version for another format).")
      .def_property_readonly(
          "policy", [](const Engine& engine) { return engine.policy(); },
          "A copy of the policy the engine runs.")
      .def_property_readonly(
          "member_ids", [](const Engine& engine) { return StrList(engine.member_ids()); },
          "Member ids in join order.")
      .def_property_readonly(
          "order_ids", [](const Engine& engine) { return StrList(engine.order_ids()); },
          "Order ids in placement order.")
      .def_property_readonly(
          "last_event_time",
          [](const Engine& engine) -> std::optional<int64_t> {
            const std::optional<absl::Time> last = engine.last_event_time();
            if (!last) return std::nullopt;
            return absl::ToUnixMicros(*last);
          },
          "Unix microseconds of the last applied event, or None.")
      .def_property_readonly("member_count", &Engine::member_count)
      .def_property_readonly("order_count", &Engine::order_count);
}

}  // namespace refpay::python
