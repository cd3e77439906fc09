// python/src/bind_batch.cc — refpay/batch.h: settle whole tables at once.
//
// settle_batch(policy, members, orders) takes two dicts of columns named as
// the fields of BatchMembers and BatchOrders: numbers as numpy arrays of the
// exact dtype (int32 rows, int64 fen and Unix microseconds; no unsafe casts),
// strings as lists or object arrays of str, or, without a Python object per
// cell, as the two buffers of an Arrow large_string array without nulls:
// a tuple (offsets: int64 array of n + 1, data: uint8 array of UTF-8). The
// settling runs with the GIL released and reads the numeric arrays and the
// Arrow text buffers in place, so they must not change until it returns.
#include <pybind11/stl.h>

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "bind.h"
#include "refpay/batch.h"
#include "refpay/engine.h"
#include "refpay/policy.h"

namespace refpay::python {
namespace {

// Reads the named columns of a dict as a table view; an unknown key or a
// dtype that needs an unsafe cast is an error naming the column. Numbers
// and Arrow text buffers are viewed where they are, never copied (10
// million orders' columns are half a gigabyte); the reader holds a
// reference to each array, so it must outlive the view. Text given as a
// list of str is copied into std::strings, kept here.
class ColumnReader {
 public:
  ColumnReader(const py::dict& columns, std::string table)
      : columns_(columns), table_(std::move(table)) {}

  template <typename T>
  void Numbers(const char* name, absl::Span<const T>* out) {
    py::handle cell = Take(name);
    if (!cell) return;
    auto array = py::array_t<T, py::array::c_style>::ensure(cell);
    if (!array) {
      PyErr_Clear();
      throw py::type_error(table_ + "." + name + " must be a numpy array of " +
                           std::string(py::str(py::dtype::of<T>())));
    }
    *out = absl::MakeConstSpan(array.data(), static_cast<size_t>(array.size()));
    arrays_.push_back(std::move(array));
  }

  // Text as its Arrow buffers is viewed where it is; a list or an object
  // array of str is copied into std::strings, kept here.
  void Strings(const char* name, TextColumn* out) {
    py::handle cell = Take(name);
    if (!cell) return;
    if (py::isinstance<py::tuple>(cell)) {
      *out = ArrowStrings(name, cell.cast<py::tuple>());
    } else {
      *out = strings_.emplace_back(cell.cast<std::vector<std::string>>());
    }
  }

  // Views (offsets, data), the buffers of an Arrow large_string array; the
  // offsets must start at 0 or more, never decrease and stay inside data.
  TextColumn ArrowStrings(const char* name, const py::tuple& buffers) {
    const std::string column = table_ + "." + name;
    auto offsets = buffers.size() == 2
                       ? py::array_t<int64_t, py::array::c_style>::ensure(buffers[0])
                       : py::array_t<int64_t, py::array::c_style>();
    auto data = buffers.size() == 2 ? py::array_t<uint8_t, py::array::c_style>::ensure(buffers[1])
                                    : py::array_t<uint8_t, py::array::c_style>();
    if (!offsets || !data || offsets.ndim() != 1 || offsets.size() < 1) {
      PyErr_Clear();
      throw py::type_error(
          column + " as buffers must be (offsets: int64 array of n + 1, data: uint8 array)");
    }
    absl::StatusOr<TextColumn> text = TextColumn::FromOffsets(
        absl::MakeConstSpan(offsets.data(), static_cast<size_t>(offsets.size())),
        std::string_view(reinterpret_cast<const char*>(data.data()),
                         static_cast<size_t>(data.size())));
    if (!text.ok()) throw py::value_error(column + " " + std::string(text.status().message()));
    arrays_.push_back(std::move(offsets));
    arrays_.push_back(std::move(data));
    return *text;
  }

  // Fails if a key was not one of the columns read.
  void CheckAllRead() const {
    for (const auto& [key, value] : columns_) {
      const std::string name = py::str(key);
      bool read = false;
      for (const std::string& taken : taken_) read = read || taken == name;
      if (!read) throw py::key_error(table_ + "." + name + " is not a batch column");
    }
  }

 private:
  py::handle Take(const char* name) {
    taken_.emplace_back(name);
    return columns_.contains(name) ? py::handle(columns_[name]) : py::handle();
  }

  const py::dict& columns_;
  std::string table_;
  std::vector<std::string> taken_;
  std::vector<py::object> arrays_;                // numbers and Arrow text buffers viewed
  std::deque<std::vector<std::string>> strings_;  // a deque: a column never moves
};

BatchMembersView ReadMembers(ColumnReader& reader) {
  BatchMembersView members;
  reader.Strings("ids", &members.ids);
  reader.Numbers("int_ids", &members.int_ids);
  reader.Numbers("inviter", &members.inviter);
  reader.Numbers("joined_at", &members.joined_at);
  reader.Strings("role", &members.role);
  reader.Strings("rank", &members.rank);
  reader.Strings("region", &members.region);
  reader.Strings("device", &members.device);
  reader.Strings("phone", &members.phone);
  reader.Strings("payment", &members.payment);
  reader.CheckAllRead();
  return members;
}

BatchOrdersView ReadOrders(ColumnReader& reader) {
  BatchOrdersView orders;
  reader.Strings("ids", &orders.ids);
  reader.Numbers("int_ids", &orders.int_ids);
  reader.Numbers("buyer", &orders.buyer);
  reader.Numbers("amount", &orders.amount);
  reader.Numbers("at", &orders.at);
  reader.Strings("category", &orders.category);
  reader.Numbers("confirmed_at", &orders.confirmed_at);
  reader.Numbers("refund_amount", &orders.refund_amount);
  reader.Numbers("refunded_at", &orders.refunded_at);
  reader.CheckAllRead();
  return orders;
}

py::dict ErrorColumnsOf(const std::vector<BatchError>& errors) {
  const auto n = static_cast<py::ssize_t>(errors.size());
  py::list table(n), code(n), message(n);
  py::array_t<int64_t> row(n);
  auto rows = row.mutable_unchecked<1>();
  for (py::ssize_t i = 0; i < n; ++i) {
    table[i] = py::str(errors[i].table);
    rows(i) = errors[i].row;
    code[i] = py::str(errors[i].code);
    message[i] = py::str(errors[i].message);
  }
  py::dict columns;
  columns["table"] = table;
  columns["row"] = row;
  columns["code"] = code;
  columns["message"] = message;
  return columns;
}

// BatchFlags as columns check (str), member and order (int32 rows, order
// -1 for none).
py::dict FlagRowColumnsOf(const std::vector<BatchFlag>& flags) {
  py::list check(static_cast<py::ssize_t>(flags.size()));
  std::vector<int32_t> member(flags.size());
  std::vector<int32_t> order(flags.size());
  for (size_t i = 0; i < flags.size(); ++i) {
    check[i] = py::str(flags[i].check);
    member[i] = flags[i].member;
    order[i] = flags[i].order;
  }
  py::dict columns;
  columns["check"] = check;
  columns["member"] = ToNumpy(std::move(member));
  columns["order"] = ToNumpy(std::move(order));
  return columns;
}

// Reads the two tables' columns (with the GIL: they are Python objects),
// then runs `settle(members, orders)` with the GIL released and unwraps it.
template <typename Settle>
auto SettleColumns(const py::dict& member_columns, const py::dict& order_columns, Settle settle) {
  ColumnReader member_reader(member_columns, "members");
  const BatchMembersView members = ReadMembers(member_reader);
  ColumnReader order_reader(order_columns, "orders");
  const BatchOrdersView orders = ReadOrders(order_reader);
  // Released last in, first out: the GIL is back before the readers drop
  // their references to the arrays.
  py::gil_scoped_release release;
  return ValueOrThrow(settle(members, orders), ErrorFamily::kEvent);
}

}  // namespace

void BindBatch(py::module_& m) {
  m.def(
      "settle_batch",
      [](const Policy& policy, const py::dict& member_columns, const py::dict& order_columns) {
        BatchResult result =
            SettleColumns(member_columns, order_columns,
                          [&](const BatchMembersView& members, const BatchOrdersView& orders) {
                            return SettleBatch(policy, members, orders);
                          });
        py::dict errors = ErrorColumnsOf(result.errors);
        return py::make_tuple(py::cast(std::move(result.engine)), errors);
      },
      py::arg("policy"), py::arg("members"), py::arg("orders"),
      "settle_batch(policy, members, orders) merges the member and order columns into "
      "one time-ordered event stream and applies it; returns (Engine, rejected rows as "
      "columns table, row, code, message). Column length mismatches raise EventError "
      "(bad_batch).");
  m.def(
      "settle_totals",
      [](const Policy& policy, const py::dict& member_columns, const py::dict& order_columns,
         int64_t as_of_us) {
        BatchTotals result = SettleColumns(
            member_columns, order_columns,
            [&](const BatchMembersView& members, const BatchOrdersView& orders) {
              return SettleTotals(policy, members, orders, absl::FromUnixMicros(as_of_us));
            });
        py::dict errors = ErrorColumnsOf(result.errors);
        return py::make_tuple(TotalsColumnsOf(std::move(result.by_row)), errors,
                              result.engine_reason);
      },
      py::arg("policy"), py::arg("members"), py::arg("orders"), py::arg("as_of_us"),
      "settle_totals(policy, members, orders, as_of_us) is SettleTotals: (per-member-row "
      "sums as columns pending, frozen, available, held; rejected rows; why the engine "
      "settled instead of the columnar kernel, \"\" if the kernel did).");
  m.def(
      "settle_ledger",
      [](const Policy& policy, const py::dict& member_columns, const py::dict& order_columns,
         int64_t as_of_us) {
        BatchLedger result = SettleColumns(
            member_columns, order_columns,
            [&](const BatchMembersView& members, const BatchOrdersView& orders) {
              return SettleLedger(policy, members, orders, absl::FromUnixMicros(as_of_us));
            });
        py::dict errors = ErrorColumnsOf(result.errors);
        return py::make_tuple(TableColumnsOf(std::move(result.ledger)),
                              TotalsColumnsOf(std::move(result.by_row)),
                              FlagRowColumnsOf(result.flags), errors, result.engine_reason);
      },
      py::arg("policy"), py::arg("members"), py::arg("orders"), py::arg("as_of_us"),
      "settle_ledger(policy, members, orders, as_of_us) is SettleLedger: (the ledger as "
      "columns, with member and order rows; per-member-row sums; flags as columns check, "
      "member row, order row (-1 for none); rejected rows; why the engine settled instead "
      "of the columnar kernel, \"\" if the kernel did).");
}

}  // namespace refpay::python
