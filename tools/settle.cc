// `refpay settle`: applies an event stream (JSONL, or members/orders CSV) to
// a policy and writes the ledger, balances, flags, errors and a summary.
#include <csv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli.h"
#include "refpay/engine.h"
#include "refpay/event.h"
#include "refpay/lint.h"
#include "refpay/status.h"

namespace refpay::cli {
namespace {

struct Options {
  std::string policy;
  std::string events;
  std::string members;
  std::string orders;
  std::string out;
  std::optional<absl::Time> as_of;
  bool quiet = false;
};

// A rejected input line, for errors.csv and stderr.
struct Rejection {
  std::string source;
  int64_t line;
  std::string code;
  std::string message;
};

// An event read from a CSV row, with where it came from.
struct SourcedEvent {
  Event event;
  std::string source;
  int64_t line;
};

absl::StatusOr<Options> ParseOptions(const std::vector<std::string>& args) {
  Options options;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (flag == "--quiet") {
      options.quiet = true;
      continue;
    }
    if (i + 1 >= args.size()) {
      return absl::InvalidArgumentError(absl::StrCat(flag, " needs a value"));
    }
    const std::string& value = args[++i];
    if (flag == "--policy") {
      options.policy = value;
    } else if (flag == "--events") {
      options.events = value;
    } else if (flag == "--members") {
      options.members = value;
    } else if (flag == "--orders") {
      options.orders = value;
    } else if (flag == "--out") {
      options.out = value;
    } else if (flag == "--as-of") {
      absl::StatusOr<absl::Time> t = ParseTimestamp(value);
      if (!t.ok())
        return absl::InvalidArgumentError(absl::StrCat("--as-of: ", t.status().message()));
      options.as_of = *t;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown option ", flag));
    }
  }
  if (options.policy.empty() || options.out.empty()) {
    return absl::InvalidArgumentError("--policy and --out are required");
  }
  if (options.events.empty() == options.orders.empty() ||
      (!options.members.empty() && options.orders.empty())) {
    return absl::InvalidArgumentError("give either --events FILE or --members FILE --orders FILE");
  }
  return options;
}

// Reads a whole CSV file into rows of fields with libcsv (RFC 4180 quoting).
absl::StatusOr<std::vector<std::vector<std::string>>> ReadCsv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  struct Collector {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> row;
  } collector;
  csv_parser parser;
  if (csv_init(&parser, CSV_STRICT | CSV_APPEND_NULL) != 0) {
    return absl::InternalError("cannot initialise the CSV parser");
  }
  auto on_field = [](void* data, size_t length, void* self) {
    static_cast<Collector*>(self)->row.emplace_back(static_cast<const char*>(data), length);
  };
  auto on_row = [](int, void* self) {
    auto* c = static_cast<Collector*>(self);
    c->rows.push_back(std::move(c->row));
    c->row.clear();
  };
  std::vector<char> buffer(1 << 16);
  absl::Status status;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const size_t got = static_cast<size_t>(in.gcount());
    if (csv_parse(&parser, buffer.data(), got, on_field, on_row, &collector) != got) {
      status = absl::InvalidArgumentError(absl::StrCat(
          path, " (near row ", collector.rows.size() + 1, "): ", csv_strerror(csv_error(&parser))));
      break;
    }
  }
  if (status.ok()) csv_fini(&parser, on_field, on_row, &collector);
  csv_free(&parser);
  if (!status.ok()) return status;
  return std::move(collector.rows);
}

// Maps a CSV header to column indices; missing required columns are errors.
absl::StatusOr<std::map<std::string, size_t>> Columns(const std::vector<std::string>& header,
                                                      const std::vector<std::string>& required,
                                                      const std::string& path) {
  std::map<std::string, size_t> columns;
  for (size_t i = 0; i < header.size(); ++i) columns[header[i]] = i;
  for (const std::string& name : required) {
    if (!columns.contains(name)) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":1: missing column \"", name, "\""));
    }
  }
  return columns;
}

// Converts members.csv and orders.csv into a time-ordered event stream.
// Within one instant, members come before orders and rows keep file order.
absl::StatusOr<std::vector<SourcedEvent>> EventsFromCsv(const Options& options,
                                                        std::vector<Rejection>* rejected) {
  std::vector<SourcedEvent> events;
  auto cell = [](const std::vector<std::string>& row, const std::map<std::string, size_t>& columns,
                 const std::string& name) -> std::string {
    auto it = columns.find(name);
    return it == columns.end() || it->second >= row.size() ? std::string() : row[it->second];
  };
  auto time_of = [&](const std::string& text, const std::string& source, int64_t line,
                     absl::Time* out) {
    absl::StatusOr<absl::Time> t = ParseTimestamp(text);
    if (!t.ok()) {
      rejected->push_back({source, line, "bad_time", std::string(t.status().message())});
      return false;
    }
    *out = *t;
    return true;
  };
  if (!options.members.empty()) {
    REFPAY_ASSIGN_OR_RETURN(auto rows, ReadCsv(options.members));
    if (rows.empty())
      return absl::InvalidArgumentError(absl::StrCat(options.members, ": empty file"));
    REFPAY_ASSIGN_OR_RETURN(auto columns,
                            Columns(rows[0], {"member", "joined_at"}, options.members));
    for (size_t r = 1; r < rows.size(); ++r) {
      const auto& row = rows[r];
      const int64_t line = static_cast<int64_t>(r + 1);
      Event join;
      join.type = EventType::kJoin;
      join.member = cell(row, columns, "member");
      if (join.member.empty()) {
        rejected->push_back({options.members, line, "bad_event", "empty member id"});
        continue;
      }
      if (!time_of(cell(row, columns, "joined_at"), options.members, line, &join.at)) continue;
      if (std::string inviter = cell(row, columns, "inviter"); !inviter.empty())
        join.inviter = inviter;
      join.identity = {cell(row, columns, "region"), cell(row, columns, "device"),
                       cell(row, columns, "phone"), cell(row, columns, "payment")};
      events.push_back({join, options.members, line});
      if (std::string role = cell(row, columns, "role"); !role.empty()) {
        Event set_role;
        set_role.type = EventType::kSetRole;
        set_role.member = join.member;
        set_role.role = role;
        set_role.at = join.at;
        if (std::string rank = cell(row, columns, "rank"); !rank.empty()) set_role.rank = rank;
        events.push_back({set_role, options.members, line});
      }
    }
  }
  REFPAY_ASSIGN_OR_RETURN(auto rows, ReadCsv(options.orders));
  if (rows.empty()) return absl::InvalidArgumentError(absl::StrCat(options.orders, ": empty file"));
  REFPAY_ASSIGN_OR_RETURN(auto columns,
                          Columns(rows[0], {"id", "buyer", "amount", "at"}, options.orders));
  for (size_t r = 1; r < rows.size(); ++r) {
    const auto& row = rows[r];
    const int64_t line = static_cast<int64_t>(r + 1);
    Event order;
    order.type = EventType::kOrder;
    order.order = cell(row, columns, "id");
    order.buyer = cell(row, columns, "buyer");
    if (order.order.empty() || order.buyer.empty()) {
      rejected->push_back({options.orders, line, "bad_event", "empty id or buyer"});
      continue;
    }
    absl::StatusOr<Money> amount = Money::Parse(cell(row, columns, "amount"));
    if (!amount.ok()) {
      rejected->push_back(
          {options.orders, line, "bad_amount", std::string(amount.status().message())});
      continue;
    }
    order.amount = *amount;
    if (!time_of(cell(row, columns, "at"), options.orders, line, &order.at)) continue;
    if (std::string category = cell(row, columns, "category"); !category.empty())
      order.category = category;
    events.push_back({order, options.orders, line});
    if (std::string confirmed = cell(row, columns, "confirmed_at"); !confirmed.empty()) {
      Event confirm;
      confirm.type = EventType::kConfirm;
      confirm.order = order.order;
      if (time_of(confirmed, options.orders, line, &confirm.at))
        events.push_back({confirm, options.orders, line});
    }
    if (std::string refund_amount = cell(row, columns, "refund_amount"); !refund_amount.empty()) {
      Event refund;
      refund.type = EventType::kRefund;
      refund.order = order.order;
      absl::StatusOr<Money> money = Money::Parse(refund_amount);
      if (!money.ok()) {
        rejected->push_back(
            {options.orders, line, "bad_amount", std::string(money.status().message())});
        continue;
      }
      refund.amount = *money;
      if (time_of(cell(row, columns, "refunded_at"), options.orders, line, &refund.at)) {
        events.push_back({refund, options.orders, line});
      }
    }
  }
  std::stable_sort(events.begin(), events.end(), [](const SourcedEvent& a, const SourcedEvent& b) {
    return a.event.at < b.event.at;
  });
  return events;
}

std::string CsvField(std::string_view text) {
  if (text.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(text);
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// Writes `content` to `path` atomically: a temporary file, then a rename,
// so a reader never sees half a ledger.
absl::Status WriteAtomically(const std::filesystem::path& path, const std::string& content) {
  const std::filesystem::path temporary = path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out)
      return absl::PermissionDeniedError(absl::StrCat(temporary.string(), ": cannot write"));
    out << content;
    out.flush();
    if (!out) return absl::DataLossError(absl::StrCat(temporary.string(), ": write failed"));
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) return absl::DataLossError(absl::StrCat(path.string(), ": ", error.message()));
  return absl::OkStatus();
}

std::string Padded(std::string_view text, size_t width) {
  std::string out(text);
  // Count UTF-8 code points, not bytes, so Chinese ids line up roughly.
  size_t shown = 0;
  for (unsigned char c : text) shown += (c & 0xC0) != 0x80;
  if (shown < width) out.append(width - shown, ' ');
  return out;
}

std::string RightAligned(const std::string& text, size_t width) {
  return text.size() >= width ? text : std::string(width - text.size(), ' ') + text;
}

// Builds summary.txt: totals per kind and status, top earners, flags, lint.
absl::StatusOr<std::string> Summary(const Engine& engine, const std::vector<LedgerRow>& ledger,
                                    const std::vector<BalanceRow>& balances,
                                    const std::vector<Flag>& flags,
                                    const std::vector<Rejection>& rejected,
                                    const std::vector<LintFinding>& lint, int64_t applied,
                                    double seconds, absl::Time as_of) {
  constexpr EntryStatus kStatuses[] = {EntryStatus::kPending, EntryStatus::kFrozen,
                                       EntryStatus::kAvailable, EntryStatus::kHeld};
  std::map<std::string, std::array<Money, 5>> by_kind;  // 4 statuses + total
  std::array<Money, 5> all{};
  for (const LedgerRow& row : ledger) {
    auto& sums = by_kind[row.kind];
    for (int slot : {static_cast<int>(row.status), 4}) {
      REFPAY_ASSIGN_OR_RETURN(sums[slot], CheckedAdd(sums[slot], row.amount));
      REFPAY_ASSIGN_OR_RETURN(all[slot], CheckedAdd(all[slot], row.amount));
    }
  }
  std::ostringstream out;
  const Policy& policy = engine.policy();
  out << "refpay settle: policy \"" << policy.name << "\", as of "
      << FormatTimestamp(as_of, policy.timezone) << "\n";
  out << "events: " << applied << " applied, " << rejected.size() << " rejected"
      << (rejected.empty() ? "" : " (see errors.csv)") << "; members " << engine.member_count()
      << ", orders " << engine.order_count() << "\n";
  out << absl::StrFormat("time: %.3f s for the events (%.0f events/s)\n\n", seconds,
                         seconds > 0 ? static_cast<double>(applied) / seconds : 0.0);
  out << "payout by kind and status (" << policy.currency << ")\n";
  out << Padded("kind", 14);
  for (EntryStatus s : kStatuses) out << RightAligned(std::string(EntryStatusName(s)), 16);
  out << RightAligned("total", 16) << "\n";
  auto print_row = [&](const std::string& name, const std::array<Money, 5>& sums) {
    out << Padded(name, 14);
    for (const Money& m : sums) out << RightAligned(m.ToString(), 16);
    out << "\n";
  };
  for (const auto& [kind, sums] : by_kind) print_row(kind, sums);
  print_row("all", all);

  std::map<std::string, Money> per_member;
  for (const BalanceRow& row : balances) {
    REFPAY_ASSIGN_OR_RETURN(per_member[row.member], CheckedAdd(per_member[row.member], row.amount));
  }
  std::vector<std::pair<std::string, Money>> earners(per_member.begin(), per_member.end());
  std::stable_sort(earners.begin(), earners.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  out << "\ntop earners\n";
  for (size_t i = 0; i < std::min<size_t>(10, earners.size()); ++i) {
    out << "  " << Padded(earners[i].first, 20) << RightAligned(earners[i].second.ToString(), 16)
        << "\n";
  }
  std::map<std::string, int64_t> by_check;
  for (const Flag& flag : flags) ++by_check[flag.check];
  out << "\nflags by check\n";
  if (by_check.empty()) out << "  none\n";
  for (const auto& [check, count] : by_check) out << "  " << Padded(check, 20) << count << "\n";
  std::map<std::string, int64_t> by_code;
  for (const Rejection& r : rejected) ++by_code[r.code];
  if (!by_code.empty()) {
    out << "\nrejected events by code\n";
    for (const auto& [code, count] : by_code) out << "  " << Padded(code, 20) << count << "\n";
  }
  out << "\nlint\n";
  if (lint.empty()) out << "  no findings\n";
  for (const LintFinding& f : lint) {
    out << "  " << SeverityName(f.severity) << " " << f.code << " "
        << (f.path.empty() ? "(policy)" : f.path) << ": " << f.message << "\n";
  }
  return out.str();
}

absl::Status WriteOutputs(const Options& options, const Engine& engine,
                          const std::vector<Rejection>& rejected,
                          const std::vector<LintFinding>& lint, int64_t applied, double seconds) {
  std::optional<absl::Time> last = engine.last_event_time();
  const absl::Time as_of = options.as_of.value_or(last.value_or(absl::UnixEpoch()));
  REFPAY_ASSIGN_OR_RETURN(std::vector<LedgerRow> ledger, engine.Ledger(as_of));
  REFPAY_ASSIGN_OR_RETURN(std::vector<BalanceRow> balances, engine.Balances(as_of));
  const std::vector<Flag> flags = engine.Flags();
  const std::filesystem::path dir(options.out);
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return absl::PermissionDeniedError(absl::StrCat(options.out, ": ", error.message()));
  const absl::TimeZone zone = engine.policy().timezone;

  std::string text = "order,member,kind,amount,status,action,clawback,at,explanation\n";
  for (const LedgerRow& row : ledger) {
    absl::StrAppend(&text, CsvField(row.order.value_or("")), ",", CsvField(row.member), ",",
                    row.kind, ",", row.amount.ToString(), ",", EntryStatusName(row.status), ",",
                    row.action ? ActionName(*row.action) : "", ",", row.clawback ? "yes" : "", ",",
                    FormatTimestamp(row.at, zone), ",", CsvField(row.explanation), "\n");
  }
  REFPAY_RETURN_IF_ERROR(WriteAtomically(dir / "ledger.csv", text));

  text = "member,status,amount\n";
  for (const BalanceRow& row : balances) {
    absl::StrAppend(&text, CsvField(row.member), ",", EntryStatusName(row.status), ",",
                    row.amount.ToString(), "\n");
  }
  REFPAY_RETURN_IF_ERROR(WriteAtomically(dir / "balances.csv", text));

  text = "check,member,order\n";
  for (const Flag& flag : flags) {
    absl::StrAppend(&text, flag.check, ",", CsvField(flag.member), ",",
                    CsvField(flag.order.value_or("")), "\n");
  }
  REFPAY_RETURN_IF_ERROR(WriteAtomically(dir / "flags.csv", text));

  text = "source,line,code,message\n";
  for (const Rejection& r : rejected) {
    absl::StrAppend(&text, CsvField(r.source), ",", r.line, ",", r.code, ",", CsvField(r.message),
                    "\n");
  }
  REFPAY_RETURN_IF_ERROR(WriteAtomically(dir / "errors.csv", text));

  REFPAY_ASSIGN_OR_RETURN(std::string summary, Summary(engine, ledger, balances, flags, rejected,
                                                       lint, applied, seconds, as_of));
  REFPAY_RETURN_IF_ERROR(WriteAtomically(dir / "summary.txt", summary));
  if (!options.quiet) std::cout << summary;
  return absl::OkStatus();
}

}  // namespace

int Settle(const std::vector<std::string>& args) {
  absl::StatusOr<Options> options = ParseOptions(args);
  if (!options.ok()) {
    std::cerr << "refpay settle: " << options.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<Policy> policy = Policy::FromFile(options->policy);
  if (!policy.ok()) {
    std::cerr << "refpay settle: " << ErrorCodeOf(policy.status()) << ": "
              << policy.status().message() << "\n";
    return 2;
  }
  const std::vector<LintFinding> lint = LintPolicy(*policy);
  Engine engine(*std::move(policy));
  std::vector<Rejection> rejected;
  int64_t applied = 0;
  auto reject = [&](Rejection r) {
    if (!options->quiet && rejected.size() < 20) {
      std::cerr << r.source << ":" << r.line << ": " << r.code << ": " << r.message << "\n";
    }
    rejected.push_back(std::move(r));
  };
  const auto start = std::chrono::steady_clock::now();
  if (!options->events.empty()) {
    std::ifstream in(options->events, std::ios::binary);
    if (!in) {
      std::cerr << "refpay settle: " << options->events << ": cannot open file\n";
      return 2;
    }
    std::string line;
    for (int64_t number = 1; std::getline(in, line); ++number) {
      if (line.empty() || line.find_first_not_of(" \t\r") == std::string::npos) continue;
      absl::Status status = engine.ApplyJson(line);
      if (status.ok()) {
        ++applied;
      } else {
        reject({options->events, number, ErrorCodeOf(status), std::string(status.message())});
      }
    }
  } else {
    std::vector<Rejection> csv_rejected;
    absl::StatusOr<std::vector<SourcedEvent>> events = EventsFromCsv(*options, &csv_rejected);
    if (!events.ok()) {
      std::cerr << "refpay settle: " << events.status().message() << "\n";
      return 2;
    }
    for (Rejection& r : csv_rejected) reject(std::move(r));
    for (const SourcedEvent& e : *events) {
      absl::Status status = engine.Apply(e.event);
      if (status.ok()) {
        ++applied;
      } else {
        reject({e.source, e.line, ErrorCodeOf(status), std::string(status.message())});
      }
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!options->quiet && rejected.size() > 20) {
    std::cerr << "… " << rejected.size() - 20 << " more rejected lines in errors.csv\n";
  }
  absl::Status written = WriteOutputs(*options, engine, rejected, lint, applied, seconds);
  if (!written.ok()) {
    std::cerr << "refpay settle: " << written.message() << "\n";
    return 2;
  }
  return 0;
}

}  // namespace refpay::cli
